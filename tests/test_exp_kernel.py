"""The in-line exponential shared by the vectorised kernels (emkit/kernels/_exp.py)."""

import numba
import numpy as np
import pytest

from emkit.kernels._exp import EXP_MIN, exp_ref, exp_split, pow2_from_bits


@numba.njit(cache=True)
def _apply(a, out):
    bits = out.view(np.int64)
    pb = np.empty_like(out)
    for i in range(a.shape[0]):
        x = a[i]
        live = not (x < EXP_MIN)
        p, kd = exp_split(x if live else EXP_MIN)
        pb[i] = p if live else 0.0
        out[i] = kd
    pow2_from_bits(bits)
    for i in range(a.shape[0]):
        out[i] = pb[i] * out[i]


def test_exp_matches_numpy_to_round_off():
    a = np.concatenate([np.linspace(-708.0, 709.0, 200_001), [0.0, -1e-300, 1e-300, 0.5]])
    out = np.empty_like(a)
    _apply(a, out)
    np.testing.assert_allclose(out, np.exp(a), rtol=5e-16, atol=0)


def test_exp_below_floor_is_zero_and_nan_propagates():
    a = np.array([-708.5, -1e4, -np.inf, np.nan])
    out = np.empty_like(a)
    _apply(a, out)
    assert np.all(out[:3] == 0.0) and np.isnan(out[3])
    np.testing.assert_array_equal(exp_ref(a)[:3], 0.0)
    assert np.isnan(exp_ref(a)[3])


@pytest.mark.parametrize("shape", [(1000, 8), (1003, 3), (7, 8), (500, 300), (40, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_reduce_equals_numpy(shape, dtype):
    """The folded column reduction gives NumPy's axis-0 reduction: the same extremes (NaN
    skipped by fmin/fmax) and the same sums to round-off, contiguous or not."""
    from emkit.kernels._rows import column_reduce

    rng = np.random.default_rng(0)
    X = rng.normal(size=shape).astype(dtype) * 1e3
    X[rng.random(shape) < 0.05] = np.nan
    X[:, 0] = np.nan  # an all-missing feature
    for A in (X, X[::2], np.asfortranarray(X)):
        for uf in (np.fmin, np.fmax):
            np.testing.assert_array_equal(column_reduce(uf, A), uf.reduce(A, axis=0))
        B = np.nan_to_num(A)
        np.testing.assert_allclose(column_reduce(np.add, B), B.sum(axis=0, dtype=np.float64),
                                   rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-2)
