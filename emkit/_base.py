"""What emkit's estimators share: the runs of the driver and the trace (:class:`BaseEM`);
for the mixtures also n_init, warm start, online EM, dask input and scores over rows
(:class:`BaseEMMixture`)."""

from __future__ import annotations

import warnings
from abc import abstractmethod
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._dask import em_model, is_dask_collection, on_dask
from ._em import (
    monotonic_rtol,
    run_em,
)
from ._online import OnlineEMMixin
from ._progress import ProgressMixin, VerbosePrinter
from ._validation import (
    block_summary,
    check_fit_data,
    check_int,
    check_learning_schedule,
    check_predict_data,
    check_real,
    check_sample_weight,
    convert_dense_block,
    fit_dtype,
)
from .kernels._parallel import blas_single_thread, small_kmeans
from .kernels._rows import unit_weights
from .models._common import one_hot

__all__ = [
    "ProgressMixin", "BaseEM", "BaseEMMixture", "VerbosePrinter", "INIT_PARAMS",
    "initial_assignments", "as_resp",
]

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

#: rows per chunk of the prediction paths (score_samples, predict, predict_proba)
PREDICT_ROWS = 1 << 15

#: most rows the initial clustering sees, and the most bytes of them (see :func:`init_sample_size`)
INIT_MAX_ROWS = 100_000
INIT_MAX_BYTES = 32 << 20


def init_sample_size(n_rows: int, n_features: int, itemsize: int, n_components: int) -> int:
    """Rows the initialisation runs on: all up to ``INIT_MAX_ROWS`` rows and
    ``INIT_MAX_BYTES`` bytes of them, else a subsample of that size (at least 50 rows per
    component)."""
    by_bytes = INIT_MAX_BYTES // max(1, n_features * itemsize)
    return int(min(n_rows, max(50 * n_components, min(INIT_MAX_ROWS, by_bytes))))


def initial_assignments(X, n_components, init_params, sample_weight, random_state):
    """Initial responsibilities drawn as scikit-learn's mixtures draw them (same random stream).

    Hard assignments are returned as ``(labels, n_components)``, label ``n_components``
    meaning "no component" (the one-point seeds of k-means++ and random_from_data), so no
    ``N x K`` array is built; "random" returns the ``N x K`` soft responsibilities.
    """
    n, k = X.shape[0], n_components
    if sample_weight is not None:
        # scikit-learn casts the weights to X's dtype: bring them near one first (exactly,
        # by a power of two; k-means and its seeding depend only on relative weights)
        sample_weight = unit_weights(sample_weight)[0]
    if init_params == "kmeans":
        from sklearn.cluster import KMeans

        with small_kmeans(n, X.shape[1], k):
            labels = (
                KMeans(n_clusters=k, n_init=1, random_state=random_state)
                .fit(X, sample_weight=sample_weight)
                .labels_
            )
        return labels, k
    if init_params == "random":
        resp = np.asarray(random_state.uniform(size=(n, k)), dtype=X.dtype)
        resp /= resp.sum(axis=1)[:, None]
        return resp
    if init_params == "random_from_data":
        p = None
        if sample_weight is not None:
            p = sample_weight.astype(np.float64)
            p /= p.sum()
        indices = random_state.choice(n, size=k, replace=False, p=p)
    else:  # k-means++
        from sklearn.cluster import kmeans_plusplus

        _, indices = kmeans_plusplus(X, k, random_state=random_state, sample_weight=sample_weight)
    labels = np.full(n, k, dtype=np.intp)
    labels[indices] = np.arange(k)
    return labels, k


def as_resp(assignments, dtype=np.float64):
    """``N x K`` responsibilities from :func:`initial_assignments`' result."""
    if not isinstance(assignments, tuple):
        return assignments
    labels, k = assignments
    return one_hot(labels, k, dtype)


