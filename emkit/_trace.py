"""The per-iteration record of an EM run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Trace"]

_FIELDS = ("elbo_after_e", "elbo_after_m", "log_evidence", "kl", "seconds")


@dataclass
class Trace:
    """History of one EM run (one initialisation), in per-sample units.

    Row ``t`` describes the E-step run with the parameters ``theta_t`` (``t = 0`` are the
    initial parameters, ``t = n_iter`` the final ones) and the M-step that followed it.
    All values are weighted means over the samples, the units of ``score``.

    An online run (``partial_fit``) has one row per step instead, each about its own
    mini-batch (the E-step before the step and the M-step of the step; no final row), and
    no monotonicity promise: see the estimators' ``partial_fit``.

    Attributes
    ----------
    elbo_after_e : ndarray of shape (n_iter + 1,)
        ELBO (for MAP models: ELBO plus log prior) right after the E-step with ``theta_t``.
        For exact EM the E-step closes the gap, so this equals ``log_evidence`` (plus the log
        prior). ``elbo_after_e[-1]`` belongs to the final parameters and equals
        ``lower_bound_``.
    elbo_after_m : ndarray of shape (n_iter + 1,)
        ELBO after the M-step that followed E-step ``t``: the new parameters ``theta_{t+1}``
        evaluated on the statistics of E-step ``t``. NaN in the last row (no M-step followed).
    log_evidence : ndarray of shape (n_iter + 1,)
        ``log p(X | theta_t)`` per sample; NaN where it is intractable (LDA).
    kl : ndarray of shape (n_iter + 1,)
        ``KL(Q_t || p(Z | X, theta_{t+1}))`` per sample: the gap left after M-step ``t``, which
        the next E-step closes. NaN in the last row, and where the evidence is intractable;
        for variational Bayes (BayesianGaussianMixture: intractable evidence, exact Q(Z)
        updates) the part of the gap the E-step closes, ``KL(Q_t(Z) || Q_{t+1}(Z))``.
    seconds : ndarray of shape (n_iter + 1,)
        Wall-clock seconds since the start of this run when row ``t`` was complete.
    n_iter : int
        Number of M-steps taken.
    converged : bool
        Whether the per-sample change of the objective fell below ``tol``.
    init : int
        Index of the initialisation this trace belongs to.
    """

    elbo_after_e: np.ndarray = field(default_factory=lambda: np.empty(0))
    elbo_after_m: np.ndarray = field(default_factory=lambda: np.empty(0))
    log_evidence: np.ndarray = field(default_factory=lambda: np.empty(0))
    kl: np.ndarray = field(default_factory=lambda: np.empty(0))
    seconds: np.ndarray = field(default_factory=lambda: np.empty(0))
    n_iter: int = 0
    converged: bool = False
    init: int = 0

    @classmethod
    def from_rows(cls, rows: list[dict], *, n_iter: int, converged: bool, init: int) -> Trace:
        arrays = {f: np.array([r[f] for r in rows], dtype=np.float64) for f in _FIELDS}
        return cls(**arrays, n_iter=n_iter, converged=converged, init=init)

    def extended(self, row: dict, *, n_iter: int, converged: bool) -> Trace:
        """A new trace with ``row`` appended (online EM: one row per ``partial_fit`` step)."""
        arrays = {f: np.append(getattr(self, f), np.float64(row[f])) for f in _FIELDS}
        return Trace(**arrays, n_iter=n_iter, converged=converged, init=self.init)

    def __len__(self) -> int:
        return len(self.elbo_after_e)

    @property
    def elbo(self) -> np.ndarray:
        """The interleaved sequence ``e0, m0, e1, m1, ..., e_n`` that EM never lowers."""
        seq = np.empty(2 * len(self) - 1) if len(self) else np.empty(0)
        seq[0::2] = self.elbo_after_e
        seq[1::2] = self.elbo_after_m[:-1]
        return seq

    def to_dict(self) -> dict:
        """Columns as plain lists (JSON-friendly)."""
        out = {f: getattr(self, f).tolist() for f in _FIELDS}
        out.update(n_iter=self.n_iter, converged=self.converged, init=self.init)
        return out

    def table(self) -> str:
        """A fixed-width text table of the trace, one row per E-step."""
        head = f"{'iter':>4}  {'elbo_after_e':>14}  {'elbo_after_m':>14}  {'log_evidence':>14}"
        head += f"  {'kl':>11}  {'seconds':>8}"
        lines = [head]
        for t in range(len(self)):
            lines.append(
                f"{t:>4}  {self.elbo_after_e[t]:>14.6f}  {self.elbo_after_m[t]:>14.6f}  "
                f"{self.log_evidence[t]:>14.6f}  {self.kl[t]:>11.3e}  {self.seconds[t]:>8.3f}"
            )
        return "\n".join(lines)

    def plot(self, ax=None, **kwargs):
        """Plot both half-steps of the ELBO against the iteration (needs matplotlib)."""
        from .plotting import plot_trace

        return plot_trace(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        last = self.elbo_after_e[-1] if len(self) else float("nan")
        return (
            f"Trace(init={self.init}, n_iter={self.n_iter}, converged={self.converged}, "
            f"final_elbo={last:.6g})"
        )
