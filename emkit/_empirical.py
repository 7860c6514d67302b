"""The data an initialisation sees: the weighted empirical distribution of the rows.

A mixture's initialisation (k-means, k-means++, random responsibilities, seeds drawn from
the data) runs on the *distinct* rows of the data, each with the total weight of its copies,
in a canonical order (by a hash of the row's values), never on the rows as given. So it
depends on the data only through their weighted empirical distribution: the same whatever
the row order, and integer weights are the same as repeated rows (scikit-learn's
``check_sample_weight_equivalence``). With more rows than the initialisation may see, a
random subset of the distinct rows is kept, each one decided by its own hash salted from
``random_state``, so the subset too is a function of the distribution (and the same in
memory and on dask, block by block).

Two 64-bit mixes (splitmix64's finaliser) of a row's bit pattern, ``-0.0`` read as ``0.0``:
the canonical order is by :func:`row_hashes`, of the values rounded to float32 (float64 data
and their float32 copy in the same order), rows with equal hashes compared value by value, so
a collision can never merge two different rows (it falls back to an exact sort by value); the
subsample is by :func:`row_keys`, salted, of the exact values, so distinct rows have distinct
keys even when they are equal in float32 (rows of a 1e9-scale timestamp would otherwise share
a few keys, and all be kept), and the cut to ``max_rows`` breaks a tie of keys by value: the
subsample never has more than ``max_rows`` rows.
"""

from __future__ import annotations

import numpy as np

from .kernels._parallel import map_row_blocks

