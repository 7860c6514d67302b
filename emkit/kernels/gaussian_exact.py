"""The Gaussian mixture's exact path: per-component Cholesky form in blocked BLAS.

For a block of rows ``X`` (``B x D``) and each component ``k``:

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

The arithmetic is in ``X``'s dtype. The model (:meth:`~emkit.models.gaussian.GaussianModel.
prepare`) passes float64 rows where the exact path runs for accuracy (ill-conditioned
covariances or means far from the data's centre: the rounding of ``(x - mu_k) U_k`` in
float32 would lose the same digits the quadratic form does, so float32 data costs what float64
does there), and rows of the data's own dtype where it runs only because it is cheaper (wide
data, few components), so that float32 halves its work as on the fast path.

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
_SCALARS = {
    np.dtype(np.float64): (ctypes.c_double(1.0), ctypes.c_double(0.0), "d"),
    np.dtype(np.float32): (ctypes.c_float(1.0), ctypes.c_float(0.0), "s"),
}


def _blas(name: str):
    """scipy's Fortran BLAS routine ``name`` as a ctypes function (GIL released per call)."""
    f = _BLAS.get(name)
    if f is None:
        from numba.extending import get_cython_function_address

        nargs = {"trmm": 11, "syrk": 10}[name[1:]]
        addr = get_cython_function_address("scipy.linalg.cython_blas", name)
        f = _BLAS[name] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * nargs)(addr)
    return f


def _ref(c):
    return ctypes.byref(_CHARS[c])


def trmm_upper_right(Y, U) -> None:
    """``Y[:] = Y @ U`` in place (``Y``: ``B x D`` C-contiguous, ``U`` upper triangular
    ``D x D`` C-contiguous, both float64 or both float32), one BLAS ``?trmm``.

    In Fortran's column-major view ``Y`` is ``Y^T`` and ``U`` is ``U^T`` (lower), so the call
    is ``Y^T <- U^T Y^T`` (side L, lower, no transpose).
    """
    b, d = Y.shape
    one, _, prefix = _SCALARS[Y.dtype]
    n_d, n_b = ctypes.c_int(d), ctypes.c_int(b)
    _blas(prefix + "trmm")(
        _ref("L"), _ref("L"), _ref("N"), _ref("N"), ctypes.byref(n_d), ctypes.byref(n_b),
        ctypes.byref(one), U.ctypes.data, ctypes.byref(n_d), Y.ctypes.data, ctypes.byref(n_d),
    )


def syrk_t(Z, out) -> None:
    """``out[:] = Z^T Z`` (``Z``: ``B x D`` C-contiguous; ``out``: ``D x D`` C-contiguous, of
    ``Z``'s dtype, float64 or float32), one BLAS ``?syrk`` then the other triangle copied.

    Column-major, ``Z`` is ``Z^T`` and ``Z^T (Z^T)^T = Z^T Z``: no transpose; the triangle
    BLAS calls upper is the C-order lower one.
    """
    b, d = Z.shape
    one, zero, prefix = _SCALARS[Z.dtype]
    n_d, n_b = ctypes.c_int(d), ctypes.c_int(b)
    _blas(prefix + "syrk")(
        _ref("U"), _ref("N"), ctypes.byref(n_d), ctypes.byref(n_b), ctypes.byref(one),
        Z.ctypes.data, ctypes.byref(n_d), ctypes.byref(zero), out.ctypes.data,
        ctypes.byref(n_d),
    )
    iu = np.triu_indices(d, 1)
    out[iu] = out.T[iu]


def _diff(X, point, name="gaussian-exact-diff"):
    """``X - point`` in this thread's scratch memory (``B x D``, ``X``'s dtype)."""
    out = scratch(name, X.shape, X.dtype)
    np.subtract(X, point.astype(X.dtype, copy=False), out=out)
    return out


def chol_log_prob_t(X, means, pc, const, covariance_type, out) -> np.ndarray:
    """``out[k, n] = const[k] - |(x_n - mu_k) U_k|^2 / 2`` (``K x B``), exact path.

    ``X``: ``B x D``; ``pc``: scikit-learn's ``precisions_cholesky_`` for
    ``covariance_type``; ``const``: per-component constants. The arithmetic is in ``X``'s
    dtype (float64, or float32 where the caller found that accurate enough); ``means`` and
    ``pc`` are rounded to it, ``out`` is of it. NumPy equivalent: :func:`chol_log_prob_t_ref`.
    """
    k_all, d = means.shape
    full = covariance_type in ("full", "tied")
    blas3 = full and d >= BLAS3_MIN_FEATURES
    for k in range(k_all):
        y = _diff(X, means[k])
        if full:
            u = np.ascontiguousarray(pc if covariance_type == "tied" else pc[k], dtype=X.dtype)
            if blas3:
                trmm_upper_right(y, u)
            else:
                y = np.matmul(y, u, out=scratch("gaussian-exact-y", y.shape, X.dtype))
        else:
            y *= np.asarray(pc[k], dtype=X.dtype)
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
    spherical). Sums over the block in ``X``'s dtype (``Rt`` of the same), results float64.
    NumPy equivalent: :func:`scatter_about_t_ref`.
    """
    full = covariance_type in ("full", "tied")
    k_all, d = shift.shape
    blas3 = full and d >= BLAS3_MIN_FEATURES
    nk = Rt.sum(axis=1, dtype=np.float64)
    sx = np.empty((k_all, d))
    sxx = np.empty((k_all, d, d) if full else (k_all, d))
    for k in range(k_all):
        diff = _diff(X, shift[k])
        r = np.asarray(Rt[k], dtype=X.dtype)
        sx[k] = r @ diff
        if not full:
            diff *= diff
            sxx[k] = r @ diff
        elif blas3:
            diff *= np.sqrt(r)[:, None]
            if X.dtype == np.float64:
                syrk_t(diff, sxx[k])
            else:
                buf = scratch("gaussian-exact-sxx", (d, d), X.dtype)
                syrk_t(diff, buf)
                sxx[k] = buf
        else:
            z = np.multiply(diff, r[:, None], out=scratch("gaussian-exact-y", diff.shape,
                                                          X.dtype))
            sxx[k] = z.T @ diff
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