class BaseEM(ProgressMixin, BaseEstimator):
    """What every estimator on :func:`emkit._em.run_em` shares, mixture or not.

    The progress callback (``verbose`` printing plus the user's ``callback``), the runs from
    the initialisations, and the fitted attributes every estimator has: ``trace_``,
    ``traces_``, ``lower_bound_``, ``lower_bounds_``, ``n_iter_``, ``converged_``. Subclasses
    supply the model (``_make_model``), its initial parameters (``_initial_params``) and how
    the parameters become attributes (``_set_fitted_params``). Mixture-only behaviour
    (prediction over components, information criteria over rows, online EM, dask input)
    lives in :class:`BaseEMMixture`; the hidden Markov models build on this class directly.
    """

    #: warn (ConvergenceWarning) when the kept run did not converge
    _warn_unconverged = True
    #: the name of the estimator's parameter that caps the M-steps
    _max_iter_name = "max_iter"

    # ---------------------------------------------------------------- hooks
    @abstractmethod
    def _check_hyperparameters(self, X): ...

    @abstractmethod
    def _make_model(self, X, sample_weight=None): ...

    @abstractmethod
    def _initial_params(self, model, X, sample_weight, random_state): ...

    @abstractmethod
    def _set_fitted_params(self, params, dtype): ...

    @abstractmethod
    def _n_parameters(self) -> int: ...

    def _max_iter(self) -> int:
        """The most M-steps a fit may take (the estimator's ``max_iter`` or ``n_iter``)."""
        return getattr(self, self._max_iter_name)

    def _check_em_common(self, allow_bool_verbose=False):
        """The driver-facing parameters every estimator has (``verbose`` may be a bool where
        the estimator's reference takes one, as hmmlearn's)."""
        check_real(self.tol, "tol", low=0.0)
        check_int(self._max_iter(), self._max_iter_name, low=0)
        self._check_progress(allow_bool_verbose)

    def _progress(self):
        """``(printer, callback)``: the verbose printer, and it chained with ``callback``."""
        printer = VerbosePrinter(int(self.verbose), getattr(self, "verbose_interval", 10))
        return printer, self._chained(printer)

    def _check_restarts(self):
        """``n_init`` and ``warm_start``, for the estimators that have them."""
        check_int(self.n_init, "n_init", low=1)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be a bool, got {self.warm_start!r}.")

    def _check_continuation(self, how):
        """Raise if the fitted parameters cannot be continued from (``how``: "warm_start"
        or "partial_fit")."""

    def _continuation_params(self):
        """The parameters a warm start continues from (the fitted ones)."""
        return self._params_

    def _begin_init(self, init: int) -> None:
        """Called before initialisation ``init`` (0, 1, ...) draws its parameters."""

    def _fit_runs(self, model, X, sample_weight, dtype, *, tol):
        """The fit itself: ``n_init`` runs of the driver (one continuing from the fitted
        parameters under ``warm_start``), BLAS on one thread, the best run kept and the
        fitted attributes set in ``dtype``. ``tol`` is per sample (the driver's)."""
        do_init = not (self.warm_start and hasattr(self, "_params_"))
        if not do_init:
            self._check_continuation("warm_start")
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        printer, callback = self._progress()
        with blas_single_thread():
            best, traces = self._run_inits(
                model, X, sample_weight, n_init, do_init, random_state, printer, callback,
                monotonic_rtol(dtype), max_iter=self._max_iter(), tol=tol,
            )
        return self._finish_fit(dtype, model, best, traces)

    def _init_needs_data(self) -> bool:
        """False when the user gave every initial parameter (no clustering to run)."""
        return True

    def _init_rows(self, X, sample_weight, random_state):
        """The data the initialisation sees (all of it unless a subclass subsamples)."""
        return X, sample_weight

    def _run_inits(self, model, X, sw, n_init, do_init, random_state, printer, callback, rtol,
                   *, max_iter, tol):
        """Run EM from every initialisation; return the best result and all traces.

        ``max_iter`` and ``tol`` (per sample) are the driver's; each estimator maps its own
        parameters onto them.
        """
        em = em_model(model, X)
        best, traces = None, []
        for init in range(n_init):
            printer.begin_init(init)
            self._begin_init(init)
            if do_init and self._init_needs_data():
                Xi, wi = self._init_rows(X, sw, random_state)
                params = self._initial_params(model, Xi, wi, random_state)
                del Xi, wi  # a subsample's copy is not kept through the run
            elif do_init:
                params = self._initial_params(model, None, None, random_state)
            else:
                params = self._continuation_params()
            result = run_em(
                em, X, sw, params, max_iter=max_iter, tol=tol,
                check_monotonic=self.check_monotonic, rtol=rtol, callback=callback, init=init,
            )
            printer.end_init(result.lower_bound, result.converged)
            traces.append(result.trace)
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        return best, traces

    def _finish_fit(self, dtype, model, best, traces):
        """Warn if the kept run did not converge; set the fitted attributes in ``dtype``."""
        if self._warn_unconverged and not best.converged and self._max_iter() > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._store(
            model, best.params, best.stats, best.trace, traces, dtype,
            lower_bound=best.lower_bound, lower_bounds=best.trace.elbo_after_e[1:],
            n_samples_seen=best.stats.total_weight, n_steps=0,
        )
        return best

    def _store(self, model, params, stats, trace, traces, dtype, *, lower_bound, lower_bounds,
               n_samples_seen, n_steps):
        """Set the fitted attributes (``fit`` and ``partial_fit`` alike)."""
        self._model_ = model
        self._params_ = params
        self._stats_ = stats  # what a later partial_fit blends into
        self._n_steps_ = int(n_steps)  # partial_fit steps since the last fit
        self._set_fitted_params(params, dtype)
        self.converged_ = bool(trace.converged)
        self.n_iter_ = int(trace.n_iter)
        self.lower_bound_ = float(lower_bound)
        self.lower_bounds_ = [float(v) for v in lower_bounds]
        self.trace_ = trace
        self.traces_ = traces
        self.best_init_ = int(trace.init)
        self.n_samples_seen_ = float(n_samples_seen)


