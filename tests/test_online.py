"""Online (stepwise) EM: ``partial_fit`` of GaussianMixture and BernoulliMixture.

References are computed here from the model functions (``e_step``, ``blend``, ``m_step``,
``elbo``) and from batch fits, never from snapshots of earlier output.
"""

import copy

import numpy as np
import pytest
from sklearn.base import clone

from emkit import BernoulliMixture, GaussianMixture
from emkit.models.gaussian import GaussianModel
from tests._helpers import blobs


def bernoulli_data(n=2000, d=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    means = np.where(rng.uniform(size=(k, d)) < 0.5, 0.1, 0.9)
    z = rng.integers(k, size=n)
    return (rng.uniform(size=(n, d)) < means[z]).astype(np.float64)


X_G = blobs(n=2000, d=3, k=3, seed=0)[0]
X_B = bernoulli_data()

MIXTURES = [
    pytest.param(lambda **kw: GaussianMixture(3, **{"random_state": 0, **kw}), X_G,
                 id="gaussian"),
    pytest.param(lambda **kw: BernoulliMixture(3, **{"random_state": 0, **kw}), X_B,
                 id="bernoulli"),
]


def assert_same_params(a, b, rtol=1e-9, atol=1e-12):
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=atol)
    if hasattr(a, "covariances_"):
        np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol, atol=atol)


def assert_params_equal(est, params, rtol=1e-9, atol=1e-12):
    np.testing.assert_allclose(est.weights_, params.weights, rtol=rtol, atol=atol)
    np.testing.assert_allclose(est.means_, params.means, rtol=rtol, atol=atol)
    if hasattr(est, "covariances_"):
        np.testing.assert_allclose(est.covariances_, params.get_covariances(), rtol=rtol,
                                   atol=atol)


# ---------------------------------------------------------------- quality
@pytest.mark.parametrize("make, X", MIXTURES)
def test_two_passes_of_40_minibatches_within_one_percent_of_batch(make, X):
    # the first mini-batch (50 rows) initialises: some seeds start online EM in a worse
    # local maximum than the batch fit's (GaussianMixture: 2 of seeds 0-11, one of them 0
    # since the initialisation sees the rows in canonical order; 1 of 12 before)
    batch = make(random_state=1).fit(X)
    online = make(random_state=1, check_monotonic="raise")  # not applied online
    for _ in range(2):
        for rows in np.array_split(np.arange(X.shape[0]), 40):
            online.partial_fit(X[rows])
    assert online.n_iter_ == 80 and len(online.trace_) == 80
    assert online.n_samples_seen_ == 2.0 * X.shape[0]
    assert online.score(X) == pytest.approx(batch.score(X), rel=0.01)


# ---------------------------------------------------------------- the step, by hand
# components 1000 apart: the exact E-step, whose statistics are about each step's own means,
# so every blend re-expresses the running statistics (GaussianStats.about)
X_FAR, LABELS_FAR = blobs(n=200, d=3, k=3, seed=0, sep=1000.0)
MEANS_FAR = np.array([X_FAR[LABELS_FAR == j].mean(axis=0) for j in range(3)]) + 0.5
FAR = pytest.param(
    lambda **kw: GaussianMixture(3, random_state=0, means_init=MEANS_FAR, **kw), X_FAR,
    id="gaussian-exact-path",
)


@pytest.mark.parametrize("make, X", MIXTURES + [FAR])
def test_first_two_steps_equal_init_plus_blended_steps_by_hand(make, X):
    X1, X2 = X[:60], X[60:110]
    est = make().partial_fit(X1)
    init = make(max_iter=0).fit(X1)  # the same initialisation, no EM step
    model, p0 = init._model_, init._params_
    b1, _ = model.e_step(p0, X1)
    s1 = b1.blend((1 + 10.0) ** -0.7, b1 * 1.0)  # running stats start at b1
    p1 = model.m_step(s1)
    assert_params_equal(est, p1)
    assert est.n_iter_ == 1 and est.n_samples_seen_ == 60.0 and est.converged_ is False

    est.partial_fit(X2)
    b2, _ = model.e_step(p1, X2)
    if hasattr(b2, "shift") and not model.fast_path_ok(p1):
        assert np.min(np.abs(b2.shift - s1.shift)) > 0.01  # the blend is about other points
    s2 = s1.blend((2 + 10.0) ** -0.7, b2 * (110.0 / 50.0))
    assert_params_equal(est, model.m_step(s2))
    assert est.n_iter_ == 2 and est.n_samples_seen_ == 110.0


