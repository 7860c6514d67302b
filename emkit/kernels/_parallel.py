"""Row-block map-reduce: one level of parallelism, BLAS held to one thread.

Kernels process one block of rows at a time. :func:`map_row_blocks` runs them on a small
persistent thread pool (the kernels release the GIL: NumPy's GEMM and ufuncs, and Numba
functions compiled with ``nogil=True``) while BLAS is limited to one thread, so the two levels
of parallelism are never nested. Results come back in block order, so any reduction the caller
does over them is in a fixed order and a fit is reproducible whatever the thread timing.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

__all__ = [
    "map_row_blocks", "row_blocks", "default_n_threads", "n_jobs_threads", "blas_single_thread",
    "scratch", "small_kmeans",
]

_lock = threading.Lock()
_executors: dict[int, ThreadPoolExecutor] = {}
_controller = None


def _reset_after_fork() -> None:
    """A forked child inherits the pools' objects but not their threads: start afresh."""
    global _lock, _executors, _controller
    _lock = threading.Lock()
    _executors = {}
    _controller = None
    for held in (_BLAS, _OPENMP):
        held.depth, held.limiter = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


_local = threading.local()


def scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` owned by the calling thread, reused across calls.

    For a block kernel's temporaries: the same memory serves every block a thread runs, so
    large temporaries are not returned to the operating system and faulted in again per
    block (which is what glibc does when ``MALLOC_TRIM_THRESHOLD_`` is set, as dask's workers
    set it: measured 2.4x slower E-steps). Its contents are undefined; a caller must not keep
    it, or anything viewing it, beyond the block that asked for it.
    """
    dtype = np.dtype(dtype)
    size = math.prod(int(v) for v in shape)  # (np.prod costs microseconds per call)
    arrays = getattr(_local, "arrays", None)
    if arrays is None:
        arrays = _local.arrays = {}
    buf = arrays.get((name, dtype))
    if buf is None or buf.size < size:
        buf = arrays[(name, dtype)] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def default_n_threads() -> int:
    """Threads for row blocks: ``EMKIT_NUM_THREADS`` if set, else the usable CPU count."""
    env = os.environ.get("EMKIT_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def n_jobs_threads(n_jobs) -> int:
    """Threads for an estimator's ``n_jobs``, counted as emkit counts them.

    ``None`` is one thread, a positive value that many, and a negative value counts back from
    :func:`default_n_threads` as joblib does (``-1`` all of them, ``-2`` all but one), at least
    one; zero is a ValueError. The threads are emkit's own pool, never joblib's processes, so
    this is the same inside a multiprocessing worker or a daemon process (where joblib's
    ``effective_n_jobs`` falls back to one with a warning).
    """
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning: use None or 1 for one thread, -1 for all.")
    if n_jobs < 0:
        return max(1, default_n_threads() + 1 + n_jobs)
    return n_jobs


def row_blocks(n_rows: int, block_size: int) -> list[slice]:
    """Consecutive slices of at most ``block_size`` rows covering ``range(n_rows)``."""
    block_size = max(1, int(block_size))
    return [slice(i, min(i + block_size, n_rows)) for i in range(0, n_rows, block_size)]


def _get_executor(n_threads: int) -> ThreadPoolExecutor:
    """One persistent pool per thread count (never shut down under a concurrent caller)."""
    with _lock:
        ex = _executors.get(n_threads)
        if ex is None:
            ex = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="emkit")
            _executors[n_threads] = ex
        return ex


def _get_controller():
    """threadpoolctl's controller (its library scan once per process); call under ``_lock``."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


#: ``n * d * k`` up to which scikit-learn's k-means runs on one OpenMP thread (a Lloyd
#: iteration of about a millisecond or less)
SMALL_KMEANS = 1 << 21


class _HeldLimit:
    """A threadpoolctl limit of one thread for ``user_api``, held process-wide while any
    caller is inside :meth:`hold` (re-entrant, safe across threads): the first caller in
    sets it, the last one out restores the original thread counts."""

    def __init__(self, user_api: str):
        self.user_api = user_api
        self.depth = 0
        self.limiter = None

    @contextmanager
    def hold(self):
        with _lock:
            self.depth += 1
            if self.depth == 1:
                try:
                    self.limiter = _get_controller().limit(limits=1, user_api=self.user_api)
                except Exception:  # pragma: no cover - never fail a fit over a thread limit
                    self.limiter = None
        try:
            yield
        finally:
            with _lock:
                self.depth -= 1
                if self.depth == 0 and self.limiter is not None:
                    self.limiter.restore_original_limits()
                    self.limiter = None


_BLAS = _HeldLimit("blas")
_OPENMP = _HeldLimit("openmp")


@contextmanager
def small_kmeans(n_rows: int, n_features: int, n_clusters: int):
    """One OpenMP thread for a scikit-learn k-means (an initialisation's) this small.

    There the OpenMP threads' start-up and spin-waiting is all their cost, and on a busy
    machine a thread waits at every barrier for one that is descheduled: measured on the
    shared 2-core machine (load 3.6, ``KMeans(n_init=10)``) 1,000 x 1, K = 3: 0.043 s with
    two threads, 0.019 s with one; 5,000 x 1, K = 5: 1.0 s against 0.032 s; 20,000 x 4,
    K = 8: 6.7 s against 0.5 s. The results are the same. Larger k-means keep their threads.
    Re-entrant and safe across threads as :func:`blas_single_thread` (the first small
    k-means in sets the limit, the last one out restores it).
    """
    if n_rows * max(n_features, 1) * n_clusters > SMALL_KMEANS:
        yield
        return
    with _OPENMP.hold():
        yield


@contextmanager
def blas_single_thread():
    """Hold BLAS to one thread for the duration (re-entrant, safe across threads).

    Process-wide: the first caller in sets the limit, the last one out restores the original
    thread counts, so concurrent fits never see BLAS released under them. Wrap a whole fit in
    it, not only each pass: OpenBLAS's workers spin for a while after every call made with more
    threads, and a spinning BLAS pool between two E-steps contends with the row-block threads
    of the next one (measured: E-steps 45-60 ms instead of 33 ms).
    """
    with _BLAS.hold():
        yield


def _run_chunk(func, blocks, combine):
    if combine is None:
        return [func(b) for b in blocks]
    acc = func(blocks[0])
    for b in blocks[1:]:
        acc = combine(acc, func(b))
    return [acc]


def map_row_blocks(
    func,
    n_rows: int,
    block_size: int,
    n_threads: int | None = None,
    *,
    combine=None,
    blocks_per_task: int = 16,
) -> list:
    """``[func(block) for block in row_blocks(n_rows, block_size)]``, blocks run in parallel.

    Blocks are small (sized for the cache); a thread-pool task runs a run of consecutive
    blocks so the pool's overhead is paid per task, not per block. With more than one task and
    thread, tasks run on the pool with BLAS limited to one thread. The result is in block order.

    With ``combine``, each task folds its blocks' results left to right with
    ``combine(acc, result)`` and the list holds one value per task of ``blocks_per_task``
    blocks. The tasks are cut the same way whatever the number of threads, so a reduction over
    the list in order gives the same bits on one thread or many.
    """
    blocks = row_blocks(n_rows, block_size)
    n_threads = default_n_threads() if n_threads is None else max(1, int(n_threads))
    if combine is not None:
        per_task = max(1, int(blocks_per_task))
    else:
        per_task = max(1, -(-len(blocks) // (4 * n_threads)))
    tasks = [blocks[i : i + per_task] for i in range(0, len(blocks), per_task)]
    if len(tasks) <= 1 or n_threads == 1:
        out = []
        for t in tasks:
            out.extend(_run_chunk(func, t, combine))
        return out
    executor = _get_executor(n_threads)
    with blas_single_thread():
        parts = list(executor.map(lambda t: _run_chunk(func, t, combine), tasks))
    return [r for part in parts for r in part]
