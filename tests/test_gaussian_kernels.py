"""Kernels against their NumPy reference twins, and the fast path against the exact one."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emkit.kernels import gaussian as kern
from emkit.models.gaussian import (
    GaussianModel,
    GaussianParams,
    precision_cholesky_from_precisions,
)

from ._helpers import blobs, random_params

COV_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = [np.float32, np.float64]


def _params(k, d, ct, seed=0, scale=1.0):
    w, m, p = random_params(k, d, ct, seed=seed, scale=scale)
    return GaussianParams(w, m, precision_cholesky_from_precisions(p, ct), ct)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2, 7])
def test_feature_kernels_equal_numpy_twins(dtype, d):
    rng = np.random.default_rng(d)
    X = rng.normal(size=(33, d)).astype(dtype)
    c = rng.normal(size=d)
    np.testing.assert_array_equal(kern.quad_features(X, c), kern.quad_features_ref(X, c))
    np.testing.assert_array_equal(kern.square_features(X, c), kern.square_features_ref(X, c))
    assert kern.quad_features(X, c).dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, b", [(1, 7), (3, 50), (16, 301)])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_softmax_equals_scipy(dtype, k, b, weighted):
    """The fused kernel (in-line exp) against SciPy's logsumexp and NumPy's exp, including
    entries far below their column's maximum (exactly 0 responsibility past -708)."""
    rng = np.random.default_rng(k + b)
    L = (rng.normal(size=(k, b)) * 40).astype(dtype)
    L[-1, :5] = L[0, :5] - np.array([700.0, 707.9, 708.1, 750.0, 1e4])  # around the floor
    w = rng.uniform(0.1, 2.0, size=b) if weighted else None
    L64 = L.astype(np.float64)
    ref_lse = logsumexp(L64, axis=0)
    ref_r = np.exp(L64 - ref_lse)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_ent = -np.sum(np.where(ref_r > 0, ref_r * np.log(ref_r), 0.0), axis=0)
    out = L.copy()
    lse, ent = kern.softmax_t(out, w)
    assert out.dtype == dtype and lse.dtype == np.float64
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-15, atol=1e-13)
    np.testing.assert_allclose(ent, ref_ent, rtol=1e-12, atol=1e-13)
    ref_out = ref_r if w is None else ref_r * w
    # exp(a) for |a| up to ~700 is as exact as a itself: relative error |a| eps
    tol = 4e-7 if dtype == np.float32 else 1e-12
    # subnormal results keep only absolute accuracy; past the floor 0 (error < 1e-307)
    tiny = float(np.finfo(dtype).tiny) if dtype == np.float32 else 1e-300
    np.testing.assert_allclose(out, ref_out.astype(dtype), rtol=tol, atol=tiny)
    if k > 1:
        assert out[-1, 2] == 0 and out[-1, 3] == 0  # past the floor: exactly 0
    # the NumPy twin gives the same
    twin = L.copy()
    t_lse, t_ent = kern.normalize_log_prob_t_ref(twin, w)
    np.testing.assert_allclose(lse, t_lse, rtol=1e-14, atol=1e-13)
    np.testing.assert_allclose(out, twin, rtol=tol, atol=tiny)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_log_prob_equals_scipy(dtype):
    rng = np.random.default_rng(0)
    L = (rng.normal(size=(40, 5)) * 30).astype(dtype)
    w = rng.uniform(0.1, 2.0, size=40).astype(dtype)
    ref_lse = logsumexp(L.astype(np.float64), axis=1)
    ref_r = np.exp(L.astype(np.float64) - ref_lse[:, None])
    with np.errstate(divide="ignore"):
        ref_ent = -np.sum(w[:, None] * np.where(ref_r > 0, ref_r * np.log(ref_r), 0.0))
    R, lse, sum_lse, ent = kern.normalize_log_prob(L.copy(), w)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(lse, ref_lse, rtol=tol)
    np.testing.assert_allclose(R, ref_r, atol=tol)
    assert sum_lse == pytest.approx(np.dot(w, ref_lse), rel=tol)
    assert ent == pytest.approx(ref_ent, rel=10 * tol, abs=10 * tol)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("path", ["fast", "exact"])
def test_log_prob_equals_scipy_multivariate_normal(ct, path):
    X, _ = blobs(n=60, d=3, k=2, seed=1)
    params = _params(2, 3, ct, seed=2)
    model = GaussianModel(ct, center=X.mean(0), path=path)
    cov = params.get_covariances()

    def cov_matrix(k):
        if ct == "full":
            return cov[k]
        if ct == "tied":
            return cov
        return np.diag(cov[k]) if ct == "diag" else cov[k] * np.eye(3)

    ref = np.column_stack([
        np.log(params.weights[k]) + multivariate_normal(params.means[k], cov_matrix(k)).logpdf(X)
        for k in range(2)
    ])
    np.testing.assert_allclose(model.log_prob(params, X), ref, rtol=1e-10, atol=1e-10)


