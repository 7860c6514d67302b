"""The exact path's blocked-BLAS kernels against their NumPy twins, and the cost side of the
path choice: wide data with few components takes the exact path, with the same results as
the quadratic-feature path and as scikit-learn from the same initial parameters."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from emkit import GaussianMixture
from emkit.kernels import gaussian_exact as kexact
from emkit.models.gaussian import (
    GaussianModel,
    GaussianParams,
    path_costs,
    precision_cholesky_from_precisions,
)

from ._helpers import random_params

COV_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("d", [3, kexact.BLAS3_MIN_FEATURES + 5])  # NumPy GEMM, BLAS dtrmm/dsyrk
def test_exact_kernels_equal_numpy_twins(ct, d):
    rng = np.random.default_rng(d)
    k, b = 3, 157
    w, m, p = random_params(k, d, ct, seed=d)
    pc = precision_cholesky_from_precisions(p, ct)
    X = rng.normal(size=(b, d)) + m[0]
    const = rng.normal(size=k)
    out = np.empty((k, b))
    got = kexact.chol_log_prob_t(X, m, pc, const, ct, out)
    ref = kexact.chol_log_prob_t_ref(X, m, pc, const, ct)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    Rt = rng.uniform(size=(k, b))
    for a, r in zip(kexact.scatter_about_t(X, Rt, m, ct), kexact.scatter_about_t_ref(X, Rt, m, ct),
                    strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12 * np.abs(r).max())
    if ct == "full" and d >= kexact.BLAS3_MIN_FEATURES:  # dsyrk: exactly symmetric
        sxx = kexact.scatter_about_t(X, Rt, m, ct)[2]
        np.testing.assert_array_equal(sxx, np.swapaxes(sxx, 1, 2))
    # strided responsibilities (a transposed N x K array), as the initialisation passes them
    Rw = np.ascontiguousarray(Rt.T)
    for a, r in zip(kexact.scatter_about_t(X, Rw.T, m, ct),
                    kexact.scatter_about_t_ref(X, Rt, m, ct), strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12 * np.abs(r).max())


@pytest.mark.parametrize("d, k", [(128, 2), (256, 2), (256, 8)])
def test_wide_few_components_take_the_exact_path(d, k):
    """The issue's shapes: the quadratic features cost more than the exact path there."""
    costs = path_costs("full", d, k)
    assert costs["exact"] < costs["fast"]
    model = GaussianModel("full", center=np.zeros(d), spread=np.ones(d))
    params = GaussianParams.from_covariances(np.full(k, 1.0 / k), np.zeros((k, d)),
                                             np.tile(np.eye(d), (k, 1, 1)), "full")
    # accurate enough for the fast path (means at the centre, unit covariances) ...
    assert model.amplification(params) <= 10
    # ... but auto takes the exact one on cost
    assert not model.fast_path_ok(params)
    assert model.prepare(params).path == "exact"


@pytest.mark.parametrize("ct, d, k", [("full", 16, 16), ("full", 64, 32), ("diag", 16, 16),
                                      ("diag", 256, 2), ("full", 8, 8)])
def test_narrow_or_many_components_keep_the_fast_path(ct, d, k):
    """The benchmark grid's other shapes: the fast path stays where it is cheaper."""
    costs = path_costs(ct, d, k)
    assert costs["fast"] < costs["exact"]
    model = GaussianModel(ct, center=np.zeros(d), spread=np.ones(d))
    cov = np.tile(np.eye(d), (k, 1, 1)) if ct == "full" else np.ones((k, d))
    params = GaussianParams.from_covariances(np.full(k, 1.0 / k), np.zeros((k, d)), cov, ct)
    assert model.prepare(params).path == "fast"


class _Forced(GaussianMixture):
    """GaussianMixture with its kernel path forced (the test's handle on the other path)."""

    _forced_path = "fast"

    def _kernel_config(self, X, sample_weight):
        return dict(super()._kernel_config(X, sample_weight), path=self._forced_path)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wide_data_exact_path_equals_fast_path_and_sklearn(dtype):
    """N=600, D=128, K=2, full (the issue's reproducer, smaller): auto runs the exact path,
    and from the same initial parameters its fit equals the fast path's and scikit-learn's
    to round-off."""
    rng = np.random.default_rng(0)
    n, d, k = 600, 128, 2
    X = (rng.normal(size=(n, d)) + np.r_[np.zeros(n // 2), np.full(n - n // 2, 2.0)][:, None])
    X = X.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk0 = SkGaussianMixture(k, random_state=0, max_iter=1, reg_covar=1e-2).fit(
            X.astype(np.float64))
    kw = dict(n_components=k, max_iter=4, tol=0.0, reg_covar=1e-2, weights_init=sk0.weights_,
              means_init=sk0.means_, precisions_init=sk0.precisions_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 4 iterations on purpose
        auto = GaussianMixture(**kw, check_monotonic="raise").fit(X)
        fast = _Forced(**kw).fit(X)
        sk = SkGaussianMixture(**kw).fit(X.astype(np.float64))
    prep = auto._model_.prepare(auto._params_)
    # taken on cost, not accuracy: in the data's dtype (float32 halves the work)
    assert prep.path == "exact" and prep.work == dtype
    assert fast._model_.prepare(fast._params_).path == "fast"
    # the fast path in float32 carries float32 round-off; exact works in float64
    tol_fast = 1e-4 if dtype == np.float32 else 1e-8
    for a, b, tol in ((auto, sk, 1e-8 if dtype == np.float64 else 1e-5), (auto, fast, tol_fast)):
        np.testing.assert_allclose(a.weights_, b.weights_, rtol=tol)
        np.testing.assert_allclose(a.means_, b.means_, rtol=tol, atol=tol)
        np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=tol, atol=tol)
    assert auto.score(X) == pytest.approx(sk.score(X.astype(np.float64)), rel=1e-8)
    assert auto.score(X) == pytest.approx(fast.score(X), rel=tol_fast)


def test_float32_exact_path_for_accuracy_runs_in_float64():
    """Where the exact path is taken because the quadratic form would lose accuracy, float32
    data is computed in float64 (the rounding of (x - mu) U in float32 would lose the same
    digits); the docstring of GaussianModel says so."""
    rng = np.random.default_rng(0)
    a = np.r_[rng.normal(-3, 1, 1500), rng.normal(3, 1, 1500)]
    X = np.c_[a, a + 1e-3 * rng.normal(size=3000), rng.normal(size=3000)].astype(np.float32)
    gm = GaussianMixture(2, random_state=0, max_iter=20).fit(X)
    prep = gm._model_.prepare(gm._params_)
    assert gm._model_.amplification(gm._params_) > 100  # refused on accuracy
    assert prep.path == "exact" and prep.work == np.float64
    # forcing "exact" is the float64 reference whatever the shape
    forced = GaussianModel("full", center=np.zeros(3), dtype=np.dtype(np.float32), path="exact")
    assert forced.prepare(gm._params_).work == np.float64
