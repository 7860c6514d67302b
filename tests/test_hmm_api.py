"""HMM estimator API beyond the reference tests: hmmlearn's positional ``lengths`` next to
scikit-learn's ``y``, per-row weights, ``n_features``, several symbols per step, ``n_init`` and
``warm_start``. References: hmmlearn, and forward-backward / M-steps written plainly here."""

import numpy as np
import pytest
from sklearn.base import clone

import emkit

from ._helpers import plain_forward_backward


def _symbols(seed=0, n=60, v=4, d=1):
    rng = np.random.default_rng(seed)
    return rng.integers(v, size=(n, d))


def _chain(k, seed):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)


def _categorical(k, e, pi, A, **kw):
    est = emkit.CategoricalHMM(k, init_params="", check_monotonic="raise", **kw)
    est.startprob_, est.transmat_, est.emissionprob_ = pi, A, e
    return est


# ---------------------------------------------------------------- lengths and y
def test_lengths_positionally_as_in_hmmlearn_and_by_keyword():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    x = _symbols()
    lengths = [20, 15, 25]
    pi, A = _chain(3, 1)
    e = np.random.default_rng(2).dirichlet(np.ones(4), size=3)
    ref = hmmlearn.CategoricalHMM(3, init_params="", n_iter=4)
    ref.startprob_, ref.transmat_, ref.emissionprob_ = pi, A, e
    ref.fit(x, lengths)
    pos = _categorical(3, e, pi, A, n_iter=4).fit(x, lengths)
    kw = _categorical(3, e, pi, A, n_iter=4).fit(x, lengths=lengths)
    for est in (pos, kw):
        np.testing.assert_allclose(est.transmat_, ref.transmat_, rtol=1e-10)
        np.testing.assert_allclose(est.emissionprob_, ref.emissionprob_, rtol=1e-10)
        assert est.score(x, lengths) == pytest.approx(ref.score(x, lengths), rel=1e-12)
        assert est.score(x, lengths=lengths) == pytest.approx(ref.score(x, lengths), rel=1e-12)
    # every row its own sequence: n ones is lengths, as hmmlearn reads it
    ones = np.ones(len(x), dtype=int)
    assert pos.score(x, ones) == pytest.approx(ref.score(x, ones), rel=1e-12)


def test_scikit_learn_target_in_place_of_lengths_is_ignored():
    x = _symbols()
    pi, A = _chain(3, 1)
    e = np.random.default_rng(2).dirichlet(np.ones(4), size=3)
    y = np.arange(len(x)) % 3  # a per-row target (zeros: not lengths)
    a = _categorical(3, e, pi, A, n_iter=3).fit(x)
    b = _categorical(3, e, pi, A, n_iter=3).fit(x, y)
    np.testing.assert_array_equal(a.transmat_, b.transmat_)
    assert a.score(x, y) == a.score(x)
    # with lengths by keyword, y is ignored whatever it is
    c = _categorical(3, e, pi, A, n_iter=3).fit(x, [60], lengths=[30, 30])
    d = _categorical(3, e, pi, A, n_iter=3).fit(x, lengths=[30, 30])
    np.testing.assert_array_equal(c.transmat_, d.transmat_)
    # neither valid lengths nor one value per row: the lengths error
    with pytest.raises(ValueError, match="sum to 50"):
        emkit.CategoricalHMM(2).fit(x, [25, 25])


