"""``emkit.GaussianHMM`` and ``emkit.CategoricalHMM``: drop-ins for hmmlearn 0.3's.

Baum-Welch on the shared driver (:func:`emkit._em.run_em`): the model is
:class:`emkit.models.hmm.HMMModel`, the estimator side is :class:`emkit._base.BaseEM` (trace,
callback, verbose printing, monotonicity check). Parameters live in hmmlearn's attributes
(``startprob_``, ``transmat_``, ``means_``, ``covars_``, ``emissionprob_``), so setting them and
fitting with ``init_params=""`` continues from them, as in hmmlearn.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from .._validation import check_choice, check_data_scale, check_int, fit_dtype
from ..kernels._parallel import small_kmeans
from ..models.gaussian import (
    COVARIANCE_TYPES,
    GaussianModel,
    GaussianParams,
    center_and_spread,
)
from ..models.hmm import CategoricalEmission, GaussianEmission
from ._hmm_base import _BaseHMM
from ._hmm_input import (
    ConvergenceMonitor,
    check_probs,
    check_symbol_range,
    check_symbols,
    gaussian_block,
    gaussian_facts,
    symbol_block,
    symbol_facts,
)

__all__ = ["GaussianHMM", "CategoricalHMM", "ConvergenceMonitor"]


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
        if fit and missing_ok and X.shape[0]:
            empty = np.flatnonzero(np.isnan(X).all(axis=0))
            if empty.size:
                raise ValueError(
                    f"Feature {int(empty[0])} of X is missing (NaN) in every row: nothing "
                    "can be learnt about it; drop the column."
                )
        if not fit:
            self._check_columns(X.shape[1])
        return X

    def _check_columns(self, n_columns):
        """A later X's width against the fitted means (predict, score, decode)."""
        if self.n_features is not None and n_columns != self.n_features:
            raise ValueError(f"X has {n_columns} features, but the model has {self.n_features}.")

    def _check_data_scale(self, X, total):
        check_data_scale(X, total=total)

    # dask blocks (see ._hmm_dask): the per-block validation, and what the fit needs to know
    _block_facts = staticmethod(gaussian_facts)

    def _block_converter(self, dtype):
        return partial(gaussian_block, dtype=dtype)

    def _block_dtype(self, dtype):
        return fit_dtype(dtype)

    def _predict_block(self, dtype):
        """``(converter, posteriors' dtype)`` of the blocks of a dask X to predict on."""
        dtype = fit_dtype(dtype)
        return partial(gaussian_block, dtype=dtype), dtype

    def _make_model(self, X, sample_weight=None, fitting=True, facts=None, dtype=None):
        """The HMM on ``X``, or on the :class:`BlockFacts` ``facts`` of a dask fit."""
        if facts is not None:
            missing = facts.missing
            center, spread = facts.center_and_spread()
        else:
            dtype = X.dtype
            missing = bool(np.isnan(X).any())
            if missing:
                center = np.nan_to_num(np.nanmean(X, axis=0, dtype=np.float64))
                spread = np.nan_to_num(np.nanstd(X, axis=0, dtype=np.float64))
            else:
                center, spread = center_and_spread(X)
        gauss = GaussianModel(
            covariance_type=self.covariance_type, center=center, spread=spread,
            dtype=np.dtype(dtype),
        )
        emission = GaussianEmission(
            gauss, means_prior=self.means_prior, means_weight=self.means_weight,
            covars_prior=self.covars_prior, covars_weight=self.covars_weight,
            update_means="m" in self.params, update_covars="c" in self.params,
            missing=missing,
        )
        return self._chain_model(emission, dtype)

    def _initial_emission(self, X, random_state, model=None):
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

            with small_kmeans(X.shape[0], X.shape[1], k):
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

    def _n_symbols(self, top=None):
        """The number of symbols: given, kept from ``emissionprob_``, or the largest symbol
        ``top`` of the data plus one."""
        given = self.__dict__.get("n_features")
        if given is not None:
            v = check_int(given, "n_features", low=1)
        elif self._kept("e", "emissionprob_") or top is None:
            v = int(np.shape(self.emissionprob_)[-1])
        else:
            return int(top) + 1
        if top is not None and top >= v:
            raise ValueError(f"Symbols must be in 0..{v - 1} (n_features = {v}); got {top}.")
        return v

    def _check_hyperparameters(self, X):
        if self._kept("e", "emissionprob_"):  # (in memory _validate_X has checked it too)
            self._check_channels(1 if len(X.shape) == 1 else X.shape[1], "X")

    def _validate_X(self, X, fit):
        if np.isscalar(X) or (isinstance(X, np.ndarray) and X.ndim == 0):
            raise ValueError(
                f"Expected a sequence of symbols, got scalar array instead: X={X!r}. "
                "Reshape your data: shape (n_samples, 1), or (n_samples, n_channels)."
            )
        X = validate_data(self, X, reset=fit)
        x = check_symbols(X)
        if not fit or self._kept("e", "emissionprob_"):
            self._check_channels(x.shape[1], "X")
        check_symbol_range(x, self._n_symbols(int(x.max())) if fit else self._fitted_symbols())
        return x[:, 0] if x.shape[1] == 1 else x

    def _fitted_symbols(self) -> int:
        return int(np.shape(self.emissionprob_)[-1])

    def _check_columns(self, n_columns):
        self._check_channels(n_columns, "X")

    def _check_channels(self, n_channels, what):
        e_dim = np.ndim(self.emissionprob_)
        have = 1 if e_dim == 2 else np.shape(self.emissionprob_)[1]
        if have != n_channels:
            raise ValueError(
                f"{what} has {n_channels} symbol(s) per step but emissionprob_ (shape "
                f"{np.shape(self.emissionprob_)}) models {have}."
            )

    _block_facts = staticmethod(symbol_facts)

    def _block_converter(self, dtype):
        return symbol_block

    def _block_dtype(self, dtype):
        return np.dtype(np.int64)

    def _predict_block(self, dtype):
        """``(converter, posteriors' dtype)`` of the blocks of a dask X to predict on."""
        return partial(symbol_block, n_symbols=self._fitted_symbols()), np.dtype(np.float64)

    def _make_model(self, X, sample_weight=None, fitting=True, facts=None, dtype=None):
        if facts is not None:
            v = self._n_symbols(facts.top)
        else:
            v = self._n_symbols(int(X.max())) if fitting else np.shape(self.emissionprob_)[-1]
        emission = CategoricalEmission(
            v, emissionprob_prior=self.emissionprob_prior, update="e" in self.params,
        )
        return self._chain_model(emission, np.float64)

    def _initial_emission(self, X, random_state, model):
        e = getattr(self, "emissionprob_", None)
        if self._needs_init("e", "emissionprob_"):
            # hmmlearn draws from a fresh stream of random_state
            rs = check_random_state(self._init_stream(random_state))
            channels = () if X.ndim == 1 else (X.shape[1],)
            e = rs.rand(self.n_components, *channels, model.emission.n_symbols)
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
