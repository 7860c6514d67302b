"""Row-wise helpers shared by the kernels of several models."""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ._exp import EXP_MIN, exp_split, pow2_from_bits

__all__ = [
    "row_max_subtract",
    "row_max_subtract_ref",
    "row_max_subtract_kernel",
    "row_max_exp",
    "row_max_exp_ref",
    "unit_weights",
    "column_reduce",
]


def column_reduce(ufunc, X):
    """``ufunc.reduce(X, axis=0)`` of a 2-D ``X``, fast where rows are short.

    NumPy reduces a C-contiguous array over its rows one short row at a time (for
    200,000 x 8 float64, 7 ms against 1 ms here); groups of ``r`` rows are folded as one
    row of ``r * D`` first, then the ``r`` partial rows. The same values for ``fmin``,
    ``fmax`` (NaN skipped as there), ``minimum``, ``maximum``; for ``add`` the same sum in
    another order.
    """
    n, d = X.shape
    r = 256 // d if d else 0
    if r < 2 or n < 2 * r or not X.flags.c_contiguous:
        return ufunc.reduce(X, axis=0)
    m = n - n % r
    part = ufunc.reduce(X[:m].reshape(m // r, r * d), axis=0).reshape(r, d)
    if m < n:
        part = np.concatenate([part, X[m:]])
    return ufunc.reduce(part, axis=0)


def unit_weights(w):
    """``(w / s, s)``: the weights in float64, divided by a power of two ``s`` that brings the
    largest to ``[1, 2)``.

    Sample weights stay float64 from validation to the kernels, whatever the data's dtype;
    a kernel that multiplies them into arrays of the data's dtype (float32 responsibilities,
    a float32 GEMM) uses ``w / s`` there and multiplies its float64 results by ``s``. The
    division by a power of two is exact, so weights of 1e-50 or 1e39 on float32 data give
    the statistics of the float64 fit instead of zeros, subnormals or infinities. ``s`` is 1
    when no weight is positive.
    """
    w = np.asarray(w, dtype=np.float64)
    top = float(np.max(w, initial=0.0))
    if not top > 0.0 or 1.0 <= top < 2.0:
        return w, 1.0
    s = float(np.ldexp(1.0, int(np.frexp(top)[1]) - 1))
    return w / s, s


def _row_max_subtract(L, mx):
    """Subtract each row's maximum from it, in place; write the maxima to ``mx``.

    NumPy equivalent (:func:`row_max_subtract_ref`)::

        mx[:] = L.max(axis=1)
        L -= mx[:, None]
    """
    n, k_all = L.shape
    for t in range(n):
        m = L[t, 0]
        for k in range(1, k_all):
            if L[t, k] > m:
                m = L[t, k]
        mx[t] = m
        for k in range(k_all):
            L[t, k] -= m


#: the compiled kernel, for other Numba kernels to call
row_max_subtract_kernel = jit(_row_max_subtract)


def row_max_subtract(L):
    """Numba kernel: ``mx = L.max(axis=1); L -= mx[:, None]`` in place; returns ``mx``
    (float64)."""
    mx = np.empty(L.shape[0])
    row_max_subtract_kernel(L, mx)
    return mx


def row_max_subtract_ref(L):
    """NumPy twin of :func:`row_max_subtract`."""
    mx = L.max(axis=1)
    L -= mx[:, None]
    return mx.astype(np.float64)


#: elements per chunk of the exponential loops (their scratch fits in L1)
_EXP_CHUNK = 512


def _row_max_exp(L, mx):
    """``L <- exp(L - max_k L)`` row by row, in place; the row maxima go to ``mx``.

    NumPy equivalent (:func:`row_max_exp_ref`)::

        mx[:] = L.max(axis=1)
        L[:] = np.exp(L - mx[:, None])

    The exponential is :mod:`emkit.kernels._exp`'s in-line one, in float64, in loops that LLVM
    vectorises (NumPy's float64 ``exp`` is scalar on AVX2 machines: measured 5.4 ns per element
    against about 1.5 ns here, maximum and subtraction included). An argument below ``-708``
    gives 0 and a NaN stays NaN.
    """
    n, k_all = L.shape
    row_max_subtract_kernel(L, mx)
    flat = L.reshape(n * k_all)
    total = n * k_all
    fb = np.empty(_EXP_CHUNK, dtype=np.float64)
    ib = fb.view(np.int64)
    for c0 in range(0, total, _EXP_CHUNK):
        seg = flat[c0 : min(c0 + _EXP_CHUNK, total)]  # a slice: indices known non-negative
        w = seg.shape[0]
        for i in range(w):
            a = float(seg[i])
            live = not (a < EXP_MIN)  # NaN stays live and propagates
            p, kd = exp_split(a if live else EXP_MIN)
            fb[i] = kd
            seg[i] = p if live else 0.0
        pow2_from_bits(ib[:w])
        for i in range(w):
            seg[i] = seg[i] * fb[i]


#: No reassociation: it could merge the two halves of the split of log 2.
row_max_exp_kernel = jit(_row_max_exp, fastmath={"contract", "nsz"})


def row_max_exp(L):
    """Numba kernel: ``mx = L.max(axis=1); L[:] = exp(L - mx[:, None])`` in place (float32
    or float64 ``L``, C-contiguous); returns ``mx`` (float64)."""
    mx = np.empty(L.shape[0])
    row_max_exp_kernel(L, mx)
    return mx


def row_max_exp_ref(L):
    """NumPy twin of :func:`row_max_exp`."""
    mx = L.max(axis=1)
    L -= mx[:, None]
    np.exp(L, out=L)
    return mx.astype(np.float64)