# ---------------------------------------------------------------- per-row weights
def test_per_row_weights_against_a_plain_em_step():
    """Row weights raise each step's emission density to its weight: the posteriors are the
    plain forward-backward on ``w_t log B_t(k)``, the emission counts weighted by ``w_t``."""
    x = _symbols(3, n=30)
    k = 3
    pi, A = _chain(k, 4)
    e = np.random.default_rng(5).dirichlet(np.ones(4), size=k)
    w = np.random.default_rng(6).uniform(0, 3, size=len(x))
    w[4] = 0.0
    est = _categorical(k, e, pi, A, n_iter=1).fit(x, sample_weight=w)
    L = np.log(e).T[x[:, 0]] * w[:, None]
    ll, gamma, xi = plain_forward_backward(L, pi, A)
    counts = np.zeros((k, 4))
    for t, v in enumerate(x[:, 0]):
        counts[:, v] += w[t] * gamma[t]
    np.testing.assert_allclose(est.startprob_, gamma[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(est.transmat_, xi / xi.sum(1, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(est.emissionprob_, counts / counts.sum(1, keepdims=True),
                               rtol=1e-10)
    assert est.trace_.log_evidence[0] * w.sum() == pytest.approx(ll, rel=1e-12)


def test_zero_row_weight_has_the_likelihood_of_a_missing_row():
    """A zero-weight step and an all-NaN step leave the same likelihood (the emission term
    drops out). The iterates differ: EM fills a missing step with its expectation (it counts
    in the state's mass), a zero weight removes it."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 2))
    X[20:35] += 3.0
    init = emkit.GaussianHMM(2, n_iter=5, random_state=0).fit(X)
    w = np.ones(len(X))
    w[[3, 17, 40]] = 0.0
    Xn = X.copy()
    Xn[[3, 17, 40]] = np.nan
    est = emkit.GaussianHMM(2, n_iter=3, init_params="", check_monotonic="raise")
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        setattr(est, name, getattr(init, name).copy())
    start = clone(est)
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        setattr(start, name, getattr(init, name).copy())
    est.fit(X, sample_weight=w)
    # the trace's unit is the total weight; its first entry is at the initial parameters
    assert est.trace_.log_evidence[0] * w.sum() == pytest.approx(start.score(Xn), rel=1e-12)


def test_weights_with_a_wrong_shape():
    x = _symbols()
    with pytest.raises(ValueError, match=r"one weight per sequence \(3\) or one per row \(60\)"):
        emkit.CategoricalHMM(2).fit(x, [20, 20, 20], sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="sums to zero"):
        emkit.CategoricalHMM(2).fit(x, sample_weight=np.zeros(60))


# ---------------------------------------------------------------- CategoricalHMM
def test_n_features_is_set_by_fit_as_in_hmmlearn_and_left_out_of_params():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    x = _symbols(v=5)
    ours = emkit.CategoricalHMM(2, random_state=0).fit(x)
    ref = hmmlearn.CategoricalHMM(2, random_state=0).fit(x)
    assert ours.n_features == ref.n_features == 5
    assert ours.get_params()["n_features"] is None
    assert clone(ours).n_features is None
    np.testing.assert_allclose(ours.emissionprob_, ref.emissionprob_, rtol=1e-10)
    ours.set_params(n_features=7).fit(x)
    assert ours.n_features == 7 and ours.emissionprob_.shape == (2, 7)


def test_several_symbols_per_step_against_a_plain_em_step():
    """Columns are symbols independent given the state: log B_t(k) = sum_d log E[k, d, x_td]."""
    x = _symbols(8, n=40, v=3, d=2)
    k = 2
    pi, A = _chain(k, 9)
    e = np.random.default_rng(10).dirichlet(np.ones(3), size=(k, 2))
    est = _categorical(k, e, pi, A, n_iter=1)
    L = np.log(e[:, 0, :]).T[x[:, 0]] + np.log(e[:, 1, :]).T[x[:, 1]]
    ll, gamma, xi = plain_forward_backward(L, pi, A)
    assert est.score(x) == pytest.approx(ll, rel=1e-12)
    est.fit(x)
    counts = np.zeros((k, 2, 3))
    for t in range(len(x)):
        for d in range(2):
            counts[:, d, x[t, d]] += gamma[t]
    np.testing.assert_allclose(est.emissionprob_, counts / counts.sum(-1, keepdims=True),
                               rtol=1e-10)
    assert est.sample(5, random_state=0)[0].shape == (5, 2)
    with pytest.raises(ValueError, match="expecting 2 features"):
        est.score(x[:, :1])
    unfitted = _categorical(k, e, pi, A)  # attributes set by hand: checked against them
    with pytest.raises(ValueError, match="1 symbol"):
        unfitted.score(x[:, :1])


# ---------------------------------------------------------------- n_init, warm_start
def test_n_init_keeps_the_best_and_its_first_run_is_hmmlearns():
    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 4])
    one = emkit.GaussianHMM(3, n_iter=8, random_state=0).fit(X)
    many = emkit.GaussianHMM(3, n_iter=8, random_state=0, n_init=3).fit(X)
    assert len(many.traces_) == 3
    np.testing.assert_array_equal(many.traces_[0].elbo, one.trace_.elbo)
    finals = [t.elbo_after_e[-1] for t in many.traces_]
    assert many.lower_bound_ == max(finals) and many.best_init_ == int(np.argmax(finals))
    assert len({round(f, 10) for f in finals}) > 1  # the inits differ


def test_warm_start_continues_as_init_params_empty_does():
    x = _symbols(12)
    first = emkit.CategoricalHMM(2, n_iter=3, random_state=0).fit(x)
    warm = clone(first).set_params(warm_start=True)
    warm.fit(x)  # not fitted yet: a fresh fit, equal to first
    np.testing.assert_array_equal(warm.emissionprob_, first.emissionprob_)
    cont = emkit.CategoricalHMM(2, n_iter=4, init_params="", check_monotonic="raise")
    cont.startprob_, cont.transmat_, cont.emissionprob_ = (
        first.startprob_, first.transmat_, first.emissionprob_)
    cont.fit(x)
    warm.set_params(n_iter=4).fit(x)  # fitted: continues from its parameters
    np.testing.assert_allclose(warm.emissionprob_, cont.emissionprob_, rtol=1e-12)
    assert len(warm.traces_) == 1


def test_full_covariance_m_step_singular_names_the_remedy():
    X = np.random.default_rng(13).normal(size=(6, 10))
    with pytest.raises(ValueError, match="covars_prior as positive-definite matrices") as e:
        emkit.GaussianHMM(1, covariance_type="full", n_iter=2).fit(X)
    assert "State 0's 'full' covariance" in str(e.value) and "reg_covar" not in str(e.value)


def test_verbose_and_callback_with_several_initialisations(capsys):
    x = _symbols(14)
    seen = []
    emkit.CategoricalHMM(2, n_iter=2, n_init=2, verbose=True, random_state=0,
                         callback=seen.append).fit(x)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Initialization 1" in out
    assert [(i.init, i.iteration) for i in seen] == [(0, 1), (0, 2), (1, 1), (1, 2)]


# ---------------------------------------------------------------- dataframe column names
@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_feature_names_kept_and_checked_as_scikit_learn_does(kind):
    """``feature_names_in_`` from a DataFrame, and the checks of scikit-learn's
    ``validate_data`` in every method that reads X (compared with a scikit-learn estimator's
    own messages)."""
    pd = pytest.importorskip("pandas")
    from sklearn.preprocessing import StandardScaler

    lengths = [20, 25, 15]
    if kind == "gaussian":
        X = np.random.default_rng(0).normal(size=(60, 2))
        est = emkit.GaussianHMM(2, n_iter=3, random_state=0)
    else:
        X = _symbols(d=2)
        est = emkit.CategoricalHMM(2, n_iter=3, random_state=0)
    df = pd.DataFrame(X, columns=["a", "b"])
    est.fit(df, lengths=lengths)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b"])
    assert est.n_features_in_ == 2
    ref = StandardScaler().fit(df)  # scikit-learn's own check, for its messages
    renamed, swapped = df.rename(columns={"a": "z"}), df[["b", "a"]]
    calls = {
        "predict": lambda Z: est.predict(Z, lengths), "score": lambda Z: est.score(Z, lengths),
        "predict_proba": lambda Z: est.predict_proba(Z, lengths),
        "score_samples": lambda Z: est.score_samples(Z, lengths),
        "decode": lambda Z: est.decode(Z, lengths),
        "bic": lambda Z: est.bic(Z, lengths), "aic": lambda Z: est.aic(Z, lengths),
    }
    for bad in (renamed, swapped):
        with pytest.raises(ValueError) as expected:
            ref.transform(bad)
        for name, call in calls.items():
            with pytest.raises(ValueError) as got:
                call(bad)
            assert str(got.value) == str(expected.value), name
    for call in calls.values():
        with pytest.warns(UserWarning, match="X does not have valid feature names"):
            call(X)  # an array after a DataFrame: warned, as scikit-learn does
    with pytest.warns(UserWarning, match="valid feature names"):
        by_array = est.predict(X, lengths)
    np.testing.assert_array_equal(est.predict(df, lengths), by_array)
    est.fit(X, lengths=lengths)  # refit on an array: the names are forgotten
    assert not hasattr(est, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        est.predict(df, lengths)


def test_long_fit_keeps_no_chain_of_iterates_and_pickles():
    """The bound's cached terms hold their statistics weakly: after 400 iterations one set of
    parameters is alive, and the model pickles (a chain of every iterate did not: pickle's
    recursion limit) and predicts the same after loading."""
    import gc
    import pickle

    from emkit.models.hmm import HMMParams

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 2))
    lengths = [300, 300]
    model = emkit.GaussianHMM(3, n_iter=400, tol=0.0, random_state=0,
                              check_monotonic="ignore").fit(X, lengths)
    assert model.monitor_.iter == 400
    gc.collect()
    # the parameter sets reachable from the fitted model: its own, not one per iteration
    seen, todo, found = set(), [model], 0
    while todo:
        o = todo.pop()
        if id(o) in seen or isinstance(o, (type, type(np))):
            continue
        seen.add(id(o))
        found += isinstance(o, HMMParams)
        todo.extend(gc.get_referents(o))
    assert 1 <= found <= 2
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X, lengths),
                                  model.predict_proba(X, lengths))