__all__ = ["row_hashes", "row_keys", "KeySketch", "Selection", "sketch_block", "select_block",
           "distinct_rows", "cut_rows", "merge_selected", "empirical_rows", "initial_rows"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SEED = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(h):
    """splitmix64's finaliser, in place on a uint64 array (wrapping arithmetic)."""
    h ^= h >> _S30
    h *= _M1
    h ^= h >> _S27
    h *= _M2
    h ^= h >> _S31
    return h


def row_hashes(Xb) -> np.ndarray:
    """A 64-bit hash of each row's values rounded to float32 (``-0.0`` as ``0.0``), one
    pass per feature.

    Rows equal value for value get equal hashes, whatever their position; rounding to
    float32 first gives float64 data and their float32 copy the same hashes, so the same
    canonical order (rows that differ only beyond float32 share a hash and are told apart by
    value, see :func:`distinct_rows`).
    """
    with np.errstate(over="ignore"):
        Xb = np.asarray(Xb, dtype=np.float32) + np.float32(0)  # -0.0 + 0.0 is +0.0
    return _hash_words(np.ascontiguousarray(Xb).view(np.uint32), _SEED)


def row_keys(Xb, salt) -> np.ndarray:
    """The selection key of each row: a 64-bit hash of its exact values (as float64,
    ``-0.0`` as ``0.0``) seeded with ``salt``.

    A function of the row's values only (the same for float32 data and their float64 copy);
    rows that differ in any bit of float64 get unrelated keys, so the keys of the distinct
    rows are (pseudo-)uniform, as the :class:`KeySketch` sizing assumes.
    """
    Xb = np.asarray(Xb, dtype=np.float64) + 0.0
    seed = _mix(np.array([_SEED ^ np.uint64(salt)], dtype=np.uint64))[0]
    return _hash_words(np.ascontiguousarray(Xb).view(np.uint64), seed)


def _hash_words(words, seed):
    """Each row's words (unsigned integers, one per feature) folded into a 64-bit hash."""
    h = np.full(words.shape[0], seed, dtype=np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j].astype(np.uint64)
        _mix(h)
    return h


class KeySketch:
    """The ``k`` smallest distinct salted keys seen (a k-minimum-values sketch).

    Adding two sketches keeps the ``k`` smallest of both, so it sums over row blocks in any
    order and grouping (threads, dask's tree) to the same value, a function of the set of
    distinct rows only. With fewer than ``k`` keys it holds them all (the exact count of
    distinct rows); else the ``k``-th smallest key estimates it (relative error about
    ``1 / sqrt(k)``).
    """

    def __init__(self, keys, k):
        self.k = int(k)
        keys = np.unique(keys)
        self.keys = keys[: self.k].copy()  # not a view holding every key of a block

    def __add__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        return KeySketch(np.concatenate([self.keys, other.keys]), self.k)

    __radd__ = __add__

    def threshold(self, max_rows: int, slack: float = 1.1):
        """A key below which about ``slack * max_rows`` distinct rows fall (``None``: there
        are at most ``max_rows`` distinct rows, keep them all)."""
        if self.keys.size < self.k:
            return None if self.keys.size <= max_rows else int(self.keys[max_rows])
        kth = float(self.keys[-1])
        t = kth * slack * max_rows / (self.k - 1)
        return None if t >= 2.0**64 else int(t)


def sketch_block(Xb, wb, salt, k):
    """:class:`KeySketch` of the keys (:func:`row_keys`) of a block's rows with positive
    weight."""
    if wb is not None:
        Xb = Xb[np.asarray(wb) > 0]
    return KeySketch(row_keys(Xb, salt), k)


class Selection:
    """Distinct rows in canonical order, their total weights and hashes, cut to the
    ``max_rows`` of smallest key (:func:`cut_rows`; None: all of them).

    Additive: the sum of two selections is the selection of the union of their rows (the
    ``max_rows`` smallest of a union are among the ``max_rows`` smallest of each part, and a
    row kept has all its copies' weight). So a dask input sums the blocks' selections in a
    tree of tasks like statistics, and no task, and not the client, holds more than
    ``FAN_IN`` selections of at most ``max_rows`` rows, however many blocks repeat a row.
    """

    def __init__(self, Xu, wu, hu, salt, max_rows):
        keep = _cut_mask(Xu, salt, max_rows)
        if keep is not None:
            Xu, wu, hu = Xu[keep], wu[keep], hu[keep]
        self.X, self.w, self.h, self.salt, self.max_rows = Xu, wu, hu, salt, max_rows

    def __add__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        Xu, wu, hu, _ = distinct_rows(np.concatenate([self.X, other.X]),
                                      np.concatenate([self.w, other.w]),
                                      np.concatenate([self.h, other.h]))
        return Selection(Xu, wu, hu, self.salt, self.max_rows)

    __radd__ = __add__


def select_block(Xb, wb, salt, threshold, max_rows=None):
    """:class:`Selection` of the block's distinct rows with positive weight whose key
    (:func:`row_keys`) is below ``threshold`` (None: all of them), a row's copies merged so
    that each travels once."""
    keep = None
    if threshold is not None:
        keep = row_keys(Xb, salt) < np.uint64(threshold)
    if wb is not None:
        pos = np.asarray(wb) > 0
        keep = pos if keep is None else keep & pos
    if keep is not None:
        Xb = Xb[keep]
        wb = None if wb is None else np.asarray(wb)[keep]
    Xu, wu, hu, _ = distinct_rows(Xb, wb, row_hashes(Xb))
    return Selection(Xu, wu, hu, salt, max_rows)


def distinct_rows(X, w, h):
    """``(Xu, wu, hu, repeated)``: the distinct rows of ``X`` (hashes ``h``) in canonical
    order, the total weight of each (``w`` None: counts), their hashes, and whether any row
    had a copy."""
    if X.shape[0] == 0:  # a block with no row of positive weight (or none selected)
        return X[:0].copy(), np.zeros(0), h[:0], False
    order = np.argsort(h)  # equal hashes are equal rows (else resolved by value below)
    hs = h[order]
    same = hs[1:] == hs[:-1]
    if np.any(same):
        i = np.flatnonzero(same)
        if not np.all(X[order[i]] == X[order[i + 1]]):
            # rows that share a hash but differ (equal in float32, or a 64-bit collision):
            # the order is by hash, then by value
            Xn = X + X.dtype.type(0)
            order = np.lexsort(tuple(Xn[:, j] for j in range(X.shape[1] - 1, -1, -1)) + (h,))
            Xo = Xn[order]
            same = (h[order][1:] == h[order][:-1]) & np.all(Xo[1:] == Xo[:-1], axis=1)
    start = np.flatnonzero(np.concatenate([[True], ~same]))
    if w is None:
        wu = np.diff(np.append(start, len(order))).astype(np.float64)
    else:
        wu = np.add.reduceat(np.asarray(w, dtype=np.float64)[order], start)
    Xu = X[order[start]]
    Xu += Xu.dtype.type(0)  # a copy: -0.0 read as 0.0, whichever copy came first
    return Xu, wu, h[order[start]], start.size < X.shape[0]


def _cut_mask(Xu, salt, max_rows):
    """The rows :func:`cut_rows` keeps (None: all)."""
    if max_rows is None or Xu.shape[0] <= max_rows:
        return None
    keys = row_keys(Xu, salt)
    cut = np.partition(keys, max_rows - 1)[max_rows - 1]
    keep = keys < cut
    room = max_rows - np.count_nonzero(keep)
    tied = np.flatnonzero(keys == cut)  # almost always one row; else the smallest values
    if tied.size > room:
        Xt = Xu[tied]
        tied = tied[np.lexsort(tuple(Xt[:, j] for j in range(Xt.shape[1] - 1, -1, -1)))]
    keep[tied[:room]] = True
    return keep


def cut_rows(Xu, wu, *, salt, max_rows):
    """``(Xu, wu)`` cut to the ``max_rows`` distinct rows (``Xu``: in canonical order,
    ``-0.0`` read as ``0.0``) of smallest key (:func:`row_keys`), a tie of keys broken by
    value: a function of the set of rows, kept in canonical order (all of them if no more,
    or ``max_rows`` None)."""
    keep = _cut_mask(Xu, salt, max_rows)
    return (Xu, wu) if keep is None else (Xu[keep], wu[keep])  # canonical order is kept


def merge_selected(parts, *, salt=0, max_rows=None):
    """``(Xu, wu)``: :func:`distinct_rows` over the blocks' :func:`select_block` results
    (in memory: one sort of them all), cut to at most ``max_rows`` rows by :func:`cut_rows`."""
    Xs = np.concatenate([p.X for p in parts])
    hs = np.concatenate([p.h for p in parts])
    ws = np.concatenate([p.w for p in parts])
    Xu, wu, _, _ = distinct_rows(Xs, ws, hs)
    return cut_rows(Xu, wu, salt=salt, max_rows=max_rows)


#: keys in the sketch that sizes the subsample (about 3% error on the number kept)
SKETCH_KEYS = 1024


def empirical_rows(X, sample_weight, *, max_rows, salt, row_sum=None):
    """The initialisation's data: ``(Xu, wu)``, the distinct rows with positive weight in
    canonical order and their total weights (counts without ``sample_weight``); above
    ``max_rows`` distinct rows only ``max_rows`` of them, those of smallest key
    (:func:`row_keys`, a tie by value: :func:`cut_rows`); one pass sizes the selection with
    a :class:`KeySketch`, one selects.

    ``row_sum(func, *args)`` runs a per-block function over the blocks, summed; by default
    over row blocks of in-memory ``X`` on emkit's threads (where the blocks' selections are
    merged by one sort instead). A dask input passes its own: the blocks' selections are
    then summed in a tree of tasks where they live, each cut to ``max_rows``, and the client
    receives one selection.
    """
    n, d = X.shape
    bs = max(256, (1 << 20) // (8 * max(d, 1)))
    w = sample_weight

    def gather(func, *args):
        return map_row_blocks(
            lambda sl: func(X[sl], None if w is None else w[sl], *args), n, bs)

    if row_sum is None:
        def row_sum(func, *args):
            return sum(gather(func, *args))

    threshold = None
    if n > max_rows:
        threshold = row_sum(sketch_block, salt, SKETCH_KEYS).threshold(max_rows)
    if threshold is None and hasattr(X, "__array__"):
        # all rows of an in-memory array: hash them by blocks, find the copies in one sort
        h = np.concatenate(map_row_blocks(lambda sl: row_hashes(X[sl]), n, bs))
        if w is not None:
            pos = np.asarray(w) > 0
            if not np.all(pos):  # zero weights: those rows are not in the distribution
                X, w, h = X[pos], np.asarray(w)[pos], h[pos]
        Xu, wu = distinct_rows(X, w, h)[:2]
        return cut_rows(Xu, wu, salt=salt, max_rows=max_rows)
    if not hasattr(X, "__array__"):  # rows of a dask array: a tree of bounded merges
        sel = row_sum(select_block, salt, threshold, max_rows)
        return sel.X, sel.w
    parts = gather(select_block, salt, threshold, max_rows)
    return merge_selected(parts, salt=salt, max_rows=max_rows)


def initial_rows(X, sample_weight, max_rows, n_components, random_state):
    """``(Xu, wu)`` for a mixture's initialisation: :func:`empirical_rows` of in-memory or
    dask rows (``X``: an array or :class:`emkit._dask.DaskRows`, whose passes run where its
    blocks live), the salt drawn from ``random_state`` only when subsampling (so below
    ``max_rows`` rows the draws are scikit-learn's); ``wu`` None when no weights were given
    and no row repeats (scikit-learn's unweighted draws on those rows). None when there are
    fewer distinct rows than components: the caller uses the rows as given."""
    from ._dask import on_dask

    n = X.shape[0]
    salt = 0
    if n > max_rows:
        hi, lo = random_state.randint(0, 2**32, size=2, dtype=np.int64)
        salt = (int(hi) << 32) | int(lo)
    blocks = {}
    if on_dask(X):
        blocks = dict(row_sum=X.map_reduce)
    Xu, wu = empirical_rows(X, sample_weight, max_rows=max_rows, salt=salt, **blocks)
    if Xu.shape[0] < n_components:
        return None
    weighted = sample_weight is not None or (on_dask(X) and X.w is not None)
    if not weighted and n <= max_rows and np.all(wu == 1.0):
        wu = None
    return Xu, wu
