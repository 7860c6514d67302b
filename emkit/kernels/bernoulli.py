"""Bernoulli mixture kernels: one pass over a block of rows.

For binary ``x`` the log of ``w_k prod_d mu_kd^x_d (1 - mu_kd)^(1 - x_d)`` is linear in ``x``::

    log w_k + x . log(mu_k) + (1 - x) . log(1 - mu_k)
        = x . logit(mu_k) + [log w_k + sum_d log(1 - mu_kd)]
        = (X @ W + c)[n, k]      with W = logit(mu).T (D x K), c_k the bracket.

So the log-probabilities of a block are **one** product with ``X`` (the textbook form needs two,
``X @ log(mu).T + (1 - X) @ log(1 - mu).T``, and an N x D temporary ``1 - X``), and the
statistics ``N_k = sum_n w_n r_nk`` and ``S_k = sum_n w_n r_nk x_n`` are a second product
``R^T X``.

* Dense blocks: both products are BLAS GEMMs, exp and log-sum-exp vectorised in NumPy
  (:func:`dense_block_stats`, :func:`emkit.kernels.gaussian.normalize_log_prob`).
* CSR blocks: Numba kernels walk the non-zeros of a row range, never densifying ``X``:
  :func:`csr_log_prob` (``X @ W + c``), the row maxima subtracted, the exponentials (float64:
  :func:`~emkit.kernels._rows.row_max_exp`, the in-line vector exp of
  :mod:`emkit.kernels._exp`; float32: NumPy's), then :func:`csr_resp_stats` (normalisation
  and ``X^T R`` fused); :func:`csr_weighted_sum` (``X^T R``) serves the initialisation.
  Measured on this machine (N=100k, D=784, 1% density, K=20) ``csr_log_prob`` runs 2x faster
  than ``scipy.sparse``'s ``X @ W + c`` because it fuses the bias and writes the output once.
  The exponentials were NumPy's until 2026-12-02: its float64 ``exp`` is vectorised only for
  AVX-512, and on the machine's AVX2 CPU, where most arguments of a converging fit underflow,
  it took 15-30 ms of a 30-50 ms E-step (the in-line exp: 3-5 ms; below ``-708`` it gives 0).

Exact zeros (``alpha = 0``): a mean of exactly 0 or 1 has ``log(mu)`` or ``log(1 - mu)``
``= -inf``. Such entries never enter ``W`` or ``c``: the block passes take their finite parts
(0 there) plus an integer **count** per row and component of the "impossible" features
(a 1 where ``mu_kd = 0``, a 0 where ``mu_kd = 1``),
``M = X @ (Z0 - Z1).T + Z1.sum(axis=1)`` with ``Z0``, ``Z1`` the 0/1 indicators of those
entries, computed by the same GEMM (extra columns of ``W``) and exact in any dtype (integer
sums). The fit adds ``floor * M`` (:func:`log_floor`), keeping every log-probability finite;
prediction puts ``-inf`` where ``M > 0`` (:func:`add_floor_counts`). Putting the floor
(-708) into ``W`` and ``c`` instead, as before, made float32 passes cancel terms of size 708
(``log mu - log(1 - mu)`` against ``sum log(1 - mu)``) and lose ``708 eps`` per such feature.
Means near 1 but below it still cancel so, with terms of at most 37 (``-log(1 - mu)`` for
the largest float64 below 1); that error only perturbs the responsibilities, which moves
the bound by its square (the bound itself is computed from the statistics in float64).

Precision of the statistics: ``N_k - S_kd`` (the weighted count of zeros) enters the bound
times ``log(1 - mu_kd)``, up to 708 in size. Float32 sums of ``S_kd`` carry ``eps * N_k`` of
round-off, which is all of ``N_k - S_kd`` when ``mu_kd`` is near 1. So the CSR kernels
accumulate the statistics in float64, and a dense float32 block also sums the zeros
``R^T (1 - X)`` directly for the columns where some mean exceeds 7/8, keeping whichever of the
two sums is smaller (:func:`dense_block_stats`): every statistic then has float32's relative
precision, not ``eps * N_k`` (below 7/8, ``N_k - S_kd >= N_k / 8``, so the plain sum loses at
most 8 ulps of it). The threshold keeps the cost off typical data: summing the zeros of every
column measured 2x the time of a float32 iteration (30000 x 784, K=20).

Every kernel states its NumPy equivalent; the ``*_ref`` twins are what the tests compare the
kernels with, in float32 and float64. :func:`block_stats_ref` is the textbook E-step written
plainly (two log terms, SciPy's ``logsumexp``), the reference for the whole block pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .._jit import jit
from ._rows import row_max_exp, row_max_subtract
from .gaussian import normalize_log_prob

__all__ = [
    "log_floor",
    "csr_log_prob",
    "csr_log_prob_ref",
    "csr_weighted_sum",
    "csr_weighted_sum_ref",
    "csr_resp_stats",
    "csr_resp_stats_ref",
    "FloorCounts",
    "add_floor_counts",
    "dense_block_stats",
    "csr_block_stats",
    "block_stats_ref",
    "is_binary",
]


def log_floor(dtype=None) -> float:
    """Smallest log-probability used for ``log(mu)`` and ``log(1 - mu)``: -708.4.

    ``log`` of the smallest normal float64, for every dtype of the passes over the data.
    With ``alpha = 0`` a mean can be exactly 0 or 1; flooring its logs keeps every
    log-probability finite (no ``0 * -inf = NaN`` in the product) while changing the
    likelihood only where it is below ``tiny``. The floor is part of the model, so it does not
    depend on ``dtype``: a float32 pass uses the same -708.4 (well within float32's range)
    as the float64 bound and as ``score_samples`` on data of any dtype. (float32's own
    ``log(tiny)``, -87.3, used to be the floor of float32 fits, which made a fitted model's
    ``score_samples`` depend on the dtype of the data scored, -87 or -708 nats per
    "impossible" feature, and a float32 fit with ``alpha=0`` a different model from a
    float64 one.) ``dtype`` is accepted and ignored.
    """
    return _LOG_FLOOR


_LOG_FLOOR = float(np.log(np.finfo(np.float64).tiny))


# --------------------------------------------------------------------------- Numba kernels
def _csr_log_prob(data, indices, indptr, start, stop, W, c, out):
    """Log-probabilities of CSR rows ``start:stop``.

    NumPy equivalent (``csr_log_prob_ref``)::

        out[:] = X[start:stop] @ W + c          # X CSR (N x D), W (D x K), c (K,)
    """
    n_comp = W.shape[1]
    for i in range(start, stop):
        r = i - start
        for k in range(n_comp):
            out[r, k] = c[k]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p]
            for k in range(n_comp):
                out[r, k] += v * W[j, k]


def _csr_weighted_sum(data, indices, indptr, start, stop, R, out):
    """Accumulate ``X[start:stop]^T R`` into ``out`` (D x K).

    NumPy equivalent (``csr_weighted_sum_ref``)::

        out += X[start:stop].T @ R               # R (stop - start, K)
    """
    n_comp = R.shape[1]
    for i in range(start, stop):
        r = i - start
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p]
            for k in range(n_comp):
                out[j, k] += v * R[r, k]


def _csr_resp_stats(data, indices, indptr, start, stop, L, E, row_max, w, weighted, sxT, nk):
    """Responsibilities and statistics of CSR rows ``start:stop`` from ``E = exp(L)``.

    ``L`` holds the row-max-shifted log-probabilities, ``row_max`` the maxima and
    ``E = exp(L)`` (see :func:`csr_block_stats` for how it is computed).
    ``E`` is overwritten with the weighted responsibilities; ``sxT`` (D x K, float64) and
    ``nk`` (K,) are accumulated into, in float64 whatever the data's dtype (see the module
    notes on precision). Returns ``(sum_n w_n log p(x_n), -sum_n w_n sum_k r_nk log r_nk)``.

    NumPy equivalent (``csr_resp_stats_ref``)::

        s = E.sum(axis=1)
        R = E / s[:, None]
        log_px = row_max + np.log(s)
        entropy_n = np.log(s) - (E * L).sum(axis=1) / s
        E[:] = R * w[:, None]
        nk += E.sum(axis=0)
        sxT += X[start:stop].T @ E
        return w @ log_px, w @ entropy_n
    """
    n_comp = L.shape[1]
    ll = 0.0
    ent = 0.0
    for i in range(start, stop):
        r = i - start
        s = 0.0
        el = 0.0
        for k in range(n_comp):
            s += E[r, k]
            el += E[r, k] * L[r, k]
        wi = w[r] if weighted else 1.0
        log_s = np.log(s)
        ll += wi * (row_max[r] + log_s)
        ent += wi * (log_s - el / s)
        f = wi / s
        for k in range(n_comp):
            E[r, k] *= f
            nk[k] += E[r, k]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p]
            for k in range(n_comp):
                sxT[j, k] += v * E[r, k]
    return ll, ent


def _is_binary(values):
    """Whether every entry of the 1-D array ``values`` is 0 or 1.

    NumPy equivalent: ``not np.any((values != 0) & (values != 1))``.
    """
    for i in range(values.shape[0]):
        v = values[i]
        if v != 0.0 and v != 1.0:
            return False
    return True


_csr_log_prob_jit = jit(_csr_log_prob)
_csr_weighted_sum_jit = jit(_csr_weighted_sum)
_is_binary_jit = jit(_is_binary)
_csr_resp_stats_jit = jit(_csr_resp_stats)


def csr_log_prob(X, W, c, start=0, stop=None, out=None):
    """``X[start:stop] @ W + c`` for a CSR matrix ``X`` (Numba; never densifies ``X``).

    ``W`` (D x K) and ``c`` (K,) are cast to ``X``'s dtype; the result has that dtype.
    """
    stop = X.shape[0] if stop is None else stop
    dtype = X.dtype
    if out is None:
        out = np.empty((stop - start, W.shape[1]), dtype=dtype)
    _csr_log_prob_jit(
        X.data, X.indices, X.indptr, start, stop,
        np.ascontiguousarray(W, dtype=dtype), np.ascontiguousarray(c, dtype=dtype), out,
    )
    return out


def csr_log_prob_ref(X, W, c, start=0, stop=None):
    """NumPy/SciPy twin of :func:`csr_log_prob`."""
    stop = X.shape[0] if stop is None else stop
    dtype = X.dtype
    return np.asarray(X[start:stop] @ W.astype(dtype)) + c.astype(dtype)


def csr_weighted_sum(X, R, start=0, stop=None, out=None):
    """``X[start:stop]^T R`` (D x K) for a CSR matrix ``X`` (Numba; never densifies ``X``)."""
    stop = X.shape[0] if stop is None else stop
    if out is None:
        out = np.zeros((X.shape[1], R.shape[1]), dtype=X.dtype)
    _csr_weighted_sum_jit(
        X.data, X.indices, X.indptr, start, stop, np.ascontiguousarray(R, dtype=X.dtype), out
    )
    return out


def csr_weighted_sum_ref(X, R, start=0, stop=None):
    """NumPy/SciPy twin of :func:`csr_weighted_sum`."""
    stop = X.shape[0] if stop is None else stop
    return np.asarray(X[start:stop].T @ R.astype(X.dtype))


def csr_resp_stats(X, start, stop, L, E, row_max, sample_weight=None, sxT=None, nk=None):
    """Weighted responsibilities and statistics of CSR rows from ``E = exp(L)`` (Numba;
    ``L`` the row-max-shifted log-probabilities, ``row_max`` the maxima).

    Overwrites ``E`` with the weighted responsibilities; accumulates into ``sxT`` (D x K) and
    ``nk`` (K), both float64, allocated when not given. Returns
    ``(nk, sxT, log_evidence, entropy)``.
    """
    k = L.shape[1]
    if sxT is None:
        sxT = np.zeros((X.shape[1], k), dtype=np.float64)
    if nk is None:
        nk = np.zeros(k, dtype=np.float64)
    weighted = sample_weight is not None
    w = np.asarray(sample_weight, dtype=X.dtype) if weighted else np.empty(0, dtype=X.dtype)
    ll, ent = _csr_resp_stats_jit(
        X.data, X.indices, X.indptr, start, stop, L, E, np.asarray(row_max, np.float64), w,
        weighted, sxT, nk,
    )
    return nk, sxT, float(ll), float(ent)


def csr_resp_stats_ref(X, start, stop, L, E, row_max, sample_weight=None):
    """NumPy/SciPy twin of :func:`csr_resp_stats` (returns the same, ``E`` untouched)."""
    n = stop - start
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    s = E.sum(axis=1)
    R = E / s[:, None] * w[:, None]
    log_px = row_max + np.log(s)
    ent_n = np.log(s) - (E * L).sum(axis=1) / s
    sxT = np.asarray(X[start:stop].T @ R)
    return R.sum(axis=0), sxT, float(w @ log_px), float(w @ ent_n)


def is_binary(values) -> bool:
    """Whether every entry of ``values`` (any shape) is 0 or 1 (Numba, no temporaries)."""
    values = np.asarray(values)
    if values.size == 0:
        return True
    return bool(_is_binary_jit(values.ravel(order="K")))


# --------------------------------------------------------------------------- block passes
@dataclass(frozen=True)
class FloorCounts:
    """The exact-zero entries of the means, as extra columns of the block product.

    ``cols`` (m,) are the components with an entry of exactly 0 or 1; the last m columns of
    ``W`` hold ``(Z0 - Z1).T`` for them and ``base`` (m,) holds ``Z1.sum(axis=1)``, so
    ``P[:, K:] + base`` counts the impossible features of every row (see the module notes).
    """

    cols: np.ndarray
    base: np.ndarray


def add_floor_counts(P, k, counts, c, impossible):
    """Log-probabilities ``L`` (N x K) from the block product ``P = X @ W`` (N x (K + m)).

    NumPy equivalent (``M`` the counts of impossible features)::

        L = P[:, :k] + c
        M = P[:, k:] + counts.base
        L[:, counts.cols] += impossible * M          # the fit: impossible = log_floor()
        L[:, counts.cols][M > 0] = -inf              # prediction: impossible = -inf

    ``counts`` may be None (no exact zeros: ``L = P + c``).
    """
    L = P[:, :k] + c
    if counts is None or counts.cols.size == 0:
        return L
    M = P[:, k:]
    M += counts.base
    if np.isneginf(impossible):
        sub = L[:, counts.cols]
        sub[M > 0.5] = -np.inf
        L[:, counts.cols] = sub
    else:
        L[:, counts.cols] += M * L.dtype.type(impossible)
    return L


def _finish_block(L, sample_weight):
    """Responsibilities (weighted), ``N_k``, ``sum log-norm``, entropy from log-probs ``L``."""
    R, _, ll, ent = normalize_log_prob(L, sample_weight)
    if sample_weight is not None:
        R *= sample_weight[:, None]
    return R, R.sum(axis=0, dtype=np.float64), ll, ent


def dense_block_stats(Xb, W, c, sample_weight=None, counts=None, complement=None):
    """Statistics of a dense block: two GEMMs and a vectorised log-sum-exp.

    Returns ``(nk, sx, log_evidence, entropy)`` with ``nk`` (K,) and ``sx`` (K x D) in float64.
    ``W`` has ``K + m`` columns when ``counts`` (:class:`FloorCounts`) is given.
    ``complement`` (column indices, optional): for these columns the zeros
    ``R^T (1 - X)`` are summed too, and ``sx = nk - zeros`` is kept wherever the zeros are the
    smaller sum (accurate ``nk - sx`` for means near 1 in float32; see the module notes).

    NumPy equivalent: :func:`block_stats_ref` with ``W = logit(mu).T`` and
    ``c = log w + sum_d log(1 - mu)`` (the floored logs).
    """
    k = c.shape[0]
    P = Xb @ W
    L = add_floor_counts(P, k, counts, c, _LOG_FLOOR)
    R, nk, ll, ent = _finish_block(L, sample_weight)
    sx = (R.T @ Xb).astype(np.float64)
    if complement is not None and complement.size:
        if 2 * complement.size > Xb.shape[1]:  # most columns: no gather of Xb
            complement = slice(None)
        zeros = (R.T @ (1 - Xb[:, complement])).astype(np.float64)
        part = sx[:, complement]
        use = zeros < part
        part[use] = (nk[:, None] - zeros)[use]
        sx[:, complement] = part
    return nk, sx, ll, ent


def csr_block_stats(X, start, stop, W, c, sample_weight=None, sx_out=None, counts=None):
    """Statistics of CSR rows ``start:stop``: two passes over the non-zeros, one exp pass.

    :func:`csr_log_prob` (``L = X @ W + c``; with ``counts``, the exact zeros among the
    means, :func:`add_floor_counts` adds ``floor * M``), the row maxima subtracted, ``E =
    exp(L)`` (float64: :func:`~emkit.kernels._rows.row_max_exp` on a copy, the in-line
    vector exp shared with the HMM kernels; float32: NumPy's exp, vectorised on AVX2), then
    :func:`csr_resp_stats` (normalisation, evidence, entropy and ``X^T R`` fused): never
    densifying ``X``. The CSR E-step is bound by
    this N x K work, not by the products: the fused normalisation measured 2-3x faster than
    ``normalize_log_prob`` at K=20, and the in-line exp 4-10x faster than NumPy's on AVX2
    (NumPy's float64 ``exp`` is vectorised only for AVX-512, and is slower still on arguments
    that underflow, which most of a converging fit's are).
    ``sample_weight`` holds the weights of those rows. ``sx`` is accumulated, transposed
    (D x K, float64), into ``sx_out`` when given. Returns ``(nk, sxT, log_evidence, entropy)``.
    """
    k = c.shape[0]
    if counts is None or counts.cols.size == 0:
        L = csr_log_prob(X, W[:, :k], c, start, stop)
    else:
        P = csr_log_prob(X, W, np.zeros(W.shape[1], dtype=c.dtype), start, stop)
        L = add_floor_counts(P, k, counts, c, _LOG_FLOOR)
    row_max = row_max_subtract(L)  # in place: L is this call's own array
    if L.dtype == np.float32:  # NumPy's float32 exp is vectorised on AVX2
        E = np.exp(L)
    else:  # its float64 exp is not (and slow where it underflows): the in-line one
        E = L.copy()
        row_max_exp(E)  # the rows' maxima are already 0: E = exp(L)
    return csr_resp_stats(X, start, stop, L, E, row_max, sample_weight, sxT=sx_out)


def block_stats_ref(X, log_weights, log_mu, log1m_mu, sample_weight=None):
    """Textbook E-step of a block, written plainly (the twin of the block passes).

    ``X`` dense or sparse (densified here: this is the reference), ``log_mu`` and
    ``log1m_mu`` (K x D) the (floored) logs of the means and of one minus them.
    Returns ``(nk, sx, log_evidence, entropy)`` in float64.
    """
    if hasattr(X, "toarray"):
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    L = log_weights[None, :] + X @ log_mu.T + (1.0 - X) @ log1m_mu.T
    log_norm = logsumexp(L, axis=1)
    log_r = L - log_norm[:, None]
    R = np.exp(log_r)
    entropy = -np.sum(w[:, None] * R * log_r)
    Rw = R * w[:, None]
    return Rw.sum(axis=0), Rw.T @ X, float(np.dot(w, log_norm)), float(entropy)
