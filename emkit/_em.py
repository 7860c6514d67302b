"""The one EM driver that every emkit model runs on.

A *model* is a small object of pure functions (see ``DESIGN.md``)::

    stats, state = model.e_step(params, X, sample_weight, state)  # one pass over the data
    params = model.m_step(stats)                                  # no data access
    value = model.elbo(params, stats)                             # no data access
    value = model.objective(params, stats)                        # what m_step maximises
    value = model.log_prior(params)                               # 0 for maximum likelihood
    value = model.roundoff_scale(params, stats)   # optional: size of the terms summed

``roundoff_scale`` (optional) is the sum of the absolute values of the terms that make up the
objective; round-off is relative to it, not to the (possibly much smaller) total. Without it
the objective itself and the total weight set the scale.

``stats`` carries ``log_evidence`` (``sum_n w_n log p(x_n | theta)``, NaN where intractable) and
``total_weight``. ``state`` is per-sample variational state that some models carry between
E-steps (LDA's gamma); mixtures return ``None``.

:func:`run_em` alternates the half-steps, records both in a :class:`~emkit.Trace`, checks every
half-step for a decrease beyond round-off, stops on a per-sample change below ``tol`` and ends on
an E-step, so the final statistics and bound belong to the final parameters.

Online (stepwise) EM, ``partial_fit``, runs one step per mini-batch with :func:`learning_rate`
and :func:`stepwise_update`; it makes no monotonicity promise, so it is not checked.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._exceptions import MonotonicityError, MonotonicityWarning
from ._trace import Trace

__all__ = [
    "IterationInfo",
    "EMResult",
    "run_em",
    "monotonic_rtol",
    "learning_rate",
    "stepwise_update",
    "gap_after_m",
    "CHECK_MONOTONIC",
]

CHECK_MONOTONIC = ("warn", "raise", "ignore")

#: relative decrease accepted as round-off for float64 work (issue: 1e-13 relative)
_RTOL_FLOAT64 = 1e-13


def monotonic_rtol(dtype) -> float:
    """Round-off tolerance, relative to the objective's size, for data of ``dtype``.

    1e-13 for float64, scaled by the ratio of machine epsilons for other float types
    (about 5e-5 for float32, whose GEMMs and exponentials carry ~1e-7 relative error).
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return _RTOL_FLOAT64 * float(np.finfo(dtype).eps / np.finfo(np.float64).eps)


def learning_rate(t, offset, decay) -> float:
    """Step size ``rho_t = (t + offset) ** -decay`` of online (stepwise) EM.

    ``t`` counts the steps from 1, ``offset`` (tau_0 >= 1) down-weights the early steps and
    ``decay`` (kappa in ``[0, 1]``; ``(0.5, 1]`` guarantees convergence) sets how fast the
    steps shrink (Hoffman, Blei & Bach 2010; Cappe & Moulines 2009).
    """
    return (offset + t) ** (-decay)


def stepwise_update(model, running_stats, batch_stats, scale, *, t, offset, decay):
    """Step ``t`` of stepwise EM: blend the scaled mini-batch statistics in, then M-step.

    ``running_stats <- (1 - rho_t) running_stats + rho_t (scale batch_stats)`` with
    ``rho_t = learning_rate(t, offset, decay)``, where ``scale`` brings the mini-batch to the
    size of the stream it stands for. Returns ``(params, running_stats)``.
    """
    rho = learning_rate(t, offset, decay)
    stats = running_stats.blend(rho, batch_stats * scale)
    return model.m_step(stats), stats


@dataclass(frozen=True)
class IterationInfo:
    """What the driver reports to the progress callback after every iteration.

    ``elbo`` is the per-sample bound after the iteration's E-step (at the new parameters);
    ``change`` is the per-sample change that the stopping rule tested (between the two E-steps
    before this iteration's M-step; ``inf`` on the first iteration).
    """

    init: int
    iteration: int
    elbo: float
    change: float
    seconds: float
    converged: bool


@dataclass
class EMResult:
    params: Any
    stats: Any
    state: Any
    trace: Trace
    converged: bool
    n_iter: int

    @property
    def lower_bound(self) -> float:
        return float(self.trace.elbo_after_e[-1])


def gap_after_m(model, new_log_evidence, log_prior, elbo_m, new_elbo_e) -> float:
    """The trace's ``kl``: the gap left by an M-step, which the next E-step closes.

    ``log p(X | theta_{t+1}) + log p(theta_{t+1}) - ELBO(Q_t, theta_{t+1})`` where the evidence
    is tractable. Where it is not (variational Bayes) but the model's E-step maximises the
    ELBO over Q(Z) exactly (``model.exact_q_z``), what can be said is the part of the gap the
    E-step closes, ``KL(Q_t(Z) || Q_{t+1}(Z)) = ELBO_{t+1} - ELBO(Q_t, theta_{t+1})``; else NaN.
    """
    kl = new_log_evidence + log_prior - elbo_m
    if np.isnan(kl) and getattr(model, "exact_q_z", False):
        kl = new_elbo_e - elbo_m
    return kl


def _roundoff_scale(model, params, stats, weight):
    fn = getattr(model, "roundoff_scale", None)
    return max(float(fn(params, stats)) if fn is not None else 0.0, weight)


