"""Latent Dirichlet allocation as variational EM: parameters, additive statistics, E/M-steps, ELBO.

The model (Blei, Ng & Jordan 2003; Hoffman, Blei & Bach 2010) and its mean-field family::

    beta_k ~ Dir(eta),  theta_d ~ Dir(alpha),  z_dn ~ Cat(theta_d),  w_dn ~ Cat(beta_{z_dn})
    q = prod_k Dir(beta_k | lambda_k) prod_d Dir(theta_d | gamma_d) prod_dn Cat(z_dn | phi_dn)

The topics' ``q(beta | lambda)`` (and, with ``optimize_alpha``, the point estimate of
``alpha``) are the "parameters" :class:`LDAParams`; the documents' ``gamma`` is E-step state,
carried between E-steps (a warm start); ``phi`` is never stored. With document weights
``w_d`` (repeat counts) the bound is::

    ELBO = sum_d w_d [ sum_w n_dw sum_k phi_dwk (E log theta_dk + E log beta_kw - log phi_dwk)
                       + E log Dir(theta_d | alpha) - E log Dir(theta_d | gamma_d) ]
           + sum_k [ E log Dir(beta_k | eta) - E log Dir(beta_k | lambda_k) ]

It depends on the topics only through ``S_kw = sum_d w_d n_dw phi_dwk`` (K x V) and on alpha
only through ``T_k = sum_d w_d E[log theta_dk]`` and ``W = sum_d w_d``, so :class:`LDAStats`
holds ``S``, ``T``, ``W`` and the scalar ``doc_rest`` (every other document term; it depends on
q alone), and ``elbo(params, stats)`` is exact for any parameters with no pass over the data:

* the E-step is coordinate ascent on each document's ``(gamma_d, phi_d)`` started from its
  previous ``gamma_d``: it cannot lower the bound;
* the M-step ``lambda = eta + S`` maximises the bound over ``lambda`` for fixed document factors
  (the lambda terms are ``-KL(Dir(lambda_k) || Dir(eta + S_k))`` plus a constant) and Newton's
  method on the concave alpha terms maximises it over ``alpha``: it cannot lower it either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.special import gammaln, polygamma, psi

from ..kernels import lda as kern
from ..kernels._parallel import map_row_blocks
from ._common import ComponentShape
from ._lda_corpus import Corpus, DocState, _gamma_of, as_corpus  # noqa: F401 (re-exported)

__all__ = ["Corpus", "DocState", "LDAParams", "LDAStats", "LDAModel", "dirichlet_expectation",
           "optimize_dirichlet_prior"]


def dirichlet_expectation(a: np.ndarray) -> np.ndarray:
    """``E[log x]`` for ``x ~ Dir(a)``, row-wise (float64)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return psi(a) - psi(np.sum(a))
    return psi(a) - psi(np.sum(a, axis=1))[:, np.newaxis]


# ---------------------------------------------------------------------------- params, stats
@dataclass(frozen=True, eq=False)
class LDAParams(ComponentShape):
    """Topic-side factors: ``q(beta_k) = Dir(lambda_k)``, the Dirichlet priors ``alpha``, ``eta``.

    ``lambda_`` (K x V) and ``alpha`` (K,) are float64; ``eta`` is the symmetric topic-word
    prior. ``elog_beta`` (``E[log beta]``) and ``topic_bound`` (the topic terms of the ELBO,
    ``sum_k E log Dir(beta_k | eta) - E log Dir(beta_k | lambda_k)``) are derived once here.
    """

    _by = "lambda_"  # n_components, n_features: K x V

    lambda_: np.ndarray
    alpha: np.ndarray
    eta: float
    elog_beta: np.ndarray = field(init=False, repr=False)
    topic_bound: float = field(init=False, repr=False)

    def __post_init__(self):
        lam = np.asarray(self.lambda_, dtype=np.float64)
        object.__setattr__(self, "lambda_", lam)
        object.__setattr__(self, "alpha", np.asarray(self.alpha, dtype=np.float64))
        elog = dirichlet_expectation(lam)
        object.__setattr__(self, "elog_beta", elog)
        n_topics, n_words = lam.shape
        eta = float(self.eta)
        # -KL(Dir(lambda_k) || Dir(eta)) summed over topics, as differences of like terms so
        # that lambda == eta gives exactly 0 (the bound of lightly weighted data is tiny next
        # to the separate log-Gamma sums, whose round-off used to swamp it)
        bound = (
            float(np.sum((eta - lam) * elog))
            + float(np.sum(gammaln(lam) - gammaln(eta)))
            + float(np.sum(gammaln(n_words * eta)
                           - gammaln(n_words * eta + np.sum(lam - eta, axis=1))))
        )
        object.__setattr__(self, "topic_bound", bound)

    def exp_elog_beta_t(self, dtype) -> np.ndarray:
        """``exp(E[log beta])^T``, V x K, C-contiguous, in ``dtype`` (the kernels' layout)."""
        return np.ascontiguousarray(np.exp(self.elog_beta).T, dtype=dtype)


