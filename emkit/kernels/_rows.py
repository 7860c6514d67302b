"""Row-wise helpers shared by the kernels of several models."""

from __future__ import annotations

import numpy as np

from .._jit import jit

__all__ = ["row_max_subtract", "row_max_subtract_ref", "row_max_subtract_kernel", "unit_weights"]


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