def _check_step(before, after, *, scale, rtol, iteration, half, mode):
    """Complain if ``after`` is below ``before`` by more than round-off."""
    if mode == "ignore":
        return
    if not (np.isfinite(before) and np.isfinite(after)):
        if np.isnan(after) or (np.isfinite(before) and not np.isfinite(after)):
            msg = (
                f"EM iteration {iteration}: the {half}-step produced a non-finite objective "
                f"({after!r} after {before!r})."
            )
            if mode == "raise":
                raise MonotonicityError(msg)
            warnings.warn(msg, MonotonicityWarning, stacklevel=4)
        return
    drop = before - after
    allowed = rtol * max(abs(before), abs(after), scale)
    if drop > allowed:
        msg = (
            f"EM iteration {iteration}: the {half}-step lowered the objective by {drop:.3e} "
            f"(round-off allowance {allowed:.1e}). "
            "EM never lowers it, so this indicates a numerical problem: check for degenerate "
            "data, regularise more (reg_covar, alpha, priors), or use float64."
        )
        if mode == "raise":
            raise MonotonicityError(msg)
        warnings.warn(msg, MonotonicityWarning, stacklevel=4)


def run_em(
    model,
    X,
    sample_weight,
    params,
    *,
    max_iter: int,
    tol: float,
    check_monotonic: str = "warn",
    rtol: float = _RTOL_FLOAT64,
    callback: Callable[[IterationInfo], None] | None = None,
    init: int = 0,
    state=None,
) -> EMResult:
    """Run EM from ``params`` until the per-sample change of the bound is below ``tol``.

    Iteration ``n`` runs the M-step from the statistics of E-step ``n - 1`` and then E-step
    ``n``. As in scikit-learn, the run stops after iteration ``n`` when E-steps ``n - 1`` and
    ``n - 2`` differ by less than ``tol`` per sample (so ``n_iter`` and the returned
    parameters are scikit-learn's); unlike scikit-learn, the bound returned is that of E-step
    ``n``, i.e. of the returned parameters.

    Parameters
    ----------
    model : object
        Provides ``e_step``, ``m_step``, ``elbo``, ``objective`` and ``log_prior``.
    X, sample_weight :
        Validated data and weights (weights act as repeat counts).
    params :
        Initial parameters (``theta_0``).
    max_iter : int
        Maximum number of M-steps.
    tol : float
        Convergence threshold on the change of the per-sample bound between E-steps.
    check_monotonic : {"warn", "raise", "ignore"}
        What to do when a half-step lowers the objective beyond round-off.
    rtol : float
        Round-off tolerance relative to the objective (see :func:`monotonic_rtol`).
    callback : callable, optional
        Called with an :class:`IterationInfo` after every iteration. If it returns a true
        value the run stops after that iteration (a caller's own stopping rule, for example
        LDA's perplexity tolerance); ``converged`` is then left as computed from ``tol``.
    init : int
        Index of this initialisation, passed through to the trace and the callback.
    state :
        Variational state to warm-start the first E-step from (``None``: start afresh).
    """
    if check_monotonic not in CHECK_MONOTONIC:
        raise ValueError(
            f"check_monotonic must be one of {CHECK_MONOTONIC}, got {check_monotonic!r}."
        )
    t_start = time.perf_counter()
    rows: list[dict] = []

    stats, state = model.e_step(params, X, sample_weight, state)
    weight = float(stats.total_weight)
    scale = max(weight, 1e-300)
    elbo_e = float(model.elbo(params, stats))
    log_ev = float(stats.log_evidence)
    converged = False
    n_iter = 0
    prev_elbo_e = -np.inf

    for n_iter in range(1, max_iter + 1):
        # scikit-learn's rule: stop after the M-step of the iteration whose preceding E-step
        # changed the bound by less than tol; emkit then also runs the final E-step, so the
        # bound, labels and trace belong to the parameters it returns.
        change = (elbo_e - prev_elbo_e) / scale
        converged = abs(change) < tol
        new_params = model.m_step(stats)
        elbo_m = float(model.elbo(new_params, stats))
        size_m = _roundoff_scale(model, new_params, stats, weight)
        _check_step(
            float(model.objective(params, stats)),
            float(model.objective(new_params, stats)),
            scale=max(size_m, _roundoff_scale(model, params, stats, weight)),
            rtol=rtol, iteration=n_iter, half="M", mode=check_monotonic,
        )
        new_stats, state = model.e_step(new_params, X, sample_weight, state)
        new_elbo_e = float(model.elbo(new_params, new_stats))
        _check_step(
            elbo_m, new_elbo_e,
            scale=max(size_m, _roundoff_scale(model, new_params, new_stats, weight)),
            rtol=rtol, iteration=n_iter, half="E", mode=check_monotonic,
        )
        new_log_ev = float(new_stats.log_evidence)
        kl = gap_after_m(model, new_log_ev, float(model.log_prior(new_params)), elbo_m,
                         new_elbo_e)
        rows.append(
            dict(
                elbo_after_e=elbo_e / scale,
                elbo_after_m=elbo_m / scale,
                log_evidence=log_ev / scale,
                kl=kl / scale,
                seconds=time.perf_counter() - t_start,
            )
        )
        prev_elbo_e = elbo_e
        params, stats, elbo_e, log_ev = new_params, new_stats, new_elbo_e, new_log_ev
        stop = False
        if callback is not None:
            stop = bool(
                callback(
                    IterationInfo(
                        init=init,
                        iteration=n_iter,
                        elbo=elbo_e / scale,
                        change=change,
                        seconds=time.perf_counter() - t_start,
                        converged=converged,
                    )
                )
            )
        if converged or stop:
            break

    rows.append(
        dict(
            elbo_after_e=elbo_e / scale,
            elbo_after_m=np.nan,
            log_evidence=log_ev / scale,
            kl=np.nan,
            seconds=time.perf_counter() - t_start,
        )
    )
    trace = Trace.from_rows(rows, n_iter=n_iter, converged=converged, init=init)
    return EMResult(
        params=params, stats=stats, state=state, trace=trace, converged=converged,
        n_iter=n_iter,
    )
