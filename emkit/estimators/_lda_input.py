"""LatentDirichletAllocation's input: counts validated as a Corpus, in memory or on dask."""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import check_non_negative, validate_data

from .._dask import is_dask_collection
from .._validation import block_summary, check_counts_fit, check_sample_weight
from ..models.lda import Corpus

__all__ = ["DocumentInput"]


def _checked_corpus(X, whom) -> Corpus:
    """Validated CSR counts as a :class:`Corpus`: non-negative, totals that fit the dtype."""
    check_non_negative(X, whom)
    corpus = Corpus.from_matrix(X)
    # the kernels sum a document's counts in its dtype and lambda sums them over documents:
    # refuse counts that would overflow there rather than fit NaN topics
    limit = np.finfo(corpus.dtype).max * 1e-6
    if corpus.n_docs and not float(np.max(corpus.doc_lengths, initial=0.0)) <= limit:
        raise ValueError(
            f"{whom}: a document's total count exceeds {limit:.1e}, too large for "
            f"{corpus.dtype} arithmetic; rescale the counts."
        )
    return corpus


def _corpus_block(Xb, dtype, whom) -> Corpus:
    """One block of a dask array, validated and made a :class:`Corpus` where it lives."""
    Xb = check_array(Xb, accept_sparse="csr", dtype=dtype, ensure_min_samples=0)
    return _checked_corpus(Xb, whom)


def _corpus_summary(corpus, wb):
    """``[documents, documents with a positive weight, weighted tokens]`` of one block."""
    w = np.ones(corpus.n_docs) if wb is None else np.asarray(wb, dtype=np.float64)
    return np.append(block_summary(np.empty((corpus.n_docs, 0)), wb),
                     float(corpus.doc_lengths @ w))


class DocumentInput:
    """Validation of document-word counts for the LDA estimator (a mixin)."""

    def _documents(self, X, sample_weight, *, reset, whom, chunk_rows=None):
        """``(corpus, sample_weight)``: a :class:`Corpus` in memory, or the rows of a dask
        array (weights included, so ``sample_weight`` is then None)."""
        if is_dask_collection(X) or is_dask_collection(sample_weight):
            rows = self._dask_rows(X, sample_weight, reset=reset, whom=whom,
                                   chunk_rows=chunk_rows)
            return rows, None
        corpus = self._validate_X(X, reset=reset, whom=whom)
        return corpus, self._check_weights(corpus, sample_weight)

    def _validate_X(self, X, *, reset, whom):
        """CSR counts in float32/float64 (the fitted dtype after fit); never modifies ``X``.

        Any sparse format is converted to CSR *before* the finiteness check: scikit-learn cannot
        check DOK or LIL matrices in place (it warns, or lets NaN through) and the kernels
        would then run on NaN.
        """
        dtype = [np.float64, np.float32] if reset else self.components_.dtype
        X = validate_data(self, X, reset=reset, accept_sparse="csr", dtype=dtype)
        return _checked_corpus(X, whom)

    def _dask_rows(self, X, sample_weight, *, reset, whom, chunk_rows=None):
        """The documents of a dask array, checked block by block where they live (one pass).

        Every block is validated and turned into a :class:`~emkit.models.lda.Corpus` on the
        workers, in this pass and in every E-step; ``chunk_rows`` re-cuts the blocks (online
        learning: one block per mini-batch).
        """
        from .._dask import validated_rows

        rows, summary = validated_rows(
            self, X, sample_weight, reset=reset, summary=_corpus_summary,
            converter=lambda dtype: partial(_corpus_block, dtype=dtype, whom=whom),
            dtype=None if reset else self.components_.dtype, chunk_rows=chunk_rows,
        )
        if rows.w is not None and summary[1] == 0:
            raise ValueError(
                "sample_weight sums to zero: at least one sample needs a positive weight."
            )
        rows.tokens = float(summary[2])
        return rows

    @staticmethod
    def _check_weights(corpus, sample_weight):
        sw = check_sample_weight(sample_weight, np.empty((corpus.n_docs, 0), corpus.dtype))
        if sw is not None:
            with np.errstate(over="ignore"):
                total = float(corpus.doc_lengths @ sw.astype(np.float64))
            if not np.isfinite(total) or total > np.finfo(np.float64).max * 1e-6:
                raise ValueError(
                    "The weighted token count (sum of sample_weight times document lengths) "
                    "overflows float64; rescale sample_weight or the counts."
                )
            check_counts_fit(total, corpus.dtype, "components_")
        return sw
