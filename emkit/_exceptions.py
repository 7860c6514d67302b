"""Warnings and errors raised by emkit."""

from __future__ import annotations

__all__ = ["MonotonicityError", "MonotonicityWarning"]


class MonotonicityWarning(UserWarning):
    """An EM half-step lowered the objective by more than round-off.

    EM can only raise the ELBO: the E-step sets Q to the (best tractable) posterior, the M-step
    maximises over the parameters. A decrease larger than the round-off tolerance therefore
    points to a bug, a numerically degenerate problem, or float32 precision running out.
    """


class MonotonicityError(ArithmeticError):
    """Raised instead of :class:`MonotonicityWarning` when ``check_monotonic="raise"``."""
