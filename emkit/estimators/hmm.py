"""``emkit.GaussianHMM`` and ``emkit.CategoricalHMM``: drop-ins for hmmlearn 0.3's.

Baum-Welch on the shared driver (:func:`emkit._em.run_em`): the model is
:class:`emkit.models.hmm.HMMModel`, the estimator side is :class:`emkit._base.BaseEM` (trace,
callback, verbose printing, monotonicity check). Parameters live in hmmlearn's attributes
(``startprob_``, ``transmat_``, ``means_``, ``covars_``, ``emissionprob_``), so setting them and
fitting with ``init_params=""`` continues from them, as in hmmlearn.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import BaseEM
from .._validation import check_choice, check_int
from ..models.gaussian import (
    COVARIANCE_TYPES,
    GaussianModel,
    GaussianParams,
    center_and_spread,
)
from ..models.hmm import CategoricalEmission, GaussianEmission, HMMModel, HMMParams, Sequences
from ._hmm_input import (
    ConvergenceMonitor,
    check_hmm_weights,
    check_lengths,
    check_probs,
    lengths_from,
    monitor_of,
)

__all__ = ["GaussianHMM", "CategoricalHMM", "ConvergenceMonitor"]


class _BaseHMM(BaseEM):
    """What the two HMMs share: fit over sequences, scoring, decoding, sampling.

    ``fit(X, lengths)`` and ``score(X, lengths)`` work positionally, as in hmmlearn, although
    the second parameter is named ``y`` as scikit-learn requires: see
    :func:`~emkit.estimators._hmm_input.lengths_from`. The other methods take ``lengths``
    second, as hmmlearn's.
    """

    _max_iter_name = "n_iter"
    _warn_unconverged = False  # hmmlearn's n_iter is a budget; ``monitor_`` reports

    @property
    def monitor_(self):
        """hmmlearn's :class:`ConvergenceMonitor` of the last fit (built from ``trace_``)."""
        if not hasattr(self, "_history_scale_"):
            raise AttributeError("monitor_ is set by fit")
        return monitor_of(self)

    def _set_common(self, n_components, startprob_prior, transmat_prior, algorithm,
                    random_state, n_iter, tol, verbose, params, init_params, implementation,
                    check_monotonic, callback, n_init, warm_start):
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
        self.n_init = n_init
        self.warm_start = warm_start

    def _check_common(self):
        check_int(self.n_components, "n_components", low=1)
        self._check_em_common(allow_bool_verbose=True)
        self._check_restarts()
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

    def _continuing(self) -> bool:
        """A warm start: this fit continues from the fitted parameters."""
        return bool(self.warm_start) and hasattr(self, "_params_")

    def _needs_init(self, code, name):
        """hmmlearn's rule: initialise ``name`` if ``code`` is in ``init_params`` or it is
        not set."""
        return code in self.init_params or not hasattr(self, name)

    def _kept(self, code, name) -> bool:
        """Whether the fit starts from the attribute ``name`` as it is (not initialised)."""
        return hasattr(self, name) and (self._continuing() or code not in self.init_params)

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y=None, sample_weight=None, *, lengths=None):
        """Estimate the parameters with Baum-Welch (EM).

        Runs ``n_init`` initialisations (hmmlearn's: the first draws exactly what hmmlearn
        draws) and keeps the one with the largest final log-likelihood plus log prior; all
        their traces are in ``traces_``. With ``warm_start=True`` a fitted model continues
        from its current parameters (as ``init_params=""`` does, but only once fitted).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Concatenated sequences.
        y : array-like of int, optional
            hmmlearn's ``lengths`` in its place: ``fit(X, lengths)`` works as in hmmlearn.
            It is named ``y`` for scikit-learn, which passes its target here: one value per
            row that is not a valid lengths vector is such a target, and ignored (a valid
            lengths vector, positive integers summing to ``n_samples``, is always lengths).
        sample_weight : array-like of shape (n_sequences,) or (n_samples,), optional
            One non-negative weight per sequence (an integer weight equals repeating the
            sequence), or one per row: step ``t`` then counts as ``w_t`` observations of
            that step (its emission density raised to the power ``w_t``; zero leaves the
            step unobserved). When every sequence has length one, per sequence.
        lengths : array-like of int, optional
            Length of each sequence (summing to ``n_samples``); default: one sequence.

        Returns
        -------
        self
        """
        self._check_common()
        seqs = self._sequences(X, lengths_from(y, lengths, X), fit=True)
        n = seqs.X.shape[0]
        seq_w, obs_w = check_hmm_weights(sample_weight, seqs.n_sequences, n)
        if obs_w is not None:
            seqs = Sequences(seqs.X, seqs.starts, obs_w)
        self._check_hyperparameters(seqs.X)
        model = self._make_model(seqs.X)
        row_w = np.ones(n) if seq_w is None else np.repeat(seq_w, seqs.lengths)
        total = float(np.sum(row_w if obs_w is None else row_w * obs_w))
        best = self._fit_runs(model, seqs, seq_w, model.dtype, tol=self.tol / total)
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

    def _begin_init(self, init):
        self._first_init = init == 0

    def _init_stream(self, random_state):
        """What seeds the initial clustering / emissions: hmmlearn's ``random_state`` in the
        first initialisation (the same draws as hmmlearn), the running stream after it (so
        every initialisation differs)."""
        return self.random_state if self._first_init else random_state

    def _initial_params(self, model, X, sample_weight, random_state):
        k = self.n_components
        init = 1.0 / k
        start, trans = getattr(self, "startprob_", None), getattr(self, "transmat_", None)
        if self._needs_init("s", "startprob_"):
            start = random_state.dirichlet(np.full(k, init))
        if self._needs_init("t", "transmat_"):
            trans = random_state.dirichlet(np.full(k, init), size=k)
        return HMMParams(
            check_probs(start, "startprob_", (k,)),
            check_probs(trans, "transmat_", (k, k)),
            self._initial_emission(X.X, random_state),
        )

    def _continuation_params(self):
        return self._current_params()

    def _current_params(self):
        k = self.n_components
        return HMMParams(
            check_probs(self.startprob_, "startprob_", (k,)),
            check_probs(self.transmat_, "transmat_", (k, k)),
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
        """``(log p(X), posteriors)``: the total log-likelihood and the state posteriors
        (N x K), as hmmlearn's (not scikit-learn's per-row log-densities)."""
        seqs = self._sequences(X, lengths)
        model, params = self._predict_model(seqs)
        ll, gamma = model.score_sequences(params, seqs)
        return float(np.sum(ll)), gamma

    def score(self, X, y=None, *, lengths=None):
        """Log-likelihood of ``X`` (summed over the sequences, as hmmlearn).

        ``y``: hmmlearn's ``lengths`` in its place (``score(X, lengths)``), as in :meth:`fit`.
        """
        seqs = self._sequences(X, lengths_from(y, lengths, X))
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
        return -2 * self.score(X, lengths=lengths) + 2 * self._n_parameters()

    def bic(self, X, lengths=None):
        """``-2 log L + p log(n_samples)``, as hmmlearn."""
        return -2 * self.score(X, lengths=lengths) + self._n_parameters() * np.log(len(X))

    def _chain_model(self, emission, dtype):
        return HMMModel(
            emission, startprob_prior=self.startprob_prior, transmat_prior=self.transmat_prior,
            update_start="s" in self.params, update_trans="t" in self.params,
            dtype=np.dtype(dtype),
        )


#: covariance types whose missing observations (NaN) are marginalised (all of them)
MISSING_TYPES = ("spherical", "diag", "full", "tied")


class GaussianHMM(_BaseHMM):
    """Hidden Markov model with Gaussian emissions; a drop-in for hmmlearn's ``GaussianHMM``.

    Same constructor parameters, attributes and methods as ``hmmlearn.hmm.GaussianHMM`` (0.3),
    plus ``check_monotonic``, ``callback``, ``n_init`` and ``warm_start`` as every emkit
    estimator, and ``trace_``, ``traces_``, ``lower_bound_`` (per time step). The emission
    log-densities are GaussianMixture's kernel; the M-step is hmmlearn's, priors included.
    NaN entries of ``X`` are missing observations, marginalised exactly, for the
    covariance types in ``MISSING_TYPES``.
    """

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", check_monotonic="warn", callback=None, n_init=1,
                 warm_start=False):
        self._set_common(n_components, startprob_prior, transmat_prior, algorithm, random_state,
                         n_iter, tol, verbose, params, init_params, implementation,
                         check_monotonic, callback, n_init, warm_start)
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.covariance_type in MISSING_TYPES
        return tags

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
        n, d = X.shape
        if self._kept("m", "means_") and np.shape(self.means_)[-1] != d:
            raise ValueError(
                f"X has {d} features, but means_ (kept: 'm' is not in init_params) has "
                f"{np.shape(self.means_)[-1]}."
            )
        k = self.n_components
        if n < k and not self._kept("m", "means_"):
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {k}, "
                f"n_samples = {n}: the k-means initialisation needs a sample per state."
            )
        if n < 2 and not self._kept("c", "_covars_"):
            raise ValueError(
                f"n_samples = {n}: initialising the covariances (init_params has 'c') needs "
                "at least 2 samples; set covars_ and drop 'c' from init_params."
            )

    def _validate_X(self, X, fit):
        missing_ok = self.covariance_type in MISSING_TYPES
        X = validate_data(
            self, X, reset=fit, dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan" if missing_ok else True,
        )
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

    def _initial_emission(self, X, random_state):
        """hmmlearn's initialisation: k-means means and the data covariance (plus
        ``min_covar``) for every state; the attributes as they are where not initialised."""
        k = self.n_components
        if np.isnan(X).any():
            # on the complete rows (on column-mean-filled rows when fewer than n_components
            # are complete)
            complete = ~np.isnan(X).any(axis=1)
            if complete.sum() >= max(k, 2):
                X = X[complete]
            else:
                X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        means = getattr(self, "means_", None)
        if self._needs_init("m", "means_"):
            from sklearn.cluster import KMeans

            kmeans = KMeans(n_clusters=k, random_state=self._init_stream(random_state),
                            n_init=10).fit(X)
            means = kmeans.cluster_centers_
        covars = getattr(self, "_covars_", None)
        if self._needs_init("c", "_covars_"):
            cv = np.atleast_2d(np.cov(np.asarray(X, np.float64).T)) + self.min_covar * np.eye(
                X.shape[1]
            )
            covars = {
                "spherical": lambda: np.full(k, cv.mean()),
                "tied": lambda: cv,
                "diag": lambda: np.tile(np.diag(cv), (k, 1)),
                "full": lambda: np.tile(cv, (k, 1, 1)),
            }[self.covariance_type]()
        return self._gaussian_params(means, covars)

    def _emission_params(self):
        return self._gaussian_params(self.means_, self._covars_)

    def _gaussian_params(self, means, covars):
        """Checked emission parameters (a ValueError naming the problem)."""
        k, ct = self.n_components, self.covariance_type
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means_ must have shape ({k}, n_features), got {means.shape}.")
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ contains NaN or infinity.")
        d = means.shape[1]
        cv = np.asarray(covars, dtype=np.float64)
        if ct == "spherical" and cv.ndim == 2:
            cv = cv.mean(axis=1)
        shape = {"spherical": (k,), "diag": (k, d), "tied": (d, d), "full": (k, d, d)}[ct]
        if cv.shape != shape:
            raise ValueError(f"'{ct}' covars must have shape {shape}, got {cv.shape}.")
        if not np.all(np.isfinite(cv)):
            raise ValueError(f"'{ct}' covars contain NaN or infinity.")
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
    ``CategoricalHMM``.

    ``X`` holds one integer symbol per step: shape (n_samples, 1), as hmmlearn's. Beyond
    hmmlearn, ``D > 1`` columns are ``D`` symbols per step that are independent given the
    state (``emissionprob_`` then has shape (n_components, D, n_features)). Symbols stored as
    floats are accepted when they are whole numbers. ``n_features`` (the number of
    symbols) reads, as in hmmlearn after a fit, the number the model emits when it was not
    given (``max symbol + 1`` of the data, or the width of ``emissionprob_``); the
    constructor's value itself is left as given, so ``get_params`` and ``clone`` see it.
    """

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, *,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", check_monotonic="warn",
                 callback=None, n_init=1, warm_start=False):
        self._set_common(n_components, startprob_prior, transmat_prior, algorithm, random_state,
                         n_iter, tol, verbose, params, init_params, implementation,
                         check_monotonic, callback, n_init, warm_start)
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features

    @property
    def n_features(self):
        """Number of symbols: as given, else that of ``emissionprob_`` (set by fit)."""
        given = self.__dict__.get("n_features")
        if given is None and hasattr(self, "emissionprob_"):
            return int(np.shape(self.emissionprob_)[-1])
        return given

    @n_features.setter
    def n_features(self, value):
        self.__dict__["n_features"] = value

    def get_params(self, deep=True):
        """The constructor parameters as given (``n_features`` None stays None)."""
        params = super().get_params(deep=deep)
        params["n_features"] = self.__dict__.get("n_features")
        return params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.positive_only = True  # symbols are 0..n_features - 1
        return tags

    def _n_symbols(self, x=None):
        given = self.__dict__.get("n_features")
        if given is not None:
            return check_int(given, "n_features", low=1)
        if self._kept("e", "emissionprob_") or x is None:
            return int(np.shape(self.emissionprob_)[-1])
        return int(x.max()) + 1

    def _check_hyperparameters(self, X):
        pass

    def _validate_X(self, X, fit):
        if np.isscalar(X) or (isinstance(X, np.ndarray) and X.ndim == 0):
            raise ValueError(
                f"Expected a sequence of symbols, got scalar array instead: X={X!r}. "
                "Reshape your data: shape (n_samples, 1), or (n_samples, n_channels)."
            )
        X = validate_data(self, X, reset=fit)
        if X.dtype.kind not in "iu":
            if X.dtype.kind != "f" or np.any(X != np.round(X)):
                raise ValueError(
                    f"Symbols must be integers, got dtype {X.dtype} with non-integer values."
                )
        x = X.astype(np.int64)
        if x.min() < 0:
            raise ValueError(
                f"Negative values in data passed to CategoricalHMM: symbols are integers "
                f"0..n_features - 1, got {x.min()}."
            )
        if not fit or self._kept("e", "emissionprob_"):
            self._check_channels(x.shape[1], "X")
        v = self._n_symbols(x) if fit else np.shape(self.emissionprob_)[-1]
        if x.max() >= v:
            raise ValueError(
                f"Symbols must be in 0..{v - 1} (n_features = {v}); got {x.min()}..{x.max()}."
            )
        return x[:, 0] if x.shape[1] == 1 else x

    def _check_channels(self, n_channels, what):
        e_dim = np.ndim(self.emissionprob_)
        have = 1 if e_dim == 2 else np.shape(self.emissionprob_)[1]
        if have != n_channels:
            raise ValueError(
                f"{what} has {n_channels} symbol(s) per step but emissionprob_ (shape "
                f"{np.shape(self.emissionprob_)}) models {have}."
            )

    def _make_model(self, X, sample_weight=None, fitting=True):
        v = self._n_symbols(X) if fitting else np.shape(self.emissionprob_)[-1]
        emission = CategoricalEmission(
            v, emissionprob_prior=self.emissionprob_prior, update="e" in self.params,
        )
        return self._chain_model(emission, np.float64)

    def _initial_emission(self, X, random_state):
        e = getattr(self, "emissionprob_", None)
        if self._needs_init("e", "emissionprob_"):
            # hmmlearn draws from a fresh stream of random_state
            rs = check_random_state(self._init_stream(random_state))
            channels = () if X.ndim == 1 else (X.shape[1],)
            e = rs.rand(self.n_components, *channels, self._n_symbols(X))
            e = e / e.sum(axis=-1, keepdims=True)
        return self._checked_emissionprob(e)

    def _emission_params(self):
        return self._checked_emissionprob(self.emissionprob_)

    def _checked_emissionprob(self, e):
        k = self.n_components
        e = np.atleast_2d(np.asarray(e, dtype=np.float64))
        return check_probs(e, "emissionprob_", (k,) + e.shape[1:] if e.ndim == 3 else
                           (k, e.shape[-1]))

    def _set_emission(self, ep, dtype):
        self.emissionprob_ = ep.astype(dtype)

    def _sample_state(self, state, rs):
        e = np.asarray(self.emissionprob_)
        rows = e[state][None] if e.ndim == 2 else e[state]
        return [(np.cumsum(row) > rs.rand()).argmax() for row in rows]

    def _n_fit_scalars(self):
        e = np.shape(self.emissionprob_)
        channels = 1 if len(e) == 2 else e[1]
        return {"s": self.n_components - 1, "t": self.n_components * (self.n_components - 1),
                "e": self.n_components * channels * (e[-1] - 1)}
