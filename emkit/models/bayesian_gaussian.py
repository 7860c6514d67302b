"""Variational Bayesian Gaussian mixture: Q(theta) parameters, VB M-step and the full ELBO.

The mean-field posterior is ``Q(Z) Q(pi) prod_k Q(mu_k, Lambda_k)`` (Bishop, PRML 10.2), with
``Q(pi)`` a Dirichlet (``"dirichlet_distribution"``) or the truncated stick-breaking Beta
factors of a Dirichlet process (``"dirichlet_process"``), and ``Q(mu_k, Lambda_k)`` a
Normal-Wishart. The E-step needs

    E[log pi_k] + E[log N(x | mu_k, Lambda_k)]
        = E[log pi_k] + 1/2 E[log det Lambda_k] - D / (2 beta_k) - D/2 log 2 pi
          - 1/2 (x - m_k)^T (nu_k W_k) (x - m_k),

a Gaussian quadratic form with precision ``nu_k W_k`` plus a per-component constant: it is
:class:`~emkit.models.gaussian.GaussianModel`'s E-step (blocked two-GEMM or exact path) on
:class:`GaussianParams` whose ``log_const`` carries that constant, and the statistics are the
same :class:`GaussianStats`. The M-step is the update of Q(theta) from the statistics alone.

The covariance types follow scikit-learn's ``BayesianGaussianMixture`` exactly, read as
Wishart factors whose scale matrix is constrained: ``"diag"`` a diagonal ``W_k``,
``"spherical"`` ``w_k I``, ``"tied"`` one ``(W, nu)`` shared by the K components with its
prior and entropy counted once per component (which is what gives scikit-learn's
``nu = nu_0 + N / K``). The ELBO is PRML's 10.70-10.77 with these ``W_k``, every constant kept;
scikit-learn's reading of the stick-breaking truncation is kept too (the last stick ``v_K``
stays a random Beta factor). ``reg_covar`` enters as in scikit-learn (added to the scatter):
the M-step then maximises the ELBO minus ``reg_covar / 2 sum_k N_k tr E[Lambda_k]``
(:meth:`BayesianGaussianModel.objective`), as for the maximum-likelihood mixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy.special import betaln, digamma, gammaln

from ._common import ComponentShape
from .gaussian import (
    LOG_2PI,
    GaussianModel,
    GaussianParams,
    GaussianStats,
    precision_cholesky_from_covariances,
)

__all__ = ["PRIOR_TYPES", "BayesianGaussianParams", "BayesianGaussianModel"]

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def _mvdigamma(a, d):
    """``psi_D(a) = sum_{i<D} psi(a - i / 2)`` elementwise."""
    a = np.asarray(a, dtype=np.float64)
    return np.sum(digamma(a[..., None] - 0.5 * np.arange(d)), axis=-1)


def _log_wishart_norm(log_det_w, nu, d):
    """``log B(W, nu)`` (PRML B.79) from ``log det W``."""
    nu = np.asarray(nu, dtype=np.float64)
    lg = np.sum(gammaln(0.5 * (nu[..., None] - np.arange(d))), axis=-1)
    return -0.5 * nu * log_det_w - (0.5 * nu * d * np.log(2.0) + 0.25 * d * (d - 1) * np.log(np.pi)
                                    + lg)


def _quad(P, v, ct):
    """``v_k^T P_k v_k`` per component for the precision layout of ``ct``."""
    if ct == "full":
        return np.einsum("ki,kij,kj->k", v, P, v)
    if ct == "tied":
        return np.einsum("ki,ij,kj->k", v, P, v)
    if ct == "diag":
        return np.sum(P * v**2, axis=1)
    return P * np.sum(v**2, axis=1)


@dataclass(frozen=True, eq=False)
class BayesianGaussianParams(ComponentShape):
    """Parameters of Q(theta), float64, in scikit-learn's layout.

    ``weight_concentration``: K Dirichlet parameters, or the 2 x K Beta parameters ``(a, b)``
    of the sticks (``prior_type="dirichlet_process"``). ``mean_precision`` (beta_k, K),
    ``means`` (m_k, K x D), ``degrees_of_freedom`` (nu_k, K; one value for tied),
    ``covariances`` (``(nu_k W_k)^{-1}``, scikit-learn's normalised covariances) and their
    ``precisions_cholesky``.
    """

    weight_concentration: np.ndarray
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str
    prior_type: str = field(default="dirichlet_process")

    @cached_property
    def nu(self) -> np.ndarray:
        """nu_k per component (the tied value repeated)."""
        return np.broadcast_to(np.asarray(self.degrees_of_freedom, np.float64),
                               (self.n_components,))

    @cached_property
    def expected_log_weights(self) -> np.ndarray:
        """``E[log pi_k]`` (scikit-learn's ``_estimate_log_weights``)."""
        wc = self.weight_concentration
        if self.prior_type == "dirichlet_process":
            a, b = wc
            dsum = digamma(a + b)
            return digamma(a) - dsum + np.hstack((0.0, np.cumsum(digamma(b) - dsum)[:-1]))
        return digamma(wc) - digamma(np.sum(wc))

    @cached_property
    def weights(self) -> np.ndarray:
        """``E[pi_k]`` (the sticks' truncated mass renormalised, as scikit-learn's weights_)."""
        wc = self.weight_concentration
        if self.prior_type == "dirichlet_process":
            a, b = wc
            w = a / (a + b) * np.hstack((1.0, np.cumprod(b / (a + b))[:-1]))
            return w / np.sum(w)
        return wc / np.sum(wc)

    @cached_property
    def gaussian(self) -> GaussianParams:
        """The E-step's quadratic form: precision ``nu_k W_k``, constant ``log_const``."""
        g = GaussianParams(self.weights, self.means, self.precisions_cholesky,
                           self.covariance_type, self.covariances)
        d = self.n_features
        const = (self.expected_log_weights + 0.5 * self.expected_log_det
                 - 0.5 * d / self.mean_precision)
        return g.replace(log_const=const)

    @cached_property
    def log_det_w(self) -> np.ndarray:
        """``log det W_k`` per component."""
        g = GaussianParams(self.weights, self.means, self.precisions_cholesky,
                           self.covariance_type)
        return 2.0 * g.log_det_cholesky() - self.n_features * np.log(self.nu)

    @cached_property
    def expected_log_det(self) -> np.ndarray:
        """``E[log det Lambda_k] = psi_D(nu_k / 2) + D log 2 + log det W_k`` (PRML 10.65)."""
        d = self.n_features
        return _mvdigamma(0.5 * self.nu, d) + d * np.log(2.0) + self.log_det_w


@dataclass(frozen=True)
class BayesianGaussianModel(GaussianModel):
    """The variational Bayesian Gaussian mixture as the EM driver sees it.

    A :class:`GaussianModel` (the same kernel configuration: ``covariance_type``,
    ``reg_covar``, ``center``, ``spread``, ``dtype``, ``path``, ...) plus the priors:

    Parameters
    ----------
    prior_type : {"dirichlet_process", "dirichlet_distribution"}
    weight_concentration_prior : float
        alpha_0 (> 0).
    mean_precision_prior : float
        beta_0 (> 0).
    mean_prior : ndarray of shape (D,)
        m_0.
    degrees_of_freedom_prior : float
        nu_0 (> D - 1).
    covariance_prior : ndarray or float
        ``W_0^{-1}``: D x D (full, tied), D (diag) or a number (spherical).
    """

    #: the E-step maximises the ELBO over Q(Z) exactly (the trace's kl: see ``gap_after_m``)
    exact_q_z = True

    prior_type: str = "dirichlet_process"
    weight_concentration_prior: float = 1.0
    mean_precision_prior: float = 1.0
    mean_prior: np.ndarray | None = None
    degrees_of_freedom_prior: float = 1.0
    covariance_prior: np.ndarray | float = 1.0

    # ------------------------------------------------------------------ EM interface
    def e_step(self, params: BayesianGaussianParams, X, sample_weight=None, state=None):
        """One pass: Q(Z) from expectations under Q(theta); the Gaussian E-step itself.

        ``log_evidence`` is NaN: ``log p(X)`` is intractable under a posterior on theta.
        """
        stats, _ = super().e_step(params.gaussian, X, sample_weight)
        return replace(stats, log_evidence=np.nan), None

    def m_step(self, stats: GaussianStats) -> BayesianGaussianParams:
        """Q(theta) from the statistics (PRML 10.58-10.63; scikit-learn's updates)."""
        ct = self.covariance_type
        nk, xk, sk = self.moments(stats)
        k = nk.shape[0]
        a0, b0, nu0 = (float(self.weight_concentration_prior), float(self.mean_precision_prior),
                       float(self.degrees_of_freedom_prior))
        m0, c0 = self.mean_prior, self.covariance_prior
        if self.prior_type == "dirichlet_process":
            wc = np.vstack((1.0 + nk, a0 + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0))))
        else:
            wc = a0 + nk
        beta = b0 + nk
        means = (b0 * m0 + nk[:, None] * xk) / beta[:, None]
        diff = xk - m0
        if ct == "full":
            nu = nu0 + nk
            cov = (c0 + nk[:, None, None] * sk
                   + (nk * b0 / beta)[:, None, None] * diff[:, :, None] * diff[:, None, :])
            cov /= nu[:, None, None]
        elif ct == "tied":
            nu = np.float64(nu0 + nk.sum() / k)
            cov = (c0 + sk * nk.sum() / k + b0 / k * np.dot((nk / beta) * diff.T, diff)) / nu
        elif ct == "diag":
            nu = nu0 + nk
            cov = (c0 + nk[:, None] * (sk + (b0 / beta)[:, None] * diff**2)) / nu[:, None]
        else:
            nu = nu0 + nk
            cov = (c0 + nk * (sk + b0 / beta * np.mean(diff**2, axis=1))) / nu
        pc = precision_cholesky_from_covariances(cov, ct, reg_covar=self.reg_covar,
                                                 dtype=self.dtype)
        return BayesianGaussianParams(wc, beta, means, nu, cov, pc, ct, self.prior_type)

    @cached_property
    def _log_norm_prior(self) -> float:
        """``log B(W_0, nu_0)`` with ``W_0^{-1}`` the covariance prior (once per model)."""
        ct, c0 = self.covariance_type, self.covariance_prior
        d = np.shape(self.mean_prior)[0]
        if ct in ("full", "tied"):
            log_det_c0 = np.linalg.slogdet(c0)[1]
        elif ct == "diag":
            log_det_c0 = np.sum(np.log(c0))
        else:
            log_det_c0 = d * np.log(c0)
        return float(_log_wishart_norm(-log_det_c0, float(self.degrees_of_freedom_prior), d))

    def _kl_terms(self, params: BayesianGaussianParams) -> np.ndarray:
        """The ELBO's terms in theta alone, ``E[log p(theta)] - E[log q(theta)]``, one entry per
        group (weights; mean; Wishart normalisers; Wishart expectations), each summed over k."""
        ct, d, k = self.covariance_type, params.n_features, params.n_components
        a0, b0, nu0 = (float(self.weight_concentration_prior), float(self.mean_precision_prior),
                       float(self.degrees_of_freedom_prior))
        wc, elw = params.weight_concentration, params.expected_log_weights
        if self.prior_type == "dirichlet_process":
            a, b = wc
            dsum = digamma(a + b)
            e_log_v, e_log_1mv = digamma(a) - dsum, digamma(b) - dsum
            weights = np.sum(betaln(a, b) - betaln(1.0, a0) + (1.0 - a) * e_log_v
                             + (a0 - b) * e_log_1mv)
        else:
            weights = (gammaln(k * a0) - k * gammaln(a0) - gammaln(np.sum(wc))
                       + np.sum(gammaln(wc)) + np.sum((a0 - wc) * elw))
        beta, nu = params.mean_precision, params.nu
        P = params.gaussian.precisions()  # nu_k W_k
        mean = np.sum(0.5 * d * (np.log(b0 / beta) + 1.0 - b0 / beta)
                      - 0.5 * b0 * _quad(P, params.means - self.mean_prior, ct))
        c0 = self.covariance_prior
        if ct == "full":
            tr = np.einsum("ij,kji->k", c0, P)
        elif ct == "tied":
            tr = np.full(k, np.sum(c0 * P))
        elif ct == "diag":
            tr = np.sum(c0 * P, axis=1)
        else:
            tr = c0 * d * P
        norms = np.sum(self._log_norm_prior - _log_wishart_norm(params.log_det_w, nu, d))
        wishart = np.sum(0.5 * (nu0 - nu) * params.expected_log_det - 0.5 * tr + 0.5 * nu * d)
        return np.array([weights, mean, norms, wishart])

    def elbo(self, params: BayesianGaussianParams, stats: GaussianStats) -> float:
        """The full ELBO (PRML 10.70-10.77, every constant kept), from statistics only:
        ``E[log p(X, Z | theta)] + H(Q(Z))`` (the Gaussian model's, at the expected quadratic
        form) plus ``E[log p(theta)] - E[log q(theta)]``."""
        return super().elbo(params.gaussian, stats) + float(np.sum(self._kl_terms(params)))

    def objective(self, params: BayesianGaussianParams, stats: GaussianStats) -> float:
        """What :meth:`m_step` maximises: the ELBO minus ``reg_covar / 2 sum_k N_k tr
        E[Lambda_k]`` (the ELBO itself with ``reg_covar = 0``)."""
        return self.elbo(params, stats) - self.reg_penalty(params.gaussian, stats)

    def roundoff_scale(self, params: BayesianGaussianParams, stats: GaussianStats) -> float:
        return (super().roundoff_scale(params.gaussian, stats)
                + float(np.sum(np.abs(self._kl_terms(params)))))

    def log_prior(self, params) -> float:
        """0: the prior is inside :meth:`elbo` (through the KL of Q(theta) to it)."""
        return 0.0

    # ------------------------------------------------------------------ prediction
    def log_prob(self, params: BayesianGaussianParams, X) -> np.ndarray:
        """``E[log pi_k] + E[log N(x_n | mu_k, Lambda_k)]`` (N x K): the E-step's
        unnormalised log-responsibilities (scikit-learn's ``_estimate_weighted_log_prob``)."""
        return super().log_prob(params.gaussian, X)

    def log_predictive(self, params: BayesianGaussianParams, X) -> np.ndarray:
        """``log p(x_n | X_train)`` under Q: a mixture of Student-t densities (PRML 10.81).

        Component k: ``St(x | m_k, L_k, nu_k + 1 - D)`` with
        ``L_k = (nu_k + 1 - D) beta_k / (1 + beta_k) W_k``, weight ``E[pi_k]``. The Mahalanobis
        distances come from the Gaussian kernel (precision ``L_k``, zero constant).
        """
        ct, d, k = self.covariance_type, params.n_features, params.n_components
        nu = params.nu
        dof = nu + 1.0 - d
        # (dof / nu) * beta / (1 + beta): the same ratio without the product beta * nu,
        # which overflows for counts near 1e154 (sample weights that large are valid)
        c = (dof / nu) * (params.mean_precision / (1.0 + params.mean_precision))
        pc = params.precisions_cholesky
        if ct in ("full", "tied"):
            pc = np.broadcast_to(pc, (k, d, d)) * np.sqrt(c)[:, None, None]
        elif ct == "diag":
            pc = pc * np.sqrt(c)[:, None]
        else:
            pc = pc * np.sqrt(c)
        kind = "full" if ct == "tied" else ct
        g = GaussianParams(params.weights, params.means, pc, kind)
        log_det_l = g.log_det_cholesky()
        g = g.replace(log_const=np.zeros(k))
        lp = GaussianModel.log_prob(replace(self, covariance_type=kind), g, X)
        maha = np.maximum(-2.0 * (lp.astype(np.float64) + 0.5 * d * LOG_2PI), 0.0)
        # log Gamma((dof + D) / 2) - log Gamma(dof / 2) as log Gamma(D / 2) - log B(dof / 2,
        # D / 2): the difference of gammaln loses every digit for large counts (0 at 1e39)
        log_t = (gammaln(0.5 * d) - betaln(0.5 * dof, 0.5 * d) - 0.5 * d * np.log(dof * np.pi)
                 + log_det_l - 0.5 * (dof + d) * np.log1p(maha / dof))
        log_t += np.log(params.weights)
        mx = log_t.max(axis=1)
        return mx + np.log(np.sum(np.exp(log_t - mx[:, None]), axis=1))
