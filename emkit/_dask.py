"""Fitting on dask arrays: E-steps where the blocks live, statistics tree-summed, M-step here.

Every emkit E-step returns additive statistics (``DESIGN.md``), so a fit on a dask array is
the in-memory fit with one change: the E-step of each row block runs as a dask task where the
block lives, the blocks' statistics are added in a fixed binary tree (also as dask tasks), and
only the sum comes back to the client, where the M-step runs. Per iteration, the parameters go
out (once per worker) and one statistics value per block is reduced on the workers; the data
never move. Per-block variational state (LDA's document factors) stays on the workers as
persisted dask objects between iterations.

This module is imported only when a dask collection is passed: importing emkit never imports
dask. It runs on whatever scheduler dask would use: a ``distributed.Client`` when one is
active (``Client("tcp://host:8786")``), dask's local threads otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

__all__ = ["is_dask_collection", "DaskRows", "DaskModel", "lazy_rows", "weighted_mean",
           "check_features", "validated_rows", "em_model", "on_dask", "E_STEP_PREFIX",
           "sequence_chunks", "sequence_blocks", "check_dask_feature_names"]

#: key prefix of the E-step tasks (one per block per iteration), for counting on a scheduler
E_STEP_PREFIX = "emkit-e-step"


def is_dask_collection(X) -> bool:
    """Whether ``X`` is a dask array or dataframe (checked without importing dask)."""
    return type(X).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(
        X, "__dask_graph__"
    )


def _as_dask_array(X, name="X"):
    """A 2-D (or 1-D for weights) dask array with known row chunks; dataframes by value."""
    import dask.array as da

    if hasattr(X, "to_dask_array"):  # dask DataFrame / Series
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise ValueError(f"{name} must be a dask array or dataframe, got {type(X).__name__}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    return X


#: statistics values added by one task of the reduction tree
FAN_IN = 8


def _sum(values):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def _tree_sum(items, token):
    """Sum ``items`` (delayed) in a fixed tree of dask tasks, ``FAN_IN`` values per task."""
    from dask import delayed

    level = 0
    while len(items) > 1:
        items = [
            delayed(_sum)(items[i : i + FAN_IN], dask_key_name=f"emkit-sum-{token}-{level}-{j}")
            for j, i in enumerate(range(0, len(items), FAN_IN))
        ]
        level += 1
    return items[0]


def _apply_block(func, convert, Xb, wb, *args):
    return func(convert(Xb), wb, *args)


class _Inline:
    """An argument carried inside each task (dask does not look into it)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


#: values whose pickle is at most this many bytes travel inside every task that uses them;
#: larger ones (LDA's K x V topics) are one key that the workers fetch once each
INLINE_BYTES = 64 << 10


def _shared(value, token, what):
    """``value`` as a task argument: inline when small, else a key of its own."""
    import pickle

    from dask import delayed

    if len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)) <= INLINE_BYTES:
        return _Inline(value)
    return delayed(value, name=f"emkit-{what}-{token}", traverse=False)


def _value(v):
    return v.value if isinstance(v, _Inline) else v


def _e_step_block(model, params, convert, Xb, wb, state):
    return _value(model).e_step(_value(params), convert(Xb), wb, state)


def _stats_block(model, params, convert, Xb, wb):
    return _value(model).e_step(_value(params), convert(Xb), wb, None)[0]


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _take_block(convert, Xb, wb, local):
    Xb = convert(Xb)
    return Xb[local], None if wb is None else np.asarray(wb, dtype=np.float64)[local]


def _framed(method, columns, Xb):
    import pandas as pd

    return method(pd.DataFrame(Xb, columns=columns))


def _identity(Xb):
    return Xb


