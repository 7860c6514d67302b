"""The in-line exponential shared by the kernels that vectorise ``exp`` over a loop.

NumPy's float64 ``exp`` has a SIMD form only for AVX-512, and Numba's ``math.exp`` is a scalar
call that stops LLVM from vectorising the loop around it; on this project's AVX2 machines both
cost 5-10 ns an element. The kernels that need many exponentials (the Gaussian softmax, the
HMM's scaled emissions, LDA's ``exp(digamma)``) therefore compute it in line, from this one
definition:

``exp(a) = 2^m p(r)`` with ``m = round(a / log 2)`` and ``r = a - m log 2`` (Cody-Waite split
of ``log 2``, as fdlibm), ``|r| <= log(2) / 2``, and ``p`` the degree-12 Taylor polynomial of
``exp`` in Estrin's form (short dependency chains); measured against NumPy's ``exp`` over
``[-708, 709]``: relative error below 5e-16 (two units in the last place;
tests/test_exp_kernel.py). Adding :data:`ROUND` (``1.5 * 2^52 + 1023``) rounds ``a / log 2``
to an integer held, already biased,
in the low mantissa bits of the sum; viewed as int64 and shifted left by 52
(:func:`pow2_from_bits`) those bits are the float64 ``2^m`` (AVX2 has no vector conversion from
double to int64, so the power of two is built with integer operations in a separate loop).

Valid for ``EXP_MIN <= a <= 709``; callers send arguments below :data:`EXP_MIN` to 0 (the
exact value is below 1e-307 there). Callers compile with ``fastmath={"contract"}`` at most: a
reassociation could merge the two halves of the split of ``log 2``.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit

__all__ = ["EXP_MIN", "ROUND", "exp_split", "pow2_from_bits", "exp_ref"]

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
ROUND = 6755399441055744.0 + 1023.0
#: below this exp(a) is subnormal or zero: the kernels return 0 there
EXP_MIN = -708.0


def _exp_split(a):
    """``(p, kd)`` with ``exp(a) = p * 2^m`` and ``m + 1023`` in the low mantissa bits of the
    float64 ``kd`` (see the module docstring); ``EXP_MIN <= a <= 709``. NaN gives NaN ``p``."""
    kd = a * LOG2E + ROUND
    m = kd - ROUND
    x = (a - m * LN2_HI) - m * LN2_LO
    x2 = x * x
    x4 = x2 * x2
    p03 = (1.0 + x) + x2 * (1.0 / 2 + x * (1.0 / 6))
    p47 = (1.0 / 24 + x * (1.0 / 120)) + x2 * (1.0 / 720 + x * (1.0 / 5040))
    p8c = ((1.0 / 40320 + x * (1.0 / 362880))
           + x2 * (1.0 / 3628800 + x * (1.0 / 39916800))) + x4 * (1.0 / 479001600)
    return (p03 + x4 * p47) + (x4 * x4) * p8c, kd


def _pow2_from_bits(kbits):
    """``kbits[i] <<= 52`` in place: the int64 view of the ``kd`` values of :func:`exp_split`
    becomes the float64 powers of two ``2^m``."""
    for i in range(kbits.shape[0]):
        kbits[i] = kbits[i] << 52


exp_split = jit(_exp_split, fastmath={"contract"}, inline="always")
pow2_from_bits = jit(_pow2_from_bits)


def exp_ref(a):
    """NumPy twin of the in-line exponential as the kernels apply it: ``exp(a)``, 0 below
    :data:`EXP_MIN`, NaN kept."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(under="ignore"):
        return np.where(a < EXP_MIN, 0.0, np.exp(a))
