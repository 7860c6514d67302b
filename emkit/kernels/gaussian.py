"""Gaussian mixture kernels: one pass over a block of rows.

Two ways to get the log-densities and the sufficient statistics of a block:

* **Blocked quadratic form** (fast path). With the data centred at ``c``, the log of
  ``w_k N(x | mu_k, P_k^{-1})`` is linear in the features ``phi(x)``:

  - full / tied: ``phi = [x_i x_j (i <= j), x, 1]``, ``F = D (D + 1) / 2 + D + 1``;
  - diag / spherical: ``phi = [x_i^2, x, 1]``, ``F = 2 D + 1``.

  So the log-densities of a block are one GEMM ``Phi @ W`` (``B x F`` by ``F x K``), and the
  statistics ``N_k, sum r x, sum r x x^T`` are a second GEMM ``R^T Phi``. Exp, log-sum-exp
  and the entropy run in one fused Numba pass (:func:`softmax_t`, an in-line vector exp);
  the features are built by a Numba kernel.
  Precision: the expansion ``x'Px - 2 mu'Px + mu'P mu`` cancels when a component's mean sits
  far from ``c`` in its own metric; :func:`fast_path_ok` decides when it is safe.

* **Per-component Cholesky** (exact path, the reference twin and the fallback; blocked BLAS
  in :mod:`emkit.kernels.gaussian_exact`): ``y = (x - mu_k) U_k`` as scikit-learn computes
  it, and statistics taken about each component's own mean, so nothing cancels. The model
  chooses between the two on accuracy and on a measured cost model
  (:func:`emkit.models.gaussian.path_costs`).

Every Numba kernel here states its NumPy equivalent and has a ``*_ref`` twin that the tests
compare it with in float32 and float64.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from ._exp import EXP_MIN, exp_split, pow2_from_bits

__all__ = [
    "normalize_log_prob_t_ref",
    "softmax_t",
    "quad_features",
    "quad_features_ref",
    "square_features",
    "square_features_ref",
    "n_features_quad",
    "normalize_log_prob",
]

LOG_2PI = float(np.log(2.0 * np.pi))


def n_features_quad(n_features: int, covariance_type: str) -> int:
    """Width ``F`` of the feature map for ``covariance_type``."""
    d = n_features
    if covariance_type in ("full", "tied"):
        return d * (d + 1) // 2 + d + 1
    return 2 * d + 1


def _quad_features_t(X, center, out, Y):
    """Quadratic features of centred rows, one column per row (``F x B``).

    NumPy equivalent (``quad_features_ref``)::

        Y = X - center
        i, j = np.triu_indices(D)
        out[:] = np.hstack([Y[:, i] * Y[:, j], Y, np.ones((B, 1))]).T

    The transposed layout makes every feature a contiguous row, so the products vectorise,
    and the block's two GEMMs read it as ``W^T @ Phi^T`` and ``Phi^T @ R``. ``Y`` (``D x B``,
    the output's dtype) is the caller's scratch for the centred rows.
    """
    b, d = X.shape
    for r in range(b):
        for i in range(d):
            Y[i, r] = X[r, i] - center[i]
    col = 0
    for i in range(d):
        for j in range(i, d):
            for r in range(b):
                out[col, r] = Y[i, r] * Y[j, r]
            col += 1
    for i in range(d):
        for r in range(b):
            out[col, r] = Y[i, r]
        col += 1
    for r in range(b):
        out[col, r] = 1.0


def _square_features_t(X, center, out):
    """Diagonal features of centred rows, one column per row (``F x B``).

    NumPy equivalent (``square_features_ref``)::

        Y = X - center
        out[:] = np.hstack([Y * Y, Y, np.ones((B, 1))]).T
    """
    b, d = X.shape
    for r in range(b):
        for i in range(d):
            y = X[r, i] - center[i]
            out[i, r] = y * y
            out[d + i, r] = y
        out[2 * d, r] = 1.0


def _row_max(row, mx):
    """``mx = np.maximum(mx, row)`` (1-D)."""
    for r in range(row.shape[0]):
        v = float(row[r])
        mx[r] = v if v > mx[r] else mx[r]


def _row_exp_parts(row, mx, pb, kb):
    """The two factors of ``exp(row - mx)`` (:func:`~emkit.kernels._exp.exp_split`): ``pb``
    the polynomial and ``kb`` the biased power of two in its low mantissa bits."""
    for r in range(row.shape[0]):
        a = float(row[r]) - mx[r]
        live = not (a < EXP_MIN)  # NaN stays live and propagates, as in the SciPy twin
        pb[r], kb[r] = exp_split(a if live else EXP_MIN)


def _row_exp_accumulate(row, mx, pb, kb, sb, en):
    """``row = e = exp(row - mx)`` (0 below the floor), ``sb += e``, ``en += e (row - mx)``."""
    for r in range(row.shape[0]):
        a = float(row[r]) - mx[r]
        live = not (a < EXP_MIN)
        e = pb[r] * kb[r] if live else 0.0
        ac = a if live else 0.0
        sb[r] += e
        en[r] += e * ac
        row[r] = e


def _row_scale(row, f):
    """``row *= f`` (1-D)."""
    for r in range(row.shape[0]):
        row[r] = row[r] * f[r]


def _softmax_t(Lt, w, log_norm, ent_rows, sbuf, pbuf, kbuf):
    """Column-wise softmax of ``Lt`` (``K x B``) in place, with each column's log-sum-exp and
    entropy, in one pass over ``Lt`` after the column maxima.

    NumPy/SciPy equivalent (:func:`normalize_log_prob_t_ref`)::

        log_norm[:] = scipy.special.logsumexp(Lt, axis=0)
        R = np.exp(Lt - log_norm)
        ent_rows[:] = -(R * np.log(R)).sum(axis=0)          # 0 log 0 = 0
        Lt[:] = R * w                                        # w: B weights, or empty for 1

    ``exp`` is in-line (range reduction, degree-12 Taylor polynomial of ``exp(r)`` on
    ``|r| <= log(2)/2``, relative error below 2e-16; the power of two written into the exponent
    bits of ``kbuf``), each pass over a row in its own small kernel on contiguous 1-D views, with
    no branch and no call, so that LLVM vectorises it: NumPy's float64 ``exp`` has a SIMD form
    only for AVX-512 and costs 10 ns an element on this AVX2 machine; the in-line exp about 1 ns
    and the whole softmax 3.3 ns an element (K = 16, one thread). Entries more than 708 below
    their column's maximum give exactly 0. ``sbuf``, ``pbuf`` and ``kbuf`` are float64
    scratch of length B. Arithmetic is float64 whatever ``Lt``'s dtype.
    """
    k, b = Lt.shape
    kbits = kbuf.view(np.int64)
    mx = log_norm
    mx[:] = Lt[0]
    for j in range(1, k):
        _row_max_jit(Lt[j], mx)
    sbuf[:] = 0.0
    ent_rows[:] = 0.0
    for j in range(k):
        _row_exp_parts_jit(Lt[j], mx, pbuf, kbuf)
        pow2_from_bits(kbits)
        _row_exp_accumulate_jit(Lt[j], mx, pbuf, kbuf, sbuf, ent_rows)
    weighted = w.shape[0] > 0
    for r in range(b):
        s = sbuf[r]
        ls = math.log(s)
        ent_rows[r] = ls - ent_rows[r] / s
        log_norm[r] = mx[r] + ls
        sbuf[r] = (w[r] if weighted else 1.0) / s
    for j in range(k):
        _row_scale_jit(Lt[j], sbuf)


_quad_features_t_jit = jit(_quad_features_t)
_square_features_t_jit = jit(_square_features_t)
#: ``contract`` (fused multiply-add) only: reassociation could merge the two halves of the
#: split of log 2, and ``nnan``/``ninf`` do not hold for log-probabilities.
_row_max_jit = jit(_row_max)
_row_exp_parts_jit = jit(_row_exp_parts, fastmath={"contract"})
_row_exp_accumulate_jit = jit(_row_exp_accumulate, fastmath={"contract"})
_row_scale_jit = jit(_row_scale)
_softmax_t_jit = jit(_softmax_t, fastmath={"contract"})


def quad_features(X, center, out=None, work=None):
    """Quadratic features ``[y_i y_j (i <= j), y, 1]`` of ``y = X - center``, as ``F x B``.

    ``out`` (``F x B``) and ``work`` (``D x B``), both of ``X``'s dtype, may be given to
    reuse memory across blocks (see :func:`~emkit.kernels._parallel.scratch`).
    """
    n, d = X.shape
    if out is None:
        out = np.empty((n_features_quad(d, "full"), n), dtype=X.dtype)
    if work is None:
        work = np.empty((d, n), dtype=X.dtype)
    _quad_features_t_jit(X, center.astype(X.dtype, copy=False), out, work)
    return out


def quad_features_ref(X, center):
    """NumPy twin of :func:`quad_features`."""
    Y = X - center.astype(X.dtype, copy=False)
    i, j = np.triu_indices(X.shape[1])
    return np.hstack([Y[:, i] * Y[:, j], Y, np.ones((X.shape[0], 1), dtype=X.dtype)]).T


def square_features(X, center, out=None):
    """Diagonal features ``[y^2, y, 1]`` of ``y = X - center``, as ``F x B``."""
    n, d = X.shape
    if out is None:
        out = np.empty((2 * d + 1, n), dtype=X.dtype)
    _square_features_t_jit(X, center.astype(X.dtype, copy=False), out)
    return out


def square_features_ref(X, center):
    """NumPy twin of :func:`square_features`."""
    Y = X - center.astype(X.dtype, copy=False)
    return np.hstack([Y * Y, Y, np.ones((X.shape[0], 1), dtype=X.dtype)]).T


_EMPTY = np.empty(0)


def softmax_t(Lt, w=None, *, reuse=False):
    """Numba kernel :func:`_softmax_t`: responsibilities (times ``w``) in place of ``Lt``
    (``K x B``); returns ``(log_norm, ent_rows)``, float64 arrays of length B.

    With ``reuse`` the buffers (the returned arrays included) are this thread's scratch
    memory (:func:`~emkit.kernels._parallel.scratch`), valid until its next block.
    """
    b = Lt.shape[1]
    if reuse:
        from ._parallel import scratch

        buf = scratch("gaussian-softmax", (5, b), np.float64)
    else:
        buf = np.empty((5, b))
    w = _EMPTY if w is None else np.asarray(w, dtype=np.float64)
    _softmax_t_jit(Lt, w, buf[0], buf[1], buf[2], buf[3], buf[4])
    return buf[0], buf[1]


def normalize_log_prob_t_ref(Lt, w=None):
    """NumPy/SciPy twin of :func:`softmax_t`."""
    from scipy.special import logsumexp

    L = Lt.astype(np.float64)
    log_norm = logsumexp(L, axis=0)
    R = np.exp(L - log_norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent_rows = -np.sum(np.where(R > 0, R * np.log(R), 0.0), axis=0)
    Lt[:] = R if w is None else R * w
    return log_norm, ent_rows


def normalize_log_prob(L, sample_weight=None):
    """Turn log-probabilities into responsibilities, in place.

    ``L`` (``B x K``, finite) holds ``log w_k + log p(x_n | k)``. On return it holds the
    responsibilities ``r_nk``. Returns ``(R, log_norm, sum_log_norm, entropy)`` where
    ``log_norm[n] = logsumexp(L[n])``, ``sum_log_norm = sum_n w_n log_norm[n]`` and
    ``entropy = -sum_n w_n sum_k r_nk log r_nk``, both accumulated in float64.

    NumPy/SciPy equivalent::

        log_norm = scipy.special.logsumexp(L, axis=1)
        log_r = L - log_norm[:, None]
        R = np.exp(log_r)
        entropy = -(w[:, None] * R * log_r).sum()
    """
    mx = L.max(axis=1)
    L -= mx[:, None]
    E = np.exp(L)
    s = E.sum(axis=1)
    # sum_k r_k (L_k - mx) = (sum_k e_k L_k) / s ; entropy_n = log s - that
    rl = np.einsum("nk,nk->n", E, L) / s
    np.divide(E, s[:, None], out=L)
    log_s = np.log(s)
    log_norm = mx + log_s
    ent_rows = log_s - rl
    if sample_weight is None:
        return (
            L,
            log_norm,
            float(np.sum(log_norm, dtype=np.float64)),
            float(np.sum(ent_rows, dtype=np.float64)),
        )
    w = sample_weight.astype(np.float64, copy=False)
    return (
        L,
        log_norm,
        float(np.dot(w, log_norm.astype(np.float64))),
        float(np.dot(w, ent_rows.astype(np.float64))),
    )