@dataclass(frozen=True, eq=False)
class LDAStats:
    """Additive statistics of an LDA E-step (float64).

    ``word_topic``: ``S_kw = sum_d w_d n_dw phi_dwk`` (K x V); ``elog_theta``:
    ``T_k = sum_d w_d E[log theta_dk]``; ``n_docs``: ``W = sum_d w_d``; ``doc_rest``: every
    document term of the ELBO that involves neither the topics nor alpha,
    ``sum_d w_d [sum_w n_dw sum_k phi_dwk (E log theta_dk - log phi_dwk) - E log q(theta_d)
    - sum_k E log theta_dk]``; ``total_weight``: ``sum_d w_d N_d``, the weighted token count (the
    per-sample unit of the trace); ``log_evidence``: NaN (intractable). Statistics add (``a + b``
    over disjoint documents), scale (``c * a``) and blend (``a.blend(rho, b)``).
    """

    word_topic: np.ndarray
    elog_theta: np.ndarray
    n_docs: float
    doc_rest: float
    total_weight: float
    log_evidence: float = float("nan")

    def __add__(self, other):
        if not isinstance(other, LDAStats):
            return NotImplemented
        return LDAStats(
            self.word_topic + other.word_topic, self.elog_theta + other.elog_theta,
            self.n_docs + other.n_docs, self.doc_rest + other.doc_rest,
            self.total_weight + other.total_weight, self.log_evidence + other.log_evidence,
        )

    def __mul__(self, c):
        c = float(c)
        return LDAStats(
            c * self.word_topic, c * self.elog_theta, c * self.n_docs, c * self.doc_rest,
            c * self.total_weight, c * self.log_evidence,
        )

    __rmul__ = __mul__

    def blend(self, rho: float, other: LDAStats) -> LDAStats:
        """``(1 - rho) * self + rho * other`` (online / stepwise variational EM)."""
        return (1.0 - rho) * self + rho * other

    @classmethod
    def from_lambda(cls, lambda_, eta, total_weight=0.0) -> LDAStats:
        """The statistics whose M-step gives ``lambda_`` (``S = lambda_ - eta``), no documents."""
        lam = np.asarray(lambda_, dtype=np.float64)
        return cls(lam - eta, np.zeros(lam.shape[0]), 0.0, 0.0, float(total_weight))


# ---------------------------------------------------------------------------- alpha
def _alpha_objective(alpha, elog_theta, n_docs):
    return n_docs * (gammaln(np.sum(alpha)) - np.sum(gammaln(alpha))) + np.dot(
        alpha - 1.0, elog_theta
    )


#: alpha is kept in this range (the maximiser can run off to infinity on degenerate statistics,
#: for example every document with the same topic proportions)
_ALPHA_MIN, _ALPHA_MAX = 1e-10, 1e10


