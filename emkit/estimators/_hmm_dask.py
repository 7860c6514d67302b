"""The hidden Markov models on dask arrays: fitting and inference with whole sequences in each
block, where the blocks live.

The statistics of an HMM's E-step add over sequences, so the fit is the in-memory fit with
the E-step of each block of sequences running as a dask task (:func:`emkit._dask.sequence_blocks`
on the driver's :class:`~emkit._dask.DaskModel`). ``X`` is a dask array (or dataframe) of the
concatenated sequences and ``lengths`` an in-memory array, as for in-memory input. Blocks
must not split a sequence: row chunks whose boundaries fall inside a sequence are moved to
the next sequence start (:func:`emkit._dask.sequence_chunks`; chunk X at sequence boundaries
to avoid the move). ``sample_weight`` is in memory with one weight per sequence or per row,
or a dask array with one per row.

Inference (:func:`dask_infer`: ``score``, ``score_samples``, ``predict``, ``predict_proba``,
``decode``) runs the in-memory method on each block of whole sequences as one dask task,
after the checks that need no data (``lengths``, the columns, the fitted parameters) on the
client: per-row results are lazy dask arrays with the (moved) sequence chunks, scalars the
sum of the blocks' partial sums in a tree of tasks. Each block is validated where it lives
as in a fit.
"""

from __future__ import annotations

import copy
import uuid

import numpy as np

from .._base import init_sample_size
from .._dask import (
    _as_dask_array,
    check_dask_feature_names,
    check_features,
    is_dask_collection,
    sequence_blocks,
    sequence_chunks,
    validated_rows,
)
from ..models.hmm import Sequences
from ._hmm_input import check_hmm_weights, check_lengths, lengths_from

__all__ = ["dask_fit_data", "dask_infer"]


def _sequence_array(X, y, lengths):
    """``(Xd, starts)``: ``X`` as a 2-D dask array whose row chunks hold whole sequences
    (boundaries inside a sequence moved to the next start), and the checked sequence starts
    of ``lengths`` (or of ``y`` in its place, :func:`lengths_from`). Nothing is computed but
    a dataframe's unknown partition sizes."""
    Xd = _as_dask_array(X)
    if Xd.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array, got {Xd.ndim} dimension(s).")
    starts = check_lengths(lengths_from(y, lengths, Xd), int(Xd.shape[0]))
    chunks = sequence_chunks(Xd.chunks[0], starts)
    if chunks != tuple(Xd.chunks[0]):
        Xd = Xd.rechunk({0: chunks})
    return Xd, starts


def dask_fit_data(estimator, X, y, lengths, sample_weight):
    """``(rows, seq_weight, facts, total)`` of a fit on a dask array.

    ``rows``: the validated blocks as whole sequences, with ``rows.init_rows`` the rows the
    initialisation sees (all of them up to the mixtures' initialisation size, else evenly
    spaced rows, gathered to the client); ``facts``: a :class:`BlockFacts` summed over the
    blocks where they live (one pass, which also validates every block); ``total``: the total
    weight (the per-sample unit of the trace).
    """
    Xd, starts = _sequence_array(X, y, lengths)
    n = int(Xd.shape[0])
    seq_w, obs_w = None, sample_weight
    if not is_dask_collection(sample_weight):
        seq_w, obs_w = check_hmm_weights(sample_weight, len(starts) - 1, n)
    rows, facts = validated_rows(
        estimator, Xd, obs_w, reset=True, converter=estimator._block_converter,
        summary=estimator._block_facts, dtype=estimator._block_dtype(Xd.dtype),
    )
    check_dask_feature_names(estimator, X, reset=True)
    if not facts.weight > 0:
        raise ValueError("sample_weight sums to zero: at least one weight must be positive.")
    total = facts.weight if seq_w is None else float(seq_w @ np.diff(starts))
    d = rows.shape[1]
    m = init_sample_size(n, d, np.dtype(rows.dtype).itemsize, estimator.n_components)
    idx = np.arange(n) if m >= n else np.unique(np.linspace(0, n - 1, m).astype(np.int64))
    Xi, _ = rows.take(idx)
    out = sequence_blocks(rows, starts, seq_w)
    out.init_rows = Sequences(Xi, np.array([0, len(Xi)], dtype=np.int64))
    return out, seq_w, facts, total


