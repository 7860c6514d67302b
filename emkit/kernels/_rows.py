"""Row-wise helpers shared by the kernels of several models."""

from __future__ import annotations

import numpy as np

from .._jit import jit

__all__ = ["row_max_subtract", "row_max_subtract_ref", "row_max_subtract_kernel"]


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