def check_features(estimator, rows, *, reset):
    """What scikit-learn's ``validate_data`` does with the columns, for dask input: on
    ``reset`` set ``n_features_in_`` (and ``feature_names_in_`` from a dataframe's string
    column names), else refuse a different number of features."""
    d = rows.shape[1]
    if not reset:
        if d != estimator.n_features_in_:
            raise ValueError(
                f"X has {d} features, but {type(estimator).__name__} is expecting "
                f"{estimator.n_features_in_} features as input."
            )
        return
    estimator.n_features_in_ = d
    if rows.feature_names is not None:
        estimator.feature_names_in_ = rows.feature_names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def check_dask_feature_names(estimator, X, *, reset):
    """scikit-learn's own feature-name check (``validate_data``'s) on a dask collection's
    column names alone (scikit-learn does not read a dask dataframe's): on ``reset`` set or
    clear ``feature_names_in_``, else warn or raise on a mismatch as it does for pandas."""
    from sklearn.utils.validation import _check_feature_names

    columns = getattr(X, "columns", None)
    if columns is None:
        header = np.empty((0, 0))
    else:
        import pandas as pd

        header = pd.DataFrame(columns=list(columns))
    _check_feature_names(estimator, header, reset=reset)


def _distributed_client():
    """The active ``distributed.Client``, or None (dask's local schedulers)."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - dask without distributed
        return None
    try:
        return default_client()
    except ValueError:
        return None


def one_thread(model):
    """``model`` with its kernels on one thread, unless dask runs the tasks one at a time.

    On a cluster or dask's thread pool the parallelism is the blocks' tasks (one level, as
    everywhere in emkit; the workers' BLAS is single-threaded); under the synchronous
    scheduler the kernels keep their threads.
    """
    import dask.local
    from dask.base import get_scheduler

    if getattr(model, "n_threads", 1) == 1 or get_scheduler() is dask.local.get_sync:
        return model
    return replace(model, n_threads=1)


_SIZEOF_REGISTERED = []


def _register_sizeof():
    """Tell dask how big emkit's statistics and states are (their arrays' bytes), so the
    scheduler's placement and memory accounting see them as they are."""
    if _SIZEOF_REGISTERED:
        return
    from dataclasses import fields

    from dask.sizeof import sizeof

    from .models.bernoulli import BernoulliStats
    from .models.gaussian import GaussianStats
    from .models.lda import Corpus, DocState, LDAStats

    def size(obj):
        return sum(sizeof(getattr(obj, f.name)) for f in fields(obj))

    for cls in (GaussianStats, BernoulliStats, LDAStats, DocState, Corpus):
        sizeof.register(cls)(size)
    _SIZEOF_REGISTERED.append(True)