def _infer_block(estimator, params, what, first, dtype, seqs):
    """One block's ``(partial sum, rows)``. The kernels run on the task's thread where dask
    runs tasks in a pool (a worker's, or the local threads: the blocks are the parallelism),
    and keep their own threads under the synchronous scheduler (tasks on the main thread)."""
    import threading

    from .._dask import _value

    serial = threading.current_thread() is not threading.main_thread()
    scalar, out = _value(estimator)._infer(seqs, what, params=_value(params), first=first,
                                           serial=serial)
    return np.float64(scalar), None if out is None else np.asarray(out, dtype=dtype)


def dask_infer(estimator, X, lengths, what, y=None):
    """``estimator._infer(X, what)`` on a dask array or dataframe, block by block.

    Returns ``(scalar, rows)``: ``scalar`` a 0-d dask array, the sum of the blocks' partial
    sums (tree-summed on the workers), and ``rows`` a lazy dask array (N, or N x K), chunked
    at sequence boundaries (:func:`emkit._dask.sequence_chunks`, as for fit), or None for
    ``"score"``. Before any task exists, on the client: ``lengths`` (a ValueError if they do
    not sum to the rows), the column names and count (as scikit-learn's ``validate_data``)
    and the fitted parameters are checked; each block is validated where it lives by the
    estimator's block converter, as in a fit.
    """
    import dask.array as da
    from dask import delayed

    from .._dask import DaskRows, _first, _second, _shared, _tree_sum

    params = estimator._current_params()  # bad parameters: a ValueError here, before any work
    check_dask_feature_names(estimator, X, reset=False)
    Xd, starts = _sequence_array(X, y, lengths)
    convert, post_dtype = estimator._predict_block(Xd.dtype)
    rows = DaskRows(Xd, convert=convert)
    if hasattr(estimator, "n_features_in_"):
        check_features(estimator, rows, reset=False)
    estimator._check_columns(rows.shape[1])
    seqs = sequence_blocks(rows, starts)
    token = uuid.uuid4().hex[:12]
    # the callback is the fit's (and need not pickle); the tasks need the fitted model only
    est = copy.copy(estimator)
    est.callback = None
    est, params = _shared(est, token, "hmm"), _shared(params, token, "params")
    firsts = np.searchsorted(starts, rows.offsets[:-1])
    dtype, tail = np.dtype(np.int64), ()  # states
    if what in ("posteriors", "score"):
        dtype, tail = np.dtype(post_dtype), (estimator.n_components,)
    outs = [
        delayed(_infer_block)(est, params, what, int(first), dtype, block,
                              dask_key_name=f"emkit-hmm-{what}-{token}-{i}")
        for i, (first, block) in enumerate(zip(firsts, seqs._blocks, strict=True))
    ]
    parts = [delayed(_first)(o, dask_key_name=f"emkit-hmm-part-{token}-{i}")
             for i, o in enumerate(outs)]
    scalar = da.from_delayed(_tree_sum(parts, token), shape=(), dtype=np.float64)
    if what == "score":
        return scalar, None
    blocks = [
        da.from_delayed(delayed(_second)(o, dask_key_name=f"emkit-hmm-rows-{token}-{i}"),
                        shape=(n,) + tail, dtype=dtype, meta=np.empty((0,) * (1 + len(tail)),
                                                                      dtype=dtype))
        for i, (o, n) in enumerate(zip(outs, rows.row_chunks, strict=True))
    ]
    return scalar, da.concatenate(blocks, axis=0)
