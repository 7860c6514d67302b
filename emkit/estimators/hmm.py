"""``emkit.GaussianHMM`` and ``emkit.CategoricalHMM``: drop-ins for hmmlearn 0.3's.

Baum-Welch on the shared driver (:func:`emkit._em.run_em`): the model is
:class:`emkit.models.hmm.HMMModel`, the estimator side is :class:`emkit._base.BaseEM` (trace,
callback, verbose printing, monotonicity check). Parameters live in hmmlearn's attributes
(``startprob_``, ``transmat_``, ``means_``, ``covars_``, ``emissionprob_``), so setting them and
fitting with ``init_params=""`` continues from them, as in hmmlearn.
"""

from __future__ import annotations

import warnings
from collections import deque

import numpy as np
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from .._base import BaseEM
from .._em import monotonic_rtol
from .._validation import check_choice, check_int
from ..kernels._parallel import blas_single_thread
from ..models.gaussian import (
    COVARIANCE_TYPES,
    GaussianModel,
    GaussianParams,
    center_and_spread,
)
from ..models.hmm import CategoricalEmission, GaussianEmission, HMMModel, HMMParams, Sequences

__all__ = ["GaussianHMM", "CategoricalHMM", "ConvergenceMonitor"]


class ConvergenceMonitor:
    """hmmlearn's ``monitor_``: ``history`` (the log-likelihood before every M-step), ``iter``,
    ``converged``. Unlike hmmlearn's, a fall of the log-likelihood is never convergence: it is
    a :class:`~emkit.MonotonicityWarning` (or error) naming the iteration and half-step."""

    def __init__(self, tol, n_iter, verbose):
        self.tol, self.n_iter, self.verbose = tol, n_iter, verbose
        self.history = deque()
        self.iter = 0
        self.converged = False

    def __repr__(self):
        return (f"ConvergenceMonitor(history={list(self.history)}, iter={self.iter}, "
                f"n_iter={self.n_iter}, tol={self.tol}, converged={self.converged})")


def _monitor(estimator):
    """``monitor_`` of a fitted HMM, read off its trace (so it is saved with it)."""
    monitor = ConvergenceMonitor(estimator.tol, estimator.n_iter, estimator.verbose)
    # hmmlearn's history: the log-likelihood before every M-step
    scale = estimator._history_scale_
    monitor.history.extend(float(v) * scale for v in estimator.trace_.log_evidence[:-1])
    monitor.iter, monitor.converged = estimator.trace_.n_iter, estimator.trace_.converged
    return monitor


def check_lengths(lengths, n_rows):
    """``starts`` (S + 1 offsets) from ``lengths``: positive integers summing to ``n_rows``."""
    if lengths is None:
        return np.array([0, n_rows], dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D array, got shape {lengths.shape}.")
    if lengths.dtype.kind not in "iu":
        if lengths.dtype.kind != "f" or not np.all(np.isfinite(lengths)) or np.any(
            lengths != np.round(lengths)
        ):
            raise ValueError(f"lengths must be integers, got {lengths!r}.")
    lengths = lengths.astype(np.int64)
    if np.any(lengths <= 0):
        raise ValueError(f"lengths must be positive, got {lengths[lengths <= 0][:5]} among them.")
    if lengths.sum() != n_rows:
        raise ValueError(
            f"lengths sum to {int(lengths.sum())} but X has {n_rows} rows: they must be equal."
        )
    return np.concatenate([[0], np.cumsum(lengths)])


def _check_probs(p, name, shape):
    p = np.asarray(p, dtype=np.float64)
    if p.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {p.shape}.")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be finite and non-negative.")
    s = p.sum(axis=-1)
    if not np.allclose(s, 1.0):
        what = "must sum to 1" if p.ndim == 1 else "rows must sum to 1"
        raise ValueError(f"{name} {what} (got {np.round(s, 6)}).")
    return p