@pytest.mark.parametrize("make, X", MIXTURES)
def test_learning_parameters_set_the_step(make, X):
    a = make(learning_decay=0.5, learning_offset=2.0).partial_fit(X[:60]).partial_fit(X[60:90])
    b = make().partial_fit(X[:60]).partial_fit(X[60:90])
    assert not np.allclose(a.means_, b.means_)


# ---------------------------------------------------------------- trace
@pytest.mark.parametrize("make, X", MIXTURES)
def test_trace_rows_grow_one_per_step_and_are_the_minibatch_bounds(make, X):
    est = make()
    batches = [X[:60], X[60:100], X[100:130], X[130:200]]
    seen = 0.0
    for i, Xb in enumerate(batches):
        before = None if i == 0 else est._params_
        est.partial_fit(Xb)
        assert len(est.trace_) == i + 1 and est.n_iter_ == i + 1
        assert est.traces_ == [est.trace_] and len(est.lower_bounds_) == i + 1
        seen += Xb.shape[0]
        if before is None:
            continue
        model, after = est._model_, est._params_
        scale = seen / Xb.shape[0]
        stats, _ = model.e_step(before, Xb)
        stats_after, _ = model.e_step(after, Xb)
        row = {f: getattr(est.trace_, f)[-1] for f in ("elbo_after_e", "elbo_after_m",
                                                         "log_evidence", "kl")}
        np.testing.assert_allclose(row["elbo_after_e"],
                                   model.elbo(before, stats * scale) / seen, rtol=1e-10)
        np.testing.assert_allclose(row["elbo_after_m"],
                                   model.elbo(after, stats * scale) / seen, rtol=1e-10)
        # the per-sample evidence is the score of the mini-batch at the old parameters
        np.testing.assert_allclose(row["log_evidence"], stats.log_evidence / Xb.shape[0],
                                   rtol=1e-10)
        bound = model.elbo(after, stats_after * scale) / seen
        np.testing.assert_allclose(est.lower_bound_, bound, rtol=1e-10)
        np.testing.assert_allclose(row["kl"], bound - row["elbo_after_m"], rtol=1e-7,
                                   atol=1e-12)
        assert row["kl"] >= -1e-12
        np.testing.assert_allclose(est.score(Xb), stats_after.log_evidence / Xb.shape[0],
                                   rtol=1e-10)
    assert np.all(np.diff(est.trace_.seconds) >= 0)
    assert est.lower_bounds_[-1] == est.lower_bound_


# ---------------------------------------------------------------- weights
@pytest.mark.parametrize("make, X", MIXTURES)
def test_integer_weights_equal_repeated_rows_in_a_step(make, X):
    rng = np.random.default_rng(1)
    Xb = X[200:260]
    w = rng.integers(0, 4, size=Xb.shape[0]).astype(float)
    start = make().partial_fit(X[:100])
    weighted = copy.deepcopy(start).partial_fit(Xb, sample_weight=w)
    repeated = copy.deepcopy(start).partial_fit(np.repeat(Xb, w.astype(int), axis=0))
    assert_same_params(weighted, repeated)
    assert weighted.n_samples_seen_ == repeated.n_samples_seen_ == 100 + w.sum()
    np.testing.assert_allclose(weighted.trace_.elbo_after_e, repeated.trace_.elbo_after_e,
                               rtol=1e-10)
    np.testing.assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-10)


def test_integer_weights_equal_repeated_rows_on_the_first_step_with_given_init():
    w0, m0 = np.ones(3) / 3, X_G[[0, 1, 2]]
    p0 = np.broadcast_to(np.eye(3), (3, 3, 3))
    est = GaussianMixture(3, weights_init=w0, means_init=m0, precisions_init=p0)
    w = np.random.default_rng(2).integers(1, 4, size=80).astype(float)
    a = clone(est).partial_fit(X_G[:80], sample_weight=w)
    b = clone(est).partial_fit(np.repeat(X_G[:80], w.astype(int), axis=0))
    assert_same_params(a, b)


