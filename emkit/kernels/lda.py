"""Latent Dirichlet allocation kernels: the per-document variational loop and the topic statistics.

The E-step of LDA is two passes, each a Numba kernel over a range of rows with a NumPy twin:

* :func:`doc_e_step` (pass 1, over documents). For each document ``d`` with nonzero words
  ``w_j`` and counts ``n_j`` it gathers the rows ``B[w_j]`` of ``B = exp(E[log beta])^T``
  (``V x K``, word-major so a row is contiguous) into a K x n buffer (so the sums run over
  the document's words, vectorised), then alternates, starting from
  the document's current ``gamma_d`` (a warm start)::

      eth_k   = exp(psi(gamma_dk) - psi(sum_k gamma_dk))          # exp(E[log theta_dk])
      Z_j     = sum_k eth_k B[w_j, k]                              # phi_jk = eth_k B[w_j, k] / Z_j
      gamma_d = alpha + eth * sum_j (n_j / Z_j) B[w_j]             # sum_j n_j phi_j

  until the mean absolute change of ``gamma_d`` is below ``tol`` or ``max_iter`` updates were
  made, then recomputes ``Z_j`` from the final ``gamma_d``, so the phi behind the statistics is
  the optimum for the final gamma. That is scikit-learn's ``_update_doc_distribution`` (minus its
  ``+ eps`` in ``Z``: ``Z`` is floored at the smallest normal number instead, so phi stays
  normalised and the bound stays exact). It writes, per document, ``gamma_d``, ``eth`` (for pass
  2), ``E[log theta_d]`` (float64, the statistic of the Dirichlet prior), and the document's
  share of the bound that does not involve the topics' Dirichlets,
  ``sum_j n_j log Z_j + log Gamma-terms of q(theta_d)``, and per nonzero ``c_j = w_d n_j / Z_j``.

* :func:`word_stats` (pass 2, over words). With the nonzeros in column order (a CSC view of the
  same matrix) it forms ``S[w, k] = B[w, k] sum_{d: n_dw > 0} c_dw eth_dk``, the expected
  topic-word counts ``sum_d w_d n_dw phi_dwk``.

Neither pass reduces across rows: every output element is written by exactly one row in a fixed
order, so the blocks can run on any number of threads and the result is bitwise the same. The
only sums over documents are done afterwards by the caller in NumPy, in document order.

Digamma: :func:`digamma` (recurrence to x >= 6, then the asymptotic series; absolute error
below 1e-12 against ``scipy.special.psi`` for x > 0).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.special import gammaln, psi

from .._jit import jit

__all__ = [
    "digamma",
    "digamma_ref",
    "exp_digamma",
    "doc_e_step",
    "doc_e_step_ref",
    "word_stats",
    "word_stats_ref",
]


def _digamma(x):
    """Digamma of a positive float (NumPy equivalent: ``scipy.special.psi(x)``)."""
    r = 0.0
    while x < 6.0:
        r -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    t = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (
        1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 + f * (-1.0 / 12)))))))
    return r + math.log(x) - 0.5 / x + t


_digamma_jit = jit(_digamma)


def _exp_digamma(x):
    """``exp(digamma(x))`` for positive ``x`` with one ``exp`` and one division, no ``log``.

    NumPy equivalent: ``np.exp(scipy.special.psi(x))``. With ``y = x + 6``,
    ``psi(x) = log(y) - 1/(2y) - series(1/y^2) - sum_{i<6} 1/(x+i)`` and the sum of
    reciprocals is ``P'(x) / P(x)`` for ``P = prod_{i<6} (x + i)``. For ``x >= 6`` the series
    applies at ``x`` itself (no shift: ``P`` would overflow for ``x`` above ~1e51).
    """
    if x >= 6.0:
        f = 1.0 / (x * x)
        t = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (
            1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 + f * (-1.0 / 12)))))))
        return x * math.exp(t - 0.5 / x)
    p = 1.0
    dp = 0.0
    for i in range(6):
        xi = x + i
        dp = dp * xi + p
        p = p * xi
    y = x + 6.0
    f = 1.0 / (y * y)
    t = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (
        1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 + f * (-1.0 / 12)))))))
    return y * math.exp(t - 0.5 / y - dp / p)


_exp_digamma_jit = jit(_exp_digamma)


def _digamma_array(x, out):
    for i in range(x.shape[0]):
        out[i] = _digamma_jit(x[i])


_digamma_array_jit = jit(_digamma_array)


def _exp_digamma_array(x, out):
    for i in range(x.shape[0]):
        out[i] = _exp_digamma_jit(x[i])


_exp_digamma_array_jit = jit(_exp_digamma_array)


def digamma(x) -> np.ndarray:
    """Digamma of a 1-D array of positive numbers with the kernels' Numba routine (float64)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _digamma_array_jit(x, out)
    return out


