"""The Gaussian mixture's exact path: per-component Cholesky form in blocked BLAS.

For a block of rows ``X`` (``B x D``, float64) and each component ``k``:

* log-densities: ``y = (x - mu_k) U_k`` and ``log p_k = const_k - |y|^2 / 2``, with ``U_k``
  the upper-triangular precision factor (scikit-learn's ``precisions_cholesky_``). For full
  and tied covariances ``y`` is one triangular product per component and block (BLAS
  ``dtrmm``: ``B D^2 / 2`` multiply-adds, half a general product's);
* statistics about the component's own point ``s_k`` (its mean): ``sum_n r_nk``,
  ``sum_n r_nk (x_n - s_k)`` and ``sum_n r_nk (x_n - s_k)(x_n - s_k)^T``, the last one a
  symmetric rank-B update (BLAS ``dsyrk`` of ``sqrt(r) (x - s_k)``: again ``B D^2 / 2``).

Nothing is expanded, so nothing cancels: this is the reference twin of the quadratic-feature
path in :mod:`emkit.kernels.gaussian` and its fallback where that one would lose accuracy.
The BLAS routines are scipy's (``scipy.linalg.cython_blas``), called through ``ctypes``, which
releases the GIL for the call, so that blocks run in parallel on the row-block threads like
NumPy's own products. Below :data:`BLAS3_MIN_FEATURES` features the per-call cost of that
route exceeds the halved arithmetic and NumPy's general product is used instead (the same
numbers up to round-off).

Each function has a ``*_ref`` NumPy twin that the tests compare it with.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ._parallel import scratch

__all__ = [
    "BLAS3_MIN_FEATURES",
    "chol_log_prob_t",
    "chol_log_prob_t_ref",
    "scatter_about_t",
    "scatter_about_t_ref",
]

#: From this many features on, full/tied covariances use ``dtrmm``/``dsyrk`` (measured:
#: a ctypes call costs about 20 us against 5 us for a NumPy product; at D = 64 a block's
#: triangular product already takes about 0.5 ms).
BLAS3_MIN_FEATURES = 48

_BLAS = {}
_CHARS = {c: ctypes.c_char(c.encode()) for c in "LUNT"}
_ONE = ctypes.c_double(1.0)
_ZERO = ctypes.c_double(0.0)


def _blas(name: str):
    """scipy's Fortran BLAS routine ``name`` as a ctypes function (GIL released per call)."""
    f = _BLAS.get(name)
    if f is None:
        from numba.extending import get_cython_function_address

        nargs = {"dtrmm": 11, "dsyrk": 10}[name]
        addr = get_cython_function_address("scipy.linalg.cython_blas", name)
        f = _BLAS[name] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * nargs)(addr)
    return f


def _ref(c):
    return ctypes.byref(_CHARS[c])


def trmm_upper_right(Y, U) -> None:
    """``Y[:] = Y @ U`` in place (``Y``: ``B x D`` C-contiguous float64, ``U`` upper
    triangular ``D x D`` C-contiguous float64), one BLAS ``dtrmm``.

    In Fortran's column-major view ``Y`` is ``Y^T`` and ``U`` is ``U^T`` (lower), so the call
    is ``Y^T <- U^T Y^T`` (side L, lower, no transpose).
    """
    b, d = Y.shape
    n_d, n_b = ctypes.c_int(d), ctypes.c_int(b)
    _blas("dtrmm")(
        _ref("L"), _ref("L"), _ref("N"), _ref("N"), ctypes.byref(n_d), ctypes.byref(n_b),
        ctypes.byref(_ONE), U.ctypes.data, ctypes.byref(n_d), Y.ctypes.data, ctypes.byref(n_d),
    )


def syrk_t(Z, out) -> None:
    """``out[:] = Z^T Z`` (``Z``: ``B x D`` C-contiguous float64; ``out``: ``D x D``
    C-contiguous float64), one BLAS ``dsyrk`` then the other triangle copied.

    Column-major, ``Z`` is ``Z^T`` and ``Z^T (Z^T)^T = Z^T Z``: no transpose; the triangle
    BLAS calls upper is the C-order lower one.
    """
    b, d = Z.shape
    n_d, n_b = ctypes.c_int(d), ctypes.c_int(b)
    _blas("dsyrk")(
        _ref("U"), _ref("N"), ctypes.byref(n_d), ctypes.byref(n_b), ctypes.byref(_ONE),
        Z.ctypes.data, ctypes.byref(n_d), ctypes.byref(_ZERO), out.ctypes.data,
        ctypes.byref(n_d),
    )
    iu = np.triu_indices(d, 1)
    out[iu] = out.T[iu]


