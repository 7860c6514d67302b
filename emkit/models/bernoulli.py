"""Mixture of multivariate Bernoullis: parameters, additive statistics, E-step, M-step, ELBO.

Everything here is a pure function of its arguments. The E-step makes one pass over the rows
(dense blocks or CSR row ranges, see :mod:`emkit.kernels.bernoulli`) and returns
:class:`BernoulliStats`; the M-step and the ELBO read only statistics.

MAP-EM with a pseudo-count ``alpha >= 0``: every mean ``mu_kd`` has the prior
``Beta(alpha + 1, alpha + 1)``, i.e. ``alpha`` extra successes and ``alpha`` extra failures,
so the M-step is ``mu_kd = (S_kd + alpha) / (N_k + 2 alpha)``. The mixture weights have a
flat prior (maximum likelihood). With ``alpha = 0`` this is plain maximum likelihood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import betaln

from ..kernels import bernoulli as kern
from ..kernels._parallel import map_row_blocks
from ..kernels._rows import unit_weights
from ._common import ComponentShape, floored_log

__all__ = ["BernoulliParams", "BernoulliStats", "BernoulliModel", "log_means"]



@dataclass(frozen=True, eq=False)
class BernoulliParams(ComponentShape):
    """Parameters of a Bernoulli mixture, float64: ``weights`` (K,), ``means`` (K, D) in [0, 1]."""

    weights: np.ndarray
    means: np.ndarray
    _logs: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def logs(self):
        """``(log mu, log(1 - mu))`` as :func:`log_means` gives them, computed once.

        The E-step, the ELBO, the objective and the prior all need them; for K x D in the
        millions (sparse text-like data) recomputing them dominated an iteration.
        """
        if "logs" not in self._logs:
            self._logs["logs"] = log_means(self.means)
        return self._logs["logs"]

    def log_weights(self) -> np.ndarray:
        return floored_log(self.weights)

    def replace(self, **changes) -> BernoulliParams:
        values = dict(weights=self.weights, means=self.means)
        values.update(changes)
        return BernoulliParams(**values)


def log_means(means, dtype=None):
    """``(log mu, log(1 - mu))``, float64, floored at :func:`~emkit.kernels.bernoulli.log_floor`.

    One floor for every dtype of the passes over the data (``dtype`` is accepted and ignored),
    so the E-step, the bound and every later ``score_samples`` use the same model, whatever
    the dtype of the training data or of the data scored.
    """
    floor = kern.log_floor()
    means = np.asarray(means, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_mu = np.maximum(np.log(means), floor)
        log1m = np.maximum(np.log1p(-means), floor)
    return log_mu, log1m


@dataclass(frozen=True, eq=False)
class BernoulliStats:
    """Additive sufficient statistics of a Bernoulli mixture E-step (float64).

    ``nk[k] = sum_n w_n r_nk``, ``sx[k] = sum_n w_n r_nk x_n`` (K x D), ``log_evidence``
    (``sum_n w_n log p(x_n)``), ``entropy`` (``-sum_n w_n sum_k r_nk log r_nk``) and
    ``total_weight``. They add exactly (``a + b``), scale (``c * a``) and blend
    (``a.blend(rho, b)``) for stepwise EM.
    """

    nk: np.ndarray
    sx: np.ndarray
    log_evidence: float
    entropy: float
    total_weight: float

    def __add__(self, other):
        if not isinstance(other, BernoulliStats):
            return NotImplemented
        return BernoulliStats(
            self.nk + other.nk, self.sx + other.sx, self.log_evidence + other.log_evidence,
            self.entropy + other.entropy, self.total_weight + other.total_weight,
        )

    def __mul__(self, c):
        c = float(c)
        return BernoulliStats(
            c * self.nk, c * self.sx, c * self.log_evidence, c * self.entropy,
            c * self.total_weight,
        )

    __rmul__ = __mul__

    def blend(self, rho: float, other: BernoulliStats) -> BernoulliStats:
        """``(1 - rho) * self + rho * other`` (stepwise EM)."""
        return (1.0 - rho) * self + rho * other


@dataclass(frozen=True)
class _Prepared:
    W: np.ndarray  # D x (K + m): finite logit(mu).T, then the count columns, in the data's dtype
    c: np.ndarray  # K, log w_k + sum_d (finite) log(1 - mu_kd) in the data's dtype
    counts: kern.FloorCounts | None  # the exact-zero entries (None: there are none)
    complement: np.ndarray | None  # dense float32: columns whose zeros are summed directly
    zero_weight: np.ndarray  # K, bool: components of weight exactly 0


#: dense float32: columns with a mean above this get their zeros summed directly
#: (see :mod:`emkit.kernels.bernoulli`, precision of the statistics)
_COMPLEMENT_ABOVE = 7 / 8

#: target non-zeros per CSR block, and the cap on the per-block D x K accumulators (bytes)
_CSR_BLOCK_NNZ = 1 << 16
_CSR_ACCUMULATOR_BYTES = 1 << 26


@dataclass(frozen=True)
class BernoulliModel:
    """The Bernoulli mixture as EM sees it (configuration plus pure functions).

    Parameters
    ----------
    alpha : float
        Pseudo-count added to every mean's successes and failures (MAP under
        ``Beta(alpha + 1, alpha + 1)``); 0 is maximum likelihood.
    dtype : dtype
        Precision of the passes over the data (float32 or float64).
    block_size : int, optional
        Rows per block (default: dense blocks of about 2 MB of ``X``; CSR blocks of about
        2**16 non-zeros, at most as many as keep the per-block D x K sums within 64 MB).
    n_threads : int, optional
        Threads over row blocks (default: the usable CPU count).
    """

    alpha: float = 1.0
    dtype: np.dtype = np.dtype(np.float64)
    block_size: int | None = None
    n_threads: int | None = None

    # ------------------------------------------------------------------ preparation
    def prepare(self, params: BernoulliParams) -> _Prepared:
        """The product form's coefficients, computed once per E-step.

        Entries of the means that are exactly 0 or 1 (floored logs) are kept out of ``W`` and
        ``c`` and counted instead (:class:`~emkit.kernels.bernoulli.FloorCounts`), so no
        coefficient of size 708 enters the products (see :mod:`emkit.kernels.bernoulli`).
        """
        log_mu, log1m = params.logs()
        floor = kern.log_floor()
        counts = None
        # floored logs: log(mu) <= floor iff mu <= tiny; log(1 - mu) <= floor iff mu == 1
        means = params.means
        cols = np.flatnonzero(
            ((means <= np.finfo(np.float64).tiny) | (means >= 1.0)).any(axis=1)
        )
        if cols.size:
            z0, z1 = log_mu[cols] <= floor, log1m[cols] <= floor
            log_mu, log1m = log_mu.copy(), log1m.copy()
            log_mu[cols] = np.where(z0, 0.0, log_mu[cols])
            log1m[cols] = np.where(z1, 0.0, log1m[cols])
            counts = kern.FloorCounts(cols, z1.sum(axis=1).astype(self.dtype))
        W = (log_mu - log1m).T
        c = (params.log_weights() + log1m.sum(axis=1)).astype(self.dtype)
        if counts is not None:
            W = np.hstack([W, (z0.astype(np.float64) - z1).T])
        complement = None
        if np.dtype(self.dtype) == np.float32:
            complement = np.flatnonzero((params.means > _COMPLEMENT_ABOVE).any(axis=0))
        return _Prepared(np.ascontiguousarray(W, dtype=self.dtype), c, counts, complement,
                         params.weights <= 0)

    def _dense_block_size(self, d):
        if self.block_size is not None:
            return int(self.block_size)
        itemsize = np.dtype(self.dtype).itemsize
        return int(max(64, min(16384, (1 << 21) // max(1, d * itemsize))))

    def _csr_block_size(self, X, k):
        if self.block_size is not None:
            return int(self.block_size)
        n, d = X.shape
        if n == 0:
            return 1
        per_row = max(X.nnz / n, 1e-3)
        rows = int(max(1024, _CSR_BLOCK_NNZ / per_row))
        max_blocks = max(2, _CSR_ACCUMULATOR_BYTES // max(1, d * k * 8))  # float64 sums
        return max(rows, -(-n // max_blocks))

    # ------------------------------------------------------------------ EM interface
    def e_step(self, params: BernoulliParams, X, sample_weight=None, state=None):
        """One pass over ``X`` (dense or CSR): statistics at ``params`` (posterior Q, KL = 0)."""
        prep = self.prepare(params)
        n, d = X.shape
        k = params.n_components
        w = sample_weight
        # float64 weights, scaled by a power of two per block (see ``unit_weights``) where
        # they meet the data's dtype; the block's results are scaled back in float64
        def scaled(part, s):
            if s == 1.0:
                return part
            nk, sx, ll, ent = part
            return nk * s, sx.astype(np.float64) * s, ll * s, ent * s

        if sp.issparse(X):
            def block(sl):
                wb, s = (None, 1.0) if w is None else unit_weights(w[sl])
                return scaled(kern.csr_block_stats(X, sl.start, sl.stop, prep.W, prep.c, wb,
                                                   counts=prep.counts), s)

            parts = map_row_blocks(block, n, self._csr_block_size(X, k), self.n_threads)
            sxT = parts[0][1].copy()
            for p in parts[1:]:
                sxT += p[1]
            sx = np.ascontiguousarray(sxT.T)
        else:
            def block(sl):
                wb, s = (None, 1.0) if w is None else unit_weights(w[sl])
                return scaled(kern.dense_block_stats(X[sl], prep.W, prep.c, wb,
                                                     counts=prep.counts,
                                                     complement=prep.complement), s)

            parts = map_row_blocks(block, n, self._dense_block_size(d), self.n_threads)
            sx = parts[0][1].copy()
            for p in parts[1:]:
                sx += p[1]
        nk = parts[0][0].copy()
        for p in parts[1:]:
            nk += p[0]
        ll = math.fsum(p[2] for p in parts)
        ent = math.fsum(p[3] for p in parts)
        total = float(n if w is None else np.sum(w, dtype=np.float64))
        return BernoulliStats(nk, sx, ll, ent, total), None

    def stats_from_resp(self, X, resp, sample_weight=None) -> BernoulliStats:
        """Statistics for given responsibilities (initialisation); no evidence or entropy."""
        s = 1.0
        if sample_weight is None:
            Rw = resp
        else:  # float64 weights brought near one before they meet X's dtype
            w, s = unit_weights(sample_weight)
            Rw = resp * w[:, None]
        Rw = np.asarray(Rw, dtype=X.dtype)
        nk = Rw.sum(axis=0, dtype=np.float64) * s
        if sp.issparse(X):
            sx = kern.csr_weighted_sum(X, Rw).T.astype(np.float64) * s
        else:
            sx = (Rw.T @ X).astype(np.float64) * s
        total = float(X.shape[0] if sample_weight is None else np.sum(sample_weight))
        return BernoulliStats(nk, np.ascontiguousarray(sx), np.nan, np.nan, total)

    def m_step(self, stats: BernoulliStats) -> BernoulliParams:
        """Maximise the MAP objective from the statistics alone.

        ``mu_kd = (S_kd + alpha) / (N_k + 2 alpha)``, ``w_k = N_k / sum_j N_j``. A component
        with ``N_k + 2 alpha = 0`` (empty, ``alpha = 0``) gets means 0.5: its weight is 0, so
        any mean maximises the objective.
        """
        a = float(self.alpha)
        denom = stats.nk + 2.0 * a
        means = np.full(stats.sx.shape, 0.5)
        ok = denom > 0
        means[ok] = (stats.sx[ok] + a) / denom[ok, None]
        np.clip(means, 0.0, 1.0, out=means)
        nk = np.maximum(stats.nk, 0.0)
        weights = nk / nk.sum()
        return BernoulliParams(weights, means)

    def expected_complete_loglik(self, params: BernoulliParams, stats: BernoulliStats) -> float:
        """``E_Q[log p(X, Z | theta)]``, linear in the statistics."""
        log_mu, log1m = params.logs()
        nk = stats.nk
        return float(
            np.dot(nk, params.log_weights())
            + np.sum(stats.sx * log_mu)
            + np.sum((nk[:, None] - stats.sx) * log1m)
        )

    def log_prior(self, params: BernoulliParams) -> float:
        """``sum_kd log Beta(mu_kd | alpha + 1, alpha + 1)`` (0 for ``alpha = 0``)."""
        a = float(self.alpha)
        if a == 0.0:
            return 0.0
        log_mu, log1m = params.logs()
        return float(a * (np.sum(log_mu) + np.sum(log1m)) - log_mu.size * betaln(a + 1, a + 1))

    def roundoff_scale(self, params: BernoulliParams, stats: BernoulliStats) -> float:
        """Sum of the absolute values of the terms that make up the objective.

        ``|N_k log w_k| + sum_kd (S_kd |log mu_kd| + (N_k - S_kd) |log(1 - mu_kd)|)`` plus the
        entropy, the evidence and the prior: round-off is relative to these, not to the
        objective they sum to (the entropy cancels part of the log-likelihood terms).
        """
        log_mu, log1m = params.logs()
        nk, sx = stats.nk, stats.sx
        # each sum has terms of one sign (logs <= 0, 0 <= S_kd <= N_k up to round-off), so
        # its absolute value is the sum of the absolute values; no K x D temporaries
        total = (
            abs(np.dot(nk, params.log_weights()))
            + abs(np.vdot(sx, log_mu))
            + abs(np.dot(nk, log1m.sum(axis=1)) - np.vdot(sx, log1m))
        )
        ev = stats.log_evidence
        return float(
            total + abs(stats.entropy) + (abs(ev) if np.isfinite(ev) else 0.0)
            + abs(self.log_prior(params))
        )

    def elbo(self, params: BernoulliParams, stats: BernoulliStats) -> float:
        """The MAP objective ``E_Q[log p(X, Z | theta)] + H(Q) + log p(theta)``, from statistics.

        Equals ``stats.log_evidence + log_prior(params)`` when ``stats`` came from an E-step
        at ``params``.
        """
        return self.expected_complete_loglik(params, stats) + stats.entropy + self.log_prior(
            params
        )

    def objective(self, params: BernoulliParams, stats: BernoulliStats) -> float:
        """What :meth:`m_step` maximises: the MAP objective, i.e. :meth:`elbo`."""
        return self.elbo(params, stats)

    # ------------------------------------------------------------------ prediction
    def _prediction_blocks(self, params, X, fill):
        """Run ``fill(rows, P, prep)`` over row blocks of ``X``, with ``P = X[rows] @ W``."""
        prep = self.prepare(params)
        n, d = X.shape
        k = params.n_components
        if sp.issparse(X):
            zeros = np.zeros(prep.W.shape[1], dtype=prep.c.dtype)  # c is added by fill

            def block(sl):
                fill(sl, kern.csr_log_prob(X, prep.W, zeros, sl.start, sl.stop), prep)

            bs = self._csr_block_size(X, k)
        else:
            def block(sl):
                fill(sl, X[sl] @ prep.W, prep)

            bs = self._dense_block_size(d)
        map_row_blocks(block, n, bs, self.n_threads)

    def _as_model_dtype(self, X):
        if sp.issparse(X) and X.dtype != self.dtype:
            return X.astype(self.dtype)
        return X

    def log_prob(self, params: BernoulliParams, X) -> np.ndarray:
        """``log w_k + log p(x_n | mu_k)`` for every row (N x K, in ``self.dtype``), exactly.

        Unlike the fit, which floors ``log 0`` at :func:`~emkit.kernels.bernoulli.log_floor`
        to keep every log-probability finite, this is ``-inf`` where the probability is 0:
        a row with a 1 where ``mu_kd = 0`` (or a 0 where ``mu_kd = 1``), or a component of
        weight 0 (possible with ``alpha = 0``).

        ``X`` is used in ``self.dtype`` (a sparse ``X`` of another dtype has its non-zeros
        cast, never densified), so float32 data scored by a float64 model compute in float64.
        """
        X = self._as_model_dtype(X)
        k = params.n_components
        out = np.empty((X.shape[0], k), dtype=self.dtype)

        def fill(sl, P, prep):
            L = kern.add_floor_counts(P, k, prep.counts, prep.c, -np.inf)
            L[:, prep.zero_weight] = -np.inf
            out[sl] = L

        self._prediction_blocks(params, X, fill)
        return out

    def limit_log_prob(self, params: BernoulliParams, X) -> np.ndarray:
        """Unnormalised log-posterior of each row in the limit of vanishing zeros (N x K).

        Every probability that is exactly 0 (a mean of 0 or 1 met by a 1 or a 0) is read as
        the same ``eps``; as ``eps -> 0`` the posterior concentrates on the components with
        the fewest such features in the row, in proportion to ``w_k`` times the likelihood of
        the other features. Returns those components' finite log-probabilities and ``-inf``
        elsewhere (and for components of weight 0). For a row possible under some component
        this is :meth:`log_prob` itself; it differs for rows impossible under every component,
        whose posterior Bayes' rule leaves undefined (0 / 0).
        """
        X = self._as_model_dtype(X)
        k = params.n_components
        out = np.empty((X.shape[0], k), dtype=self.dtype)

        def fill(sl, P, prep):
            L = P[:, :k] + prep.c
            M = np.zeros_like(L)
            if prep.counts is not None:
                M[:, prep.counts.cols] = P[:, k:] + prep.counts.base
            M[:, prep.zero_weight] = np.inf
            L[M > M.min(axis=1, keepdims=True) + 0.5] = -np.inf
            L[:, prep.zero_weight] = -np.inf
            out[sl] = L

        self._prediction_blocks(params, X, fill)
        return out
