"""The progress parameters every emkit estimator shares: ``verbose`` printing as
scikit-learn's mixtures print (:class:`VerbosePrinter`), and the checks and chaining of
``verbose``, ``callback`` and ``check_monotonic`` (:class:`ProgressMixin`)."""

from __future__ import annotations

import sys
import time

import numpy as np

from ._em import CHECK_MONOTONIC, IterationInfo
from ._validation import check_choice, check_int

__all__ = ["ProgressMixin", "VerbosePrinter"]


class VerbosePrinter:
    """The progress callback behind ``verbose``: prints what scikit-learn's mixtures print."""

    def __init__(self, verbose: int, verbose_interval: int = 10, stream=None):
        self.verbose = verbose
        self.verbose_interval = max(1, int(verbose_interval))
        self.stream = stream
        self._t_init = time.perf_counter()
        self._t_iter = self._t_init

    def _print(self, msg):
        print(msg, file=self.stream or sys.stdout)

    def begin_init(self, init: int) -> None:
        if self.verbose >= 1:
            self._print(f"Initialization {init}")
        self._t_init = self._t_iter = time.perf_counter()

    def __call__(self, info: IterationInfo) -> None:
        if self.verbose < 1 or info.iteration % self.verbose_interval != 0:
            return
        if self.verbose == 1:
            self._print(f"  Iteration {info.iteration}")
        else:
            now = time.perf_counter()
            self._print(
                f"  Iteration {info.iteration}\t time lapse {now - self._t_iter:.5f}s\t "
                f"ll change {info.change:.5f}"
            )
            self._t_iter = now

    def end_init(self, lower_bound: float, converged: bool) -> None:
        if self.verbose < 1:
            return
        state = "converged" if converged else "did not converge"
        if self.verbose == 1:
            self._print(f"Initialization {state}.")
        else:
            self._print(
                f"Initialization {state}. time lapse {time.perf_counter() - self._t_init:.5f}s"
                f"\t lower bound {lower_bound:.5f}."
            )


class ProgressMixin:
    """The progress parameters every emkit estimator has, checked and chained in one place:
    ``verbose`` (and ``verbose_interval`` where present), ``callback``, ``check_monotonic``.
    :class:`BaseEM` builds on it; so does LatentDirichletAllocation, whose loop is its own."""

    def _check_progress(self, allow_bool_verbose=False):
        """``verbose`` may be a bool where the estimator's reference takes one."""
        verbose = self.verbose
        if allow_bool_verbose and isinstance(verbose, (bool, np.bool_)):
            verbose = int(verbose)
        check_int(verbose, "verbose", low=0)
        check_int(getattr(self, "verbose_interval", 1), "verbose_interval", low=1)
        check_choice(self.check_monotonic, "check_monotonic", CHECK_MONOTONIC)
        if self.callback is not None and not callable(self.callback):
            raise ValueError(f"callback must be callable or None, got {self.callback!r}.")

    def _chained(self, printer):
        """``printer`` (called with the driver's :class:`IterationInfo` and any extra
        arguments) followed by the user's ``callback`` (called with the info only)."""
        user_cb = self.callback

        def callback(info, *extra):
            printer(info, *extra)
            if user_cb is not None:
                user_cb(info)

        return callback