class DaskRows:
    """The rows of a fit that live in the blocks of a dask array.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
        Chunked by rows (column chunks are merged); dense or scipy.sparse blocks.
    sample_weight : array-like or dask array of shape (n_samples,), optional
        Brought to X's row chunks.
    chunk_rows : int, optional
        Re-cut the row blocks to this many rows (the last may be shorter).
    convert : callable, optional
        Applied to every block where it lives before any model function sees it (the
        estimator's per-block validation and conversion: dtype, binarisation, CSR). Must be
        picklable (a module-level function or a ``functools.partial`` of one).
    """

    def __init__(self, X, sample_weight=None, convert=None, chunk_rows=None):
        import dask.array as da

        _register_sizeof()
        columns = getattr(X, "columns", None)
        self.feature_names = None
        if columns is not None and len(columns) and all(isinstance(c, str) for c in columns):
            self.feature_names = np.asarray(columns, dtype=object)
        if not is_dask_collection(X) and is_dask_collection(sample_weight):
            # in-memory rows with weights on dask: cut the rows as the weights are cut
            wchunks = _as_dask_array(sample_weight, "sample_weight").chunks[0]
            X = da.from_array(X, chunks=(wchunks, -1), asarray=not hasattr(X, "tocsr"))
        X = _as_dask_array(X)
        if chunk_rows is not None:
            X = X.rechunk({0: int(chunk_rows)})
        if 0 in X.chunks[0] and X.shape[0] > 0:
            # empty blocks (a boolean filter leaves them) carry nothing: drop them
            X = X.rechunk({0: tuple(c for c in X.chunks[0] if c > 0)})
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D dask array, got {X.ndim} dimension(s).")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        self.X = X
        self.dtype = np.dtype(X.dtype)
        self.n_positive_weights = None
        self.convert = _identity if convert is None else convert
        self.row_chunks = tuple(int(c) for c in X.chunks[0])
        self.offsets = np.concatenate([[0], np.cumsum(self.row_chunks)]).astype(np.int64)
        w = None
        if sample_weight is not None:
            if is_dask_collection(sample_weight):
                w = _as_dask_array(sample_weight, "sample_weight")
                if w.shape != (X.shape[0],):
                    raise ValueError(
                        f"sample_weight.shape == {w.shape}, expected ({X.shape[0]},)!"
                    )
                w = w.rechunk((self.row_chunks,))
            else:
                arr = np.asarray(sample_weight, dtype=np.float64)
                if arr.shape != (X.shape[0],):
                    raise ValueError(
                        f"sample_weight.shape == {arr.shape}, expected ({X.shape[0]},)!"
                    )
                w = da.from_array(arr, chunks=(self.row_chunks,))
        self.w = w
        self._blocks = list(X.to_delayed().ravel())
        self._wblocks = [None] * len(self._blocks) if w is None else list(w.to_delayed().ravel())

    # ---------------------------------------------------------------- facts
    @property
    def shape(self):
        return (int(self.X.shape[0]), int(self.X.shape[1]))

    @property
    def n_docs(self) -> int:
        return self.shape[0]

    @property
    def n_features(self) -> int:
        return self.shape[1]

    @property
    def n_blocks(self) -> int:
        return len(self._blocks)

    def with_convert(self, convert, dtype=None) -> DaskRows:
        """The same blocks seen through a per-block conversion (giving ``dtype``).

        The conversion runs where each block lives, in every pass. With a ``distributed``
        client active the blocks (and the weights) are persisted on the workers first (a
        no-op for an already persisted array): an iterative fit reads them every iteration,
        and the graph each iteration submits then names them instead of carrying the data
        (a ``da.from_array`` of an in-memory array would otherwise travel to the scheduler
        every time). They are released with this object; a lost worker's blocks are
        recomputed from their lineage. Without a cluster nothing is persisted, so nothing
        is held in memory.
        """
        out = object.__new__(DaskRows)
        out.__dict__.update(self.__dict__)
        out.convert = convert
        out.dtype = self.dtype if dtype is None else np.dtype(dtype)
        client = _distributed_client()
        if client is not None:
            import dask
            from distributed import futures_of, wait

            n = len(self._blocks)
            persisted = dask.persist(*self._blocks, *(w for w in self._wblocks if w is not None))
            out._blocks = list(persisted[:n])
            if self.w is not None:
                out._wblocks = list(persisted[n:])
            # every E-step visits every block: spread them evenly over the workers once, so
            # no worker carries more of each iteration than the others
            futures = futures_of(list(persisted))
            wait(futures)
            if len(client.scheduler_info(n_workers=-1)["workers"]) > 1:
                client.rebalance(futures)
        return out

    # ---------------------------------------------------------------- passes
    def map_reduce(self, func, *args, name="emkit-map"):
        """``sum_b func(convert(X_b), w_b, *args)`` over the blocks, summed on the workers."""
        import dask
        from dask import delayed

        token = uuid.uuid4().hex[:12]
        shared = [delayed(a, name=f"emkit-arg-{token}-{i}", traverse=False)
                  for i, a in enumerate(args)]
        parts = [
            delayed(_apply_block)(func, self.convert, xb, wb, *shared,
                                  dask_key_name=f"{name}-{token}-{i}")
            for i, (xb, wb) in enumerate(zip(self._blocks, self._wblocks, strict=True))
        ]
        (total,) = dask.compute(_tree_sum(parts, token))
        return total

    def e_step(self, model, params, state=None, blocks=None, keep_state=True):
        """The model's E-step on every block (or the blocks ``blocks``), statistics summed.

        ``state`` is a list of per-block states (persisted dask objects) or None. Returns
        ``(stats, state)``; the new state stays on the workers (``None`` for models without
        one, or with ``keep_state=False``).
        """
        import dask
        from dask import delayed

        token = uuid.uuid4().hex[:12]
        model = one_thread(model)
        m, p = _shared(model, token, "model"), _shared(params, token, "params")
        idx = range(self.n_blocks) if blocks is None else list(blocks)
        if not (keep_state and getattr(model, "has_state", False)):
            # no state to keep: each task returns its block's statistics only
            stats = [
                delayed(_stats_block)(m, p, self.convert, self._blocks[i], self._wblocks[i],
                                      dask_key_name=f"{E_STEP_PREFIX}-{token}-{i}")
                for i in idx
            ]
            (result,) = dask.compute(_tree_sum(stats, token))
            return result, None
        states = [None] * self.n_blocks if state is None else state
        outs = [
            delayed(_e_step_block)(m, p, self.convert, self._blocks[i], self._wblocks[i],
                                   states[i], dask_key_name=f"{E_STEP_PREFIX}-{token}-{i}")
            for i in idx
        ]
        # the state stays where it was computed; only the statistics travel to be summed
        stats = [delayed(_first)(o, dask_key_name=f"emkit-stats-{token}-{j}")
                 for j, o in enumerate(outs)]
        new = [delayed(_second)(o, dask_key_name=f"emkit-state-{token}-{j}")
               for j, o in enumerate(outs)]
        *new, total = dask.persist(*new, _tree_sum(stats, token))
        (result,) = dask.compute(total)
        return result, new

    def take(self, indices):
        """Rows ``indices`` (sorted, unique) and their weights, gathered to the client."""
        import dask
        import scipy.sparse as sp
        from dask import delayed

        indices = np.asarray(indices, dtype=np.int64)
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        parts = []
        for b in np.unique(which):
            local = indices[which == b] - self.offsets[b]
            parts.append(delayed(_take_block)(self.convert, self._blocks[b], self._wblocks[b],
                                              local))
        got = dask.compute(*parts)
        xs = [g[0] for g in got]
        Xs = sp.vstack(xs, format="csr") if sp.issparse(xs[0]) else np.concatenate(xs)
        ws = None if self.w is None else np.concatenate([g[1] for g in got])
        return Xs, ws


