"""The in-line exponential shared by the vectorised kernels (emkit/kernels/_exp.py)."""

import numba
import numpy as np

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