def _diff(X, point, name="gaussian-exact-diff"):
    """``X - point`` in this thread's scratch memory (``B x D`` float64)."""
    out = scratch(name, X.shape, np.float64)
    np.subtract(X, point, out=out)
    return out


def chol_log_prob_t(X, means, pc, const, covariance_type, out) -> np.ndarray:
    """``out[k, n] = const[k] - |(x_n - mu_k) U_k|^2 / 2`` (``K x B``), exact path.

    ``X``: ``B x D`` float64; ``pc``: scikit-learn's ``precisions_cholesky_`` for
    ``covariance_type``; ``const``: per-component constants. NumPy equivalent:
    :func:`chol_log_prob_t_ref`.
    """
    k_all, d = means.shape
    full = covariance_type in ("full", "tied")
    blas3 = full and d >= BLAS3_MIN_FEATURES
    for k in range(k_all):
        y = _diff(X, means[k])
        if full:
            u = pc if covariance_type == "tied" else pc[k]
            if blas3:
                trmm_upper_right(y, np.ascontiguousarray(u))
            else:
                y = np.matmul(y, u, out=scratch("gaussian-exact-y", y.shape, np.float64))
        else:
            y *= pc[k]
        np.einsum("ij,ij->i", y, y, out=out[k])
        out[k] *= -0.5
        out[k] += const[k]
    return out


def chol_log_prob_t_ref(X, means, pc, const, covariance_type) -> np.ndarray:
    """NumPy twin of :func:`chol_log_prob_t` (scikit-learn's form, about each mean)."""
    cols = []
    for k in range(means.shape[0]):
        diff = X - means[k]
        if covariance_type == "full":
            y = diff @ pc[k]
        elif covariance_type == "tied":
            y = diff @ pc
        else:
            y = diff * pc[k]
        cols.append(const[k] - 0.5 * np.sum(y * y, axis=1))
    return np.array(cols)


def scatter_about_t(X, Rt, shift, covariance_type):
    """``(nk, sx, sxx)`` of a block about per-component points ``shift`` (``K x D``).

    ``Rt``: ``K x B`` non-negative weights (responsibilities times sample weights);
    ``nk[k] = sum_n Rt[k, n]``, ``sx[k] = Rt[k] @ (X - s_k)``, and ``sxx[k]`` the weighted
    scatter ``(X - s_k)^T diag(Rt[k]) (X - s_k)`` (full and tied) or its diagonal (diag and
    spherical). float64. NumPy equivalent: :func:`scatter_about_t_ref`.
    """
    full = covariance_type in ("full", "tied")
    k_all, d = shift.shape
    blas3 = full and d >= BLAS3_MIN_FEATURES
    nk = Rt.sum(axis=1, dtype=np.float64)
    sx = np.empty((k_all, d))
    sxx = np.empty((k_all, d, d) if full else (k_all, d))
    for k in range(k_all):
        diff = _diff(X, shift[k])
        r = np.asarray(Rt[k], dtype=np.float64)
        np.matmul(r, diff, out=sx[k])
        if not full:
            diff *= diff
            np.matmul(r, diff, out=sxx[k])
        elif blas3:
            diff *= np.sqrt(r)[:, None]
            syrk_t(diff, sxx[k])
        else:
            z = np.multiply(diff, r[:, None], out=scratch("gaussian-exact-y", diff.shape,
                                                          np.float64))
            np.matmul(z.T, diff, out=sxx[k])
    return nk, sx, sxx


def scatter_about_t_ref(X, Rt, shift, covariance_type):
    """NumPy twin of :func:`scatter_about_t`."""
    full = covariance_type in ("full", "tied")
    out = [], [], []
    for k in range(shift.shape[0]):
        diff = X - shift[k]
        r = Rt[k]
        out[0].append(r.sum())
        out[1].append(r @ diff)
        out[2].append((diff * r[:, None]).T @ diff if full else r @ (diff * diff))
    return tuple(np.array(a) for a in out)
