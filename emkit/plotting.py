"""Plots of EM traces (optional: needs matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_trace"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "emkit's plots need matplotlib: pip install 'emkit[plot]'"
        ) from exc
    return plt


def plot_trace(trace, ax=None, *, show_kl: bool = True, label: str | None = None):
    """Plot the ELBO after every E-step and M-step as a staircase, and the KL gap.

    The E-step (vertical rise onto the log-evidence) closes the KL gap; the M-step lifts the
    bound. With ``show_kl`` a second axis shows the gap each E-step closes, on a log scale.

    Returns the matplotlib axes.
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    n = len(trace)
    x = np.repeat(np.arange(n), 2)[:-1] + np.tile([0.0, 0.5], n)[:-1]
    ax.plot(x, trace.elbo, drawstyle="steps-post", label=label or "ELBO (E then M)")
    ax.plot(np.arange(n), trace.elbo_after_e, "o", ms=3, label="after E-step")
    if np.any(np.isfinite(trace.log_evidence)):
        ax.plot(np.arange(n), trace.log_evidence, ":", lw=1, label="log-evidence")
    ax.set_xlabel("iteration")
    ax.set_ylabel("per-sample bound")
    if show_kl and np.any(np.isfinite(trace.kl[:-1])) and n > 1:
        ax2 = ax.twinx()
        kl = np.clip(trace.kl[:-1], 1e-300, None)
        ax2.semilogy(np.arange(n - 1) + 0.5, kl, "r--", lw=1, label="KL gap")
        ax2.set_ylabel("KL(Q || posterior) after M-step", color="r")
    ax.legend(loc="lower right")
    return ax
