"""Input of the hidden Markov models: ``lengths`` (and scikit-learn's ``y`` in its place),
weights, probability vectors, and hmmlearn's ``monitor_``.

``fit(X, lengths)`` is how hmmlearn users call ``fit``, positionally; scikit-learn calls
``fit(X, y)`` and requires the second parameter to be named ``y``. :func:`lengths_from` serves
both: the second positional argument is read as ``lengths`` whenever it is a valid lengths
vector, and as scikit-learn's (ignored) target when it is one value per row that is not.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from sklearn.utils.validation import _num_samples

__all__ = [
    "ConvergenceMonitor", "monitor_of", "check_lengths", "lengths_from", "check_probs",
    "check_hmm_weights", "check_symbols", "check_symbol_range", "gaussian_block",
    "symbol_block", "BlockFacts", "gaussian_facts", "symbol_facts",
]


class ConvergenceMonitor:
    """hmmlearn's ``monitor_``: ``history`` (the log-likelihood before every M-step), ``iter``,
    ``converged``. Unlike hmmlearn's, a fall of the log-likelihood is never convergence: it is
    a :class:`~emkit.MonotonicityWarning` (or error) naming the iteration and half-step."""

    def __init__(self, tol, n_iter, verbose):
        self.tol, self.n_iter, self.verbose = tol, n_iter, verbose
        self.history = deque()
        self.iter = 0
        self.converged = False

    def __repr__(self):
        return (f"ConvergenceMonitor(history={list(self.history)}, iter={self.iter}, "
                f"n_iter={self.n_iter}, tol={self.tol}, converged={self.converged})")


def monitor_of(estimator):
    """``monitor_`` of a fitted HMM, read off its trace (so it is saved with it)."""
    monitor = ConvergenceMonitor(estimator.tol, estimator.n_iter, estimator.verbose)
    # hmmlearn's history: the log-likelihood before every M-step
    scale = estimator._history_scale_
    monitor.history.extend(float(v) * scale for v in estimator.trace_.log_evidence[:-1])
    monitor.iter, monitor.converged = estimator.trace_.n_iter, estimator.trace_.converged
    return monitor


def _is_lengths(a, n_rows) -> bool:
    """Whether ``a`` is a valid lengths vector for ``n_rows`` rows."""
    return (
        a.ndim == 1 and a.size > 0 and a.dtype.kind in "iuf" and bool(np.all(np.isfinite(a)))
        and bool(np.all(a > 0)) and bool(np.all(a == np.round(a))) and a.sum() == n_rows
    )


def lengths_from(y, lengths, X):
    """The ``lengths`` of a call ``fit(X, y, lengths=...)`` / ``score(X, y, lengths=...)``.

    - ``lengths`` given by keyword: it is used and ``y`` is ignored.
    - else ``y`` (the second positional argument, hmmlearn's ``lengths``) is ``lengths`` when
      it is a valid lengths vector (positive integers summing to ``n_samples``);
    - else, when it has one entry per row, it is scikit-learn's target ``y`` and ignored
      (an unsupervised estimator's ``y``);
    - anything else is passed on as ``lengths``, so :func:`check_lengths` names the problem.

    The one array both a lengths vector and a per-row target is ``n_samples`` ones: it is read
    as lengths (every row its own sequence), as hmmlearn would.
    """
    if lengths is not None or y is None:
        return lengths
    a = np.asarray(y)
    if a.dtype.kind in "iuf" and _is_lengths(a, _num_samples(X)):
        return a
    if a.ndim >= 1 and a.shape[0] == _num_samples(X):
        return None
    return y


def check_lengths(lengths, n_rows):
    """``starts`` (S + 1 offsets) from ``lengths``: positive integers summing to ``n_rows``."""
    if lengths is None:
        return np.array([0, n_rows], dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D array, got shape {lengths.shape}.")
    if lengths.dtype.kind not in "iu":
        if lengths.dtype.kind != "f" or not np.all(np.isfinite(lengths)) or np.any(
            lengths != np.round(lengths)
        ):
            raise ValueError(f"lengths must be integers, got {lengths!r}.")
    lengths = lengths.astype(np.int64)
    if np.any(lengths <= 0):
        raise ValueError(f"lengths must be positive, got {lengths[lengths <= 0][:5]} among them.")
    if lengths.sum() != n_rows:
        raise ValueError(
            f"lengths sum to {int(lengths.sum())} but X has {n_rows} rows: they must be equal."
        )
    return np.concatenate([[0], np.cumsum(lengths)])


def check_probs(p, name, shape):
    """``p`` as float64 of ``shape``, finite, non-negative, summing to one along the last
    axis (a ValueError naming ``name`` otherwise)."""
    p = np.asarray(p, dtype=np.float64)
    if p.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {p.shape}.")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be finite and non-negative.")
    s = p.sum(axis=-1)
    if not np.allclose(s, 1.0):
        what = "must sum to 1" if p.ndim == 1 else "rows must sum to 1"
        raise ValueError(f"{name} {what} (got {np.round(s, 6)}).")
    return p


def check_hmm_weights(sample_weight, n_sequences, n_rows):
    """``(per-sequence weights, per-observation weights)``, either None.

    ``sample_weight`` has one entry per sequence (an integer weight equals repeating the
    sequence), or one per row (observation ``t`` with weight ``w_t`` counts as ``w_t``
    observations of the same step: its emission density is raised to the power ``w_t``,
    and a zero weight makes the step unobserved). When every sequence has length one, the
    two readings have the same shape and the per-sequence one is used.
    """
    if sample_weight is None:
        return None, None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "iufb":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}.")
    w = w.astype(np.float64)
    if w.shape not in ((n_sequences,), (n_rows,)):
        raise ValueError(
            f"sample_weight needs one weight per sequence ({n_sequences}) or one per row "
            f"({n_rows}), got shape {w.shape}."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative.")
    if not np.any(w > 0):
        raise ValueError("sample_weight sums to zero: at least one weight must be positive.")
    if w.shape == (n_sequences,):
        return w, None
    return None, w


# ---------------------------------------------------------------- blocks of a dask array
def check_symbols(X):
    """Symbols of a validated 2-D array as int64: whole numbers (integer dtype or integral
    floats), non-negative."""
    if X.dtype.kind not in "iu":
        if X.dtype.kind != "f" or np.any(X != np.round(X)):
            raise ValueError(
                f"Symbols must be integers, got dtype {X.dtype} with non-integer values."
            )
    x = X.astype(np.int64)
    if x.size and x.min() < 0:
        raise ValueError(
            f"Negative values in data passed to CategoricalHMM: symbols are integers "
            f"0..n_features - 1, got {x.min()}."
        )
    return x


def check_symbol_range(x, n_symbols):
    """ValueError unless the (non-negative) symbols ``x`` are below ``n_symbols``."""
    if x.size and x.max() >= n_symbols:
        raise ValueError(
            f"Symbols must be in 0..{n_symbols - 1} (n_features = {n_symbols}); got "
            f"{x.min()}..{x.max()}."
        )


def gaussian_block(Xb, dtype):
    """One block of a dask array for GaussianHMM: float ``dtype``, NaN (missing) allowed,
    infinity a ValueError (the in-memory checks and messages)."""
    from sklearn.utils import check_array

    return check_array(Xb, dtype=dtype, ensure_all_finite="allow-nan", ensure_min_samples=0)


def symbol_block(Xb, dtype=None, n_symbols=None):
    """One block of a dask array for CategoricalHMM: int64 symbols (N,) or (N, D), below
    ``n_symbols`` if given (a fitted model's)."""
    from sklearn.utils import check_array

    x = check_symbols(check_array(Xb, ensure_min_samples=0))
    if n_symbols is not None:
        check_symbol_range(x, n_symbols)
    return x[:, 0] if x.shape[1] == 1 else x


@dataclass(frozen=True)
class BlockFacts:
    """What a fit needs to know of its rows before it starts, summed over dask blocks: rows,
    total row weight, per feature the observed (non-NaN) count, sum and sum of squares, and
    the largest symbol."""

    n: float
    weight: float
    count: np.ndarray
    total: np.ndarray
    squares: np.ndarray
    top: int = -1

    def __add__(self, other):
        return BlockFacts(self.n + other.n, self.weight + other.weight,
                          self.count + other.count, self.total + other.total,
                          self.squares + other.squares, max(self.top, other.top))

    def center_and_spread(self):
        """Mean and root-mean-square deviation per feature, over the observed entries."""
        count = np.maximum(self.count, 1.0)
        center = self.total / count
        return center, np.sqrt(np.maximum(self.squares / count - center**2, 0.0))

    @property
    def missing(self) -> bool:
        return bool(np.any(self.count < self.n))


def _weight_of(n, wb):
    from .._validation import block_summary

    block_summary(np.empty((n, 0)), wb)  # bad weights raise here, as in memory
    return float(n if wb is None else np.sum(wb, dtype=np.float64))


def gaussian_facts(Xb, wb):
    obs = ~np.isnan(Xb)
    Xz = np.where(obs, Xb, 0.0).astype(np.float64)
    return BlockFacts(float(len(Xb)), _weight_of(len(Xb), wb), obs.sum(axis=0).astype(float),
                      Xz.sum(axis=0), (Xz * Xz).sum(axis=0))


def symbol_facts(xb, wb):
    z = np.zeros(1)
    top = int(xb.max()) if xb.size else -1
    return BlockFacts(float(len(xb)), _weight_of(len(xb), wb), z, z, z, top)
