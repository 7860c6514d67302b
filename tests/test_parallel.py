"""The row-block thread pool: fork safety, concurrent fits, BLAS limits."""

import multiprocessing as mp
import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from emkit import GaussianMixture
from emkit.kernels._parallel import blas_single_thread, map_row_blocks

X = np.random.default_rng(0).normal(size=(6000, 4))


def _fit(seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(2, random_state=seed, max_iter=5, init_params="random").fit(
            X
        ).lower_bound_


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_fit_in_a_forked_child_after_the_parent_used_the_pool():
    parent = _fit(1)
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        child = pool.apply_async(_fit, (1,)).get(timeout=60)
    assert child == parent


def test_concurrent_fits_equal_sequential_and_restore_blas_threads():
    before = _blas_threads()
    expected = [_fit(s) for s in range(4)]
    results = [None] * 4

    def run(i):
        results[i] = _fit(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected
    assert _blas_threads() == before


def test_blas_limit_is_held_until_the_last_user_leaves():
    before = _blas_threads()
    with blas_single_thread():
        with blas_single_thread():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before


def test_combine_folds_fixed_tasks_independent_of_thread_count():
    def f(sl):
        return np.arange(sl.start, sl.stop, dtype=np.float64).sum()

    a = map_row_blocks(f, 1000, 7, 1, combine=lambda x, y: x + y, blocks_per_task=5)
    b = map_row_blocks(f, 1000, 7, 2, combine=lambda x, y: x + y, blocks_per_task=5)
    assert a == b and len(a) == -(-143 // 5) and sum(a) == sum(range(1000))
    assert map_row_blocks(f, 10, 3, 2) == [3.0, 12.0, 21.0, 9.0]


def test_small_kmeans_limits_openmp_reentrantly():
    """One OpenMP thread inside small_kmeans for a small k-means, nested or overlapping
    contexts restore the original count only when the last one leaves; a large k-means keeps
    its threads."""
    import sklearn.cluster  # noqa: F401 (loads scikit-learn's OpenMP runtime)

    from emkit.kernels._parallel import SMALL_KMEANS, small_kmeans

    def omp():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]

    before = omp()
    if not before:
        pytest.skip("no OpenMP runtime loaded")
    a, b = small_kmeans(100, 2, 3), small_kmeans(100, 2, 3)
    a.__enter__()
    assert set(omp()) == {1}
    b.__enter__()
    a.__exit__(None, None, None)
    assert set(omp()) == {1}  # b still holds the limit
    b.__exit__(None, None, None)
    assert omp() == before
    with small_kmeans(SMALL_KMEANS, 2, 3):
        assert omp() == before