# ---------------------------------------------------------------- fit and partial_fit
@pytest.mark.parametrize("make, X", MIXTURES)
def test_partial_fit_after_fit_continues_from_the_fit(make, X):
    Xf, Xb = X[:500], X[500:550]
    est = make().fit(Xf)
    fitted = copy.deepcopy(est)
    est.partial_fit(Xb)
    model = fitted._model_
    final, _ = model.e_step(fitted._params_, Xf)  # the fit's final statistics
    b, _ = model.e_step(fitted._params_, Xb)
    s = final.blend((1 + 10.0) ** -0.7, b * (550.0 / 50.0))
    assert_params_equal(est, model.m_step(s))
    assert est.n_samples_seen_ == 550.0 and est.n_iter_ == 1 and len(est.trace_) == 1
    assert est.converged_ is False and est.lower_bounds_ == [est.lower_bound_]


@pytest.mark.parametrize("make, X", MIXTURES)
def test_fit_after_partial_fit_starts_afresh(make, X):
    est = make().partial_fit(X[:100]).partial_fit(X[100:200])
    est.fit(X[:500])
    fresh = make().fit(X[:500])
    assert_same_params(est, fresh, rtol=0, atol=0)
    assert est.n_iter_ == fresh.n_iter_ and est.n_samples_seen_ == 500.0
    # and the next partial_fit continues from that fit with a new trace
    est.partial_fit(X[500:550])
    assert est.n_iter_ == 1 and len(est.trace_) == 1


# ---------------------------------------------------------------- input
@pytest.mark.parametrize("make, X", MIXTURES)
@pytest.mark.parametrize("params, name", [
    (dict(learning_decay=1.5), "learning_decay"),
    (dict(learning_decay=-0.1), "learning_decay"),
    (dict(learning_decay="fast"), "learning_decay"),
    (dict(learning_offset=0.5), "learning_offset"),
    (dict(learning_offset=np.nan), "learning_offset"),
])
def test_bad_learning_parameters_are_errors_naming_them(make, X, params, name):
    est = make(**params)
    with pytest.raises(ValueError, match=name):
        est.partial_fit(X[:50])
    assert not hasattr(est, "means_")
    with pytest.raises(ValueError, match=name):  # validated by fit too, as every parameter
        make(**params).fit(X[:50])
    make(**params)  # stored only


@pytest.mark.parametrize("make, X", MIXTURES)
def test_a_different_number_of_features_is_an_error_naming_it(make, X):
    est = make().partial_fit(X[:50])
    means = est.means_.copy()
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[50:100, :-1])
    np.testing.assert_array_equal(est.means_, means)
    assert est.n_iter_ == 1


def test_a_different_model_is_an_error_naming_it():
    est = GaussianMixture(3, random_state=0).partial_fit(X_G[:50])
    with pytest.raises(ValueError, match="covariance_type"):
        est.set_params(covariance_type="diag").partial_fit(X_G[50:100])
    with pytest.raises(ValueError, match="n_components"):
        est.set_params(covariance_type="full", n_components=2).partial_fit(X_G[50:100])


@pytest.mark.parametrize("make, X", MIXTURES)
def test_first_step_needs_n_components_rows_later_steps_any(make, X):
    with pytest.raises(ValueError, match="n_components"):
        make().partial_fit(X[:2])
    est = make().partial_fit(X[:50]).partial_fit(X[50:51])
    assert est.n_samples_seen_ == 51.0


@pytest.mark.parametrize("make, X", MIXTURES)
def test_x_and_weights_are_not_modified(make, X):
    Xb, w = X[:80].copy(), np.linspace(0.5, 2.0, 80)
    Xc, wc = Xb.copy(), w.copy()
    make().partial_fit(Xb, sample_weight=w).partial_fit(Xb, sample_weight=w)
    np.testing.assert_array_equal(Xb, Xc)
    np.testing.assert_array_equal(w, wc)


