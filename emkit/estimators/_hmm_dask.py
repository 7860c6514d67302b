"""Fitting the hidden Markov models on dask arrays: whole sequences in each block, where the
blocks live.

The statistics of an HMM's E-step add over sequences, so the fit is the in-memory fit with
the E-step of each block of sequences running as a dask task (:func:`emkit._dask.sequence_blocks`
on the driver's :class:`~emkit._dask.DaskModel`). ``X`` is a dask array (or dataframe) of the
concatenated sequences and ``lengths`` an in-memory array, as for in-memory input. Blocks
must not split a sequence: row chunks whose boundaries fall inside a sequence are moved to
the next sequence start (:func:`emkit._dask.sequence_chunks`; chunk X at sequence boundaries
to avoid the move). ``sample_weight`` is in memory with one weight per sequence or per row,
or a dask array with one per row.
"""

from __future__ import annotations

import numpy as np

from .._base import init_sample_size
from .._dask import (
    _as_dask_array,
    is_dask_collection,
    sequence_blocks,
    sequence_chunks,
    validated_rows,
)
from ..models.hmm import Sequences
from ._hmm_input import check_hmm_weights, check_lengths

__all__ = ["dask_fit_data"]


def dask_fit_data(estimator, X, lengths, sample_weight):
    """``(rows, seq_weight, facts, total)`` of a fit on a dask array.

    ``rows``: the validated blocks as whole sequences, with ``rows.init_rows`` the rows the
    initialisation sees (all of them up to the mixtures' initialisation size, else evenly
    spaced rows, gathered to the client); ``facts``: a :class:`BlockFacts` summed over the
    blocks where they live (one pass, which also validates every block); ``total``: the total
    weight (the per-sample unit of the trace).
    """
    Xd = _as_dask_array(X)
    if Xd.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array, got {Xd.ndim} dimension(s).")
    n = int(Xd.shape[0])
    starts = check_lengths(lengths, n)
    seq_w, obs_w = None, sample_weight
    if not is_dask_collection(sample_weight):
        seq_w, obs_w = check_hmm_weights(sample_weight, len(starts) - 1, n)
    chunks = sequence_chunks(Xd.chunks[0], starts)
    if chunks != tuple(Xd.chunks[0]):
        Xd = Xd.rechunk({0: chunks})
    rows, facts = validated_rows(
        estimator, Xd, obs_w, reset=True, converter=estimator._block_converter,
        summary=estimator._block_facts, dtype=estimator._block_dtype(Xd.dtype),
    )
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