def _compare_stats(model_a, model_b, params, X, w, rtol):
    sa, _ = model_a.e_step(params, X, w)
    sb, _ = model_b.e_step(params, X, w)
    assert sa.log_evidence == pytest.approx(sb.log_evidence, rel=rtol)
    # the fast path gets H(Q) as sum log-norm - <W, G>: accurate relative to the bound's size
    assert sa.entropy == pytest.approx(sb.entropy, abs=rtol * abs(sb.log_evidence))
    pa, pb = model_a.m_step(sa), model_b.m_step(sb)
    np.testing.assert_allclose(pa.weights, pb.weights, rtol=rtol)
    np.testing.assert_allclose(pa.means, pb.means, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(pa.get_covariances(), pb.get_covariances(), rtol=rtol, atol=rtol)
    # the ELBO from statistics agrees whichever path produced them
    assert model_a.elbo(pa, sa) == pytest.approx(model_b.elbo(pb, sb), rel=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ct", COV_TYPES)
def test_fast_path_equals_exact_path(ct, dtype):
    X, _ = blobs(n=500, d=4, k=3, seed=3, dtype=dtype)
    w = np.random.default_rng(0).uniform(0, 2, size=500).astype(dtype)
    params = _params(3, 4, ct, seed=4)
    # means on data points, so every component has a real share of the data
    params = params.replace(means=X[[0, 1, 2]].astype(np.float64))
    kw = dict(covariance_type=ct, center=X.mean(0).astype(np.float64), dtype=np.dtype(dtype),
              block_size=128)
    fast, exact = GaussianModel(path="fast", **kw), GaussianModel(path="exact", **kw)
    assert fast.prepare(params).path == "fast" and exact.prepare(params).path == "exact"
    _compare_stats(fast, exact, params, X, w, 1e-4 if dtype == np.float32 else 1e-8)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_auto_falls_back_to_exact_far_from_centre(ct):
    """Components far from the data centre make the quadratic form cancel: auto uses exact."""
    rng = np.random.default_rng(0)
    d = 3
    X = np.vstack([rng.normal(size=(200, d)) * 1e-3 + 1e3, rng.normal(size=(200, d)) * 1e-3])
    means = np.array([np.full(d, 1e3), np.zeros(d)])
    prec = {"full": np.array([np.eye(d) * 1e6] * 2), "tied": np.eye(d) * 1e6,
            "diag": np.full((2, d), 1e6), "spherical": np.full(2, 1e6)}[ct]
    params = GaussianParams(np.array([0.5, 0.5]), means,
                            precision_cholesky_from_precisions(prec, ct), ct)
    center = X.mean(0)
    auto = GaussianModel(ct, center=center)
    assert auto.prepare(params).path == "exact"
    # the exact path is right: compare log-evidence with scipy
    cov = 1e-6 * np.eye(d)
    ref = logsumexp(np.column_stack([
        np.log(0.5) + multivariate_normal(means[k], cov).logpdf(X) for k in range(2)
    ]), axis=1).sum()
    s_auto, _ = auto.e_step(params, X)
    assert s_auto.log_evidence == pytest.approx(ref, rel=1e-9)
    # per row: exact is accurate, the fast path really would have lost accuracy here
    ref_rows = np.column_stack([
        np.log(0.5) + multivariate_normal(means[k], cov).logpdf(X) for k in range(2)
    ])
    ref_rows = logsumexp(ref_rows, axis=1)
    exact_err = np.abs(logsumexp(auto.log_prob(params, X), axis=1) - ref_rows).max()
    fast = GaussianModel(ct, center=center, path="fast")
    fast_err = np.abs(logsumexp(fast.log_prob(params, X), axis=1) - ref_rows).max()
    assert exact_err < 1e-8
    assert fast_err > 1e-6


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("path", ["fast", "exact"])
def test_chunked_statistics_equal_batch(ct, path):
    X, _ = blobs(n=301, d=3, k=2, seed=5)
    w = np.random.default_rng(1).uniform(0, 3, size=301)
    params = _params(2, 3, ct, seed=6)
    model = GaussianModel(ct, center=X.mean(0), path=path)
    whole, _ = model.e_step(params, X, w)
    parts = [model.e_step(params, X[s], w[s])[0] for s in (slice(0, 100), slice(100, 301))]
    summed = parts[0] + parts[1]
    for name in ["nk", "sx", "sxx"]:
        np.testing.assert_allclose(getattr(summed, name), getattr(whole, name), rtol=1e-12)
    for name in ["log_evidence", "total_weight"]:
        assert getattr(summed, name) == pytest.approx(getattr(whole, name), rel=1e-12)
    assert summed.entropy == pytest.approx(whole.entropy, abs=1e-12 * abs(whole.log_evidence))
    blended = parts[0].blend(0.25, parts[1])
    np.testing.assert_allclose(blended.nk, 0.75 * parts[0].nk + 0.25 * parts[1].nk)


def test_threads_reduce_in_fixed_order():
    X, _ = blobs(n=5000, d=5, k=4, seed=7)
    params = _params(4, 5, "full", seed=8)
    a = GaussianModel("full", center=X.mean(0), block_size=300, n_threads=2)
    b = GaussianModel("full", center=X.mean(0), block_size=300, n_threads=2)
    sa, sb = a.e_step(params, X)[0], b.e_step(params, X)[0]
    np.testing.assert_array_equal(sa.sxx, sb.sxx)
    assert sa.log_evidence == sb.log_evidence
    # tasks are cut the same way on any number of threads: the same bits on one thread
    one = GaussianModel("full", center=X.mean(0), block_size=300, n_threads=1).e_step(params, X)[0]
    np.testing.assert_array_equal(one.sxx, sa.sxx)
    assert one.log_evidence == sa.log_evidence


def _longdouble_score_samples(X, gm):
    """log p(x) in extended precision, per-component Cholesky form (the reference)."""
    L = np.longdouble
    Xl = X.astype(L)
    pc = gm.precisions_cholesky_.astype(np.float64)
    cols = []
    for k in range(gm.n_components):
        y = (Xl - gm.means_[k].astype(L)) @ pc[k].astype(L)
        cols.append(
            np.log(L(gm.weights_[k])) + np.log(np.diagonal(pc[k]).astype(L)).sum()
            - 0.5 * X.shape[1] * np.log(2 * np.pi * L(1)) - 0.5 * (y * y).sum(1)
        )
    return logsumexp(np.column_stack(cols).astype(np.float64), axis=1)


def test_ill_conditioned_covariances_take_the_exact_path():
    """A large-scale feature and its exact copy: precisions are huge in one direction, so
    the quadratic expansion would cancel badly even with every mean at the centre."""
    from emkit import GaussianMixture

    rng = np.random.default_rng(0)
    a = np.r_[rng.normal(-3, 1, 1500), rng.normal(3, 1, 1500)] * 1e4
    X = np.c_[a, a, rng.normal(size=3000)]
    gm = GaussianMixture(2, random_state=0, check_monotonic="raise").fit(X)
    assert not gm._model_.fast_path_ok(gm._params_)
    np.testing.assert_allclose(gm.score_samples(X), _longdouble_score_samples(X, gm), atol=1e-9)


def test_float32_correlated_features_fit_without_collapse():
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from emkit import GaussianMixture

    rng = np.random.default_rng(0)
    a = np.r_[rng.normal(-3, 1, 1500), rng.normal(3, 1, 1500)]
    X = np.c_[a, a + 1e-3 * rng.normal(size=3000), rng.normal(size=3000)].astype(np.float32)
    kw = dict(n_components=2, random_state=0, max_iter=500, tol=1e-6)
    em = GaussianMixture(**kw, check_monotonic="raise").fit(X)
    # float32 in, float64-quality fit out: the same optimum as scikit-learn in float64
    # (scikit-learn's float32 fit drifts on round-off for 230 iterations instead)
    sk64 = SkGaussianMixture(**kw).fit(X.astype(np.float64))
    assert em.n_iter_ == sk64.n_iter_
    assert em.score(X) == pytest.approx(sk64.score(X.astype(np.float64)), abs=1e-5)


def test_float32_real_data_no_less_accurate_than_sklearn():
    """breast_cancer: covariances with condition numbers ~1e11; float32 log-densities judged
    against extended precision, next to scikit-learn's own float32 computation."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.mixture._gaussian_mixture import _estimate_log_gaussian_prob

    from emkit import GaussianMixture

    X = load_breast_cancer().data
    gm = GaussianMixture(2, random_state=0, check_monotonic="raise").fit(X.astype(np.float32))
    X32 = X.astype(np.float32)
    ref = _longdouble_score_samples(X32, gm)
    err_em = np.abs(gm.score_samples(X32) - ref).max()
    sk_rows = logsumexp(
        _estimate_log_gaussian_prob(X32, gm.means_, gm.precisions_cholesky_, "full")
        + np.log(gm.weights_), axis=1,
    )
    err_sk = np.abs(sk_rows - ref).max()
    assert err_em <= 2 * err_sk