@pytest.mark.parametrize("make, X", MIXTURES)
def test_float32_stays_float32(make, X):
    X32 = X.astype(np.float32)
    est = make().partial_fit(X32[:100]).partial_fit(X32[100:200])
    est.partial_fit(X[200:300])  # float64 later: computed in the fitted dtype
    assert est.means_.dtype == np.float32 and est.weights_.dtype == np.float32
    assert est.predict_proba(X32[:5]).dtype == np.float32
    ref = make().partial_fit(X[:100]).partial_fit(X[100:200]).partial_fit(X[200:300])
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-3, atol=1e-3)


def test_sparse_bernoulli_minibatches_equal_dense():
    import scipy.sparse as sp

    a = BernoulliMixture(3, random_state=0)
    b = BernoulliMixture(3, random_state=0)
    for rows in np.array_split(np.arange(300), 5):
        a.partial_fit(X_B[rows])
        b.partial_fit(sp.csr_matrix(X_B[rows]))
    assert_same_params(a, b, rtol=1e-10)


def test_callback_sees_every_step():
    seen = []
    est = GaussianMixture(3, random_state=0, callback=seen.append)
    est.partial_fit(X_G[:50]).partial_fit(X_G[50:100])
    assert [i.iteration for i in seen] == [1, 2]
    assert seen[-1].elbo == est.lower_bound_


# ---------------------------------------------------------------- statistics about other points
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_stats_about_other_points_equal_direct_computation(covariance_type):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4)) * 3 + 10
    R = rng.dirichlet(np.ones(3), size=200) * rng.uniform(0.5, 2, size=(200, 1))
    model = GaussianModel(covariance_type=covariance_type)
    a, b = rng.normal(size=(3, 4)) * 5, rng.normal(size=(3, 4)) * 5 + 10
    nk, sx, sxx = model._stats_about(X, R, a)
    from emkit.models.gaussian import GaussianStats

    sa = GaussianStats(nk, sx, sxx, a, 0.0, 0.0, 200.0, 200.0)
    moved = sa.about(b)
    nk_b, sx_b, sxx_b = model._stats_about(X, R, b)
    np.testing.assert_allclose(moved.sx, sx_b, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(moved.sxx, sxx_b, rtol=1e-10, atol=1e-8)
    np.testing.assert_array_equal(moved.shift, b)
    assert sa.about(a) is sa
    # one point for every component (the fast path's centre) broadcasts
    c = X.mean(axis=0)
    np.testing.assert_allclose(sa.about(c).sx, model._stats_about(X, R, np.tile(c, (3, 1)))[1],
                               rtol=1e-10, atol=1e-9)
    # blends across points are blends about the newer one, and give the same M-step
    sb = GaussianStats(nk_b, sx_b, sxx_b, b, 0.0, 0.0, 200.0, 200.0)
    mixed = sa.blend(0.3, sb * 2.0)
    direct = sb.blend(0.3, sb * 2.0)
    np.testing.assert_allclose(mixed.sxx, direct.sxx, rtol=1e-10, atol=1e-8)
    pa, pb = model.m_step(mixed), model.m_step(direct)
    np.testing.assert_allclose(pa.means, pb.means, rtol=1e-10)
    np.testing.assert_allclose(pa.get_covariances(), pb.get_covariances(), rtol=1e-9,
                               atol=1e-12)
    with pytest.raises(ValueError, match="different shifts"):
        sa + sb


# ---------------------------------------------------------------- scikit-learn's partial_fit check
@pytest.mark.parametrize("est", [GaussianMixture(2), BernoulliMixture(2, binarize=0.0)],
                         ids=["gaussian", "bernoulli"])
def test_sklearn_partial_fit_n_features_check(est):
    """scikit-learn yields this check for classifiers, regressors and clusterers only (not
    for density estimators), so run it here; the other checks that call ``partial_fit``
    (``check_n_features_in_after_fitting``, ``check_dataframe_column_names_consistency``,
    ``check_fit_score_takes_y``) run in the ``parametrize_with_checks`` suites."""
    from sklearn.utils.estimator_checks import check_estimators_partial_fit_n_features

    check_estimators_partial_fit_n_features(type(est).__name__, est)
