"""Bernoulli kernels against their NumPy twins, float32 and float64, dense and CSR."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

from emkit.kernels import bernoulli as kern
from emkit.kernels._rows import row_max_exp, row_max_subtract
from emkit.models.bernoulli import BernoulliModel, BernoulliParams, log_means

TOL = {np.float32: dict(rtol=2e-5, atol=2e-4), np.float64: dict(rtol=1e-12, atol=1e-10)}


def _problem(dtype, n=300, d=17, k=4, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < density).astype(dtype)
    W = rng.normal(size=(d, k)).astype(dtype)
    c = rng.normal(size=k).astype(dtype)
    R = rng.random((n, k)).astype(dtype)
    return X, W, c, R


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_csr_log_prob_matches_twin(dtype, index_dtype):
    X, W, c, _ = _problem(dtype)
    Xs = sp.csr_matrix(X)
    Xs.indices = Xs.indices.astype(index_dtype)
    Xs.indptr = Xs.indptr.astype(index_dtype)
    for start, stop in [(0, None), (13, 77), (299, 300), (5, 5)]:
        got = kern.csr_log_prob(Xs, W, c, start, stop)
        ref = kern.csr_log_prob_ref(Xs, W, c, start, stop)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, **TOL[dtype])
        np.testing.assert_allclose(got, X[start:stop] @ W + c, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csr_weighted_sum_matches_twin(dtype):
    X, _, _, R = _problem(dtype)
    Xs = sp.csr_matrix(X)
    got = kern.csr_weighted_sum(Xs, R[10:200], 10, 200)
    ref = kern.csr_weighted_sum_ref(Xs, R[10:200], 10, 200)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref, **TOL[dtype])
    # accumulates into ``out``
    out = np.ones_like(ref)
    kern.csr_weighted_sum(Xs, R[10:200], 10, 200, out=out)
    np.testing.assert_allclose(out, ref + 1, **TOL[dtype])


def test_is_binary_matches_numpy():
    rng = np.random.default_rng(1)
    X = (rng.random((50, 7)) < 0.5).astype(float)
    assert kern.is_binary(X) and kern.is_binary(np.asfortranarray(X))
    assert kern.is_binary(np.empty((0, 3)))
    for bad in (0.5, -1.0, 2.0, np.inf):
        Y = X.copy()
        Y[3, 4] = bad
        assert not kern.is_binary(Y)
        assert kern.is_binary(Y) == (not np.any((Y != 0) & (Y != 1)))


def test_log_floor():
    # log of the smallest normal float64, 2**-1022, for every dtype (the floor is the model's)
    for dtype in (np.float64, np.float32, None):
        assert kern.log_floor(dtype) == -1022 * np.log(2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_block_stats_match_textbook_twin(dtype, sparse, weighted):
    """The one-product block pass equals the two-log-term textbook E-step."""
    rng = np.random.default_rng(2)
    X = (rng.random((257, 11)) < 0.4).astype(dtype)
    w = rng.random(257).astype(dtype) if weighted else None
    params = BernoulliParams(np.array([0.2, 0.5, 0.3]), rng.uniform(0.05, 0.95, (3, 11)))
    prep = BernoulliModel(dtype=np.dtype(dtype)).prepare(params)
    if sparse:
        Xs = sp.csr_matrix(X)
        nk, sxT, ll, ent = kern.csr_block_stats(Xs, 0, 257, prep.W, prep.c, w)
        sx = sxT.T
    else:
        nk, sx, ll, ent = kern.dense_block_stats(X, prep.W, prep.c, w)
    lm, l1 = log_means(params.means, dtype)
    ref = kern.block_stats_ref(X, params.log_weights(), lm, l1, w)
    tol = TOL[dtype]
    np.testing.assert_allclose(nk, ref[0], **tol)
    np.testing.assert_allclose(sx, ref[1], **tol)
    assert ll == pytest.approx(ref[2], rel=tol["rtol"] * 10, abs=tol["atol"] * 100)
    assert ent == pytest.approx(ref[3], rel=tol["rtol"] * 10, abs=tol["atol"] * 100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_e_step_blocks_and_chunks_add_up(dtype):
    """Statistics are additive: any block size, and chunks summed, give the batch result."""
    rng = np.random.default_rng(3)
    X = (rng.random((1000, 9)) < 0.3).astype(dtype)
    params = BernoulliParams(np.array([0.6, 0.4]), rng.uniform(0.1, 0.9, (2, 9)))
    batch, _ = BernoulliModel(dtype=np.dtype(dtype), block_size=10**6).e_step(params, X)
    for Xin in (X, sp.csr_matrix(X)):
        blocked, _ = BernoulliModel(dtype=np.dtype(dtype), block_size=37).e_step(params, Xin)
        a, _ = BernoulliModel(dtype=np.dtype(dtype)).e_step(params, Xin[:400])
        b, _ = BernoulliModel(dtype=np.dtype(dtype)).e_step(params, Xin[400:])
        for s in (blocked, a + b):
            np.testing.assert_allclose(s.nk, batch.nk, **TOL[dtype])
            np.testing.assert_allclose(s.sx, batch.sx, **TOL[dtype])
            assert s.log_evidence == pytest.approx(batch.log_evidence, rel=TOL[dtype]["rtol"])
            assert s.total_weight == batch.total_weight
    half = batch.blend(0.5, batch)
    np.testing.assert_allclose(half.sx, batch.sx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("spread", [5.0, 400.0])
def test_csr_fused_kernels_match_twins(dtype, weighted, spread):
    X, W, c, _ = _problem(dtype, n=120, d=9, k=5)
    # spread the log-probabilities so that responsibilities underflow (400: exp arguments
    # far below -708, where the in-line exp gives 0 and NumPy's a subnormal or 0)
    W *= dtype(spread)
    Xs = sp.csr_matrix(X)
    L = kern.csr_log_prob(Xs, W, c, 7, 101)
    L_ref = L.astype(np.float64) - L.max(axis=1, keepdims=True)
    if spread > 100:
        assert L_ref.min() < -1000
    row_max = row_max_subtract(L)  # what csr_block_stats does: L centred in place
    np.testing.assert_array_equal(L, L_ref.astype(dtype))
    with np.errstate(under="ignore"):
        E_ref = np.exp(L_ref)
    # the float64 blocks' in-line exp: 0 below exp(-708), so compare above the smallest normal
    E = L.copy()
    row_max_exp(E)
    np.testing.assert_allclose(E, E_ref, rtol=TOL[dtype]["rtol"], atol=2 * np.finfo(dtype).tiny)
    w = np.random.default_rng(4).random(94) if weighted else None
    ref = kern.csr_resp_stats_ref(Xs, 7, 101, L_ref, E_ref, row_max, w)
    got = kern.csr_resp_stats(Xs, 7, 101, L, E, row_max, w)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"])
    # the block pass is these three steps
    got = kern.csr_block_stats(Xs, 7, 101, W, c, w)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
def test_block_stats_with_exact_zeros_and_means_near_one_match_twin(dtype, sparse):
    """Means of exactly 0 and 1 (counted, not floored into W) and above 7/8 (float32: zeros
    summed directly) give the textbook E-step of the floored logs; the zeros ``N_k - S_kd``
    keep float32's relative precision where the means are near 1."""
    rng = np.random.default_rng(5)
    means = rng.uniform(0.05, 0.95, (3, 11))
    means[0, :3] = 0.0
    means[1, 3:6] = 1.0
    means[2, 6:9] = 1 - 1e-6
    params = BernoulliParams(np.array([0.2, 0.5, 0.3]), means)
    z = rng.integers(3, size=257)
    X = (rng.random((257, 11)) < means[z]).astype(dtype)
    prep = BernoulliModel(dtype=np.dtype(dtype)).prepare(params)
    assert prep.counts is not None and list(prep.counts.cols) == [0, 1]
    if dtype == np.float32:
        assert set(range(3, 9)) <= set(prep.complement)
    if sparse:
        nk, sxT, ll, ent = kern.csr_block_stats(sp.csr_matrix(X), 0, 257, prep.W, prep.c,
                                                counts=prep.counts)
        sx = sxT.T
    else:
        nk, sx, ll, ent = kern.dense_block_stats(X, prep.W, prep.c, counts=prep.counts,
                                                 complement=prep.complement)
    lm, l1 = log_means(params.means)
    ref = kern.block_stats_ref(X, params.log_weights(), lm, l1)
    tol = TOL[dtype]
    np.testing.assert_allclose(nk, ref[0], **tol)
    np.testing.assert_allclose(sx, ref[1], **tol)
    # the zeros, summed directly from the textbook responsibilities (nk - sx of the twin
    # itself cancels to eps64 * nk)
    Xd = X.astype(np.float64)
    L = params.log_weights() + Xd @ lm.T + (1 - Xd) @ l1.T
    R = np.exp(L - logsumexp(L, axis=1, keepdims=True))
    near_one = means > 7 / 8
    got, want = (nk[:, None] - sx)[near_one], (R.T @ (1 - Xd))[near_one]
    # dense float32 sums them directly (float32's relative precision); the other paths
    # accumulate in float64 (a float64 ulp of N_k, far below float32's precision of them)
    atol = 1e-300 if (dtype == np.float32 and not sparse) else 16 * np.finfo(float).eps * 257
    assert np.all(np.abs(got - want) <= tol["rtol"] * want + atol)
    assert ll == pytest.approx(ref[2], rel=tol["rtol"] * 10)
    assert ent == pytest.approx(ref[3], rel=tol["rtol"] * 10, abs=tol["atol"] * 100)


def test_add_floor_counts_fit_and_prediction():
    """The fit adds floor * count; prediction puts -inf wherever the count is positive."""
    P = np.array([[1.0, 2.0, 0.0, 1.0], [3.0, 4.0, -1.0, 0.0]])  # K=2, both with counts
    c = np.array([0.5, -0.5])
    counts = kern.FloorCounts(np.array([0, 1]), np.array([1.0, 0.0]))
    M = P[:, 2:] + counts.base
    fit = kern.add_floor_counts(P.copy(), 2, counts, c, kern.log_floor())
    np.testing.assert_allclose(fit, P[:, :2] + c + kern.log_floor() * M)
    pred = kern.add_floor_counts(P.copy(), 2, counts, c, -np.inf)
    np.testing.assert_array_equal(pred, np.where(M > 0, -np.inf, P[:, :2] + c))
    np.testing.assert_array_equal(kern.add_floor_counts(P[:, :2].copy(), 2, None, c, -np.inf),
                                  P[:, :2] + c)
