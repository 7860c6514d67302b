"""Hidden Markov model kernels: forward-backward and Viterbi over a block of sequences.

The sequences of a block are concatenated row-wise; ``starts`` (S + 1 offsets, ``starts[0] = 0``,
``starts[-1] = N``) says where each begins. Emissions come in as ``B[t, k] = exp(L[t, k] - m_t)``,
the emission densities of step ``t`` divided by their per-step maximum ``m_t`` (so ``max_k B = 1``:
no underflow, no log-sum-exp in the inner loop; the caller computes them with
:func:`row_max_exp`, a vectorised in-line exponential). The recursion is the scaled (Rabiner)
form: ``c_t`` normalises the forward variable at every step, so
``log p(x_{1:T}) = sum_t log c_t + sum_t m_t``.

Every Numba kernel here states its NumPy equivalent and has a ``*_ref`` twin, written in log
space, that the tests compare it with in float32 and float64. From ``TILED_MIN_STATES`` states
on, :func:`forward_backward` runs the same recursion in the SIMD-tiled kernel of
:mod:`emkit.kernels._hmm_fb`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .._jit import jit
from ._hmm_fb import compile_with_slp, forward_backward_tiles, sum_log, tiles
from ._rows import (  # noqa: F401 (re-exported)
    row_max_exp,
    row_max_exp_ref,
    row_max_subtract,
    row_max_subtract_ref,
)

__all__ = [
    "forward_backward",
    "forward_backward_ref",
    "forward_backward_log",
    "viterbi",
    "viterbi_ref",
    "symbol_counts",
    "symbol_counts_ref",
]


def _forward_backward(B, starts, startprob, transmat, transmat_t, gamma, loglik, trans,
                      k_all):
    """Scaled forward-backward of every sequence of a block (``k_all = B.shape[1]``: a
    compile-time constant in the kernels specialised to a number of states).

    Writes the state posteriors ``gamma`` (N x K, ``B``'s dtype), per sequence the log of the
    scaled likelihood ``loglik[s] = sum_t log c_t`` (float64; add ``sum_t m_t`` for the
    log-likelihood) and the expected transition counts ``trans[s]`` (K x K, float64).
    ``transmat_t`` is ``transmat.T`` (C-contiguous), so every dot product reads contiguous
    memory. Compiled with ``fastmath`` (the dot products and sums vectorise): its inputs are
    finite and non-negative, and the scale factors positive, so no infinity or NaN arises
    (except where an observation has probability zero under the model, which is NaN anyway).

    NumPy equivalent (:func:`forward_backward_ref`, in log space)::

        for each sequence s with rows a:b
            log_alpha[a] = log pi + log B[a]
            log_alpha[t] = logsumexp(log_alpha[t-1][:, None] + log A, axis=0) + log B[t]
            log_beta[b-1] = 0
            log_beta[t] = logsumexp(log A + log B[t+1] + log_beta[t+1], axis=1)
            loglik[s] = logsumexp(log_alpha[b-1])
            gamma[t] = exp(log_alpha[t] + log_beta[t] - loglik[s])
            trans[s] = sum_t exp(log_alpha[t][:, None] + log A + (log B + log_beta)[t+1]
                                 - loglik[s])
    """
    n_seq = starts.shape[0] - 1
    for s in range(n_seq):
        a, b = starts[s], starts[s + 1]
        scale = np.empty(b - a, dtype=np.float64)
        # forward: gamma[t] holds a_t = (alpha_hat_{t-1} A) * B_t and scale[t] = c_t = sum a_t,
        # alpha_hat_t = a_t / c_t. The next step's dot products read a_t itself and apply
        # 1 / c_t after them, so the division is off the recursion's critical path.
        tot = 0.0
        for j in range(k_all):
            v = startprob[j] * B[a, j]
            gamma[a, j] = v
            tot += v
        scale[0] = tot
        inv = 1.0 / tot
        # a_t(j) = B_t(j) sum_i alpha_hat_{t-1}(i) A_ij: a dot product with the contiguous row
        # j of A^T, accumulated in a register (the recursion is latency-bound, so the K
        # independent sums must not go through memory)
        for t in range(a + 1, b):
            tot = 0.0
            for j in range(k_all):
                acc = 0.0
                for i in range(k_all):
                    acc += gamma[t - 1, i] * transmat_t[j, i]
                v = acc * B[t, j] * inv
                gamma[t, j] = v
                tot += v
            scale[t - a] = tot
            inv = 1.0 / tot
        loglik[s] = sum_log(scale)
        # backward: beta_t(i) = sum_j A_ij B_{t+1}(j) beta_{t+1}(j) / c_{t+1}
        beta = np.ones(k_all, dtype=B.dtype)
        tmp = np.empty(k_all, dtype=B.dtype)
        acc_tr = trans[s]
        for i in range(k_all):
            for j in range(k_all):
                acc_tr[i, j] = 0.0
        inv = 1.0 / scale[b - 1 - a]
        for j in range(k_all):
            gamma[b - 1, j] *= inv
        for t in range(b - 2, a - 1, -1):
            inv_next = inv
            inv = 1.0 / scale[t - a]
            for j in range(k_all):
                tmp[j] = B[t + 1, j] * beta[j] * inv_next
            # xi_t(i, j) = alpha_hat_t(i) A_ij tmp_j: accumulate the outer products
            # alpha_hat_t tmp^T, multiplied by A once per sequence below; beta_t = A @ tmp,
            # one dot product per state; gamma_t = alpha_hat_t * beta_t
            for i in range(k_all):
                al = gamma[t, i] * inv
                for j in range(k_all):
                    acc_tr[i, j] += al * tmp[j]
                acc = 0.0
                for j in range(k_all):
                    acc += transmat[i, j] * tmp[j]
                beta[i] = acc
                gamma[t, i] = al * acc
        for i in range(k_all):
            for j in range(k_all):
                acc_tr[i, j] *= transmat[i, j]


def _viterbi(logB, starts, log_startprob, log_transmat, path, logprob):
    """Most probable state path of every sequence of a block (log space, ``-inf`` allowed).

    NumPy equivalent (:func:`viterbi_ref`)::

        delta[a] = log pi + logB[a]
        delta[t] = max_i(delta[t-1][:, None] + log A, axis=0) + logB[t]   (argmax kept)
        path[b-1] = argmax(delta[b-1]); path[t] = argmax_at(t+1)[path[t+1]]
        logprob[s] = max(delta[b-1])
    Ties go to the lowest state index.
    """
    n_seq = starts.shape[0] - 1
    k_all = logB.shape[1]
    for s in range(n_seq):
        a, b = starts[s], starts[s + 1]
        back = np.empty((b - a, k_all), dtype=np.int64)
        delta = np.empty(k_all, dtype=np.float64)
        new = np.empty(k_all, dtype=np.float64)
        for j in range(k_all):
            delta[j] = log_startprob[j] + logB[a, j]
        for t in range(a + 1, b):
            for j in range(k_all):
                best = -np.inf
                arg = 0
                for i in range(k_all):
                    v = delta[i] + log_transmat[i, j]
                    if v > best:
                        best = v
                        arg = i
                new[j] = best + logB[t, j]
                back[t - a, j] = arg
            for j in range(k_all):
                delta[j] = new[j]
        best = -np.inf
        arg = 0
        for j in range(k_all):
            if delta[j] > best:
                best = delta[j]
                arg = j
        logprob[s] = best
        path[b - 1] = arg
        for t in range(b - 1, a, -1):
            arg = back[t - a, arg]
            path[t - 1] = arg


def _symbol_counts(x, R, out):
    """``out[v] += sum_{t: x_t = v} R[t]`` (V x K, float64).

    NumPy equivalent: ``np.add.at(out, x, R)``.
    """
    n, k_all = R.shape
    for t in range(n):
        v = x[t]
        for k in range(k_all):
            out[v, k] += R[t, k]


# serial kernels: the model runs blocks of sequences on emkit's thread pool (the kernels
# release the GIL), one level of parallelism as everywhere in emkit
_fb_body = jit(_forward_backward, fastmath=True, inline="always")
_fb_by_states: dict = {}


def _fb_kernel(k_all: int):
    """The generic kernel for ``k_all`` states (below ``TILED_MIN_STATES``), the number of
    states a compile-time constant: LLVM unrolls the loops over them (one thread, 50 x 100
    steps: 36 -> 23 ns per step at 2 states, 56 -> 29 at 3, 86 -> 54-63 at 5, against the
    loops of runtime length). Numba caches one per constant (its cache key hashes a
    closure's cell contents)."""
    kernel = _fb_by_states.get(k_all)
    if kernel is None:
        def fb_fixed(B, starts, startprob, transmat, transmat_t, gamma, loglik, trans):
            _fb_body(B, starts, startprob, transmat, transmat_t, gamma, loglik, trans, k_all)

        kernel = _fb_by_states[k_all] = jit(fb_fixed, fastmath=True)
    return kernel

_viterbi_jit = jit(_viterbi)
_symbol_counts_jit = jit(_symbol_counts)
# from this many states on, the tiled kernel of ._hmm_fb (below it the generic one is faster:
# a tile of 16 columns would be mostly padding)
TILED_MIN_STATES = 6



def forward_backward(B, starts, startprob, transmat, out=None):
    """Numba kernel: scaled forward-backward over the sequences of a block.

    ``B`` (N x K, float32 or float64, C-contiguous, rows with maximum one), ``starts`` (S + 1
    offsets), ``startprob`` (K,), ``transmat`` (K x K); ``out``: an optional C-contiguous
    N x K array of ``B``'s dtype for the posteriors. Returns ``(gamma, loglik, trans)``: the
    state posteriors (N x K, ``B``'s dtype), the per-sequence ``sum_t log c_t`` (S,) and the
    per-sequence expected transition counts (S x K x K, float64). From
    ``TILED_MIN_STATES`` states on it runs the SIMD-tiled kernel of :mod:`._hmm_fb` (same
    recursion, 1.2-1.6x faster there), below them the generic :func:`_forward_backward`.
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    n_seq, k_all = starts.shape[0] - 1, B.shape[1]
    gamma = np.empty_like(B) if out is None else out
    loglik = np.empty(n_seq)
    trans = np.empty((n_seq, k_all, k_all))
    if k_all >= TILED_MIN_STATES:
        AP, ATP = tiles(transmat)
        args = (B, starts, np.asarray(startprob, dtype=np.float64), AP, ATP, gamma, loglik,
                trans)
        compile_with_slp(forward_backward_tiles, args)
        forward_backward_tiles(*args)
        trans *= transmat
        return gamma, loglik, trans
    A = np.ascontiguousarray(transmat, dtype=B.dtype)
    _fb_kernel(k_all)(
        B, starts, startprob.astype(B.dtype), A, np.ascontiguousarray(A.T), gamma, loglik, trans
    )
    return gamma, loglik, trans


def forward_backward_ref(B, starts, startprob, transmat):
    """NumPy twin of :func:`forward_backward`, in log space (same inputs and outputs)."""
    with np.errstate(divide="ignore"):
        logB = np.log(B.astype(np.float64))
    gamma, loglik, trans = forward_backward_log(logB, starts, startprob, transmat)
    return gamma.astype(B.dtype), loglik, trans


def forward_backward_log(logB, starts, startprob, transmat):
    """Forward-backward in log space from log-emissions ``logB`` (N x K, float64): gamma
    (float64), the per-sequence ``log p(x_s)`` and the transition counts. The reference twin,
    and the fallback for a sequence whose scaled recursion underflows (a reachable state
    more than ~700 nats below the most likely one at some step)."""
    with np.errstate(divide="ignore"):
        lpi = np.log(np.asarray(startprob, dtype=np.float64))
        lA = np.log(np.asarray(transmat, dtype=np.float64))
    n_seq, k_all = len(starts) - 1, logB.shape[1]
    gamma = np.empty(logB.shape)
    loglik = np.empty(n_seq)
    trans = np.zeros((n_seq, k_all, k_all))
    for s in range(n_seq):
        a, b = int(starts[s]), int(starts[s + 1])
        la = np.empty((b - a, k_all))
        lb = np.zeros((b - a, k_all))
        la[0] = lpi + logB[a]
        for t in range(1, b - a):
            la[t] = logsumexp(la[t - 1][:, None] + lA, axis=0) + logB[a + t]
        for t in range(b - a - 2, -1, -1):
            lb[t] = logsumexp(lA + logB[a + t + 1] + lb[t + 1], axis=1)
        ll = logsumexp(la[-1])
        loglik[s] = ll
        gamma[a:b] = np.exp(la + lb - ll)
        for t in range(b - a - 1):
            trans[s] += np.exp(la[t][:, None] + lA + logB[a + t + 1] + lb[t + 1] - ll)
    return gamma, loglik, trans


def viterbi(logB, starts, log_startprob, log_transmat):
    """Numba kernel: Viterbi paths ``(path (N,), logprob (S,))`` of a block's sequences."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    n_seq = starts.shape[0] - 1
    path = np.empty(logB.shape[0], dtype=np.int64)
    logprob = np.empty(n_seq)
    logB = np.ascontiguousarray(logB, dtype=np.float64)
    _viterbi_jit(logB, starts, np.asarray(log_startprob, np.float64),
       np.ascontiguousarray(log_transmat, np.float64), path, logprob)
    return path, logprob


def viterbi_ref(logB, starts, log_startprob, log_transmat):
    """NumPy twin of :func:`viterbi`."""
    n_seq = len(starts) - 1
    path = np.empty(logB.shape[0], dtype=np.int64)
    logprob = np.empty(n_seq)
    for s in range(n_seq):
        a, b = int(starts[s]), int(starts[s + 1])
        delta = log_startprob + logB[a]
        back = []
        for t in range(a + 1, b):
            cand = delta[:, None] + log_transmat
            back.append(np.argmax(cand, axis=0))
            delta = cand.max(axis=0) + logB[t]
        logprob[s] = delta.max()
        state = int(np.argmax(delta))
        path[b - 1] = state
        for t in range(b - 1, a, -1):
            state = int(back[t - a - 1][state])
            path[t - 1] = state
    return path, logprob


def symbol_counts(x, R, n_symbols):
    """Numba kernel: ``counts[v, k] = sum_{t: x_t = v} R[t, k]`` (V x K, float64)."""
    out = np.zeros((n_symbols, R.shape[1]))
    _symbol_counts_jit(np.ascontiguousarray(x, dtype=np.int64), R, out)
    return out


def symbol_counts_ref(x, R, n_symbols):
    """NumPy twin of :func:`symbol_counts`."""
    out = np.zeros((n_symbols, R.shape[1]))
    np.add.at(out, np.asarray(x, dtype=np.int64), R.astype(np.float64))
    return out