@dataclass(frozen=True)
class DaskModel:
    """A model whose E-step runs on the blocks of :class:`DaskRows` (the driver's view).

    The driver calls ``e_step(params, X, sample_weight, state)`` as for any model; ``X`` and
    ``sample_weight`` are ignored (they are ``rows``', or only the row blocks ``blocks``: a
    mini-batch). Everything else is the model's.
    """

    model: object
    rows: DaskRows
    blocks: tuple | None = None

    def e_step(self, params, X=None, sample_weight=None, state=None):
        return self.rows.e_step(self.model, params, state, blocks=self.blocks)

    def __getattr__(self, name):
        # everything but the E-step is the model's (M-step, bound, objective, priors, ...)
        if name in ("model", "rows", "blocks"):
            raise AttributeError(name)
        return getattr(self.model, name)


def on_dask(X) -> bool:
    """Whether ``X`` is the rows of a dask array (:class:`DaskRows`)."""
    return isinstance(X, DaskRows)


def em_model(model, X):
    """The model the driver runs on ``X``: the E-step on its dask blocks when it has them."""
    return DaskModel(model, X) if on_dask(X) else model


def validated_rows(estimator, X, sample_weight, *, reset, converter, summary, dtype=None,
                   chunk_rows=None, min_rows=1):
    """The rows of a dask input, validated block by block where they live (one pass).

    Checks the columns as ``validate_data`` does (:func:`check_features`) and the number of
    rows, then sees every block through ``converter(dtype)`` (the estimator's per-block
    validation and conversion; ``dtype`` defaults to the fit dtype of X's) and sums
    ``summary(block, weights)`` over the blocks, which raises on bad data as the in-memory
    checks do. Returns ``(rows, totals)``.
    """
    from ._validation import fit_dtype

    rows = DaskRows(X, sample_weight, chunk_rows=chunk_rows)
    check_features(estimator, rows, reset=reset)
    n = rows.shape[0]
    if n < min_rows:
        raise ValueError(
            f"Found array with {n} sample(s) while a minimum of {min_rows} is required."
        )
    dtype = fit_dtype(rows.dtype) if dtype is None else np.dtype(dtype)
    rows = rows.with_convert(converter(dtype), dtype)
    return rows, rows.map_reduce(summary, name="emkit-check")


