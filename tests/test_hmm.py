"""Hidden Markov models: kernels against their twins and a plain forward-backward, the bound,
weights, input errors and the estimator conventions."""

import itertools
import pickle
from dataclasses import replace

import numpy as np
import pytest
from sklearn.base import clone

import emkit
from emkit.kernels import hmm as kern
from emkit.models.hmm import Sequences


def _chain(k, seed):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)


def _scaled(L):
    return np.exp(L - L.max(axis=1, keepdims=True)), L.max(axis=1)


# ---------------------------------------------------------------- kernels
def _brute_force(logB, pi, A):
    """Every state path enumerated: log p(x), gamma and expected transitions, in float64."""
    t_all, k = logB.shape
    paths = np.array(list(itertools.product(range(k), repeat=t_all)))
    lp = np.log(pi)[paths[:, 0]] + logB[0, paths[:, 0]]
    for t in range(1, t_all):
        lp = lp + np.log(A)[paths[:, t - 1], paths[:, t]] + logB[t, paths[:, t]]
    ll = np.logaddexp.reduce(lp)
    post = np.exp(lp - ll)
    gamma = np.zeros((t_all, k))
    trans = np.zeros((k, k))
    for p, w in zip(paths, post, strict=True):
        gamma[np.arange(t_all), p] += w
        for t in range(t_all - 1):
            trans[p[t], p[t + 1]] += w
    best = paths[np.argmax(lp)]
    return ll, gamma, trans, best, lp.max()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_backward_equals_plain_enumeration(seed):
    rng = np.random.default_rng(seed)
    k, lengths = 3, [4, 1, 5]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    L = rng.normal(size=(sum(lengths), k)) * 4 - 30  # far from zero: the shift matters
    pi, A = _chain(k, seed)
    B, mx = _scaled(L)
    for fb in (kern.forward_backward, kern.forward_backward_ref):
        gamma, ll, trans = fb(B, starts, pi, A)
        path, vlp = kern.viterbi(L, starts, np.log(pi), np.log(A))
        for s in range(len(lengths)):
            a, b = starts[s], starts[s + 1]
            ll0, g0, t0, best, blp = _brute_force(L[a:b], pi, A)
            assert ll[s] + mx[a:b].sum() == pytest.approx(ll0, rel=1e-12)
            np.testing.assert_allclose(gamma[a:b], g0, atol=1e-12)
            np.testing.assert_allclose(trans[s], t0, atol=1e-12)
            np.testing.assert_array_equal(path[a:b], best)
            assert vlp[s] == pytest.approx(blp, rel=1e-12)


def test_tiled_forward_backward_equals_plain_enumeration():
    """The tiled kernel (``K >= kern.TILED_MIN_STATES``) against every path enumerated."""
    rng = np.random.default_rng(5)
    k, lengths = kern.TILED_MIN_STATES + 1, [3, 1, 4]
    assert k < 16  # one tile of 16, mostly padding
    starts = np.concatenate([[0], np.cumsum(lengths)])
    L = rng.normal(size=(sum(lengths), k)) * 4 - 30
    pi, A = _chain(k, 6)
    A[2, 3:] = 0.0  # forbidden transitions
    A[2] /= A[2].sum()
    B, mx = _scaled(L)
    gamma, ll, trans = kern.forward_backward(B, starts, pi, A)
    for s in range(len(lengths)):
        a, b = starts[s], starts[s + 1]
        with np.errstate(divide="ignore"):  # log A_ij = -inf on the forbidden ones
            ll0, g0, t0, _, _ = _brute_force(L[a:b], pi, A)
        assert ll[s] + mx[a:b].sum() == pytest.approx(ll0, rel=1e-12)
        np.testing.assert_allclose(gamma[a:b], g0, atol=1e-12)
        np.testing.assert_allclose(trans[s], t0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 9, 10, 16, 17, 33])