class BaseEMMixture(OnlineEMMixin, DensityMixin, BaseEM):
    """Template shared by the mixtures: subclasses supply the model and its parameters.

    Subclasses implement ``_check_hyperparameters``, ``_make_model``, ``_initial_params``,
    ``_set_fitted_params``, ``_n_parameters`` and ``_validate_X``; the EM loop itself lives in
    :func:`emkit._em.run_em`, the online step in :meth:`partial_fit` (one implementation for
    every mixture, on :func:`emkit._em.stepwise_update`).
    """

    def _validate_fit_X(self, X):
        return check_fit_data(self, X, n_components=self.n_components)

    def _validate_predict_X(self, X):
        return check_predict_data(self, X)

    def _validate_step_X(self, X):
        """A later ``partial_fit`` mini-batch: the fitted features, in the fitted dtype."""
        return self._validate_predict_X(X).astype(self._model_.dtype, copy=False)

    def _check_continuation(self, how):
        """Continuing from the fitted parameters (``how``: "warm_start" or "partial_fit")
        needs the model they belong to."""
        if self._params_.n_components != self.n_components:
            raise ValueError(
                f"{how}: n_components is {self.n_components} but the fitted model has "
                f"{self._params_.n_components}; refit with warm_start=False."
            )

    def _check_positive_weights(self, n_positive):
        """``n_positive``: how many samples have a positive weight (None: all of them)."""
        if n_positive is not None and n_positive < self.n_components:
            raise ValueError(
                f"Only {n_positive} samples have a positive sample_weight, fewer "
                f"than n_components = {self.n_components}."
            )

    def _check_common(self):
        check_int(self.n_components, "n_components", low=1)
        self._check_em_common()
        self._check_restarts()
        check_learning_schedule(self.learning_decay, self.learning_offset)

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM.

        Runs ``n_init`` initialisations and keeps the one with the largest final bound
        (all their traces are in ``traces_``). With ``warm_start=True`` a fitted estimator
        continues from its parameters.

        Rows are streamed through the kernels in blocks, so the memory the fit adds does not
        grow with ``n_samples`` (memory-mapped arrays are read block by block). A dask array
        (or dataframe), chunked by rows, is fitted where its blocks live: one E-step task per
        block, the statistics summed on the workers, the M-step here; ``X`` is never gathered
        (see the README, "Data of any size"). While it runs, BLAS is held to one thread for
        the whole process (emkit's own threads over row blocks are the parallelism); the
        original limits are restored when it ends.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array
        y : Ignored
        sample_weight : array-like or dask array of shape (n_samples,), optional
            Non-negative weights acting as repeat counts.

        Returns
        -------
        self
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the component labels of ``X`` under the final parameters."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _fit(self, X, sample_weight):
        self._check_common()
        if is_dask_collection(X) or is_dask_collection(sample_weight):
            warm = bool(self.warm_start) and hasattr(self, "_params_")
            X, sw = self._validate_dask_fit(X, sample_weight, reset=not warm), None
            n_positive = X.n_positive_weights
        else:
            X = self._validate_fit_X(X)
            sw = check_sample_weight(sample_weight, X)
            n_positive = None if sw is None else np.count_nonzero(sw)
        self._check_positive_weights(n_positive)
        self._check_hyperparameters(X)
        return self._fit_runs(self._make_model(X, sw), X, sw, X.dtype, tol=self.tol)

    def _validate_dask_fit(self, X, sample_weight, *, reset, dtype=None):
        """Rows of a dask array, checked block by block where they live (one pass).

        The estimator's :meth:`_block_converter` validates and converts every block on the
        workers, in this pass and in every E-step; bad data raise there and reach the caller
        as the same ValueError as for in-memory input.
        """
        from ._dask import validated_rows

        rows, totals = validated_rows(
            self, X, sample_weight, reset=reset, converter=self._block_converter,
            summary=block_summary, dtype=dtype, min_rows=max(2, self.n_components) if reset else 1,
        )
        rows.n_positive_weights = None if rows.w is None else int(totals[1])
        return rows

    def _block_converter(self, dtype):
        """A picklable function that validates and converts one block of a dask array."""
        return partial(convert_dense_block, dtype=dtype)

    #: whether the initialisation runs on the weighted empirical distribution of dense data
    #: (:mod:`emkit._empirical`) instead of the rows as given
    _empirical_init = False

    def _init_rows(self, X, sample_weight, random_state):
        """The rows the initialisation sees: all of them, or a random subsample.

        With more than :func:`init_sample_size` rows (about 100,000, fewer for wide data) the
        initial clustering runs on a subsample drawn with ``random_state``, with its rows'
        weights, so initialisation never costs more memory or time than that many rows; for
        a dask array only the subsample is gathered to the client. With ``_empirical_init``
        (the Gaussian mixtures) it runs on the distinct rows with their total weights, in a
        canonical order, and the subsample is a salted-hash selection of distinct rows: the
        initialisation then depends only on the weighted empirical distribution (see
        :mod:`emkit._empirical`).
        """
        n, d = X.shape
        m = init_sample_size(n, d, np.dtype(X.dtype).itemsize, self.n_components)
        if self._empirical_init and not hasattr(X, "tocsr"):
            from ._empirical import initial_rows

            rows = initial_rows(X, sample_weight, m, self.n_components, random_state)
            if rows is not None:
                return rows
        if m >= n and not on_dask(X):
            return X, sample_weight
        if m >= n:
            idx = np.arange(n)
        else:
            idx = np.unique(random_state.randint(0, n, size=m))
        if on_dask(X):
            return X.take(idx)
        return X[idx], None if sample_weight is None else sample_weight[idx]

    # ---------------------------------------------------------------- prediction
    def _model_for(self, X):
        """The fitted model, computing in float32 only when both the fit and X are float32."""
        from dataclasses import replace

        return replace(self._model_, dtype=np.result_type(X.dtype, self._model_.dtype))

    def _normalised_chunks(self, X):
        """``(rows, R, log_norm)`` chunk by chunk: the responsibilities ``R`` of those rows
        and ``log p(x_n | theta)``. Only ``PREDICT_ROWS x K`` values are held at a time (each
        chunk's log-probabilities, normalised in place), whatever N is."""
        X = self._validate_predict_X(X)
        model = self._model_for(X)
        if not hasattr(X, "tocsr"):
            X = X.astype(model.dtype, copy=False)
        n = X.shape[0]
        for start in range(0, n, PREDICT_ROWS):
            rows = slice(start, min(n, start + PREDICT_ROWS))
            L = model.log_prob(self._params_, X[rows])
            mx = L.max(axis=1)
            mx[~np.isfinite(mx)] = 0.0  # a row impossible under every component stays -inf
            L -= mx[:, None]
            np.exp(L, out=L)
            total = L.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):  # such a row: 0 / 0, log 0
                L /= total[:, None]
                yield rows, L, np.log(total) + mx

    def score_samples(self, X):
        """Log-density ``log p(x_n | theta)`` of every sample (the per-sample evidence).

        Computed in row chunks (no ``N x K`` array). On a dask array: a lazy dask array,
        computed block by block where the blocks live.
        """
        if is_dask_collection(X):
            return self._lazy(self.score_samples, X)
        parts = []
        for rows, R, log_norm in self._normalised_chunks(X):
            self._defined(rows, R, log_norm, density_only=True)
            parts.append(log_norm)
        return np.concatenate(parts)

    def score(self, X, y=None, sample_weight=None):
        """Weighted mean log-likelihood per sample, the units of ``lower_bound_``."""
        ll = self.score_samples(X)
        if is_dask_collection(ll):
            from ._dask import weighted_mean

            return weighted_mean(ll, sample_weight)
        if sample_weight is None:
            return float(np.mean(ll, dtype=np.float64))
        sw = check_sample_weight(sample_weight, ll[:, None])
        return float(np.average(ll, weights=sw))

    #: whether the fitted model can give a sample probability exactly 0, so that a
    #: log-density of -inf is a value (an impossible sample), not an overflow; such a model
    #: supplies the posterior of those rows itself (in ``_normalised_chunks``)
    _zero_density_possible = False

    def _defined(self, rows, R, log_norm, *, density_only=False):
        """``R``, or a ValueError naming the first row whose result is undefined.

        NaN or +inf log-densities, and -inf where the model gives every sample a positive
        density, come from values that overflow the model's arithmetic (``|x|`` near 1e154
        squares to infinity), which would otherwise be a silent NaN. Where the model can give
        a sample probability 0 (``_zero_density_possible``), -inf is that sample's true
        log-density and passes; its posterior must then be finite too, unless only the
        density is asked for (``density_only``, ``score_samples``).
        """
        impossible = np.isneginf(log_norm) if self._zero_density_possible else None
        bad = ~np.isfinite(log_norm)
        if impossible is not None:
            bad &= ~impossible
        if np.any(bad):
            row = rows.start + int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"Row {row} of X has a non-finite log-density ({log_norm[bad][0]}) under "
                "every component: its values overflow the model's arithmetic (squares of "
                "values near 1e154 are infinite). Rescale the data."
            )
        if not density_only and impossible is not None and np.any(impossible):
            undefined = impossible & ~np.all(np.isfinite(R), axis=1)
            if np.any(undefined):
                row = rows.start + int(np.flatnonzero(undefined)[0])
                raise ValueError(
                    f"Row {row} of X has probability 0 under every component: its posterior "
                    "over the components is undefined."
                )
        return R

    def predict(self, X):
        """Most probable component of each sample (row chunks; lazy on a dask array)."""
        if is_dask_collection(X):
            return self._lazy(self.predict, X, dtype=np.intp)
        return np.concatenate([np.argmax(self._defined(*chunk), axis=1)
                               for chunk in self._normalised_chunks(X)])

    def predict_proba(self, X):
        """Posterior probability of each component for each sample (N x K, written chunk by
        chunk; lazy on dask)."""
        if is_dask_collection(X):
            return self._lazy(self.predict_proba, X, n_columns=self.n_components)
        out = None
        for rows, R, log_norm in self._normalised_chunks(X):
            if out is None:
                out = np.empty((_num_samples(X), R.shape[1]), dtype=R.dtype)
            out[rows] = self._defined(rows, R, log_norm)
        return out

    def _lazy(self, method, X, n_columns=None, dtype=None):
        from ._dask import lazy_rows

        check_is_fitted(self)
        if dtype is None:  # what the blocks compute in: float32 only if X and the fit are
            x_dtype = X.dtype if hasattr(X, "dtype") else np.result_type(*X.dtypes)
            dtype = np.result_type(fit_dtype(x_dtype), self._params_dtype())
        return lazy_rows(method, X, n_columns=n_columns, dtype=dtype)

    def _sample_counts(self, n_samples, normalise=False):
        """``sample``'s start: how many of ``n_samples`` draws come from each component (with
        probabilities ``weights_``, rescaled to sum to one if ``normalise``), and the
        generator to draw them with."""
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples}. The sampling requires at least "
                "one sample."
            )
        rng = check_random_state(self.random_state)
        weights = self.weights_.astype(np.float64)
        if normalise:
            weights = weights / weights.sum()
        return rng.multinomial(n_samples, weights), rng

    def _params_dtype(self):
        return self.weights_.dtype

    def _total_weight(self, X, sample_weight):
        if sample_weight is None:
            return _num_samples(X)
        return float(np.sum(sample_weight))

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion on ``X`` (lower is better)."""
        n = self._total_weight(X, sample_weight)
        score = self.score(X, sample_weight=sample_weight)
        return -2 * score * n + self._n_parameters() * np.log(n)

    def aic(self, X, sample_weight=None):
        """Akaike information criterion on ``X`` (lower is better)."""
        n = self._total_weight(X, sample_weight)
        return -2 * self.score(X, sample_weight=sample_weight) * n + 2 * self._n_parameters()
