"""``emkit.LatentDirichletAllocation``, a drop-in for scikit-learn's LatentDirichletAllocation."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import check_is_fitted

from .._dask import em_model, is_dask_collection, on_dask
from .._em import IterationInfo, monotonic_rtol, run_em, stepwise_update
from .._progress import ProgressMixin
from .._trace import Trace
from .._validation import (
    check_choice,
    check_int,
    check_learning_schedule,
    check_real,
)
from ..kernels._parallel import n_jobs_threads
from ..models.lda import LDAModel, LDAStats
from ._lda_input import DocumentInput

__all__ = ["LatentDirichletAllocation"]

LEARNING_METHODS = ("batch", "online")


def _perplexity(bound, tokens) -> float:
    """``exp(-bound / tokens)``; ``inf`` (without a warning) when it overflows.

    It overflows when the topics' terms dominate the few (weighted) tokens of the documents,
    for example with tiny document weights: the per-token bound is then truly enormous.
    """
    if not tokens > 0:
        return float("nan")
    with np.errstate(over="ignore"):
        return float(np.exp(-float(bound) / float(tokens)))


class LatentDirichletAllocation(
    DocumentInput, ClassNamePrefixFeaturesOutMixin, TransformerMixin, ProgressMixin,
    BaseEstimator,
):
    """Latent Dirichlet allocation by mean-field variational EM, with a monotone, visible bound.

    Same constructor, attributes and methods as ``sklearn.decomposition.LatentDirichletAllocation``
    (``components_`` are the topics' variational Dirichlet parameters lambda, so code written for
    scikit-learn works unchanged). Beyond it:

    - every document's gamma is carried from the previous iteration (not redrawn) as the
      fallback start and the bound's floor, so in batch mode the full ELBO (documents' and
      topics' terms) never decreases; both EM half-steps of every iteration are recorded in
      ``trace_`` and checked (``check_monotonic``).
      Each E-step runs every document from a fresh start (gamma = 1, as scikit-learn's
      ``transform``) and keeps those fresh solutions as long as the total bound is not below
      the previous iteration's; only if it would be do the documents that lose most against
      their old gamma run from it instead (warm starts alone get stuck in poor per-document
      optima, and keeping each document's better of the two locks documents into the previous
      topics: both end with a worse held-out perplexity);
    - ``optimize_doc_topic_prior=True`` learns an asymmetric alpha in the M-step (Newton's
      method on the exact alpha terms of the bound), on any number of threads;
    - ``sample_weight`` (document weights, acting as repeat counts) in ``fit``, ``partial_fit``,
      ``score`` and ``perplexity``;
    - Numba kernels parallel over documents whose result does not depend on the number of
      threads.

    Parameters
    ----------
    n_components : int, default=10
        Number of topics.
    doc_topic_prior : float, default=None
        alpha, the symmetric prior of the document-topic distributions (``1 / n_components``
        when None). With ``optimize_doc_topic_prior`` the starting value of the learned alpha.
    topic_word_prior : float, default=None
        eta, the symmetric prior of the topic-word distributions (``1 / n_components`` when None).
    learning_method : {"batch", "online"}, default="batch"
        "batch": variational EM over all documents per iteration (monotone bound).
        "online": stepwise variational EM on mini-batches (Hoffman et al. 2010): the statistics
        are blended, ``S <- (1 - rho_t) S + rho_t (D / |B|) S_batch``, with
        ``rho_t = (learning_offset + t) ** -learning_decay``.
    learning_decay : float, default=0.7
        kappa, in ``[0, 1]``; ``(0.5, 1]`` guarantees asymptotic convergence of online learning.
    learning_offset : float, default=10.0
        tau_0 (>= 1), down-weights early online updates.
    max_iter : int, default=10
        Maximum number of passes over the data in ``fit``.
    batch_size : int, default=128
        Documents per mini-batch (online learning).
    evaluate_every : int, default=-1
        Every this many passes, compare the training perplexity with the previous evaluation and
        stop when it changed by less than ``perp_tol``; 0 or negative: never (``max_iter``
        passes). In batch mode the perplexity is ``exp(-ELBO per token)`` from the trace, at no
        extra cost; in online mode it takes a pass over the data, as in scikit-learn.
    total_samples : float, default=1e6
        Total number of documents, for ``partial_fit``'s scaling of mini-batch statistics.
    perp_tol : float, default=0.1
        Perplexity tolerance (with ``evaluate_every > 0``).
    mean_change_tol : float, default=1e-3
        The per-document loop stops when the mean absolute change of gamma is below this.
    max_doc_update_iter : int, default=100
        At most this many gamma updates per document and E-step.
    n_jobs : int, default=None
        Threads for the E-step (None: 1, -1: all CPUs, -2: all but one), emkit's own threads
        (also inside a multiprocessing worker). Results are identical for any value.
    verbose : int, default=0
        Print the progress every iteration (from a callback, never inside the EM loop).
    random_state : int, RandomState instance or None, default=None
        Seed of the initial topics (the same draws as scikit-learn's).
    optimize_doc_topic_prior : bool, default=False
        Learn an asymmetric alpha (empirical Bayes) in every M-step.
    check_monotonic : {"warn", "raise", "ignore"}, default="warn"
        What to do if a batch EM half-step lowers the ELBO beyond round-off
        (:class:`~emkit.MonotonicityWarning` / :class:`~emkit.MonotonicityError`).
    callback : callable, default=None
        Called with an :class:`~emkit.IterationInfo` after every iteration (batch) or pass
        (online); ``info.elbo`` is the ELBO per token.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        lambda, the variational Dirichlet parameters of the topics (pseudo-counts), in the
        training data's dtype.
    exp_dirichlet_component_ : ndarray of shape (n_components, n_features)
        ``exp(E[log beta])``.
    n_batch_iter_ : int
        Number of EM updates plus one (scikit-learn's counter, ``t`` of the learning rate).
    n_iter_ : int
        Number of passes over the data, as scikit-learn counts them: when ``perp_tol`` stops
        the fit, the pass that triggered the stop is not counted (``n_batch_iter_`` counts it).
    bound_ : float
        Training perplexity at the final parameters: ``exp(-ELBO per token)`` with the final
        (warm-started) document factors.
    doc_topic_prior_ : float or ndarray of shape (n_components,)
        alpha; an array when ``optimize_doc_topic_prior``.
    topic_word_prior_ : float
        eta.
    random_state_ : RandomState instance
    trace_ : Trace
        ELBO per token after each half-step, every iteration. Batch: from the EM driver,
        monotone. Online: one row per pass holding the running estimate (each mini-batch's
        document terms at the topics it was fitted with, plus the topic terms at the end of the
        pass), and a last row with the exact bound of a final full E-step.
    n_features_in_ : int
    feature_names_in_ : ndarray
        Only when ``X`` had string feature names.

    Notes
    -----
    Units: ``trace_`` and ``callback`` report the ELBO per (weighted) token, so
    ``bound_ == exp(-trace_.elbo_after_e[-1])``. ``score`` returns the total bound over the
    documents passed, topic terms included, as scikit-learn's does
    (``score(X) ~= trace_.elbo_after_e[-1] * n_tokens`` on the training set, up to the warm
    start), and ``perplexity`` is ``exp(-score / n_tokens)``.

    Initial document factors are deterministic (gamma = 1, scikit-learn's choice in
    ``transform``), so weighting a document by 2 is exactly the same as repeating it.
    """

    def __init__(
        self,
        n_components=10,
        *,
        doc_topic_prior=None,
        topic_word_prior=None,
        learning_method="batch",
        learning_decay=0.7,
        learning_offset=10.0,
        max_iter=10,
        batch_size=128,
        evaluate_every=-1,
        total_samples=1e6,
        perp_tol=1e-1,
        mean_change_tol=1e-3,
        max_doc_update_iter=100,
        n_jobs=None,
        verbose=0,
        random_state=None,
        optimize_doc_topic_prior=False,
        check_monotonic="warn",
        callback=None,
    ):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.learning_method = learning_method
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.evaluate_every = evaluate_every
        self.total_samples = total_samples
        self.perp_tol = perp_tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state
        self.optimize_doc_topic_prior = optimize_doc_topic_prior
        self.check_monotonic = check_monotonic
        self.callback = callback

    # ---------------------------------------------------------------- validation
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32", "float64"]
        return tags

    def _check_params(self):
        check_int(self.n_components, "n_components", low=1)
        for name in ("doc_topic_prior", "topic_word_prior"):
            value = getattr(self, name)
            if value is not None:
                check_real(value, name, low=0.0, strict=True)
        check_choice(self.learning_method, "learning_method", LEARNING_METHODS)
        check_learning_schedule(self.learning_decay, self.learning_offset)
        check_int(self.max_iter, "max_iter", low=0)
        check_int(self.batch_size, "batch_size", low=1)
        check_int(self.evaluate_every, "evaluate_every")
        check_real(self.total_samples, "total_samples", low=0.0, strict=True)
        check_real(self.perp_tol, "perp_tol", low=0.0)
        check_real(self.mean_change_tol, "mean_change_tol", low=0.0)
        check_int(self.max_doc_update_iter, "max_doc_update_iter", low=0)
        if self.n_jobs is not None:
            n_jobs_threads(check_int(self.n_jobs, "n_jobs"))
        self._check_progress(allow_bool_verbose=True)
        if not isinstance(self.optimize_doc_topic_prior, (bool, np.bool_)):
            raise ValueError(
                "optimize_doc_topic_prior must be a bool, got "
                f"{self.optimize_doc_topic_prior!r}."
            )

    def _n_threads(self) -> int:
        return n_jobs_threads(self.n_jobs)

    def _make_model(self, dtype) -> LDAModel:
        k = self.n_components
        alpha = 1.0 / k if self.doc_topic_prior is None else float(self.doc_topic_prior)
        eta = 1.0 / k if self.topic_word_prior is None else float(self.topic_word_prior)
        return LDAModel(
            n_components=k, doc_topic_prior=alpha, topic_word_prior=eta,
            optimize_alpha=bool(self.optimize_doc_topic_prior),
            max_doc_update_iter=int(self.max_doc_update_iter),
            mean_change_tol=float(self.mean_change_tol), dtype=np.dtype(dtype),
            n_threads=self._n_threads(),
        )

    def _init(self, model, n_features, dtype):
        """scikit-learn's initial topics: lambda ~ Gamma(100, 1/100), the same draws."""
        self.random_state_ = check_random_state(self.random_state)
        lam = self.random_state_.gamma(100.0, 0.01, (self.n_components, n_features))
        lam = lam.astype(dtype).astype(np.float64)
        self.n_batch_iter_ = 1
        self.n_iter_ = 0
        self._model_ = model
        return model.params(lam)

    def _set_params(self, params, stats, dtype):
        self._params_ = params
        self._stats_ = stats
        self.components_ = params.lambda_.astype(dtype)
        self.exp_dirichlet_component_ = np.exp(params.elog_beta).astype(dtype)
        if self.optimize_doc_topic_prior:
            self.doc_topic_prior_ = params.alpha.copy()
        else:
            self.doc_topic_prior_ = float(params.alpha[0])
        self.topic_word_prior_ = float(params.eta)

    def _callbacks(self):
        """``report(info, perplexity=None)``: scikit-learn's verbose line, then ``callback``."""
        verbose, max_iter = self.verbose, self.max_iter

        def printer(info, perplexity=None):
            if verbose:
                extra = "" if perplexity is None else f", perplexity: {perplexity:.4f}"
                print(f"iteration: {info.iteration} of max_iter: {max_iter}{extra}",
                      file=sys.stdout)

        return self._chained(printer)

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y=None, sample_weight=None):
        """Learn the topics of ``X`` by variational EM (batch) or stepwise variational EM (online).

        A dask array of counts (dense or ``scipy.sparse`` blocks, chunked by documents) is
        fitted where its blocks live: one E-step task per block and iteration, the statistics
        summed on the workers, the M-step here. In batch mode each block's document factors
        (gamma) stay on the workers between iterations (persisted) and the E-step's
        fresh-start floor holds per block, so the bound is monotone; online, the blocks are
        re-cut to ``batch_size`` documents and each is one mini-batch, as in memory.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or dask array
            Document-word counts (non-negative; float counts allowed).
        y : Ignored
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Non-negative document weights (repeat counts).

        Returns
        -------
        self
        """
        self._check_params()
        whom = "LatentDirichletAllocation.fit"
        chunk = self.batch_size if self.learning_method == "online" else None
        corpus, sw = self._documents(X, sample_weight, reset=True, whom=whom, chunk_rows=chunk)
        model = self._make_model(corpus.dtype)
        params = self._init(model, corpus.n_features, corpus.dtype)
        if self.learning_method == "batch":
            self._fit_batch(model, corpus, sw, params)
        else:
            self._fit_online(model, corpus, sw, params)
        return self

    def _fit_batch(self, model, corpus, sw, params):
        report = self._callbacks()
        evaluate_every, perp_tol = self.evaluate_every, self.perp_tol
        last = [None]
        stopped = [False]

        def callback(info: IterationInfo):
            perplexity = None
            stop = False
            if evaluate_every > 0 and info.iteration % evaluate_every == 0:
                perplexity = _perplexity(info.elbo, 1.0)
                stop = last[0] is not None and abs(last[0] - perplexity) < perp_tol
                last[0] = perplexity
            report(info, perplexity)
            stopped[0] = stop
            return stop

        result = run_em(
            em_model(model, corpus), corpus, sw, params, max_iter=self.max_iter, tol=0.0,
            check_monotonic=self.check_monotonic, rtol=monotonic_rtol(corpus.dtype),
            callback=callback, state=None,
        )
        self.trace_ = result.trace
        # scikit-learn's counters: every EM update counts in n_batch_iter_, but the pass on
        # which the perplexity tolerance stopped the fit does not count in n_iter_.
        self.n_iter_ = int(result.n_iter) - int(stopped[0])
        self.n_batch_iter_ = 1 + int(result.n_iter)
        self.bound_ = _perplexity(result.trace.elbo_after_e[-1], 1.0)
        self._set_params(result.params, result.stats, corpus.dtype)

    def _online_step(self, model, params, stats, batch, w_batch, total):
        """One mini-batch: E-step (from gamma = 1), blend the scaled statistics, M-step.

        Online updates make no monotonicity promise, so each mini-batch starts afresh as in
        scikit-learn and gensim rather than paying for warm and fresh starts both.
        """
        batch_stats, _ = model.e_step(params, batch, w_batch, None)
        weight = batch_stats.n_docs
        if weight > 0:
            params, stats = stepwise_update(
                model, stats, batch_stats, total / weight, t=self.n_batch_iter_,
                offset=self.learning_offset, decay=self.learning_decay,
            )
        self.n_batch_iter_ += 1
        return params, stats, batch_stats

    def _minibatches(self, model, corpus, sw):
        """``(model, batch, weights)`` per mini-batch of ``batch_size`` documents: on dask, one
        re-cut block each (its E-step runs where it lives), in memory row slices."""
        if on_dask(corpus):
            from .._dask import DaskModel

            return [(DaskModel(model, corpus, (i,)), None, None) for i in range(corpus.n_blocks)]
        return [(model, corpus.rows(sl), None if sw is None else sw[sl])
                for sl in gen_batches(corpus.n_docs, self.batch_size)]

    def _fit_online(self, model, corpus, sw, params):
        report = self._callbacks()
        t_start = time.perf_counter()
        n_docs = corpus.n_docs
        stats = LDAStats.from_lambda(params.lambda_, model.topic_word_prior)
        if on_dask(corpus):
            total = float(n_docs if corpus.w is None else corpus.w.sum().compute())
            tokens = corpus.tokens
        else:
            total = float(n_docs if sw is None else np.sum(sw))
            tokens = float(corpus.doc_lengths @ (np.ones(n_docs) if sw is None else sw))
        batches = self._minibatches(model, corpus, sw)
        full_model = em_model(model, corpus)
        # per-token unit of the trace (as the driver's: no division by zero without tokens)
        tokens = max(tokens, 1e-300)
        rows, last_perp, prev, converged = [], None, None, False
        for epoch in range(1, self.max_iter + 1):
            doc_terms = 0.0
            for batch_model, batch, w_b in batches:
                before = params
                params, stats, batch_stats = self._online_step(
                    batch_model, params, stats, batch, w_b, total
                )
                doc_terms += model.document_bound(before, batch_stats)
            estimate = (doc_terms + params.topic_bound) / tokens
            rows.append(dict(elbo_after_e=estimate, elbo_after_m=np.nan, log_evidence=np.nan,
                             kl=np.nan, seconds=time.perf_counter() - t_start))
            perplexity = None
            if self.evaluate_every > 0 and epoch % self.evaluate_every == 0:
                full, _ = full_model.e_step(params, corpus, sw, None)
                perplexity = _perplexity(model.elbo(params, full), tokens)
                converged = last_perp is not None and abs(last_perp - perplexity) < self.perp_tol
                last_perp = perplexity
            info = IterationInfo(
                init=0, iteration=epoch, elbo=estimate,
                change=np.nan if prev is None else estimate - prev,
                seconds=time.perf_counter() - t_start, converged=converged,
            )
            prev = estimate
            report(info, perplexity)
            if converged:  # as scikit-learn, the stopping pass does not count in n_iter_
                break
            self.n_iter_ = epoch
        final, _ = full_model.e_step(params, corpus, sw, None)
        final_elbo = model.elbo(params, final) / tokens
        rows.append(dict(elbo_after_e=final_elbo, elbo_after_m=np.nan, log_evidence=np.nan,
                         kl=np.nan, seconds=time.perf_counter() - t_start))
        self.trace_ = Trace.from_rows(rows, n_iter=self.n_iter_, converged=converged, init=0)
        self.bound_ = _perplexity(final_elbo, 1.0)
        self._set_params(params, stats, corpus.dtype)

    def partial_fit(self, X, y=None, sample_weight=None):
        """One online update per mini-batch of ``X`` (``total_samples`` documents in all).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._check_params()
        first = not hasattr(self, "components_")
        whom = "LatentDirichletAllocation.partial_fit"
        corpus, sw = self._documents(X, sample_weight, reset=first, whom=whom,
                                     chunk_rows=self.batch_size)
        if first:
            model = self._make_model(corpus.dtype)
            params = self._init(model, corpus.n_features, corpus.dtype)
            stats = LDAStats.from_lambda(params.lambda_, model.topic_word_prior)
        else:
            model = replace(self._model_, n_threads=self._n_threads())
            self._model_ = model
            params = self._params_
            stats = self._stats_
            if not np.allclose(model.m_step(stats).lambda_, params.lambda_, rtol=1e-12):
                # after a batch fit the last statistics belong to the last E-step: restart the
                # blend from the statistics that give the current topics.
                stats = replace(stats, word_topic=params.lambda_ - model.topic_word_prior)
        for batch_model, batch, w_b in self._minibatches(model, corpus, sw):
            params, stats, _ = self._online_step(
                batch_model, params, stats, batch, w_b, float(self.total_samples)
            )
        self._set_params(params, stats, corpus.dtype)
        return self

    # ---------------------------------------------------------------- inference
    def _fitted_model(self):
        return replace(self._model_, n_threads=self._n_threads())

    def _unnormalized_transform(self, corpus):
        return self._fitted_model().doc_topic(self._params_, corpus)

    def transform(self, X, *, normalize=True):
        """Document-topic distributions of ``X`` (gamma, from gamma = 1, normalised by default).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        normalize : bool, default=True

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        if is_dask_collection(X):
            from .._dask import lazy_rows

            return lazy_rows(partial(self.transform, normalize=normalize), X,
                             n_columns=self.n_components, dtype=self.components_.dtype)
        corpus = self._validate_X(X, reset=False, whom="LatentDirichletAllocation.transform")
        gamma = self._unnormalized_transform(corpus)
        if normalize:
            gamma /= gamma.sum(axis=1)[:, np.newaxis]
        return gamma

    def fit_transform(self, X, y=None, *, normalize=True, sample_weight=None):
        """Fit, then transform ``X``."""
        return self.fit(X, y, sample_weight=sample_weight).transform(X, normalize=normalize)

    def _bound(self, X, sample_weight, whom):
        check_is_fitted(self)
        model = self._fitted_model()
        corpus, sw = self._documents(X, sample_weight, reset=False, whom=whom)
        if on_dask(corpus):
            stats, _ = corpus.e_step(model, self._params_, keep_state=False)
        else:
            stats, _ = model.e_step(self._params_, corpus, sw, None)
        return model.document_bound(self._params_, stats), stats.total_weight, corpus.n_docs

    def score(self, X, y=None, sample_weight=None):
        """The ELBO of ``X`` (total over its documents, topic terms included), as scikit-learn.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        docs, _, _ = self._bound(X, sample_weight, "LatentDirichletAllocation.score")
        return float(docs + self._params_.topic_bound)

    def perplexity(self, X, sub_sampling=False, sample_weight=None):
        """``exp(-bound / n_tokens)`` on ``X`` (scikit-learn's definition).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        sub_sampling : bool, default=False
            Scale the documents' terms and the token count by ``total_samples / n_samples``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        docs, tokens, n = self._bound(X, sample_weight, "LatentDirichletAllocation.perplexity")
        if not tokens > 0:
            raise ValueError(
                "perplexity is undefined for X without words (every document is empty or has "
                "zero weight)."
            )
        if sub_sampling:
            ratio = float(self.total_samples) / n
            docs, tokens = docs * ratio, tokens * ratio
        return _perplexity(docs + self._params_.topic_bound, tokens)

    @property
    def _n_features_out(self):
        return self.components_.shape[0]