def test_forward_backward_every_width_equals_twin(k, dtype):
    """Every kernel (below ``TILED_MIN_STATES`` states the generic one specialised to each
    number of states; the tiled one from it on: one tile of 16 padded, exactly one, two and
    three padded) against the log-space twin, on ragged lengths with length-1 sequences,
    into a caller's ``out``."""
    rng = np.random.default_rng(k)
    lengths = [1, 30, 2, 1, 57]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    L = rng.normal(size=(sum(lengths), k)) * 3
    pi, A = _chain(k, k + 1)
    A[-1, : k // 2] = 0.0
    A[-1] /= A[-1].sum()
    B = _scaled(L)[0].astype(dtype)
    out = np.empty_like(B)
    got = kern.forward_backward(B, starts, pi, A, out=out)
    ref = kern.forward_backward_ref(B, starts, pi, A)
    assert got[0] is out and out.dtype == dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


def test_sum_log_equals_numpy():
    """One log per run of scale factors: the plain sum of logs, underflow-prone factors and a
    zero (-inf) included."""
    from emkit.kernels._hmm_fb import sum_log

    rng = np.random.default_rng(7)
    x = rng.random(3000)
    x[[5, 6, 7]] = [1e-150, 1e-300, 1e-120]
    assert sum_log(x) == pytest.approx(np.log(x).sum(), rel=1e-13)
    assert sum_log(np.ones(0)) == 0.0
    x[100] = 0.0
    with np.errstate(divide="ignore"):
        assert sum_log(x) == -np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_equal_numpy_twins(dtype):
    rng = np.random.default_rng(3)
    k, lengths = 5, [40, 1, 2, 77]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    L = rng.normal(size=(sum(lengths), k)) * 3
    pi, A = _chain(k, 4)
    B = _scaled(L)[0].astype(dtype)
    got, ref = kern.forward_backward(B, starts, pi, A), kern.forward_backward_ref(B, starts, pi, A)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert got[0].dtype == dtype
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)
    Ld = L.astype(dtype)
    p1, l1 = kern.viterbi(Ld, starts, np.log(pi), np.log(A))
    p2, l2 = kern.viterbi_ref(Ld.astype(np.float64), starts, np.log(pi), np.log(A))
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    L1, L2 = Ld.copy(), Ld.copy()
    np.testing.assert_array_equal(kern.row_max_subtract(L1), kern.row_max_subtract_ref(L2))
    np.testing.assert_array_equal(L1, L2)
    L1, L2 = Ld.copy(), Ld.copy()
    L1[3, 1] = L2[3, 1] = L1[3].max() - 800  # exp underflows to 0 (float64 too)
    np.testing.assert_array_equal(kern.row_max_exp(L1), kern.row_max_exp_ref(L2))
    assert L1.dtype == dtype and L1[3, 1] == 0
    np.testing.assert_allclose(L1, L2, rtol=4 * np.finfo(dtype).eps, atol=0)
    L1 = np.array([[np.nan, 0.0], [-np.inf, 1.0]], dtype=dtype)  # NaN stays NaN
    np.testing.assert_array_equal(kern.row_max_exp(L1), [np.nan, 1.0])
    np.testing.assert_array_equal(L1, [[np.nan, np.nan], [0.0, 1.0]])
    x = rng.integers(6, size=50)
    R = rng.random((50, k)).astype(dtype)
    np.testing.assert_allclose(kern.symbol_counts(x, R, 6), kern.symbol_counts_ref(x, R, 6),
                               rtol=1e-12)