# ---------------------------------------------------------------------------- sequences
def sequence_chunks(row_chunks, starts):
    """Row chunks whose boundaries are sequence boundaries: each of ``row_chunks``' interior
    boundaries moved forward to the next sequence start (``starts``: S + 1 offsets), so every
    block holds whole sequences and keeps about its size (a sequence longer than a block is a
    block of its own)."""
    offsets = np.concatenate([[0], np.cumsum(row_chunks)]).astype(np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    moved = starts[np.searchsorted(starts, offsets[1:-1], side="left")]
    cuts = np.unique(np.concatenate([[0], moved, [offsets[-1]]]))
    return tuple(int(c) for c in np.diff(cuts))


def _sequences_block(convert, Xb, wb, local_starts):
    from .models.hmm import Sequences

    return Sequences(convert(Xb), local_starts,
                     None if wb is None else np.asarray(wb, dtype=np.float64))


def sequence_blocks(rows: DaskRows, starts, seq_weight=None) -> DaskRows:
    """``rows`` (validated, chunked at sequence boundaries: :func:`sequence_chunks`) seen as
    blocks of whole sequences, for a hidden Markov model's E-step.

    Each block becomes a :class:`~emkit.models.hmm.Sequences` where it lives (its rows
    converted, its local sequence starts, the rows' weights as per-observation weights);
    the per-sequence weights ``seq_weight`` (in memory, one per sequence) travel with the
    block's task as the E-step's ``sample_weight``. Sequence statistics add over blocks like
    row statistics, so the driver runs unchanged on :class:`DaskModel`.
    """
    from dask import delayed

    starts = np.asarray(starts, dtype=np.int64)
    token = uuid.uuid4().hex[:12]
    blocks, wblocks = [], []
    for i, (xb, wb) in enumerate(zip(rows._blocks, rows._wblocks, strict=True)):
        a, b = int(rows.offsets[i]), int(rows.offsets[i + 1])
        s0, s1 = (int(v) for v in np.searchsorted(starts, [a, b]))
        if starts[s0] != a or starts[s1] != b:
            raise ValueError(
                f"Block {i} of X (rows {a}..{b}) does not hold whole sequences: rechunk X "
                "at sequence boundaries."
            )
        blocks.append(delayed(_sequences_block)(rows.convert, xb, wb, starts[s0:s1 + 1] - a,
                                                dask_key_name=f"emkit-sequences-{token}-{i}"))
        wblocks.append(None if seq_weight is None else np.asarray(seq_weight[s0:s1]))
    out = object.__new__(DaskRows)
    out.__dict__.update(rows.__dict__)
    out._blocks, out._wblocks, out.convert = blocks, wblocks, _identity
    return out


def _rows_or_empty(method, n_columns, dtype, Xb):
    if Xb.shape[0] == 0:
        return np.empty((0,) if n_columns is None else (0, n_columns), dtype=dtype)
    return method(Xb)


def lazy_rows(method, X, *, n_columns=None, dtype=np.float64):
    """``method`` (an estimator's bound method) applied block by block: a lazy dask array.

    ``n_columns=None``: one value per row (``predict``, ``score_samples``); else an
    ``n_rows x n_columns`` array (``predict_proba``, ``transform``).
    """
    columns = getattr(X, "columns", None)
    X = _as_dask_array(X)
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    name = f"emkit-{getattr(method, '__name__', 'apply')}-{uuid.uuid4().hex[:12]}"
    if columns is not None:  # a dataframe's blocks keep their column names
        method = partial(_framed, method, list(columns))
    method = partial(_rows_or_empty, method, n_columns, np.dtype(dtype))
    if n_columns is None:
        return X.map_blocks(method, drop_axis=1, dtype=dtype, name=name,
                            meta=np.empty((0,), dtype=dtype))
    return X.map_blocks(method, chunks=(X.chunks[0], (int(n_columns),)), dtype=dtype,
                        name=name, meta=np.empty((0, 0), dtype=dtype))


def weighted_mean(values, sample_weight=None) -> float:
    """The (weighted) mean of a lazy dask vector, computed where its blocks live."""
    import dask

    if sample_weight is None:
        return float(dask.compute(values.mean(dtype=np.float64))[0])
    import dask.array as da

    w = sample_weight if is_dask_collection(sample_weight) else da.from_array(
        np.asarray(sample_weight, dtype=np.float64), chunks=(values.chunks[0],)
    )
    if w.shape != values.shape:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {values.shape}!")
    w = w.rechunk(values.chunks).astype(np.float64)
    num, den = dask.compute((values * w).sum(), w.sum())
    return float(num / den)
