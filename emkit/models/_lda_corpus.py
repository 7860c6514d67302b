"""LDA's data and E-step state: the corpus in CSR form and the documents' variational
factors (re-exported by :mod:`emkit.models.lda`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:  # pragma: no cover
    from .lda import LDAStats

__all__ = ["Corpus", "DocState", "as_corpus"]


@dataclass(frozen=True, eq=False)
class Corpus:
    """A document-word count matrix in CSR arrays, with a lazily built column view.

    ``data`` holds the counts in the kernels' dtype. :attr:`columns` gives the same nonzeros in
    column (word) order, the layout of the topic-statistics pass. The caller's arrays are never
    written to.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_features: int

    @classmethod
    def from_matrix(cls, X, dtype=None) -> Corpus:
        """From a CSR matrix (or anything ``scipy.sparse.csr_matrix`` accepts)."""
        X = X if sparse.issparse(X) and X.format == "csr" else sparse.csr_matrix(X)
        data = X.data if dtype is None else X.data.astype(dtype, copy=False)
        if data.dtype not in (np.float32, np.float64):
            data = data.astype(np.float64)
        return cls(X.indptr, X.indices, data, int(X.shape[1]))

    @property
    def n_docs(self) -> int:
        return len(self.indptr) - 1

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1] - self.indptr[0])

    def __len__(self) -> int:
        return self.n_docs

    @cached_property
    def doc_lengths(self) -> np.ndarray:
        """Token count of every document (float64)."""
        csum = np.concatenate([[0.0], np.cumsum(self.data, dtype=np.float64)])
        return csum[self.indptr[1:]] - csum[self.indptr[:-1]]

    @cached_property
    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(col_indptr, col_docs, col_pos)``: for word ``w`` the nonzeros
        ``col_indptr[w]:col_indptr[w + 1]`` are in documents ``col_docs`` at CSR positions
        ``col_pos`` (in document order)."""
        start = int(self.indptr[0])
        rows = sparse.csr_matrix(
            (np.arange(start, start + self.nnz, dtype=np.int64),
             self.indices[start:start + self.nnz], self.indptr - start),
            shape=(self.n_docs, self.n_features),
        )
        csc = rows.tocsc()  # transposes the structure; keeps duplicates and explicit zeros
        return csc.indptr.astype(np.int64), csc.indices, csc.data

    def rows(self, sl: slice) -> Corpus:
        """Documents ``sl`` (a contiguous slice) as a corpus of their own."""
        lo, hi, _ = sl.indices(self.n_docs)
        indptr = self.indptr[lo:hi + 1]
        a, b = int(indptr[0]), int(indptr[-1])
        return Corpus(indptr - a, self.indices[a:b], self.data[a:b], self.n_features)


def as_corpus(X, dtype=None) -> Corpus:
    """``X`` if it is already a :class:`Corpus` (of ``dtype``), else :meth:`Corpus.from_matrix`."""
    if isinstance(X, Corpus) and (dtype is None or X.dtype == dtype):
        return X
    if isinstance(X, Corpus):
        return Corpus(X.indptr, X.indices, X.data.astype(dtype), X.n_features)
    return Corpus.from_matrix(X, dtype)


@dataclass(frozen=True, eq=False)
class DocState:
    """The documents' variational state carried between E-steps.

    ``gamma`` (N x K); ``n_updates``, the number of E-steps behind it; ``stats``, the
    statistics of the E-step that produced it (or None): under the next topics they give the
    bound of the previous q, the floor the next E-step must not go below (see
    :meth:`LDAModel.e_step`).
    """

    gamma: np.ndarray
    n_updates: int = 1
    stats: LDAStats | None = None


def _gamma_of(state):
    return state.gamma if isinstance(state, DocState) else state