# ---------------------------------------------------------------- data
def _gaussian_data(seed=0, d=2, dtype=np.float64):
    rng = np.random.default_rng(seed)
    lengths = [40, 25, 35]
    states = np.concatenate([np.repeat(rng.integers(3, size=n // 5), 5) for n in lengths])
    X = rng.normal(size=(len(states), d)) + np.array([[-3.0] * d, [0.0] * d, [3.0] * d])[states]
    return X.astype(dtype), lengths


def _symbols(seed=0):
    rng = np.random.default_rng(seed)
    lengths = [40, 25, 35]
    return rng.integers(4, size=(100, 1)), lengths


# ---------------------------------------------------------------- the bound
@pytest.mark.parametrize("ct", ["diag", "spherical", "full", "tied"])
def test_e_step_closes_the_gap_and_the_bound_holds(ct):
    X, lengths = _gaussian_data()
    est = emkit.GaussianHMM(3, covariance_type=ct, n_iter=4, random_state=0,
                            check_monotonic="raise", covars_weight=3.0, means_weight=0.5)
    est.fit(X, lengths)
    model, params = est._model_, est._params_
    seqs = Sequences(X, np.concatenate([[0], np.cumsum(lengths)]))
    stats, _ = model.e_step(params, seqs)
    lp = model.log_prior(params)
    assert model.elbo(params, stats) == pytest.approx(stats.log_evidence + lp, rel=1e-12)
    assert stats.log_evidence == pytest.approx(est.score(X, lengths), rel=1e-12)
    assert stats.entropy >= 0
    # the E-step's Q bounds the evidence at any other parameters (KL >= 0)
    other = model.m_step(stats)
    other_stats, _ = model.e_step(other, seqs)
    assert model.elbo(other, stats) <= other_stats.log_evidence + model.log_prior(other) + 1e-9
    trace = est.trace_
    assert np.all(np.diff(trace.elbo) >= -1e-12 * np.abs(trace.elbo[1:]))
    np.testing.assert_allclose(trace.kl[:-1], trace.elbo_after_e[1:] - trace.elbo_after_m[:-1],
                               atol=1e-12)
    assert est.lower_bound_ == trace.elbo_after_e[-1]


def test_statistics_add_over_sequences():
    X, lengths = _gaussian_data()
    est = emkit.GaussianHMM(3, n_iter=2, random_state=0).fit(X, lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    whole, _ = est._model_.e_step(est._params_, Sequences(X, starts))
    parts = [est._model_.e_step(est._params_, Sequences(X[a:b], np.array([0, b - a])))[0]
             for a, b in zip(starts[:-1], starts[1:], strict=True)]
    total = parts[0] + parts[1] + parts[2]
    np.testing.assert_allclose(total.trans, whole.trans, rtol=1e-12)
    np.testing.assert_allclose(total.emission.sxx, whole.emission.sxx, rtol=1e-12)
    assert total.log_evidence == pytest.approx(whole.log_evidence, rel=1e-12)


@pytest.mark.parametrize("cls", ["gaussian", "categorical"])
def test_posteriors_outlive_e_steps_and_blocks(cls):
    # the E-step keeps its N x K arrays in per-thread scratch memory; what prediction returns
    # must not be that memory, and blocks of sequences must agree with one block
    X, lengths = _gaussian_data() if cls == "gaussian" else _symbols()
    make = emkit.GaussianHMM if cls == "gaussian" else emkit.CategoricalHMM
    est = make(3, n_iter=3, random_state=0).fit(X, lengths)
    p1 = est.predict_proba(X, lengths)
    keep = p1.copy()
    est._model_.e_step(est._params_, est._sequences(X[::-1].copy(), lengths[::-1]))
    p2 = est.predict_proba(X[::-1].copy(), lengths[::-1])
    np.testing.assert_array_equal(p1, keep)
    assert not np.shares_memory(p1, p2)
    seqs = est._sequences(X, lengths)
    one = est._model_.e_step(est._params_, seqs)[0]
    small = replace(est._model_, block_rows=30)  # one sequence per block
    many = small.e_step(est._params_, est._sequences(X, lengths))[0]
    np.testing.assert_allclose(many.trans, one.trans, rtol=1e-12)
    assert many.log_evidence == pytest.approx(one.log_evidence, rel=1e-12)


# ---------------------------------------------------------------- weights
@pytest.mark.parametrize("cls", ["gaussian", "categorical"])
def test_integer_sequence_weights_equal_repeats(cls):
    if cls == "gaussian":
        X, lengths = _gaussian_data()
        make = lambda: emkit.GaussianHMM(3, n_iter=6, random_state=0, init_params="",  # noqa
                                         check_monotonic="raise")
        init = dict(means_=np.array([[-2.0, -2], [0, 0], [2, 2]]), covars_=np.ones((3, 2)))
    else:
        X, lengths = _symbols()
        make = lambda: emkit.CategoricalHMM(3, n_iter=6, init_params="",  # noqa
                                            check_monotonic="raise")
        init = dict(emissionprob_=np.random.default_rng(0).dirichlet(np.ones(4), size=3))
    pi, A = _chain(3, 7)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    w = np.array([2, 0, 3])
    reps = [X[starts[s]:starts[s + 1]] for s in range(3) for _ in range(w[s])]
    rep_lengths = [len(r) for r in reps]
    fitted = []
    for Xf, lf, wf in ((X, lengths, w), (np.concatenate(reps), rep_lengths, None)):
        est = make()
        for name, value in dict(startprob_=pi, transmat_=A, **init).items():
            setattr(est, name, value)
        fitted.append(est.fit(Xf, lf, sample_weight=wf))
    a, b = fitted
    for name in ("startprob_", "transmat_") + tuple(init):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(a.trace_.elbo_after_e, b.trace_.elbo_after_e, rtol=1e-10)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "lengths, match",
    [([50, 40], "sum to 90"), ([50, 0, 50], "positive"), ([50, -5, 55], "positive"),
     ([50.5, 49.5], "integers"), ([[50, 50]], "1-D")],
)
def test_bad_lengths(lengths, match):
    X, _ = _gaussian_data()
    with pytest.raises(ValueError, match=match):
        emkit.GaussianHMM(2).fit(X, lengths)


def test_bad_parameters_and_symbols():
    X, lengths = _gaussian_data()
    est = emkit.GaussianHMM(2, init_params="")
    est.startprob_, est.transmat_ = np.array([0.5, 0.6]), np.full((2, 2), 0.5)
    est.means_, est.covars_ = np.zeros((2, 2)), np.ones((2, 2))
    with pytest.raises(ValueError, match="startprob_ must sum to 1"):
        est.fit(X, lengths)
    est.startprob_, est.transmat_ = np.array([0.5, 0.5]), np.array([[0.5, 0.5], [0.2, 0.7]])
    with pytest.raises(ValueError, match="transmat_ rows must sum to 1"):
        est.fit(X, lengths)
    est.transmat_ = np.full((2, 2), 0.5)
    est.covars_ = np.array([1.0, -1.0] * 2).reshape(2, 2)
    with pytest.raises(ValueError, match="positive"):
        est.fit(X, lengths)
    full = emkit.GaussianHMM(2, covariance_type="full", init_params="")
    full.startprob_, full.transmat_, full.means_ = est.startprob_, est.transmat_, est.means_
    full.covars_ = np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match="positive-definite"):
        full.fit(X, lengths)
    Xn = X.copy()
    Xn[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        emkit.GaussianHMM(2).fit(Xn, lengths)
    S, sl = _symbols()
    with pytest.raises(ValueError, match="in 0..2"):
        emkit.CategoricalHMM(2, n_features=3).fit(S, sl)
    with pytest.raises(ValueError, match="integers"):
        emkit.CategoricalHMM(2).fit(S + 0.5, sl)
    with pytest.raises(ValueError, match="one weight per sequence"):
        emkit.CategoricalHMM(2).fit(S, sl, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        emkit.CategoricalHMM(2).fit(S, sl, sample_weight=[1.0, -2.0, 1.0])


def test_unvisited_state_keeps_its_parameters():
    X, lengths = _gaussian_data()
    est = emkit.GaussianHMM(3, init_params="", n_iter=3, check_monotonic="raise")
    est.startprob_ = np.array([0.5, 0.5, 0.0])
    est.transmat_ = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    est.means_ = np.array([[-3.0, -3], [3, 3], [7, 7]])
    est.covars_ = np.ones((3, 2))
    with pytest.warns(UserWarning, match=r"States \[2\]"):
        est.fit(X, lengths)
    np.testing.assert_array_equal(est.unvisited_states_, [2])
    assert np.all(np.isfinite(est.means_)) and np.all(np.isfinite(est.covars_))
    np.testing.assert_array_equal(est.means_[2], [7.0, 7.0])
    np.testing.assert_array_equal(est.transmat_[2], [0.3, 0.3, 0.4])
    assert est.startprob_[2] == 0.0


# ---------------------------------------------------------------- conventions
def test_float32_kept_and_estimator_conventions():
    X, lengths = _gaussian_data(dtype=np.float32)
    seen = []
    est = emkit.GaussianHMM(3, n_iter=5, random_state=0, callback=seen.append)
    est.fit(X, lengths)
    assert est.means_.dtype == np.float32 and est.transmat_.dtype == np.float32
    assert [i.iteration for i in seen] == list(range(1, est.n_iter_ + 1))
    assert len(est.traces_) == 1 and len(est.trace_) == est.n_iter_ + 1
    assert est.monitor_.iter == est.n_iter_
    X64 = X.astype(np.float64)
    ref = emkit.GaussianHMM(3, n_iter=5, random_state=0).fit(X64, lengths)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-3, atol=1e-3)
    clone(est)
    again = pickle.loads(pickle.dumps(est))
    assert again.score(X64, lengths) == pytest.approx(est.score(X64, lengths), rel=1e-6)
    assert emkit.GaussianHMM(2).fit(X64).predict(X64).shape == (len(X64),)


def test_unfitted_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    X, lengths = _symbols()
    for est in (emkit.CategoricalHMM(2), emkit.GaussianHMM(2)):
        with pytest.raises(NotFittedError):
            est.score(X, lengths)


def test_verbose_prints(capsys):
    X, lengths = _gaussian_data()
    emkit.GaussianHMM(2, n_iter=3, verbose=2, random_state=0).fit(X, lengths)
    assert "Initialization" in capsys.readouterr().out


# ---------------------------------------------------------------- missing values
@pytest.mark.parametrize("ct", ["diag", "spherical"])
def test_missing_values_are_marginalised_exactly(ct):
    from scipy.stats import norm

    rng = np.random.default_rng(5)
    lengths, starts = [40, 60], np.array([0, 40, 100])
    X = rng.normal(size=(100, 3))
    X[20:50] += 3
    X[rng.random(X.shape) < 0.2] = np.nan
    X[5] = np.nan  # a step with nothing observed
    pi, A = _chain(3, 8)
    means = rng.normal(size=(3, 3))
    cov = rng.uniform(0.5, 2.0, (3, 3)) if ct == "diag" else rng.uniform(0.5, 2.0, 3)
    est = emkit.GaussianHMM(3, covariance_type=ct, n_iter=1, init_params="",
                            covars_prior=0.1, check_monotonic="raise")
    est.startprob_, est.transmat_, est.means_, est.covars_ = pi, A, means, cov
    var = cov if ct == "diag" else np.repeat(cov[:, None], 3, axis=1)
    # plainly: log-densities over the observed entries, then forward-backward in log space
    L = np.stack([np.nansum(norm.logpdf(X, means[k], np.sqrt(var[k])), axis=1)
                  for k in range(3)], axis=1)
    gamma, ll, trans = kern.forward_backward_ref(np.exp(L - L.max(1, keepdims=True)),
                                                 starts, pi, A)
    assert est.score(X, lengths) == pytest.approx(ll.sum() + L.max(1).sum(), rel=1e-12)
    np.testing.assert_allclose(est.predict_proba(X, lengths), gamma, atol=1e-12)
    # one EM step: a missing entry contributes E[x] = mu_k, E[(x - m)^2] = (mu_k - m)^2 + var_k
    est.fit(X, lengths)
    obs = ~np.isnan(X)
    Xz = np.where(obs, X, 0.0)
    nk = gamma.sum(axis=0)
    ex = gamma.T @ Xz + (gamma.T @ ~obs) * means
    new_means = ex / nk[:, None]
    dev = np.stack([(gamma[:, k:k + 1] * (obs * (Xz - new_means[k]) ** 2
                     + ~obs * ((means[k] - new_means[k]) ** 2 + var[k]))).sum(0)
                    for k in range(3)])
    new_var = (0.1 + dev) / nk[:, None]
    if ct == "spherical":
        new_var = new_var.mean(axis=1)
    np.testing.assert_allclose(est.means_, new_means, rtol=1e-10)
    np.testing.assert_allclose(est._covars_, new_var, rtol=1e-10)
    # and many steps never lower the objective (check_monotonic="raise")
    est.set_params(n_iter=15, init_params="stmc", random_state=0).fit(X, lengths)
    assert np.all(np.isfinite(est.means_))


def test_left_right_chain_far_below_the_best_state_is_neither_nan_nor_forbidden():
    """A reachable state ~1800 nats below the best one underflows the scaled recursion: the
    sequence is redone in log space, and Viterbi never takes a zero-probability transition
    (hmmlearn as the reference)."""
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    X = np.array([0, 0, 0, 60, 60, 60], dtype=float)[:, None]
    ours = emkit.GaussianHMM(2, covariance_type="diag", init_params="")
    ref = hmmlearn.GaussianHMM(2, covariance_type="diag", init_params="")
    for m in (ours, ref):
        m.startprob_ = np.array([1.0, 0.0])
        m.transmat_ = np.eye(2)
        m.means_ = np.array([[0.0], [60.0]])
        m.covars_ = np.array([[1.0], [1.0]])
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    (lp, path), (rlp, rpath) = ours.decode(X), ref.decode(X)
    np.testing.assert_array_equal(path, rpath)
    assert lp == pytest.approx(rlp, rel=1e-10)


@pytest.mark.parametrize("ct, d, shared", [("diag", 3, True), ("full", 3, True),
                                           ("full", 40, False)])
def test_e_step_shares_emission_features_within_budget(ct, d, shared, monkeypatch):
    """A block's Gaussian features are built once for both passes where they fit in
    SHARED_FEATURES_BYTES, else per cache-sized block (full covariances of many features:
    F = D (D + 1) / 2 + D + 1 per row); the statistics are the same either way."""
    from emkit.models import _hmm_gaussian as mh
    from emkit.models import gaussian as mg

    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, d))
    lengths = [300, 300, 300]
    monkeypatch.setattr(mh, "SHARED_FEATURES_BYTES", 100 * 900 * 8)  # F <= 100 shares
    calls = []
    orig = mg.GaussianModel.block_features

    def spy(self, X, prep):
        calls.append(X.shape)
        return orig(self, X, prep)

    monkeypatch.setattr(mg.GaussianModel, "block_features", spy)
    est = emkit.GaussianHMM(2, covariance_type=ct, n_iter=2, random_state=0, covars_prior=1.0)
    est.fit(X, lengths)
    assert bool(calls) == shared
    # the same fit with the features never shared
    monkeypatch.setattr(mh, "SHARED_FEATURES_BYTES", 0)
    ref = emkit.GaussianHMM(2, covariance_type=ct, n_iter=2, random_state=0,
                            covars_prior=1.0).fit(X, lengths)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.covars_, ref.covars_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.transmat_, ref.transmat_, rtol=1e-10, atol=1e-12)


def test_slp_switch_is_scoped_to_the_tiled_kernel():
    """compile_with_slp turns Numba's SLP vectoriser on only while the tiled kernel compiles
    (or loads from the cache): the process-wide setting is the same afterwards, and the
    helper it shares with the generic kernels has its own build from before."""
    from numba.core import config

    from emkit.kernels import _hmm_fb

    before = config.SLP_VECTORIZE
    k = 7
    B = np.random.default_rng(0).random((20, k))
    B /= B.max(axis=1, keepdims=True)
    pi, A = _chain(k, 3)
    kern.forward_backward(B, np.array([0, 20]), pi, A)
    assert config.SLP_VECTORIZE == before
    assert _hmm_fb.sum_log.signatures  # compiled outside the window, before the kernel
    assert _hmm_fb.forward_backward_tiles.signatures


@pytest.mark.parametrize("cls", ["gaussian", "categorical"])
def test_inference_over_blocks_equals_one_block(cls):
    """Posteriors and Viterbi paths computed block by block on the threads (many blocks of
    whole sequences) equal those of one block, and hmmlearn's."""
    from hmmlearn import hmm as hl

    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 60, size=40)
    n = int(lengths.sum())
    if cls == "gaussian":
        X = rng.normal(size=(n, 2))
        est = emkit.GaussianHMM(3, n_iter=3, random_state=0).fit(X, lengths)
        ref = hl.GaussianHMM(3, covariance_type="diag", init_params="")
        ref.means_, ref.covars_ = est.means_, est._covars_
    else:
        X = rng.integers(4, size=(n, 1))
        est = emkit.CategoricalHMM(3, n_iter=3, random_state=0).fit(X, lengths)
        ref = hl.CategoricalHMM(3, init_params="")
        ref.emissionprob_ = est.emissionprob_
    ref.startprob_, ref.transmat_ = est.startprob_, est.transmat_
    seqs = est._sequences(X, lengths)
    model = est._make_model(seqs.X, fitting=False)
    params = est._current_params()
    one = model.posteriors(params, seqs), model.viterbi(params, seqs)
    many_model = replace(model, block_rows=100, n_threads=2)
    assert len(seqs.blocks(100)) > 5
    many = many_model.posteriors(params, seqs), many_model.viterbi(params, seqs)
    for a, b in zip(one[0] + one[1], many[0] + many[1], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(many[0][1], ref.predict_proba(X, lengths), rtol=1e-10, atol=1e-12)
    ref_logprob, ref_path = ref.decode(X, lengths)
    np.testing.assert_allclose(many[1][0].sum(), ref_logprob, rtol=1e-12)
    if cls == "gaussian":  # (categorical data with 4 symbols has tied best paths)
        np.testing.assert_array_equal(many[1][1], ref_path)