def optimize_dirichlet_prior(elog_theta, n_docs, alpha0, *, max_iter=200, tol=1e-12):
    """Maximise ``W (lnG(sum a) - sum lnG(a_k)) + sum_k (a_k - 1) T_k`` over ``a > 0``.

    The Dirichlet's expected log-likelihood, strictly concave in ``a``; Newton's method with the
    diagonal-plus-rank-one Hessian (Minka 2000) and step halving that keeps ``a`` positive and
    the objective increasing, from ``alpha0``.
    """
    T = np.asarray(elog_theta, dtype=np.float64)
    W = float(n_docs)
    a = np.array(alpha0, dtype=np.float64)
    if not W > 0:
        return a
    f = _alpha_objective(a, T, W)
    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            g = W * (psi(np.sum(a)) - psi(a)) + T
            q = -W * polygamma(1, a)
            z = W * float(polygamma(1, np.sum(a)))
            b = np.sum(g / q) / (1.0 / z + np.sum(1.0 / q))
            step = (g - b) / q
            if not np.all(np.isfinite(step)):
                break
            t = 1.0
            while True:
                new = a - t * step
                if np.all((new >= _ALPHA_MIN) & (new <= _ALPHA_MAX)):
                    f_new = _alpha_objective(new, T, W)
                    if f_new >= f:
                        break
                t *= 0.5
                if t < 1e-20:
                    return a
            done = np.max(np.abs(new - a) / new) < tol or f_new - f <= 1e-15 * abs(f)
            a, f = new, f_new
            if done:
                break
    return a


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class LDAModel:
    """LDA as variational EM sees it: configuration plus pure functions.

    Parameters
    ----------
    n_components : int
        Number of topics K.
    doc_topic_prior : float or ndarray of shape (K,)
        alpha; with ``optimize_alpha`` only the starting point of its M-step.
    topic_word_prior : float
        eta (symmetric).
    optimize_alpha : bool
        Learn an asymmetric alpha in the M-step (empirical Bayes).
    max_doc_update_iter, mean_change_tol :
        The per-document loop: at most this many gamma updates, stopping when the mean absolute
        change of gamma falls below the tolerance.
    dtype : dtype
        Precision of the passes over the data (float32 or float64); statistics are float64.
    n_threads : int, optional
        Threads over document (and word) blocks; the result does not depend on it.
    kernels : {"numba", "numpy"}
        The compiled kernels or their NumPy twins (tests).
    restart_every : int
        Period of the fresh starts: each document runs from gamma = 1 every
        ``restart_every`` E-steps (rotating over documents), from its previous gamma otherwise;
        0: warm starts only. Fresh starts are kept as long as the E-step's total bound stays at
        least the previous q's (see :meth:`e_step`), so any choice keeps the bound monotone.
        Warm starts alone get stuck in poor per-document optima (measured on the benchmark
        corpus: held-out perplexity 2643 warm-only vs 1623 with fresh starts every E-step and
        1625 for scikit-learn's redrawn starts).
    """

    n_components: int
    doc_topic_prior: float | np.ndarray
    topic_word_prior: float
    optimize_alpha: bool = False
    max_doc_update_iter: int = 100
    mean_change_tol: float = 1e-3
    dtype: np.dtype = np.dtype(np.float64)
    n_threads: int | None = 1
    kernels: str = "numba"
    restart_every: int = 1

    #: the E-step carries per-document state (gamma) from one iteration to the next
    has_state: ClassVar[bool] = True

    def initial_alpha(self) -> np.ndarray:
        return np.broadcast_to(
            np.asarray(self.doc_topic_prior, dtype=np.float64), (self.n_components,)
        ).copy()

    def params(self, lambda_, alpha=None) -> LDAParams:
        """:class:`LDAParams` for ``lambda_`` (and ``alpha``, default the configured prior)."""
        alpha = self.initial_alpha() if alpha is None else alpha
        return LDAParams(lambda_, alpha, float(self.topic_word_prior))

    def initial_gamma(self, n_docs: int) -> np.ndarray:
        """The deterministic starting gamma (all ones, as scikit-learn's ``transform``)."""
        return np.ones((n_docs, self.n_components), dtype=self.dtype)

    # ------------------------------------------------------------------ passes
    def _n_blocks(self, n_rows, work):
        n_threads = 1 if self.n_threads is None else max(1, int(self.n_threads))
        if n_threads == 1 or work < 20000:
            return 1
        return min(n_rows, 4 * n_threads)

    @staticmethod
    def _balanced_bounds(cum, n_blocks):
        """Block edges over rows with cumulative work ``cum`` (length n_rows + 1)."""
        n_rows = len(cum) - 1
        if n_blocks <= 1:
            return np.array([0, n_rows])
        targets = np.linspace(cum[0], cum[-1], n_blocks + 1)[1:-1]
        inner = np.searchsorted(cum, targets)
        return np.unique(np.concatenate([[0], np.clip(inner, 0, n_rows), [n_rows]]))

    def _map(self, func, edges):
        return map_row_blocks(
            lambda sl: [func(int(edges[i]), int(edges[i + 1])) for i in range(sl.start, sl.stop)],
            len(edges) - 1, 1, self.n_threads,
        )

    def _outputs(self, corpus, compute_stats):
        n_docs, n_topics = corpus.n_docs, self.n_components
        if not compute_stats:
            return (np.empty(0), np.empty((0, n_topics), dtype=self.dtype),
                    np.empty((0, n_topics)), np.empty(0))
        return (
            np.zeros(len(corpus.data), dtype=np.float64),
            np.zeros((n_docs, n_topics), dtype=self.dtype),
            np.zeros((n_docs, n_topics), dtype=np.float64),
            np.zeros(n_docs, dtype=np.float64),
        )

    def _run_docs(self, params, corpus, weights, gamma, compute_stats, docs=None, B=None,
                  max_iter=None):
        """Pass 1 over documents ``docs`` (default all); returns ``B`` and the outputs.

        ``max_iter`` (default ``max_doc_update_iter``) caps the gamma updates; 0 evaluates
        the documents' bounds at their current gamma (with the optimal phi for it)."""
        max_iter = self.max_doc_update_iter if max_iter is None else int(max_iter)
        if B is None:
            B = params.exp_elog_beta_t(self.dtype)
        if docs is None:
            docs = np.arange(corpus.n_docs, dtype=np.int64)
        out = self._outputs(corpus, compute_stats)
        cvals, eth, elogtheta, doc_bound = out
        step = kern.doc_e_step if self.kernels == "numba" else kern.doc_e_step_ref
        lengths = np.diff(corpus.indptr)[docs]
        cost = np.concatenate([[0.0], np.cumsum(lengths + 1.0)])
        edges = self._balanced_bounds(
            cost, self._n_blocks(len(docs), cost[-1] * max(1, max_iter // 10))
        )

        def run(lo, hi):
            step(
                corpus.indptr, corpus.indices, corpus.data, weights, B, params.alpha, gamma,
                docs, lo, hi, max_iter=max_iter, tol=self.mean_change_tol,
                compute_stats=compute_stats, cvals=cvals, eth_out=eth,
                elogtheta_out=elogtheta, doc_bound=doc_bound,
            )

        self._map(run, edges)
        return B, out

    def _word_topic(self, corpus, B, cvals, eth):
        """``S`` (K x V) from the first pass's outputs."""
        n_words = corpus.n_features
        if self.kernels != "numba":
            return kern.word_stats_ref(
                corpus.indptr, corpus.indices, cvals, eth, B, n_words
            ).T.copy()
        col_indptr, col_docs, col_pos = corpus.columns
        out = np.empty((n_words, self.n_components), dtype=np.float64)
        edges = self._balanced_bounds(
            col_indptr.astype(np.float64) + np.arange(n_words + 1),
            self._n_blocks(n_words, corpus.nnz),
        )
        self._map(
            lambda lo, hi: kern.word_stats(col_indptr, col_docs, col_pos, cvals, eth, B, lo, hi,
                                           out),
            edges,
        )
        return np.ascontiguousarray(out.T)

    def _weights(self, corpus, sample_weight):
        if sample_weight is None:
            return np.ones(corpus.n_docs, dtype=np.float64)
        return np.asarray(sample_weight, dtype=np.float64)

    # ------------------------------------------------------------------ EM interface
    def e_step(self, params: LDAParams, X, sample_weight=None, state=None):
        """Fit every document's ``(gamma_d, phi_d)`` for the topics ``params``.

        Returns ``(stats, state)`` with ``state`` a :class:`DocState` (``None`` in: start from
        :meth:`initial_gamma`). From a previous state the E-step must not end below the
        previous q's bound under ``params`` (the value the M-step left; the only requirement of
        a monotone EM): each document runs from gamma = 1 (on the ``restart_every`` schedule)
        and keeps that fresh solution while the total allows it; only if the fresh solutions
        together end below that floor do the documents that lose most against their old gamma
        run from it instead (coordinate ascent from the old gamma cannot go below the old
        gamma's bound, which is at least the old q's). ``state`` is not modified.
        """
        corpus = as_corpus(X, self.dtype)
        w = self._weights(corpus, sample_weight)
        n_docs = corpus.n_docs
        prev = None
        if state is None:
            gamma, n_updates = self.initial_gamma(n_docs), 0
        else:
            gamma = np.array(_gamma_of(state), dtype=self.dtype, order="C", copy=True)
            n_updates = state.n_updates if isinstance(state, DocState) else 1
            prev = state.stats if isinstance(state, DocState) else None
        total_weight = float(w @ corpus.doc_lengths)
        if prev is not None and not (prev.n_docs == float(np.sum(w))
                                     and prev.total_weight == total_weight
                                     and prev.word_topic.shape == params.lambda_.shape):
            prev = None  # statistics of other documents or weights: no floor from them
        if n_updates == 0 or self.restart_every <= 0:
            B, out = self._run_docs(params, corpus, w, gamma, True)
        else:
            floor = None if prev is None else self.document_bound(params, prev)
            B, out, gamma = self._warm_and_fresh(params, corpus, w, gamma, n_updates, floor)
        cvals, eth, elogtheta, doc_bound = out
        S = self._word_topic(corpus, B, cvals, eth)
        T = w @ elogtheta
        words_and_entropy = float(w @ doc_bound)
        # doc_bound holds sum_w n log Z_w = sum phi (E log theta + E log beta - log phi) plus
        # -E log q(theta); remove the parts that belong to the topics and to alpha.
        doc_rest = words_and_entropy - float(np.sum(S * params.elog_beta)) - float(np.sum(T))
        stats = LDAStats(S, T, float(np.sum(w)), doc_rest, total_weight)
        return stats, DocState(gamma, n_updates + 1, stats)

    def _doc_totals(self, params, out, docs):
        """Each document's whole bound but the alpha normaliser (equal for all documents)."""
        return out[3][docs] + out[2][docs] @ (params.alpha - 1.0)

    def _alpha_normaliser(self, params):
        a = params.alpha
        return float(gammaln(np.sum(a)) - np.sum(gammaln(a)))

    @staticmethod
    def _take(dst, src, docs, indptr):
        """Copy documents ``docs``' rows of the outputs ``src`` into ``dst``."""
        for a, b in zip(dst[1:], src[1:], strict=True):
            a[docs] = b[docs]
        mask = np.zeros(len(indptr) - 1, dtype=bool)
        mask[docs] = True
        nz = np.repeat(mask, np.diff(indptr))
        dst[0][nz] = src[0][nz]

    def _warm_and_fresh(self, params, corpus, w, gamma_old, n_updates, floor):
        """Fresh starts wherever the total bound allows, warm starts elsewhere.

        Documents on this E-step's schedule run from gamma = 1, the others from their old
        gamma. ``floor`` is the previous q's document bound under ``params`` (None: unknown,
        then the sum of the scheduled documents' bounds at their old gamma, with the optimal
        phi, stands in for it; it is never below the previous q's). If the fresh solutions
        reach the floor they are all kept: one pass. Otherwise every scheduled document's
        bound at its old gamma ``b_d`` is evaluated (one pass, no update); those whose fresh
        bound ``f_d`` is at least ``b_d`` keep it, and of the others those with the smallest
        loss ``w_d (b_d - f_d)`` keep it too while the surplus of the total over the floor
        pays for the losses; the rest run from the old gamma (ending at or above ``b_d``).
        The result is never below the floor, so the E-step cannot lower the ELBO.

        Fresh starts are preferred over the per-document best because warm starts lock
        documents into the previous topics' assignments: measured on a 5,000-document
        generative corpus, seeds 0-5, keeping each document's better of fresh and warm ended
        10 passes with a lower training ELBO (by 0.003-0.008 nats per token) and a held-out
        perplexity 0.3-0.6% higher than always-fresh starts.
        """
        n_docs = corpus.n_docs
        trial = (np.arange(n_docs) + n_updates) % self.restart_every == 0
        docs = np.flatnonzero(trial).astype(np.int64)
        off = np.flatnonzero(~trial).astype(np.int64)
        B = params.exp_elog_beta_t(self.dtype)
        gamma = gamma_old.copy()
        fresh = self.initial_gamma(n_docs)
        _, out = self._run_docs(params, corpus, w, fresh, True, docs=docs, B=B)
        gamma[docs] = fresh[docs]
        if len(off):
            _, out_off = self._run_docs(params, corpus, w, gamma, True, docs=off, B=B)
            self._take(out, out_off, off, corpus.indptr)
        if not len(docs):
            return B, out, gamma
        f = self._doc_totals(params, out, docs)
        rest = (float(w[off] @ self._doc_totals(params, out, off))
                + float(np.sum(w)) * self._alpha_normaliser(params))
        if floor is not None and float(w[docs] @ f) + rest >= floor:
            return B, out, gamma
        old = gamma_old.copy()
        _, out_old = self._run_docs(params, corpus, w, old, True, docs=docs, B=B, max_iter=0)
        b = self._doc_totals(params, out_old, docs)
        floor_docs = float(w[docs] @ b) if floor is None else floor - rest
        surplus = float(w[docs] @ np.maximum(f, b)) - floor_docs
        lose = np.flatnonzero(f < b)
        loss = w[docs[lose]] * (b[lose] - f[lose])
        order = np.argsort(loss, kind="stable")
        n_free = int(np.searchsorted(np.cumsum(loss[order]), max(surplus, 0.0), side="right"))
        warm = np.sort(docs[lose[order[n_free:]]])
        if len(warm):
            gamma[warm] = gamma_old[warm]
            _, out_warm = self._run_docs(params, corpus, w, gamma, True, docs=warm, B=B)
            self._take(out, out_warm, warm, corpus.indptr)
        return B, out, gamma

    def doc_topic(self, params: LDAParams, X, state=None) -> np.ndarray:
        """gamma for every document (``transform``): the E-step without statistics."""
        corpus = as_corpus(X, self.dtype)
        gamma = (self.initial_gamma(corpus.n_docs) if state is None
                 else np.array(_gamma_of(state), dtype=self.dtype, order="C", copy=True))
        self._run_docs(params, corpus, self._weights(corpus, None), gamma, False)
        return gamma

    def m_step(self, stats: LDAStats) -> LDAParams:
        """``lambda = eta + S``; with ``optimize_alpha``, alpha maximising the alpha terms."""
        lam = self.topic_word_prior + stats.word_topic
        alpha = self.initial_alpha()
        if self.optimize_alpha:
            alpha = optimize_dirichlet_prior(stats.elog_theta, stats.n_docs, alpha)
        return LDAParams(lam, alpha, float(self.topic_word_prior))

    def alpha_bound(self, params: LDAParams, stats: LDAStats) -> float:
        """``sum_d w_d E[log Dir(theta_d | alpha)] + sum_k T_k`` (the alpha terms)."""
        a = params.alpha
        return float(
            stats.n_docs * (gammaln(np.sum(a)) - np.sum(gammaln(a))) + np.dot(a, stats.elog_theta)
        )

    def document_bound(self, params: LDAParams, stats: LDAStats) -> float:
        """The documents' terms of the ELBO (everything but the topics' Dirichlet terms)."""
        return (
            float(np.sum(stats.word_topic * params.elog_beta))
            + self.alpha_bound(params, stats)
            + stats.doc_rest
        )

    def elbo(self, params: LDAParams, stats: LDAStats) -> float:
        """The full ELBO from statistics only (documents' and topics' terms)."""
        return self.document_bound(params, stats) + params.topic_bound

    def roundoff_scale(self, params: LDAParams, stats: LDAStats) -> float:
        """The sum of the absolute values of the terms that make up :meth:`elbo`.

        The bound is a difference of large terms (the topics' log-Gamma sums against the
        expected counts); with few or lightly weighted tokens it is tiny next to them, and
        round-off is relative to them, not to the total.
        """
        lam, elog, eta = params.lambda_, params.elog_beta, params.eta
        n_topics, n_words = lam.shape
        a = params.alpha
        return float(
            np.sum(np.abs(stats.word_topic * elog))
            + np.sum(np.abs((eta - lam) * elog))
            + np.sum(np.abs(gammaln(lam)))
            + np.sum(np.abs(gammaln(np.sum(lam, axis=1))))
            + n_topics * (abs(float(gammaln(n_words * eta))) + n_words * abs(float(gammaln(eta))))
            + abs(stats.n_docs) * (abs(float(gammaln(np.sum(a)))) + np.sum(np.abs(gammaln(a))))
            + np.sum(np.abs(a * stats.elog_theta))
            + abs(stats.doc_rest)
        )

    def objective(self, params: LDAParams, stats: LDAStats) -> float:
        return self.elbo(params, stats)

    def log_prior(self, params: LDAParams) -> float:
        return 0.0
