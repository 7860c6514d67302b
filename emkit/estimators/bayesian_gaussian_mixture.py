"""``emkit.BayesianGaussianMixture``: a drop-in for ``sklearn.mixture.BayesianGaussianMixture``."""

from __future__ import annotations

import numpy as np

from .._base import initial_assignments
from .._dask import is_dask_collection
from .._validation import (
    check_choice,
    check_counts_fit,
    check_covariance_prior,
    check_mean_prior,
    check_positive,
)
from ..models.bayesian_gaussian import PRIOR_TYPES, BayesianGaussianModel
from ..models.gaussian import weighted_scatter
from ._gaussian_common import GaussianMixtureBase

__all__ = ["BayesianGaussianMixture"]


class BayesianGaussianMixture(GaussianMixtureBase):
    """Variational Bayesian Gaussian mixture on emkit's driver, with the full ELBO.

    Same constructor, fitted attributes and methods as
    ``sklearn.mixture.BayesianGaussianMixture``, fitted by the same coordinate ascent
    (the E-step sets Q(Z) from expectations under Q(theta); the M-step, which reads only the
    E-step's additive statistics, updates Q(pi) and the Normal-Wishart Q(mu_k, Lambda_k)).
    From the same ``random_state`` and ``init_params`` it follows scikit-learn's iterates. The
    E-step is :class:`~emkit.GaussianMixture`'s kernel with the expected precision
    ``nu_k W_k``. Beyond scikit-learn: ``sample_weight`` in ``fit`` and ``score`` (repeat
    counts), float32 kept float32, ``trace_``/``traces_``, ``check_monotonic``, ``callback``,
    ``partial_fit`` (stochastic variational inference), fits on dask arrays, and a
    ``score_samples`` that is a real density (see there).

    Parameters
    ----------
    n_components : int, default=1
        Upper bound on the number of components; unneeded ones are switched off.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        Convergence threshold on the change of the per-sample ELBO between iterations.
    reg_covar : float, default=1e-6
        Added to the diagonal of the data scatter in every M-step, as in scikit-learn.
    max_iter : int, default=100
    n_init : int, default=1
        Number of initialisations; the one with the largest final ELBO is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        As :class:`~emkit.GaussianMixture`'s: on the weighted empirical distribution (distinct
        rows in a canonical order), with scikit-learn's random stream on those rows.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}
        Stick-breaking (truncated at ``n_components``) or a finite Dirichlet prior on the
        weights. Default "dirichlet_process".
    weight_concentration_prior : float, optional
        alpha_0 > 0 (default ``1 / n_components``).
    mean_precision_prior : float, optional
        beta_0 > 0 (default 1).
    mean_prior : array-like of shape (n_features,), optional
        m_0 (default: the weighted mean of X).
    degrees_of_freedom_prior : float, optional
        nu_0 > n_features - 1 (default n_features).
    covariance_prior : float or array-like, optional
        ``W_0^{-1}``: (n_features, n_features) for full and tied, (n_features,) for diag, a
        number for spherical (default: the weighted sample covariance of X, its diagonal or
        the diagonal's mean, as in scikit-learn, with ``reg_covar`` added where it is
        singular).
    random_state, warm_start, verbose, verbose_interval :
        As in scikit-learn.
    check_monotonic : {"warn", "raise", "ignore"}, default="warn"
        Both half-steps are coordinate ascent on the ELBO, which therefore never falls; what
        to do if one lowers it beyond round-off.
    callback : callable, optional
        Called with an :class:`~emkit.IterationInfo` after every iteration.
    learning_decay, learning_offset : float, default=0.7, 10.0
        The step size ``rho_t = (t + learning_offset) ** -learning_decay`` of
        :meth:`partial_fit`.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        As in scikit-learn: ``E[pi_k]``, ``m_k``, ``(nu_k W_k)^{-1}``, ``nu_k W_k``, its
        Cholesky factor; in the dtype of the training data.
    weight_concentration_prior_, weight_concentration_ :
        alpha_0 and the Dirichlet parameters, or for the Dirichlet process the pair of arrays
        of the sticks' Beta parameters.
    mean_precision_prior_, mean_precision_, mean_prior_ :
        beta_0, beta_k, m_0.
    degrees_of_freedom_prior_, degrees_of_freedom_, covariance_prior_ :
        nu_0, nu_k (one number for tied), ``W_0^{-1}``.
    n_effective_components_ : int
        Components that carry at least one sample's weight (``N_k = sum_n w_n r_nk`` of the
        final E-step at least the mean sample weight): those the fit kept switched on.
    converged_, n_iter_ :
    lower_bound_ : float
        The full ELBO per unit weight at the final Q (scikit-learn's is a total with the
        constant terms dropped and lags one M-step). ``log p(X)`` is intractable, so the
        trace's ``log_evidence`` is NaN, and its ``kl`` holds what can be said of the gap:
        the part each E-step closes, ``KL(Q_t(Z) || Q_{t+1}(Z)) =
        elbo_after_e[t + 1] - elbo_after_m[t]``.
    lower_bounds_, trace_, traces_, best_init_, n_samples_seen_, n_features_in_ :
        As for :class:`~emkit.GaussianMixture`.
    """

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        check_monotonic="warn",
        callback=None,
        learning_decay=0.7,
        learning_offset=10.0,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.check_monotonic = check_monotonic
        self.callback = callback
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ---------------------------------------------------------------- hooks
    def _check_hyperparameters(self, X):
        self._check_gaussian_config()
        check_choice(self.weight_concentration_prior_type, "weight_concentration_prior_type",
                     PRIOR_TYPES)
        k, d = self.n_components, X.shape[1]
        self._priors = dict(
            weight_concentration_prior=1.0 / k if self.weight_concentration_prior is None
            else check_positive(self.weight_concentration_prior, "weight_concentration_prior"),
            mean_precision_prior=1.0 if self.mean_precision_prior is None
            else check_positive(self.mean_precision_prior, "mean_precision_prior"),
            degrees_of_freedom_prior=float(d) if self.degrees_of_freedom_prior is None
            else check_positive(self.degrees_of_freedom_prior, "degrees_of_freedom_prior"),
        )
        if not self._priors["degrees_of_freedom_prior"] > d - 1.0:
            raise ValueError(
                f"The parameter 'degrees_of_freedom_prior' should be greater than {d - 1}, "
                f"but got {self.degrees_of_freedom_prior!r}."
            )
        if self.mean_prior is not None:
            self._priors["mean_prior"] = check_mean_prior(self.mean_prior, d)
        if self.covariance_prior is not None:
            self._priors["covariance_prior"] = check_covariance_prior(
                self.covariance_prior, self.covariance_type, d
            )

    #: (estimator parameter, fitted parameters' attribute) that a continuation must keep
    _continuation_keys = (("covariance_type", "covariance_type"),
                          ("weight_concentration_prior_type", "prior_type"))

    def _make_model(self, X, sample_weight=None):
        if sample_weight is not None:
            check_counts_fit(float(np.sum(sample_weight)), X.dtype,
                             "weight_concentration_, mean_precision_, degrees_of_freedom_")
        config = self._kernel_config(X, sample_weight)
        priors = dict(self._priors)
        if "mean_prior" not in priors:
            priors["mean_prior"] = config["center"]
        if "covariance_prior" not in priors:
            priors["covariance_prior"] = self._data_covariance(X, sample_weight, config)
        return BayesianGaussianModel(
            **config, prior_type=self.weight_concentration_prior_type, **priors
        )

    def _data_covariance(self, X, sample_weight, config):
        """scikit-learn's default covariance prior, weighted (repeat counts, ``ddof=1``)."""
        ct, c, reg = self.covariance_type, config["center"], float(self.reg_covar)
        if hasattr(X, "map_reduce"):
            total = X.shape[0] if X.w is None else float(X.w.sum().compute())
        else:
            total = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        dof = total - 1.0 if total > 1.0 else total
        if ct in ("full", "tied"):
            cov = weighted_scatter(X, sample_weight, c) / dof
            if np.linalg.eigvalsh(cov)[0] <= 0.0:  # a constant feature: keep W_0 finite
                cov[np.diag_indices_from(cov)] += reg
            singular = np.linalg.eigvalsh(cov)[0] <= 0.0
        else:
            cov = config["spread"] ** 2 * (total / dof)
            cov = np.where(cov > 0.0, cov, reg)
            singular = not np.all(cov > 0.0)
            cov = cov if ct == "diag" else float(np.mean(cov))
        if singular:
            raise ValueError(
                "The data's covariance, the default covariance_prior, is singular (a constant "
                "feature?) and reg_covar is 0: pass a covariance_prior or reg_covar > 0."
            )
        return cov

    def _initial_params(self, model, X, sample_weight, random_state):
        resp = initial_assignments(
            X, self.n_components, self.init_params, sample_weight, random_state
        )
        return model.m_step(model.stats_from_resp(X, resp, sample_weight))

    def _set_fitted_params(self, params, dtype):
        model = self._model_
        self.weights_ = params.weights.astype(dtype)
        self.means_ = params.means.astype(dtype)
        self.covariances_ = params.covariances.astype(dtype)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype)
        self.precisions_ = params.gaussian.precisions().astype(dtype)
        wc = params.weight_concentration.astype(dtype)
        self.weight_concentration_ = tuple(wc) if wc.ndim == 2 else wc
        self.mean_precision_ = params.mean_precision.astype(dtype)
        self.degrees_of_freedom_ = np.asarray(params.degrees_of_freedom).astype(dtype)
        self.weight_concentration_prior_ = float(model.weight_concentration_prior)
        self.mean_precision_prior_ = float(model.mean_precision_prior)
        self.mean_prior_ = np.asarray(model.mean_prior).astype(dtype)
        self.degrees_of_freedom_prior_ = float(model.degrees_of_freedom_prior)
        self.covariance_prior_ = (np.asarray(model.covariance_prior).astype(dtype)
                                  if np.ndim(model.covariance_prior) else
                                  float(model.covariance_prior))
        stats = self._stats_
        unit = stats.total_weight / stats.n_rows if stats.n_rows > 0 else 1.0
        self.n_effective_components_ = int(np.count_nonzero(stats.nk >= unit))

    # ---------------------------------------------------------------- scores
    def score_samples(self, X):
        """Log posterior predictive density ``log p(x_n | training data)`` of every sample.

        Under Q this is a mixture of multivariate Student-t densities (PRML 10.81): weights
        ``weights_``, component k centred at ``m_k`` with ``nu_k + 1 - D`` degrees of freedom
        and precision ``(nu_k + 1 - D) beta_k / (1 + beta_k) W_k``. It is a normalised
        density. scikit-learn's ``score_samples`` is instead
        ``log sum_k exp(E[log pi_k] + E[log N(x | mu_k, Lambda_k)])``, an expected
        log-density that does not integrate to one (its issue #10148); that quantity is
        ``logsumexp`` of this estimator's E-step and is not what ``score`` reports.
        On a dask array: a lazy dask array.
        """
        if is_dask_collection(X):
            return self._lazy(self.score_samples, X)
        X = self._validate_predict_X(X)
        model = self._model_for(X)
        X = X.astype(model.dtype, copy=False)
        return model.log_predictive(self._params_, X).astype(model.dtype, copy=False)

    @property
    def bic(self):
        """Not offered: BIC and AIC count the free parameters of a point estimate, whereas
        this model integrates over a posterior on them and switches components off; compare
        models by ``lower_bound_`` (a bound on the log evidence) or held-out ``score``."""
        raise AttributeError(
            "BayesianGaussianMixture has no bic/aic: compare lower_bound_ or a held-out score."
        )

    aic = bic