class _BaseHMM(BaseEM):
    """What the two HMMs share: fit over sequences, scoring, decoding, sampling."""

    _max_iter_name = "n_iter"
    _warn_unconverged = False  # hmmlearn's n_iter is a budget; ``monitor_`` reports
    _emission_code = "e"

    @property
    def monitor_(self):
        """hmmlearn's :class:`ConvergenceMonitor` of the last fit (built from ``trace_``)."""
        if not hasattr(self, "_history_scale_"):
            raise AttributeError("monitor_ is set by fit")
        return _monitor(self)

    def _set_common(self, n_components, startprob_prior, transmat_prior, algorithm,
                    random_state, n_iter, tol, verbose, params, init_params, implementation,
                    check_monotonic, callback):
        """Store the constructor parameters both HMMs share (only stored, as scikit-learn
        asks)."""
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.check_monotonic = check_monotonic
        self.callback = callback

    def _check_common(self):
        check_int(self.n_components, "n_components", low=1)
        self._check_em_common(allow_bool_verbose=True)
        check_choice(self.algorithm, "algorithm", ("viterbi", "map"))
        check_choice(self.implementation, "implementation", ("log", "scaling"))
        for name in ("params", "init_params"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}.")

    # ---------------------------------------------------------------- data
    def _sequences(self, X, lengths, fit=False):
        if not fit:
            check_is_fitted(self, "startprob_")
        X = self._validate_X(X, fit)
        return Sequences(X, check_lengths(lengths, X.shape[0]))

    def _sequence_weights(self, sample_weight, n_seq, dtype):
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n_seq,):
            raise ValueError(
                f"sample_weight needs one weight per sequence ({n_seq}), got shape {w.shape}."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError("sample_weight must be finite, non-negative and not all zero.")
        return w

    def _needs_init(self, code, name):
        return code in self.init_params or not hasattr(self, name)

    # ---------------------------------------------------------------- fitting
    def fit(self, X, lengths=None, sample_weight=None):
        """Estimate the parameters with Baum-Welch (EM).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Concatenated sequences.
        lengths : array-like of int, optional
            Length of each sequence (summing to ``n_samples``); default: one sequence.
        sample_weight : array-like of shape (n_sequences,), optional
            One non-negative weight per sequence; an integer weight equals repeating it.

        Returns
        -------
        self
        """
        self._check_common()
        seqs = self._sequences(X, lengths, fit=True)
        sw = self._sequence_weights(sample_weight, seqs.n_sequences, seqs.X.dtype)
        self._check_hyperparameters(seqs.X)
        model = self._make_model(seqs.X)
        random_state = check_random_state(self.random_state)
        printer, callback = self._progress()
        total = float(seqs.X.shape[0] if sw is None else sw @ seqs.lengths)
        with blas_single_thread():
            best, traces = self._run_inits(
                model, seqs, sw, 1, True, random_state, printer, callback,
                monotonic_rtol(seqs.X.dtype), max_iter=self.n_iter, tol=self.tol / total,
            )
        self._finish_fit(model.dtype, model, best, traces)
        self._history_scale_ = total  # monitor_ is read off trace_ in these units
        occupancy = best.stats.start + best.stats.trans.sum(axis=0)
        self.unvisited_states_ = np.flatnonzero(occupancy <= 0)
        if self.unvisited_states_.size:
            warnings.warn(
                f"States {self.unvisited_states_.tolist()} have zero posterior probability at "
                "every step of every sequence: their parameters were kept as they were.",
                UserWarning, stacklevel=2,
            )
        return self

    def _initial_params(self, model, X, sample_weight, random_state):
        k = self.n_components
        init = 1.0 / k
        if self._needs_init("s", "startprob_"):
            self.startprob_ = random_state.dirichlet(np.full(k, init))
        if self._needs_init("t", "transmat_"):
            self.transmat_ = random_state.dirichlet(np.full(k, init), size=k)
        self._init_emission(X.X, random_state)
        return self._current_params()

    def _current_params(self):
        k = self.n_components
        return HMMParams(
            _check_probs(self.startprob_, "startprob_", (k,)),
            _check_probs(self.transmat_, "transmat_", (k, k)),
            self._emission_params(),
        )

    def _set_fitted_params(self, params, dtype):
        self.startprob_ = params.startprob.astype(dtype)
        self.transmat_ = params.transmat.astype(dtype)
        self._set_emission(params.emission, dtype)

    def _predict_model(self, seqs):
        check_is_fitted(self, "startprob_")
        return self._make_model(seqs.X, fitting=False), self._current_params()

    # ---------------------------------------------------------------- inference
    def score_samples(self, X, lengths=None):
        """``(log p(X), posteriors)``: the total log-likelihood and the state posteriors."""
        seqs = self._sequences(X, lengths)
        model, params = self._predict_model(seqs)
        ll, gamma = model.score_sequences(params, seqs)
        return float(np.sum(ll)), gamma

    def score(self, X, lengths=None):
        """Log-likelihood of ``X`` (summed over the sequences, as hmmlearn)."""
        seqs = self._sequences(X, lengths)
        model, params = self._predict_model(seqs)
        return float(np.sum(model.posteriors(params, seqs)[0]))

    def predict_proba(self, X, lengths=None):
        """Posterior probability of each state at each step (N x K)."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """``(log-probability, states)`` by Viterbi (or ``"map"``: per-step most probable)."""
        algorithm = check_choice(algorithm or self.algorithm, "algorithm", ("viterbi", "map"))
        seqs = self._sequences(X, lengths)
        model, params = self._predict_model(seqs)
        if algorithm == "viterbi":
            logprob, path = model.viterbi(params, seqs)
            return float(np.sum(logprob)), path
        _, gamma = model.score_sequences(params, seqs)
        # hmmlearn's "map" log_prob: the sum of the per-step maximal posteriors
        return float(np.max(gamma, axis=1).sum()), np.argmax(gamma, axis=1)

    def predict(self, X, lengths=None):
        """Most likely states (by ``algorithm``)."""
        return self.decode(X, lengths)[1]

    def get_stationary_distribution(self):
        """The stationary distribution of the chain (left eigenvector of ``transmat_``)."""
        check_is_fitted(self, "transmat_")
        eigvals, eigvecs = np.linalg.eig(np.asarray(self.transmat_).T)
        eigvec = np.real_if_close(eigvecs[:, np.argmax(eigvals)])
        return eigvec / eigvec.sum()

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw ``(X, states)`` from the model (hmmlearn's algorithm and random stream)."""
        check_is_fitted(self, "startprob_")
        self._current_params()
        rs = check_random_state(self.random_state if random_state is None else random_state)
        transmat_cdf = np.cumsum(self.transmat_, axis=1)
        if currstate is None:
            currstate = (np.cumsum(self.startprob_) > rs.rand()).argmax()
        states = [currstate]
        X = [self._sample_state(currstate, rs)]
        for _ in range(n_samples - 1):
            currstate = (transmat_cdf[currstate] > rs.rand()).argmax()
            states.append(currstate)
            X.append(self._sample_state(currstate, rs))
        return np.atleast_2d(X), np.array(states, dtype=int)

    def _n_parameters(self) -> int:
        counts = self._n_fit_scalars()
        return int(sum(counts[p] for p in self.params if p in counts))

    def aic(self, X, lengths=None):
        """``-2 log L + 2 p``, as hmmlearn."""
        return -2 * self.score(X, lengths) + 2 * self._n_parameters()

    def bic(self, X, lengths=None):
        """``-2 log L + p log(n_samples)``, as hmmlearn."""
        return -2 * self.score(X, lengths) + self._n_parameters() * np.log(len(X))

    def _chain_model(self, emission, dtype):
        return HMMModel(
            emission, startprob_prior=self.startprob_prior, transmat_prior=self.transmat_prior,
            update_start="s" in self.params, update_trans="t" in self.params,
            dtype=np.dtype(dtype),
        )


class GaussianHMM(_BaseHMM):
    """Hidden Markov model with Gaussian emissions; a drop-in for hmmlearn's ``GaussianHMM``.

    Same constructor parameters, attributes and methods as ``hmmlearn.hmm.GaussianHMM`` (0.3),
    plus ``check_monotonic`` and ``callback`` as every emkit estimator, and ``trace_``,
    ``traces_``, ``lower_bound_`` (per time step). The emission log-densities are
    GaussianMixture's kernel; the M-step is hmmlearn's, priors included.
    """

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", check_monotonic="warn", callback=None):
        self._set_common(n_components, startprob_prior, transmat_prior, algorithm, random_state,
                         n_iter, tol, verbose, params, init_params, implementation,
                         check_monotonic, callback)
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight

    @property
    def n_features(self):
        """Dimensionality of the emissions (from ``means_``)."""
        return np.shape(self.means_)[1] if hasattr(self, "means_") else None

    @property
    def covars_(self):
        """Covariances as full matrices (K x D x D), whatever ``covariance_type``."""
        cv, ct = self._covars_, self.covariance_type
        k = self.n_components
        if ct == "full":
            return cv
        if ct == "diag":
            return np.array([np.diag(c) for c in cv])
        if ct == "tied":
            return np.tile(cv, (k, 1, 1))
        d = self.n_features
        return np.eye(d)[None] * np.ravel(cv)[:, None, None]

    @covars_.setter
    def covars_(self, covars):
        self._covars_ = np.array(covars, copy=True)

    def _check_hyperparameters(self, X):
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)

    def _validate_X(self, X, fit):
        missing_ok = self.covariance_type in ("diag", "spherical")
        X = check_array(
            X, dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan" if missing_ok else True,
        )
        if missing_ok and np.isinf(X).any():
            raise ValueError("Input X contains infinity (NaN marks a missing value).")
        if not fit and self.n_features is not None and X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but the model has {self.n_features}."
            )
        return X

    def _make_model(self, X, sample_weight=None, fitting=True):
        missing = bool(np.isnan(X).any())
        if missing:
            center = np.nan_to_num(np.nanmean(X, axis=0, dtype=np.float64))
            spread = np.nan_to_num(np.nanstd(X, axis=0, dtype=np.float64))
        else:
            center, spread = center_and_spread(X)
        gauss = GaussianModel(
            covariance_type=self.covariance_type, center=center, spread=spread,
            dtype=np.dtype(X.dtype),
        )
        emission = GaussianEmission(
            gauss, means_prior=self.means_prior, means_weight=self.means_weight,
            covars_prior=self.covars_prior, covars_weight=self.covars_weight,
            update_means="m" in self.params, update_covars="c" in self.params,
            missing=missing,
        )
        return self._chain_model(emission, X.dtype)

    def _init_emission(self, X, random_state):
        k = self.n_components
        if np.isnan(X).any():
            # hmmlearn's initialisation on the complete rows (on column-mean-filled rows when
            # fewer than n_components are complete)
            complete = ~np.isnan(X).any(axis=1)
            if complete.sum() >= max(k, 2):
                X = X[complete]
            else:
                X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        if self._needs_init("m", "means_"):
            from sklearn.cluster import KMeans

            kmeans = KMeans(n_clusters=k, random_state=self.random_state, n_init=10).fit(X)
            self.means_ = kmeans.cluster_centers_
        if self._needs_init("c", "covars_"):
            cv = np.atleast_2d(np.cov(np.asarray(X, np.float64).T)) + self.min_covar * np.eye(
                X.shape[1]
            )
            ct = self.covariance_type
            self._covars_ = {
                "spherical": lambda: np.full(k, cv.mean()),
                "tied": lambda: cv,
                "diag": lambda: np.tile(np.diag(cv), (k, 1)),
                "full": lambda: np.tile(cv, (k, 1, 1)),
            }[ct]()

    def _emission_params(self):
        k, ct = self.n_components, self.covariance_type
        means = np.asarray(self.means_, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means_ must have shape ({k}, n_features), got {means.shape}.")
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ contains NaN or infinity.")
        d = means.shape[1]
        cv = np.asarray(self._covars_, dtype=np.float64)
        if ct == "spherical" and cv.ndim == 2:
            cv = cv.mean(axis=1)
        shape = {"spherical": (k,), "diag": (k, d), "tied": (d, d), "full": (k, d, d)}[ct]
        if cv.shape != shape:
            raise ValueError(f"'{ct}' covars must have shape {shape}, got {cv.shape}.")
        if ct in ("tied", "full"):
            mats = cv[None] if ct == "tied" else cv
            for i, c in enumerate(mats):
                if not np.allclose(c, c.T) or np.any(np.linalg.eigvalsh(c) <= 0):
                    raise ValueError(
                        f"'{ct}' covars must be symmetric, positive-definite (state {i})."
                    )
        elif not np.all(cv > 0):
            raise ValueError(f"'{ct}' covars must be positive.")
        return GaussianParams.from_covariances(np.ones(k), means, cv, ct)

    def _set_emission(self, ep, dtype):
        self.means_ = ep.means.astype(dtype)
        self._covars_ = ep.get_covariances().astype(dtype)

    def _sample_state(self, state, rs):
        return rs.multivariate_normal(self.means_[state], self.covars_[state])

    def _n_fit_scalars(self):
        k, d = self.n_components, self.n_features
        return {
            "s": k - 1, "t": k * (k - 1), "m": k * d,
            "c": {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2,
                  "tied": d * (d + 1) // 2}[self.covariance_type],
        }


class CategoricalHMM(_BaseHMM):
    """Hidden Markov model with categorical emissions; a drop-in for hmmlearn's
    ``CategoricalHMM``. ``X`` holds one integer symbol per row (shape (n_samples, 1))."""

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, *,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", check_monotonic="warn",
                 callback=None):
        self._set_common(n_components, startprob_prior, transmat_prior, algorithm, random_state,
                         n_iter, tol, verbose, params, init_params, implementation,
                         check_monotonic, callback)
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features

    def _n_symbols(self, X=None):
        if self.n_features is not None:
            return check_int(self.n_features, "n_features", low=1)
        if hasattr(self, "emissionprob_") and not ("e" in self.init_params and X is not None):
            return np.shape(self.emissionprob_)[1]
        return int(X.max()) + 1

    def _check_hyperparameters(self, X):
        pass

    def _validate_X(self, X, fit):
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != 1:
            raise ValueError(f"X must have shape (n_samples, 1), got {X.shape}.")
        if X.shape[0] == 0:
            raise ValueError("X is empty: at least one symbol is needed.")
        if X.dtype.kind not in "iu":
            raise ValueError(f"Symbols must be integers, got dtype {X.dtype}.")
        x = X[:, 0].astype(np.int64)
        v = self._n_symbols(x) if fit else np.shape(self.emissionprob_)[1]
        if x.min() < 0 or x.max() >= v:
            raise ValueError(
                f"Symbols must be in 0..{v - 1} (n_features = {v}); got {x.min()}..{x.max()}."
            )
        return x

    def _make_model(self, X, sample_weight=None, fitting=True):
        v = self._n_symbols(X) if fitting else np.shape(self.emissionprob_)[1]
        emission = CategoricalEmission(
            v, emissionprob_prior=self.emissionprob_prior, update="e" in self.params,
        )
        return self._chain_model(emission, np.float64)

    def _init_emission(self, X, random_state):
        if self._needs_init("e", "emissionprob_"):
            rs = check_random_state(self.random_state)  # hmmlearn draws from a fresh stream
            e = rs.rand(self.n_components, self._n_symbols(X))
            self.emissionprob_ = e / e.sum(axis=1, keepdims=True)

    def _emission_params(self):
        k = self.n_components
        e = np.atleast_2d(np.asarray(self.emissionprob_, dtype=np.float64))
        return _check_probs(e, "emissionprob_", (k, e.shape[1]))

    def _set_emission(self, ep, dtype):
        self.emissionprob_ = ep.astype(dtype)

    def _sample_state(self, state, rs):
        cdf = np.cumsum(self.emissionprob_[state, :])
        return [(cdf > rs.rand()).argmax()]

    def _n_fit_scalars(self):
        k, v = self.n_components, np.shape(self.emissionprob_)[1]
        return {"s": k - 1, "t": k * (k - 1), "e": k * (v - 1)}
