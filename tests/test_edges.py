"""Edges of the estimators: thread counts inside a multiprocessing worker, data whose scale
overflows the arithmetic."""

import multiprocessing
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from emkit import LatentDirichletAllocation
from emkit.kernels._parallel import default_n_threads, n_jobs_threads


def _lda_in_worker(n_jobs):
    """Fit a small LDA with ``n_jobs`` in this (worker) process; report what it ran on."""
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(1.0, size=(40, 12)).astype(np.float64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lda = LatentDirichletAllocation(
            n_components=2, n_jobs=n_jobs, max_iter=3, random_state=0
        ).fit(X)
    return (multiprocessing.current_process().daemon, lda._model_.n_threads,
            [str(w.message) for w in caught], lda.components_)


def test_lda_n_jobs_in_multiprocessing_worker():
    """In a pool worker (a daemon process, where joblib's effective_n_jobs falls back to one
    with a "Loky-backed parallel loops cannot be called in a multiprocessing" warning),
    LatentDirichletAllocation(n_jobs=2) still runs on two of emkit's threads, silently, and
    gives the fit of one thread (the results do not depend on the thread count)."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    with ctx.Pool(1) as pool:
        daemon, threads, messages, components = pool.apply(_lda_in_worker, (2,))
    assert daemon  # the situation of the issue: joblib would refuse threads here
    assert threads == 2
    assert not [m for m in messages if "multiprocessing" in m or "Loky" in m], messages
    _, one_thread, _, reference = _lda_in_worker(1)
    assert one_thread == 1
    np.testing.assert_array_equal(components, reference)


def test_n_jobs_threads_counts_as_joblib():
    from joblib import effective_n_jobs

    n = default_n_threads()
    assert n_jobs_threads(None) == 1
    assert n_jobs_threads(3) == 3
    assert n_jobs_threads(-1) == n
    assert n_jobs_threads(-2) == max(1, n - 1)
    assert n_jobs_threads(-100) == 1
    if n == effective_n_jobs(-1):  # outside a worker, joblib agrees where it can count
        assert n_jobs_threads(-2) == effective_n_jobs(-2)
    with pytest.raises(ValueError, match="n_jobs == 0"):
        n_jobs_threads(0)
    with pytest.raises(ValueError, match="n_jobs == 0"):
        LatentDirichletAllocation(n_jobs=0).fit(sp.csr_matrix(np.ones((4, 3))))


# ---------------------------------------------------------------------------- data scale
def _two_blobs(seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) + 4])


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e160), (np.float64, 1e155),
                                          (np.float32, 1e19), (np.float32, 1e30)])
def test_overflowing_scale_is_a_value_error_before_any_work(estimator, dtype, scale):
    """Data near 1e160 (squares overflow float64; near 1e19 float32): one ValueError that
    names the scale and the fix, and not a single RuntimeWarning before it."""
    import emkit

    X = (_two_blobs() * scale).astype(dtype)
    est = getattr(emkit, estimator)(n_components=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning on the way
        with pytest.raises(ValueError, match="scale overflows .* Rescale X"):
            est.fit(X)
        with pytest.raises(ValueError, match="scale overflows"):
            est.partial_fit(X)
    # a later mini-batch too (the model set up by the first is not set up again)
    est.partial_fit(_two_blobs().astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="scale overflows"):
            est.partial_fit(X)


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e140), (np.float32, 1e12)])
def test_large_but_safe_scale_fits_as_the_rescaled_data(dtype, scale):
    """Below the limit the fit is the fit of the rescaled data (EM is scale-equivariant),
    with no warning."""
    from emkit import GaussianMixture

    X = _two_blobs().astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = GaussianMixture(2, random_state=0).fit(X * dtype(scale))
    ref = GaussianMixture(2, random_state=0).fit(X)
    tol = 1e-8 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(big.means_ / scale, ref.means_, rtol=0, atol=tol)
    np.testing.assert_allclose(big.weights_, ref.weights_, rtol=0, atol=tol)


def test_overflowing_scale_on_dask_is_the_same_value_error():
    da = pytest.importorskip("dask.array")
    from emkit import GaussianMixture

    X = da.from_array(_two_blobs() * 1e160, chunks=(100, 3))
    with pytest.raises(ValueError, match="scale overflows"):
        GaussianMixture(2, random_state=0).fit(X)


def test_scale_check_counts_the_weights():
    """The sums are weighted: weights large enough to make them overflow are refused too."""
    from emkit import GaussianMixture

    X = _two_blobs() * 1e140
    with pytest.raises(ValueError, match="scale overflows"):
        GaussianMixture(2, random_state=0).fit(X, sample_weight=np.full(len(X), 1e30))


# ------------------------------------------------------------------ HMMs (review findings)
def _hmm_data():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(0, 1, (150, 2)), rng.normal(5, 1, (150, 2))]


def test_hmm_fit_refuses_data_whose_scale_overflows():
    from emkit import GaussianHMM

    with pytest.raises(ValueError, match="scale overflows"):
        GaussianHMM(2, n_iter=3, random_state=0).fit(_hmm_data() * 1e160)
    Xm = _hmm_data() * 1e160
    Xm[::3, 1] = np.nan  # missing entries do not hide the scale
    with pytest.raises(ValueError, match="scale overflows"):
        GaussianHMM(2, n_iter=3, random_state=0).fit(Xm)


@pytest.mark.parametrize("per_row", [False, True])
def test_hmm_fit_refuses_weights_whose_total_overflows(per_row):
    from emkit import GaussianHMM

    X = _hmm_data()
    w = np.full(300 if per_row else 2, 1e307)
    with pytest.raises(ValueError, match="too large for float64"):
        GaussianHMM(2, n_iter=3, random_state=0).fit(X, [150, 150], sample_weight=w)


def test_hmm_prediction_on_overflowing_data_is_an_error_not_nan():
    from emkit import GaussianHMM

    m = GaussianHMM(2, n_iter=3, random_state=0).fit(_hmm_data())
    for method in ("predict_proba", "score", "predict"):
        with pytest.raises(ValueError, match="overflow"):
            getattr(m, method)(_hmm_data() * 1e200)


def test_hmm_all_missing_feature_is_named():
    from emkit import GaussianHMM

    X = _hmm_data()
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match="Feature 1 .* every row"):
        GaussianHMM(2, n_iter=3).fit(X)
