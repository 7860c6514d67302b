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
    W: np.ndarray  # D x K, logit(mu).T in the data's dtype
    c: np.ndarray  # K, log w_k + sum_d log(1 - mu_kd) in the data's dtype


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
        """The product form's coefficients, computed once per E-step."""
        log_mu, log1m = params.logs()
        W = np.ascontiguousarray((log_mu - log1m).T, dtype=self.dtype)
        c = (params.log_weights() + log1m.sum(axis=1)).astype(self.dtype)
        return _Prepared(W, c)

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
        max_blocks = max(2, _CSR_ACCUMULATOR_BYTES // max(1, d * k * X.dtype.itemsize))
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
                return scaled(kern.csr_block_stats(X, sl.start, sl.stop, prep.W, prep.c, wb), s)

            parts = map_row_blocks(block, n, self._csr_block_size(X, k), self.n_threads)
            sxT = parts[0][1].astype(np.float64)
            for p in parts[1:]:
                sxT += p[1]
            sx = np.ascontiguousarray(sxT.T)
        else:
            def block(sl):
                wb, s = (None, 1.0) if w is None else unit_weights(w[sl])
                return scaled(kern.dense_block_stats(X[sl], prep.W, prep.c, wb), s)

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
    def log_prob(self, params: BernoulliParams, X) -> np.ndarray:
        """``log w_k + log p(x_n | mu_k)`` for every row (N x K, in ``self.dtype``).

        ``X`` is used in ``self.dtype`` (a sparse ``X`` of another dtype has its non-zeros
        cast, never densified), so float32 data scored by a float64 model compute in float64.
        """
        if sp.issparse(X) and X.dtype != self.dtype:
            X = X.astype(self.dtype)
        prep = self.prepare(params)
        n, d = X.shape
        out = np.empty((n, params.n_components), dtype=self.dtype)
        if sp.issparse(X):
            def block(sl):
                kern.csr_log_prob(X, prep.W, prep.c, sl.start, sl.stop, out=out[sl])

            bs = self._csr_block_size(X, params.n_components)
        else:
            def block(sl):
                np.matmul(X[sl], prep.W, out=out[sl])
                out[sl] += prep.c

            bs = self._dense_block_size(d)
        map_row_blocks(block, n, bs, self.n_threads)
        return out