def exp_digamma(x) -> np.ndarray:
    """``exp(digamma(x))`` of a 1-D array with the kernels' Numba routine (float64)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _exp_digamma_array_jit(x, out)
    return out


def digamma_ref(x) -> np.ndarray:
    """NumPy twin of :func:`digamma`: ``scipy.special.psi``."""
    return psi(np.asarray(x, dtype=np.float64))


def _doc_e_step(indptr, indices, data, weights, expElogbetaT, alpha, gamma, docs, lo, hi,
                max_iter, tol, zero, tiny, compute_stats, cvals, eth_out, elogtheta_out,
                doc_bound):
    """Variational updates of documents ``docs[lo:hi]``, started from their rows of ``gamma``.

    Every output (``gamma`` in place, and ``cvals``, ``eth_out``, ``elogtheta_out``,
    ``doc_bound``) is written at the documents' own rows / CSR positions.
    NumPy equivalent: :func:`doc_e_step_ref` (one document at a time, with ``scipy.special``).
    With ``compute_stats`` false only ``gamma`` is updated (``transform``). ``zero`` and
    ``tiny`` are scalars of the kernel's dtype (they type the inner sums: float32 data is
    summed in float32, as scikit-learn does).
    """
    n_topics = alpha.shape[0]
    max_len = 0
    for i in range(lo, hi):
        d = docs[i]
        max_len = max(max_len, indptr[d + 1] - indptr[d])
    buf = np.empty((n_topics, max_len), dtype=gamma.dtype)  # B rows of the document, K x n
    zc = np.empty(max_len, dtype=gamma.dtype)
    eth = np.empty(n_topics, dtype=gamma.dtype)
    for i in range(lo, hi):
        d = docs[i]
        start = indptr[d]
        n = indptr[d + 1] - start
        for j in range(n):
            w = indices[start + j]
            for k in range(n_topics):
                buf[k, j] = expElogbetaT[w, k]
        # exp(E[log theta]) from the starting gamma, up to the factor exp(-psi(sum gamma)),
        # which cancels in phi and in the gamma update (it is applied to the bound below)
        for k in range(n_topics):
            eth[k] = _exp_digamma_jit(gamma[d, k])
        for _ in range(max_iter):
            # Z_j = sum_k eth_k B[w_j, k], then c_j = n_j / Z_j: vectorised over the words
            for j in range(n):
                zc[j] = zero
            for k in range(n_topics):
                e = eth[k]
                for j in range(n):
                    zc[j] += e * buf[k, j]
            for j in range(n):
                z = zc[j]
                if z < tiny:
                    z = tiny
                zc[j] = data[start + j] / z
            change = 0.0
            for k in range(n_topics):
                a = zero
                for j in range(n):
                    a += zc[j] * buf[k, j]
                old = gamma[d, k]
                gamma[d, k] = alpha[k] + eth[k] * a
                change += abs(gamma[d, k] - old)
            for k in range(n_topics):
                eth[k] = _exp_digamma_jit(gamma[d, k])
            if change / n_topics < tol:
                break
        if not compute_stats:
            continue
        # phi from the final gamma: Z_j, the statistics' weights and the bound's words term
        s = 0.0
        for k in range(n_topics):
            s += gamma[d, k]
        psi_s = _digamma_jit(s)
        scale = math.exp(-psi_s)
        for k in range(n_topics):
            eth[k] = eth[k] * scale
        wd = weights[d]
        words = 0.0
        for j in range(n):
            zc[j] = zero
        for k in range(n_topics):
            e = eth[k]
            for j in range(n):
                zc[j] += e * buf[k, j]
        for j in range(n):
            z = zc[j]
            if z < tiny:
                z = tiny
            cnt = data[start + j]
            cvals[start + j] = wd * cnt / z
            words += cnt * math.log(z)
        # E[log p(theta | alpha)] is left to the caller (it depends on alpha); here the
        # entropy side, -E[log q(theta | gamma)], and E[log theta] for the alpha statistic.
        ent = -math.lgamma(s)
        for k in range(n_topics):
            g = float(gamma[d, k])
            e = _digamma_jit(g) - psi_s
            elogtheta_out[d, k] = e
            eth_out[d, k] = eth[k]
            ent += math.lgamma(g) - (g - 1.0) * e
        doc_bound[d] = words + ent


#: Reassociation and contraction only (the inner sums over topics vectorise); no assumption that
#: values are finite, although every value in this kernel is (counts, positive gamma, floored Z).
_FASTMATH = {"reassoc", "contract", "nsz"}

_doc_e_step_jit = jit(_doc_e_step, fastmath=_FASTMATH)


def _word_stats(col_indptr, col_docs, col_pos, cvals, eth, expElogbetaT, lo, hi, out):
    """Expected topic-word counts of words ``lo:hi``, written to ``out[lo:hi]`` (V x K, float64).

    NumPy equivalent (:func:`word_stats_ref`), with ``C`` the CSR matrix of ``cvals``::

        out[:] = (C.T @ eth) * expElogbetaT
    """
    n_topics = eth.shape[1]
    acc = np.empty(n_topics, dtype=np.float64)
    for w in range(lo, hi):
        for k in range(n_topics):
            acc[k] = 0.0
        for p in range(col_indptr[w], col_indptr[w + 1]):
            c = cvals[col_pos[p]]
            d = col_docs[p]
            for k in range(n_topics):
                acc[k] += c * eth[d, k]
        for k in range(n_topics):
            out[w, k] = acc[k] * expElogbetaT[w, k]


_word_stats_jit = jit(_word_stats, fastmath=_FASTMATH)


def doc_e_step(indptr, indices, data, weights, expElogbetaT, alpha, gamma, docs, lo, hi, *,
               max_iter, tol, compute_stats, cvals, eth_out, elogtheta_out, doc_bound) -> None:
    """Run the per-document loop of :func:`_doc_e_step` (Numba) on documents ``docs[lo:hi]``.

    ``gamma`` (N x K, the kernel's dtype: float32 or float64) is updated in place; with
    ``compute_stats`` the outputs ``cvals`` (nnz, float64), ``eth_out`` (N x K, dtype),
    ``elogtheta_out`` (N x K, float64) and ``doc_bound`` (N, float64) are written for those
    documents. ``docs`` is an int64 array of document indices.
    """
    dtype = gamma.dtype
    _doc_e_step_jit(
        indptr, indices, data, weights, expElogbetaT, alpha.astype(np.float64), gamma, docs,
        int(lo), int(hi), int(max_iter), float(tol), dtype.type(0), np.finfo(dtype).tiny,
        bool(compute_stats), cvals, eth_out, elogtheta_out, doc_bound,
    )


def doc_e_step_ref(indptr, indices, data, weights, expElogbetaT, alpha, gamma, docs, lo, hi,
                   *, max_iter, tol, compute_stats, cvals, eth_out, elogtheta_out,
                   doc_bound) -> None:
    """NumPy twin of :func:`doc_e_step` (same arguments, same in-place outputs)."""
    dtype = gamma.dtype
    tiny = np.finfo(dtype).tiny
    alpha = np.asarray(alpha, dtype=np.float64)

    def exp_elog(g):
        return np.exp(psi(g.astype(np.float64)) - psi(np.sum(g, dtype=np.float64))).astype(dtype)

    for d in docs[lo:hi]:
        sl = slice(indptr[d], indptr[d + 1])
        ids, cnts = indices[sl], data[sl]
        Bd = expElogbetaT[ids]                               # n x K
        g = gamma[d].copy()
        eth = exp_elog(g)
        for _ in range(max_iter):
            z = np.maximum(Bd @ eth, tiny)
            new = (alpha + eth * ((cnts / z) @ Bd)).astype(dtype)
            change = np.mean(np.abs(new - g))
            g = new
            eth = exp_elog(g)
            if change < tol:
                break
        gamma[d] = g
        if not compute_stats:
            continue
        z = np.maximum(Bd @ eth, tiny)
        cvals[sl] = weights[d] * cnts.astype(np.float64) / z
        g64 = g.astype(np.float64)
        e = psi(g64) - psi(g64.sum())
        elogtheta_out[d] = e
        eth_out[d] = eth
        doc_bound[d] = (
            np.dot(cnts.astype(np.float64), np.log(z.astype(np.float64)))
            - gammaln(g64.sum()) + np.sum(gammaln(g64) - (g64 - 1.0) * e)
        )


def word_stats(col_indptr, col_docs, col_pos, cvals, eth, expElogbetaT, lo, hi, out) -> None:
    """Run :func:`_word_stats` (Numba) on words ``lo:hi``."""
    _word_stats_jit(col_indptr, col_docs, col_pos, cvals, eth, expElogbetaT, int(lo), int(hi),
                    out)


def word_stats_ref(indptr, indices, cvals, eth, expElogbetaT, n_words) -> np.ndarray:
    """NumPy/SciPy twin of :func:`word_stats` over all words: ``(C.T @ eth) * expElogbetaT``.

    ``C`` is the CSR matrix with the structure ``(indptr, indices)`` and values ``cvals``.
    """
    C = sparse.csr_matrix((cvals, indices, indptr), shape=(len(indptr) - 1, n_words))
    return np.asarray(C.T @ eth.astype(np.float64)) * expElogbetaT
