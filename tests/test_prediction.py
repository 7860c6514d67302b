"""The prediction paths run in row chunks: same values as the whole N x K computation, and
memory bounded by the output, not by N x K (issue 11, item 2)."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

from emkit import BernoulliMixture, GaussianMixture, _base

from ._helpers import blobs


@pytest.mark.parametrize("chunk", [7, 1 << 15])
def test_chunked_prediction_equals_the_whole_computation(monkeypatch, chunk):
    monkeypatch.setattr(_base, "PREDICT_ROWS", chunk)
    X, _ = blobs(n=300, d=3, k=3, seed=1)
    B = (X > 0).astype(np.float64)
    for est, data in ((GaussianMixture(3, random_state=0).fit(X), X),
                      (BernoulliMixture(3, random_state=0).fit(B), B),
                      (BernoulliMixture(3, random_state=0).fit(B), sp.csr_matrix(B))):
        L = est._model_.log_prob(est._params_, data)  # N x K, the reference
        ll = logsumexp(L, axis=1)
        np.testing.assert_allclose(est.score_samples(data), ll, rtol=1e-12)
        np.testing.assert_allclose(est.predict_proba(data), np.exp(L - ll[:, None]),
                                   rtol=1e-12, atol=1e-300)
        np.testing.assert_array_equal(est.predict(data), np.argmax(L, axis=1))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_prediction_memory_is_the_output_not_n_by_k():
    """Beyond its output, what a prediction holds does not grow with N (was N x K twice)."""
    X, _ = blobs(n=400_000, d=4, k=4, seed=2)
    gm = GaussianMixture(16, covariance_type="diag", max_iter=2, tol=0, random_state=0,
                         init_params="random_from_data").fit(X[:5000])

    def extra(fn, n):
        data = X[:n]
        tracemalloc.start()
        out = fn(data)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p - out.nbytes

    for fn in (gm.score_samples, gm.predict, gm.predict_proba):
        small, big = extra(fn, 100_000), extra(fn, 400_000)
        # N x K float64 for the extra 300k rows would be 38 MB
        assert big < small + 4e6, (fn.__name__, small, big)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_values_are_an_error_not_nan():
    X, _ = blobs(n=200, d=2, k=2, seed=3)
    gm = GaussianMixture(2, random_state=0).fit(X)
    huge = np.array([[1e160, 1e160], [0.0, 0.0]])
    with pytest.raises(ValueError, match="Row 0 of X .* Rescale the data"):
        gm.predict_proba(huge)
    with pytest.raises(ValueError, match="Row 0 of X"):
        gm.predict(huge)
    with pytest.raises(ValueError, match="Row 0 of X"):
        gm.score_samples(huge)
    assert np.all(np.isfinite(gm.score_samples(huge[1:])))


def test_weights_whose_sum_overflows_are_a_clear_error():
    X, _ = blobs(n=50, d=2, k=2, seed=4)
    for est in (GaussianMixture(2), BernoulliMixture(2)):
        data = X if isinstance(est, GaussianMixture) else (X > 0).astype(float)
        with pytest.raises(ValueError, match="sample_weight sums to .* rescale"):
            est.fit(data, sample_weight=np.full(50, 1e307))
