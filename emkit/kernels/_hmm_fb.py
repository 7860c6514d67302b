"""Forward-backward kernel tiled for SIMD, for blocks of sequences with 6 or more states
(``emkit.kernels.hmm.TILED_MIN_STATES``).

The recursion of :mod:`emkit.kernels.hmm` spends its time in two matrix-vector products per
step (``alpha_hat_{t-1} A`` forward, ``A tmp_{t+1}`` backward) and one rank-1 update (the
transition counts). Written as ``K`` dot products of length ``K``, as the generic kernel does,
each needs a horizontal sum and a loop of its own; here they are written as ``y_c += x_i A_ic``
over tiles of 16 columns held in scalar accumulators, which LLVM's SLP (straight-line)
vectoriser packs into AVX2 registers. Numba disables that vectoriser by default (miscompiles
reported with older LLVMs), so :func:`compile_with_slp` enables it for this one kernel while it
compiles (or loads it from Numba's cache); the tests compare its results with the NumPy twin
:func:`emkit.kernels.hmm.forward_backward_ref` for both dtypes and many ``K``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import config as _numba_config
from numba.core.compiler_lock import global_compiler_lock

from .._jit import jit

__all__ = ["TILE", "tiles", "sum_log", "forward_backward_tiles", "compile_with_slp"]

TILE = 16  # columns per tile: four AVX2 registers of float64


def _sum_log(scale):
    """``sum(log(scale))`` with one ``log`` per run of factors rather than per factor.

    The factors are multiplied while the product stays above 1e-200 (a factor below 1e-100
    is taken on its own), so the product never underflows; a zero factor gives ``-inf`` and a
    NaN gives NaN, as the plain sum would.

    NumPy equivalent: ``np.log(scale).sum()``.
    """
    total = 0.0
    prod = 1.0
    for t in range(scale.shape[0]):
        c = scale[t]
        if c < 1e-100:
            total += np.log(c)
        else:
            prod *= c
            if prod < 1e-200:
                total += np.log(prod)
                prod = 1.0
    return total + np.log(prod)


def _forward_backward_tiles(B, starts, startprob, AP, ATP, gamma, loglik, trans):
    """Scaled forward-backward of every sequence of a block, register-tiled for LLVM's SLP
    vectoriser (the same inputs, outputs and recursion as :func:`emkit.kernels.hmm.
    _forward_backward`, whose NumPy equivalent it shares; ``trans`` is written without the
    final factor ``A_ij``, which the caller applies).

    ``AP`` and ``ATP`` are ``transmat`` and its transpose cut into tiles (:func:`tiles`):
    ``AP[jt, h, e, c] = A[2h + e, 16 jt + c]``, ``ATP[jt, h, e, c] = A[16 jt + c, 2h + e]``,
    zero beyond ``K``. Each step computes ``y = x A`` (forward) and ``y = A x`` (backward) as
    16 columns at a time, ``y_c += x_i A[i, c]``, in 32 scalar accumulators (even and odd
    ``i`` apart, two dependency chains) that the SLP vectoriser packs into eight AVX2
    registers: no horizontal sums, no reloads of the partial sums, one broadcast of ``x_i``
    per 16 products. The transition counts take a rank-2 update every other step.
    Compiled with the ``contract`` fast-math flag but not ``reassoc``, so that
    the loop vectoriser leaves the loops over ``h`` to SLP, and with SLP enabled
    (:func:`compile_with_slp`; Numba turns it off by default).
    """
    n_seq = starts.shape[0] - 1
    k_all = B.shape[1]
    nt, nh = AP.shape[0], AP.shape[1]
    prev = np.zeros((nh, 2))  # alpha_hat_{t-1}, pairs of states
    prev_flat = prev.reshape(2 * nh)
    cur = np.zeros((nt, 16))  # alpha_hat_{t-1} A
    cur_flat = cur.reshape(16 * nt)
    tmp = np.zeros((nh, 2))  # B_{t+1} beta_{t+1} / c_{t+1}, pairs of states
    tmp_flat = tmp.reshape(2 * nh)
    tmp16 = np.zeros((nt, 16))  # the same, 16 states per tile
    tmp16_flat = tmp16.reshape(16 * nt)
    beta = np.zeros((nt, 16))
    beta_flat = beta.reshape(16 * nt)
    acc = np.zeros((k_all, nt, 16))  # sum_t alpha_hat_t tmp_{t+1}^T
    tmpp = np.zeros((nt, 16))  # tmp and alpha_hat of the step before, awaiting the rank-2 update
    alp = np.zeros(k_all)
    for s in range(n_seq):
        a, b = starts[s], starts[s + 1]
        scale = np.empty(b - a)
        tot = 0.0
        for j in range(k_all):
            v = startprob[j] * B[a, j]
            gamma[a, j] = v
            prev_flat[j] = v
            tot += v
        scale[0] = tot
        inv = 1.0 / tot
        for t in range(a + 1, b):
            # cur = alpha_hat_{t-1} A (prev holds a_{t-1}; 1 / c_{t-1} applied below)
            for jt in range(nt):
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
                s8 = s9 = s10 = s11 = s12 = s13 = s14 = s15 = 0.0
                u0 = u1 = u2 = u3 = u4 = u5 = u6 = u7 = 0.0
                u8 = u9 = u10 = u11 = u12 = u13 = u14 = u15 = 0.0
                for h in range(nh):
                    p = prev[h, 0]
                    q = prev[h, 1]
                    s0 += p * AP[jt, h, 0, 0]
                    s1 += p * AP[jt, h, 0, 1]
                    s2 += p * AP[jt, h, 0, 2]
                    s3 += p * AP[jt, h, 0, 3]
                    s4 += p * AP[jt, h, 0, 4]
                    s5 += p * AP[jt, h, 0, 5]
                    s6 += p * AP[jt, h, 0, 6]
                    s7 += p * AP[jt, h, 0, 7]
                    s8 += p * AP[jt, h, 0, 8]
                    s9 += p * AP[jt, h, 0, 9]
                    s10 += p * AP[jt, h, 0, 10]
                    s11 += p * AP[jt, h, 0, 11]
                    s12 += p * AP[jt, h, 0, 12]
                    s13 += p * AP[jt, h, 0, 13]
                    s14 += p * AP[jt, h, 0, 14]
                    s15 += p * AP[jt, h, 0, 15]
                    u0 += q * AP[jt, h, 1, 0]
                    u1 += q * AP[jt, h, 1, 1]
                    u2 += q * AP[jt, h, 1, 2]
                    u3 += q * AP[jt, h, 1, 3]
                    u4 += q * AP[jt, h, 1, 4]
                    u5 += q * AP[jt, h, 1, 5]
                    u6 += q * AP[jt, h, 1, 6]
                    u7 += q * AP[jt, h, 1, 7]
                    u8 += q * AP[jt, h, 1, 8]
                    u9 += q * AP[jt, h, 1, 9]
                    u10 += q * AP[jt, h, 1, 10]
                    u11 += q * AP[jt, h, 1, 11]
                    u12 += q * AP[jt, h, 1, 12]
                    u13 += q * AP[jt, h, 1, 13]
                    u14 += q * AP[jt, h, 1, 14]
                    u15 += q * AP[jt, h, 1, 15]
                cur[jt, 0] = s0 + u0
                cur[jt, 1] = s1 + u1
                cur[jt, 2] = s2 + u2
                cur[jt, 3] = s3 + u3
                cur[jt, 4] = s4 + u4
                cur[jt, 5] = s5 + u5
                cur[jt, 6] = s6 + u6
                cur[jt, 7] = s7 + u7
                cur[jt, 8] = s8 + u8
                cur[jt, 9] = s9 + u9
                cur[jt, 10] = s10 + u10
                cur[jt, 11] = s11 + u11
                cur[jt, 12] = s12 + u12
                cur[jt, 13] = s13 + u13
                cur[jt, 14] = s14 + u14
                cur[jt, 15] = s15 + u15
            # four partial sums of c_t: its chain of additions is on the critical path
            t0 = 0.0
            t1 = 0.0
            t2 = 0.0
            t3 = 0.0
            k4 = k_all - k_all % 4
            for j in range(0, k4, 4):
                v0 = cur_flat[j] * B[t, j] * inv
                v1 = cur_flat[j + 1] * B[t, j + 1] * inv
                v2 = cur_flat[j + 2] * B[t, j + 2] * inv
                v3 = cur_flat[j + 3] * B[t, j + 3] * inv
                gamma[t, j] = v0
                gamma[t, j + 1] = v1
                gamma[t, j + 2] = v2
                gamma[t, j + 3] = v3
                prev_flat[j] = v0
                prev_flat[j + 1] = v1
                prev_flat[j + 2] = v2
                prev_flat[j + 3] = v3
                t0 += v0
                t1 += v1
                t2 += v2
                t3 += v3
            for j in range(k4, k_all):
                v = cur_flat[j] * B[t, j] * inv
                gamma[t, j] = v
                prev_flat[j] = v
                t0 += v
            tot = (t0 + t1) + (t2 + t3)
            scale[t - a] = tot
            inv = 1.0 / tot
        loglik[s] = sum_log(scale)
        for i in range(k_all):
            for jt in range(nt):
                for c in range(16):
                    acc[i, jt, c] = 0.0
        have = False
        inv = 1.0 / scale[b - 1 - a]
        for j in range(k_all):
            gamma[b - 1, j] *= inv
            beta_flat[j] = 1.0
        for t in range(b - 2, a - 1, -1):
            inv_next = inv
            inv = 1.0 / scale[t - a]
            for j in range(k_all):
                v = B[t + 1, j] * beta_flat[j] * inv_next
                tmp_flat[j] = v
                tmp16_flat[j] = v
            # beta_t = A tmp
            for jt in range(nt):
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
                s8 = s9 = s10 = s11 = s12 = s13 = s14 = s15 = 0.0
                u0 = u1 = u2 = u3 = u4 = u5 = u6 = u7 = 0.0
                u8 = u9 = u10 = u11 = u12 = u13 = u14 = u15 = 0.0
                for h in range(nh):
                    p = tmp[h, 0]
                    q = tmp[h, 1]
                    s0 += p * ATP[jt, h, 0, 0]
                    s1 += p * ATP[jt, h, 0, 1]
                    s2 += p * ATP[jt, h, 0, 2]
                    s3 += p * ATP[jt, h, 0, 3]
                    s4 += p * ATP[jt, h, 0, 4]
                    s5 += p * ATP[jt, h, 0, 5]
                    s6 += p * ATP[jt, h, 0, 6]
                    s7 += p * ATP[jt, h, 0, 7]
                    s8 += p * ATP[jt, h, 0, 8]
                    s9 += p * ATP[jt, h, 0, 9]
                    s10 += p * ATP[jt, h, 0, 10]
                    s11 += p * ATP[jt, h, 0, 11]
                    s12 += p * ATP[jt, h, 0, 12]
                    s13 += p * ATP[jt, h, 0, 13]
                    s14 += p * ATP[jt, h, 0, 14]
                    s15 += p * ATP[jt, h, 0, 15]
                    u0 += q * ATP[jt, h, 1, 0]
                    u1 += q * ATP[jt, h, 1, 1]
                    u2 += q * ATP[jt, h, 1, 2]
                    u3 += q * ATP[jt, h, 1, 3]
                    u4 += q * ATP[jt, h, 1, 4]
                    u5 += q * ATP[jt, h, 1, 5]
                    u6 += q * ATP[jt, h, 1, 6]
                    u7 += q * ATP[jt, h, 1, 7]
                    u8 += q * ATP[jt, h, 1, 8]
                    u9 += q * ATP[jt, h, 1, 9]
                    u10 += q * ATP[jt, h, 1, 10]
                    u11 += q * ATP[jt, h, 1, 11]
                    u12 += q * ATP[jt, h, 1, 12]
                    u13 += q * ATP[jt, h, 1, 13]
                    u14 += q * ATP[jt, h, 1, 14]
                    u15 += q * ATP[jt, h, 1, 15]
                beta[jt, 0] = s0 + u0
                beta[jt, 1] = s1 + u1
                beta[jt, 2] = s2 + u2
                beta[jt, 3] = s3 + u3
                beta[jt, 4] = s4 + u4
                beta[jt, 5] = s5 + u5
                beta[jt, 6] = s6 + u6
                beta[jt, 7] = s7 + u7
                beta[jt, 8] = s8 + u8
                beta[jt, 9] = s9 + u9
                beta[jt, 10] = s10 + u10
                beta[jt, 11] = s11 + u11
                beta[jt, 12] = s12 + u12
                beta[jt, 13] = s13 + u13
                beta[jt, 14] = s14 + u14
                beta[jt, 15] = s15 + u15
            # acc += alpha_hat_t tmp_{t+1}^T + alpha_hat_{t+1} tmp_{t+2}^T every other step
            # (a rank-2 update: half the loads and stores of acc), 16 columns at a time
            if have:
                for jt in range(nt):
                    x0 = tmp16[jt, 0]
                    x1 = tmp16[jt, 1]
                    x2 = tmp16[jt, 2]
                    x3 = tmp16[jt, 3]
                    x4 = tmp16[jt, 4]
                    x5 = tmp16[jt, 5]
                    x6 = tmp16[jt, 6]
                    x7 = tmp16[jt, 7]
                    x8 = tmp16[jt, 8]
                    x9 = tmp16[jt, 9]
                    x10 = tmp16[jt, 10]
                    x11 = tmp16[jt, 11]
                    x12 = tmp16[jt, 12]
                    x13 = tmp16[jt, 13]
                    x14 = tmp16[jt, 14]
                    x15 = tmp16[jt, 15]
                    y0 = tmpp[jt, 0]
                    y1 = tmpp[jt, 1]
                    y2 = tmpp[jt, 2]
                    y3 = tmpp[jt, 3]
                    y4 = tmpp[jt, 4]
                    y5 = tmpp[jt, 5]
                    y6 = tmpp[jt, 6]
                    y7 = tmpp[jt, 7]
                    y8 = tmpp[jt, 8]
                    y9 = tmpp[jt, 9]
                    y10 = tmpp[jt, 10]
                    y11 = tmpp[jt, 11]
                    y12 = tmpp[jt, 12]
                    y13 = tmpp[jt, 13]
                    y14 = tmpp[jt, 14]
                    y15 = tmpp[jt, 15]
                    for i in range(k_all):
                        al = gamma[t, i] * inv
                        ap = alp[i]
                        acc[i, jt, 0] += al * x0 + ap * y0
                        acc[i, jt, 1] += al * x1 + ap * y1
                        acc[i, jt, 2] += al * x2 + ap * y2
                        acc[i, jt, 3] += al * x3 + ap * y3
                        acc[i, jt, 4] += al * x4 + ap * y4
                        acc[i, jt, 5] += al * x5 + ap * y5
                        acc[i, jt, 6] += al * x6 + ap * y6
                        acc[i, jt, 7] += al * x7 + ap * y7
                        acc[i, jt, 8] += al * x8 + ap * y8
                        acc[i, jt, 9] += al * x9 + ap * y9
                        acc[i, jt, 10] += al * x10 + ap * y10
                        acc[i, jt, 11] += al * x11 + ap * y11
                        acc[i, jt, 12] += al * x12 + ap * y12
                        acc[i, jt, 13] += al * x13 + ap * y13
                        acc[i, jt, 14] += al * x14 + ap * y14
                        acc[i, jt, 15] += al * x15 + ap * y15
                have = False
            else:
                for jt in range(nt):
                    for c in range(16):
                        tmpp[jt, c] = tmp16[jt, c]
                for i in range(k_all):
                    alp[i] = gamma[t, i] * inv
                have = True
            for i in range(k_all):
                gamma[t, i] = gamma[t, i] * inv * beta_flat[i]
        if have:
            for jt in range(nt):
                for i in range(k_all):
                    for c in range(16):
                        acc[i, jt, c] += alp[i] * tmpp[jt, c]
        for i in range(k_all):
            for j in range(k_all):
                trans[s, i, j] = acc[i, j // 16, j % 16]


def tiles(transmat):
    """``(AP, ATP)``: ``transmat`` and its transpose as the kernel's zero-padded tiles,
    ``AP[jt, h, e, c] = A[2h + e, 16 jt + c]`` and ``ATP[jt, h, e, c] = A[16 jt + c, 2h + e]``
    (float64, shape ``(ceil(K / 16), ceil(K / 2), 2, 16)``)."""
    A = np.asarray(transmat, dtype=np.float64)
    k_all = A.shape[0]
    n_tiles, n_pairs = -(-k_all // TILE), -(-k_all // 2)
    out = []
    for M in (A, A.T):
        pad = np.zeros((2 * n_pairs, TILE * n_tiles))
        pad[:k_all, :k_all] = M
        out.append(np.ascontiguousarray(pad.reshape(n_pairs, 2, n_tiles, TILE)
                                        .transpose(2, 0, 1, 3)))
    return out[0], out[1]


_compiled = set()


def compile_with_slp(dispatcher, args):
    """Compile ``dispatcher`` for the types of ``args`` with LLVM's SLP vectoriser enabled
    (or load it from the cache), once per process and signature.

    Numba reads ``NUMBA_SLP_VECTORIZE`` from its config module when it builds a pass
    manager; the switch is set only inside Numba's global compiler lock, so no other
    function compiles with it. Without it the kernel is correct but about twice as slow.
    """
    # a cheap key first (numba.typeof of 8 arrays costs about 90 us per call)
    key = (id(dispatcher),) + tuple(
        (a.dtype.char, a.ndim, a.flags.c_contiguous, a.flags.f_contiguous, a.flags.aligned,
         a.flags.writeable) if isinstance(a, np.ndarray) else type(a) for a in args)
    if key in _compiled:
        return
    sig = tuple(numba.typeof(a) for a in args)
    # the helpers it calls compiled first, outside the SLP window: the generic kernels call
    # them too, and must get the same build whichever kernel a fresh cache sees first
    sum_log.compile("float64(float64[::1])")
    with global_compiler_lock:
        old = _numba_config.SLP_VECTORIZE
        _numba_config.SLP_VECTORIZE = 1
        try:
            dispatcher.compile(sig)
        finally:
            _numba_config.SLP_VECTORIZE = old
        _compiled.add(key)


sum_log = jit(_sum_log)
# contract (FMA) without reassoc: the loop vectoriser must not take the tiles' inner loops
forward_backward_tiles = jit(
    _forward_backward_tiles, fastmath={"contract", "arcp", "nsz", "nnan", "ninf"}
)
