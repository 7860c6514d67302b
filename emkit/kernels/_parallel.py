"""Row-block map-reduce: one level of parallelism, BLAS held to one thread.

Kernels process one block of rows at a time. :func:`map_row_blocks` runs them on a small
persistent thread pool (the kernels release the GIL: NumPy's GEMM and ufuncs, and Numba
functions compiled with ``nogil=True``) while BLAS is limited to one thread, so the two levels
of parallelism are never nested. Results come back in block order, so any reduction the caller
does over them is in a fixed order and a fit is reproducible whatever the thread timing.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

__all__ = ["map_row_blocks", "row_blocks", "default_n_threads"]

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_threads = 0
_controller = None


def default_n_threads() -> int:
    """Threads for row blocks: ``EMKIT_NUM_THREADS`` if set, else the usable CPU count."""
    env = os.environ.get("EMKIT_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def row_blocks(n_rows: int, block_size: int) -> list[slice]:
    """Consecutive slices of at most ``block_size`` rows covering ``range(n_rows)``."""
    block_size = max(1, int(block_size))
    return [slice(i, min(i + block_size, n_rows)) for i in range(0, n_rows, block_size)]


def _get_executor(n_threads: int) -> ThreadPoolExecutor:
    global _executor, _executor_threads
    with _lock:
        if _executor is None or _executor_threads != n_threads:
            if _executor is not None:
                _executor.shutdown(wait=True)
            _executor = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="emkit")
            _executor_threads = n_threads
        return _executor


def _blas_single_thread():
    global _controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def map_row_blocks(func, n_rows: int, block_size: int, n_threads: int | None = None) -> list:
    """``[func(block) for block in row_blocks(n_rows, block_size)]``, blocks run in parallel.

    With more than one block and thread, blocks run on a thread pool with BLAS limited to one
    thread; the returned list is always in block order.
    """
    blocks = row_blocks(n_rows, block_size)
    n_threads = default_n_threads() if n_threads is None else max(1, int(n_threads))
    if len(blocks) <= 1 or n_threads == 1:
        return [func(b) for b in blocks]
    executor = _get_executor(n_threads)
    with _blas_single_thread():
        return list(executor.map(func, blocks))
