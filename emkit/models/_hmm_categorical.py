"""Categorical emissions of a hidden Markov model, and the Dirichlet M-step (hmmlearn's) that
they share with the chain's start and transition probabilities (:mod:`emkit.models.hmm`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import hmm as kern
from ..kernels._parallel import scratch
from ._common import LOG_TINY, floored_log

__all__ = ["CategoricalEmission", "dirichlet_m_step", "dirichlet_log_prior"]


def dirichlet_m_step(counts, prior, old, axis=-1):
    """hmmlearn's update ``max(prior - 1 + counts, 0)`` normalised, zeros of ``old`` kept."""
    new = np.maximum(np.asarray(prior, dtype=np.float64) - 1.0 + counts, 0.0)
    if old is not None:
        new = np.where(old == 0, 0.0, new)
    total = new.sum(axis=axis, keepdims=True)
    total[total == 0] = 1.0
    return new / total


def dirichlet_log_prior(prior, probs):
    """``sum (prior - 1) log p`` (the Dirichlet log density up to its constant)."""
    if np.ndim(prior) == 0 and float(prior) == 1.0:  # hmmlearn's default: a flat prior
        return 0.0
    a = np.broadcast_to(np.asarray(prior, dtype=np.float64) - 1.0, probs.shape)
    nz = a != 0
    return float(np.sum(a[nz] * floored_log(probs)[nz]))



@dataclass(frozen=True)
class CategoricalEmission:
    """Categorical emissions: ``emissionprob`` (K x V); statistics K x V expected counts.

    With ``D > 1`` symbols per step (``x`` of shape (N, D), ``emissionprob`` K x D x V,
    statistics K x D x V) the channels are independent given the state: the emission
    probability is the product of the per-channel probabilities.
    """

    n_symbols: int
    emissionprob_prior: object = 1.0
    update: bool = True
    dtype: np.dtype = np.dtype(np.float64)

    def serial(self) -> CategoricalEmission:
        return self

    def features(self, E, x):
        """No per-block features to share between the passes (the protocol of
        :class:`~emkit.models.hmm.GaussianEmission`)."""
        return None

    def log_prob(self, E, x, features=None):
        if x.ndim == 1:
            return floored_log(E).T[x].astype(self.dtype)
        logE = floored_log(E)
        L = np.zeros((x.shape[0], E.shape[0]), dtype=np.float64)
        for d in range(x.shape[1]):
            L += logE[:, d, :].T[x[:, d]]
        return L.astype(self.dtype, copy=False)

    def scaled(self, E, x, reuse=False, features=None):
        """``exp(log_prob - its row maxima)`` and the maxima, by a gather: symbol ``v``'s
        column of ``E`` divided by its largest entry (floored as :meth:`log_prob` floors).
        With ``reuse`` both land in this thread's scratch memory (valid for the block)."""
        if x.ndim != 1:  # several channels: the product through log_prob
            L = np.ascontiguousarray(self.log_prob(E, x))
            return L, kern.row_max_exp(L)
        Ef = np.maximum(E, np.exp(LOG_TINY))
        top = Ef.max(axis=0)
        table = np.ascontiguousarray((Ef / top).T, dtype=self.dtype)
        n = x.shape[0]
        out = scratch("hmm-emission", (n, table.shape[1]), self.dtype) if reuse else None
        mx = scratch("hmm-emission-max", (n,), np.float64) if reuse else None
        return np.take(table, x, axis=0, out=out), np.take(np.log(top), x, out=mx)

    def stats(self, E, x, R, total_weight, features=None):
        if x.ndim == 1:
            return kern.symbol_counts(x, R, self.n_symbols).T
        return np.stack([kern.symbol_counts(np.ascontiguousarray(x[:, d]), R, self.n_symbols).T
                         for d in range(x.shape[1])], axis=1)

    def ecll_and_scale(self, E, counts):
        """``(sum counts log E, sum |counts log E|)``: the emissions' part of the bound and
        the size its round-off is relative to."""
        t = counts * floored_log(E)
        return float(np.sum(t)), float(np.sum(np.abs(t)))

    def m_step(self, counts, old):
        if not self.update:
            return old
        return dirichlet_m_step(counts, self.emissionprob_prior, None, axis=-1)

    def log_prior(self, E) -> float:
        return dirichlet_log_prior(self.emissionprob_prior, E)
