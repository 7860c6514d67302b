"""Hidden Markov models: a Markov chain composed with an emission model, on the one driver.

Baum-Welch is EM: the E-step (forward-backward, :mod:`emkit.kernels.hmm`) sets Q(Z) to the exact
posterior over state paths and returns additive statistics, which are the start counts, the
expected transition counts and the emission model's statistics with the state posteriors as
responsibilities (for Gaussian emissions exactly :class:`~emkit.models.gaussian.GaussianStats`;
for categorical emissions K x V counts). Statistics of different sequences add up, so blocks of
sequences are summed like blocks of rows.

The M-step is hmmlearn's (0.3), priors included: Dirichlet priors on the start and transition
probabilities (and the categorical emissions), a Normal prior on the means and an inverse-gamma
(diag, spherical) or inverse-Wishart (full, tied) prior on the covariances. ``log_prior`` is the
log density (up to a constant) that this M-step maximises jointly with the ELBO. hmmlearn keeps a
zero start or transition probability at zero (left-right chains); so does :meth:`HMMModel.m_step`,
which reads the parameters the statistics were computed at (``stats.at``) for that and for the
parameters not being updated (``params`` without ``"s"``, ``"t"``, ...).
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..kernels import hmm as kern
from ..kernels._parallel import map_row_blocks, scratch
from ._common import floored_log
from ._hmm_categorical import CategoricalEmission, dirichlet_log_prior, dirichlet_m_step
from ._hmm_gaussian import GaussianEmission

__all__ = [
    "Sequences",
    "HMMParams",
    "HMMStats",
    "HMMModel",
    "GaussianEmission",
    "CategoricalEmission",
    "dirichlet_m_step",
]


@dataclass(frozen=True, eq=False)
class Sequences:
    """Concatenated sequences: ``X`` (N x D, or N symbols) and ``starts`` (S + 1 offsets).

    ``weights`` (N,), optional: per-observation weights; the emission density of step ``t``
    is raised to the power ``weights[t]`` (``w_t`` observations of the same step; zero: the
    step is unobserved). Per-sequence weights are the E-step's ``sample_weight``.
    """

    X: np.ndarray
    starts: np.ndarray
    weights: np.ndarray | None = None
    _blocks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    @property
    def n_sequences(self) -> int:
        return len(self.starts) - 1

    def blocks(self, max_rows: int) -> list:
        """Runs of whole sequences of about ``max_rows`` rows: ``[(Sequences, seq slice)]``
        (cut once per ``max_rows``: every E-step of a fit walks the same blocks)."""
        hit = self._blocks.get(max_rows)
        if hit is not None:
            return hit
        out, starts = [], self.starts.tolist()
        s, n_seq = 0, self.n_sequences
        while s < n_seq:
            e = s + 1
            while e < n_seq and starts[e + 1] - starts[s] <= max_rows:
                e += 1
            a, b = starts[s], starts[e]
            w = None if self.weights is None else self.weights[a:b]
            out.append((Sequences(self.X[a:b], self.starts[s : e + 1] - a, w), slice(s, e)))
            s = e
        self._blocks[max_rows] = out
        return out


@dataclass(frozen=True, eq=False)
class HMMParams:
    """``startprob`` (K,), ``transmat`` (K, K) and the emission parameters, float64."""

    startprob: np.ndarray
    transmat: np.ndarray
    emission: object
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_components(self) -> int:
        return self.startprob.shape[0]

    def log_chain(self):
        """``(log startprob, log transmat)``, floored (computed once per parameter set)."""
        if "logs" not in self._cache:
            self._cache["logs"] = (floored_log(self.startprob), floored_log(self.transmat))
        return self._cache["logs"]

    def cached(self, key, owner, compute):
        """``compute()`` once per parameter set and ``owner`` (the model asking, or a tuple of
        the objects the value depends on besides the parameters, compared by identity).

        The owners are held by weak reference: a value cached for the statistics of an
        earlier E-step must not keep them alive (they refer to their own parameters, whose
        cache would hold the statistics before, and so on back to the first iteration: a
        chain as long as the fit, which pickle could not walk after some hundred iterations).
        """
        owners = owner if isinstance(owner, tuple) else (owner,)
        hit = self._cache.get(key)
        if hit is None or len(hit[0]) != len(owners) or any(
            r() is not b for r, b in zip(hit[0], owners, strict=True)
        ):
            hit = self._cache[key] = (tuple(weakref.ref(o) for o in owners), compute())
        return hit[1]

    def __getstate__(self):
        # the cache (weak references, derived values) is not part of the parameters
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state


@dataclass(frozen=True, eq=False)
class HMMStats:
    """Additive statistics of a forward-backward pass (float64).

    ``start[k] = sum_s w_s gamma_s0(k)``, ``trans[i, j] = sum_s w_s sum_t xi_st(i, j)``,
    ``emission``: the emission model's statistics of ``w_s gamma_st``. ``log_evidence``
    ``= sum_s w_s log p(x_s)``, ``entropy`` ``= H(Q)`` of the chain posterior, ``total_weight``
    ``= sum_s w_s T_s`` (the per-sample unit is one time step), ``at``: the parameters of the
    E-step (what the M-step keeps where it does not update).
    """

    start: np.ndarray
    trans: np.ndarray
    emission: object
    log_evidence: float
    entropy: float
    total_weight: float
    n_rows: float
    at: HMMParams | None = None

    def __add__(self, other):
        if not isinstance(other, HMMStats):
            return NotImplemented
        return HMMStats(
            self.start + other.start, self.trans + other.trans, self.emission + other.emission,
            self.log_evidence + other.log_evidence, self.entropy + other.entropy,
            self.total_weight + other.total_weight, self.n_rows + other.n_rows, self.at,
        )

    def __mul__(self, c):
        c = float(c)
        return HMMStats(
            c * self.start, c * self.trans, self.emission * c, c * self.log_evidence,
            c * self.entropy, c * self.total_weight, c * self.n_rows, self.at,
        )

    __rmul__ = __mul__

    def blend(self, rho: float, other: HMMStats) -> HMMStats:
        """``(1 - rho) * self + rho * other`` (stepwise EM)."""
        return (1.0 - rho) * self + rho * other


# ---------------------------------------------------------------------------- the HMM
def _emission_scaled(emission, params, X, reuse=False, features=None):
    """``B = exp(L - max_k L)`` and the per-step maxima (float64) of a block.

    An emission model may compute them itself (``scaled``: categorical emissions need no
    exponential at all).
    """
    if hasattr(emission, "scaled"):
        return emission.scaled(params.emission, X, reuse=reuse, features=features)
    L = np.ascontiguousarray(emission.log_prob(params.emission, X, features=features))
    return L, kern.row_max_exp(L)  # in place: L is this call's own array


def _weighted_log_prob(emission, params, X, weights, features=None):
    """Emission log-densities (N x K) times the per-observation ``weights`` (if any), and the
    dtype of the unweighted ones. Weighted: float64, as the weights stay (a float32 product
    would overflow to -inf for weights near 1e38, or a log-density times a weight beyond
    3.4e38)."""
    L = emission.log_prob(params.emission, X, features=features)
    dtype = L.dtype
    if weights is not None:
        L = np.asarray(L, dtype=np.float64) * np.asarray(weights, dtype=np.float64)[:, None]
    return L, dtype


def _forward_backward(emission, params, X, starts, weights=None, reuse=False, features=None,
                      out=None):
    """``(loglik per sequence, gamma, trans per sequence)`` of the sequences of ``X``.

    The scaled kernel on the emissions shifted by their per-step maximum; a sequence where
    that underflows (a state the chain can reach sits more than ~700 nats below the best one,
    so every reachable state's scaled emission is 0) is redone in log space, never left NaN.
    ``weights``: per-observation weights (the emission log-densities are multiplied by them).
    With ``reuse`` the N x K arrays live in this thread's scratch memory, so ``gamma`` is valid
    only until the thread's next block (the E-step's blocks: a fresh 2 MB array per block is
    returned to the operating system and faulted in again, measured 12,600 page faults per
    categorical E-step of 200,000 x 16). ``features``: the emission model's
    ``features(params.emission, X)``, shared with the statistics pass; ``out``: a
    C-contiguous N x K array of the emissions' dtype for the posteriors (without ``reuse``).
    """
    if weights is None:
        B, mx = _emission_scaled(emission, params, X, reuse, features)
    else:
        B, dtype = _weighted_log_prob(emission, params, X, weights, features)
        mx = kern.row_max_exp(B)  # in place: B is this call's own (float64) array
        B = B.astype(dtype, copy=False)  # scaled emissions in [0, 1]: the data's dtype
    if reuse:
        out = scratch("hmm-gamma", B.shape, B.dtype)
    gamma, ll, trans = kern.forward_backward(B, starts, params.startprob, params.transmat,
                                             out=out)
    ll += np.add.reduceat(mx, starts[:-1])
    # posteriors are in [0, 1] when all is well: one sum tells (no N x K mask)
    if np.isfinite(ll).all() and np.isfinite(np.sum(gamma, dtype=np.float64)):
        return ll, gamma, trans
    ok = np.isfinite(ll) & np.logical_and.reduceat(
        np.isfinite(gamma).all(axis=1), starts[:-1])
    for s in np.flatnonzero(~ok):
        a, b = int(starts[s]), int(starts[s + 1])
        wb = None if weights is None else weights[a:b]
        L = np.asarray(_weighted_log_prob(emission, params, X[a:b], wb)[0], dtype=np.float64)
        with np.errstate(invalid="ignore"):  # overflowed log-densities: NaN, reported
            g, l, t = kern.forward_backward_log(L, np.array([0, b - a]), params.startprob,
                                                params.transmat)
        gamma[a:b], ll[s], trans[s] = g, l[0], t[0]
    return ll, gamma, trans


@dataclass(frozen=True)
class HMMModel:
    """A hidden Markov model as EM sees it: a Markov chain plus an ``emission`` model.

    ``update_start``/``update_trans``: hmmlearn's ``"s"``/``"t"`` in ``params``.
    ``block_rows``: sequences are processed in runs of about this many rows (a longer
    sequence is one run of its own), so memory does not grow with the number of sequences;
    the runs are spread over ``n_threads`` threads (default: the usable CPUs).
    """

    emission: object
    startprob_prior: object = 1.0
    transmat_prior: object = 1.0
    update_start: bool = True
    update_trans: bool = True
    dtype: np.dtype = np.dtype(np.float64)
    block_rows: int = 1 << 14
    n_threads: int | None = None

    @cached_property
    def _serial_emission(self):
        return self.emission.serial()

    # ------------------------------------------------------------------ passes
    def posteriors(self, params: HMMParams, seqs: Sequences):
        """``(loglik per sequence (S,), gamma (N x K), trans per sequence (S x K x K))``;
        blocks of sequences on the threads, as the E-step's."""
        k = params.n_components
        gamma = np.empty((seqs.X.shape[0], k), dtype=self.dtype)
        ll = np.empty(seqs.n_sequences)
        trans = np.empty((seqs.n_sequences, k, k))

        def run(emission, block, sl, rows):  # the posteriors straight into their rows
            ll[sl], _, trans[sl] = _forward_backward(emission, params, block.X, block.starts,
                                                     block.weights, out=gamma[rows])

        self._over_blocks(seqs, run)
        return ll, gamma, trans

    def _over_blocks(self, seqs: Sequences, run):
        """``run(emission, block, sequence slice, row slice)`` for every block of whole
        sequences (about ``block_rows`` rows), one block per thread-pool task; a single
        block runs on the calling thread, with the emission passes threaded if it is large
        (the E-step's rule)."""
        blocks = seqs.blocks(self.block_rows)
        if len(blocks) == 1:
            large = seqs.X.shape[0] >= 2 * self.block_rows
            run(self.emission if large else self._serial_emission, seqs,
                slice(0, seqs.n_sequences), slice(0, seqs.X.shape[0]))
            return
        offsets = seqs.starts

        def task(sl):
            block, seq = blocks[sl.start]
            a = int(offsets[seq.start])
            run(self._serial_emission, block, seq, slice(a, a + block.X.shape[0]))
            return 0

        map_row_blocks(task, len(blocks), 1, self.n_threads, combine=operator.add,
                       blocks_per_task=1)

    def _block_stats(self, params, block, w, emission):
        """Statistics of one block of whole sequences (``w``: their weights or None; the
        per-observation weights, if any, are ``block.weights``)."""
        n = block.X.shape[0]
        # the emission features once for both passes (a block longer than block_rows is one
        # long sequence: its passes run in row blocks of their own instead)
        feats = emission.features(params.emission, block.X) if n <= self.block_rows else None
        ll, gamma, trans = _forward_backward(emission, params, block.X, block.starts,
                                             block.weights, reuse=True, features=feats)
        if w is None:
            start = gamma[block.starts[:-1]].sum(axis=0, dtype=np.float64)
            trans_sum = trans.sum(axis=0)
            R, log_ev, row_w = gamma, float(np.sum(ll)), None
        else:
            start = w @ gamma[block.starts[:-1]].astype(np.float64)
            trans_sum = np.tensordot(w, trans, axes=1)
            row_w = np.repeat(w, block.lengths)
            log_ev = float(w @ ll)
        if block.weights is not None:
            row_w = block.weights if row_w is None else row_w * block.weights
        if row_w is not None:
            # float64: the emission statistics bring the weights near one where they meet
            # the data's dtype (a float32 cast here would lose 1e-50 or 1e39)
            R = gamma * np.asarray(row_w, dtype=np.float64)[:, None]
        weight = float(n) if row_w is None else float(np.sum(row_w, dtype=np.float64))
        es = emission.stats(params.emission, block.X, R, weight, features=feats)
        return HMMStats(start, trans_sum, es, log_ev, 0.0, weight, float(n))

    def e_step(self, params: HMMParams, X: Sequences, sample_weight=None, state=None):
        """Forward-backward over every sequence: statistics at ``params`` (KL = 0).

        Blocks of whole sequences (about ``block_rows`` rows each) run on emkit's thread
        pool, their statistics summed in block order (reproducible whatever the threads);
        with a single large block (one long sequence) the emission model's own passes use the
        threads instead.
        """
        blocks = X.blocks(self.block_rows)
        # threads inside the emission passes only for one large block (a thread-pool round
        # trip costs more than a small block's GEMM)
        threaded = len(blocks) == 1 and X.X.shape[0] >= 2 * self.block_rows
        emission = self.emission if threaded else self._serial_emission

        def run(sl):
            block, seq = blocks[sl.start]
            w = None if sample_weight is None else np.asarray(sample_weight[seq], np.float64)
            return self._block_stats(params, block, w, emission)

        # one block per task: blocks are large already, and with fewer tasks than about
        # 4 per thread the last ones leave a thread idle (measured 1.5x instead of 1.9x
        # on two threads with 13 blocks in 7 tasks)
        parts = map_row_blocks(run, len(blocks), 1, self.n_threads, combine=operator.add,
                               blocks_per_task=1)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        terms = self._terms(params, total)
        stats = HMMStats(
            total.start, total.trans, total.emission, total.log_evidence,
            total.log_evidence - terms[0], total.total_weight, total.n_rows, params,
        )
        params.cached(("terms", id(stats)), (self, stats), lambda: terms)
        return stats, None

    # ------------------------------------------------------------------ M-step and bound
    def m_step(self, stats: HMMStats) -> HMMParams:
        old = stats.at
        start = old.startprob
        if self.update_start:
            start = dirichlet_m_step(stats.start, self.startprob_prior, old.startprob)
        trans = old.transmat
        if self.update_trans:
            trans = dirichlet_m_step(stats.trans, self.transmat_prior, old.transmat, axis=1)
            # a state never left keeps its row (hmmlearn would leave a row of zeros)
            trans = np.where(trans.sum(axis=1, keepdims=True) > 0, trans, old.transmat)
        return HMMParams(start, trans, self.emission.m_step(stats.emission, old.emission))

    def expected_complete_loglik(self, params: HMMParams, stats: HMMStats) -> float:
        """``E_Q[log p(X, Z | theta)]`` from the statistics; computed once per parameter set
        and statistics (the driver asks for the same pair several times per iteration)."""
        return self._cached_terms(params, stats)[0]

    def _cached_terms(self, params, stats):
        return params.cached(("terms", id(stats)), (self, stats),
                             lambda: self._terms(params, stats))

    def _terms(self, params, stats):
        """``(E_Q[log p(X, Z | theta)], the sum of the absolute values of its terms)``,
        chain and emissions, in one evaluation."""
        log_pi, log_a = params.log_chain()
        t_start, t_trans = stats.start * log_pi, stats.trans * log_a
        e_ecll, e_size = self.emission.ecll_and_scale(params.emission, stats.emission)
        return (float(t_start.sum() + t_trans.sum()) + e_ecll,
                float(np.abs(t_start).sum() + np.abs(t_trans).sum()) + e_size)

    def log_prior(self, params: HMMParams) -> float:
        """The log prior the M-step maximises (up to a constant), computed once per
        parameter set."""
        return params.cached("log_prior", self, lambda: (
            dirichlet_log_prior(self.startprob_prior, params.startprob)
            + dirichlet_log_prior(self.transmat_prior, params.transmat)
            + self.emission.log_prior(params.emission)
        ))

    def elbo(self, params: HMMParams, stats: HMMStats) -> float:
        """``E_Q[log p(X, Z | theta)] + H(Q) + log p(theta)``; equals ``log_evidence +
        log_prior`` at the E-step's parameters."""
        return self.expected_complete_loglik(params, stats) + stats.entropy + self.log_prior(
            params
        )

    def objective(self, params: HMMParams, stats: HMMStats) -> float:
        """What :meth:`m_step` maximises: :meth:`elbo` (MAP)."""
        return self.elbo(params, stats)

    def roundoff_scale(self, params: HMMParams, stats: HMMStats) -> float:
        """Sum of the absolute terms of the bound (once per parameter set and statistics)."""
        return (self._cached_terms(params, stats)[1] + abs(stats.entropy)
                + abs(stats.log_evidence))

    # ------------------------------------------------------------------ prediction
    def score_sequences(self, params: HMMParams, seqs: Sequences):
        """``(loglik per sequence, posteriors N x K)``."""
        ll, gamma, _ = self.posteriors(params, seqs)
        return ll, gamma

    def viterbi(self, params: HMMParams, seqs: Sequences):
        """``(log-probability of each sequence's best path, states (N,))``; blocks of
        sequences on the threads, as the E-step's."""
        with np.errstate(divide="ignore"):  # a forbidden start or transition is -inf here
            log_chain = np.log(params.startprob), np.log(params.transmat)
        path = np.empty(seqs.X.shape[0], dtype=np.int64)
        logprob = np.empty(seqs.n_sequences)

        def run(emission, block, sl, rows):
            L = emission.log_prob(params.emission, block.X)
            path[rows], logprob[sl] = kern.viterbi(L, block.starts, *log_chain)

        self._over_blocks(seqs, run)
        return logprob, path
