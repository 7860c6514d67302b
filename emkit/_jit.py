"""One place for Numba's jit options.

Every kernel in :mod:`emkit.kernels` is an undecorated Python function compiled here, once, at
module level. Options and why they are set:

- ``cache=True``: compiled code is written to ``__pycache__`` so a second process loads it
  instead of recompiling (first-fit latency is part of the user's experience).
- ``nogil=True``: the kernels run on row blocks from a thread pool; releasing the GIL lets two
  blocks run at once.
- ``fastmath`` is off by default: emkit's log-space code uses ``-inf`` and ``fastmath`` assumes
  there is none. A kernel may turn it on only where no infinity or NaN can reach it.
- ``error_model="numpy"``: division by zero gives inf/NaN as in NumPy rather than raising,
  so kernels and their NumPy twins behave the same way.
"""

from __future__ import annotations

import numba

__all__ = ["jit"]


def jit(func=None, *, parallel: bool = False, fastmath: bool = False, inline: str = "never"):
    """Compile ``func`` with emkit's standard options (see the module docstring).

    ``inline="always"``: a small scalar helper inlined into its callers at Numba's IR level,
    so that a loop calling it stays one loop body that LLVM can vectorise.
    """

    def wrap(f):
        return numba.njit(
            cache=True,
            nogil=True,
            parallel=parallel,
            fastmath=fastmath,
            error_model="numpy",
            inline=inline,
        )(f)

    return wrap if func is None else wrap(func)
