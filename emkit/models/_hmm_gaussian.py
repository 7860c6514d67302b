"""Gaussian emissions of a hidden Markov model: GaussianMixture's kernel and statistics with
the state posteriors as responsibilities, hmmlearn's M-step and priors (re-exported by
:mod:`emkit.models.hmm`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..kernels.gaussian import n_features_quad
from ._hmm_missing import missing_log_prob, missing_stats
from .gaussian import LOG_2PI, GaussianModel, GaussianParams, GaussianStats

__all__ = ["GaussianEmission", "SHARED_FEATURES_BYTES"]


def _diag_precisions(ep: GaussianParams) -> np.ndarray:
    """Per-state, per-feature precisions (K x D) of diag or spherical parameters."""
    p = ep.precisions()
    return p if ep.covariance_type == "diag" else np.repeat(p[:, None], ep.n_features, axis=1)


def _first_not_pd(cov, ct):
    """Index of the first state whose covariance is not positive definite."""
    for k in range(cov.shape[0]):
        if ct in ("diag", "spherical"):
            if not np.all(cov[k] > 0):
                return k
        elif np.any(~np.isfinite(cov[k])) or np.linalg.eigvalsh(cov[k])[0] <= 0:
            return k
    return 0


#: the largest block of emission features shared by an E-step's two passes (one per thread,
#: kept in its scratch memory): blocks of 16,384 float64 rows up to 31 features for diag and
#: spherical covariances, up to 9 for full and tied
SHARED_FEATURES_BYTES = 8 << 20


@dataclass(frozen=True)
class GaussianEmission:
    """Gaussian emissions: GaussianMixture's kernel and statistics, hmmlearn's M-step.

    ``gaussian`` computes the log-densities (its log-probability path with every state weight
    one, so the per-state constant has no mixture weight) and the statistics about the current
    means. ``means_prior``/``means_weight``/``covars_prior``/``covars_weight`` are hmmlearn's.
    ``missing``: NaN entries of X are missing observations, marginalised exactly in the
    E-step; the statistics then hold their conditional moments, so the M-step and the bound
    are unchanged (diag and spherical below, full and tied in :mod:`._hmm_missing`).
    """

    gaussian: GaussianModel
    means_prior: object = 0.0
    means_weight: object = 0.0
    covars_prior: object = 1e-2
    covars_weight: object = 1.0
    update_means: bool = True
    update_covars: bool = True
    missing: bool = False
    #: the Gaussian kernel's coefficients of the last parameters seen (every block of an
    #: E-step, and both of its passes, use the same ones)
    _prepared: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def covariance_type(self) -> str:
        return self.gaussian.covariance_type

    def _prep(self, ep: GaussianParams):
        hit = self._prepared.get("last")
        if hit is None or hit[0] is not ep:
            hit = (ep, self.gaussian.prepare(ep))
            self._prepared["last"] = hit
        return hit[1]

    def serial(self) -> GaussianEmission:
        """The same emissions with the Gaussian passes on the calling thread."""
        return replace(self, gaussian=replace(self.gaussian, n_threads=1))

    def _filled(self, X):
        """``(X with NaN replaced by the model's centre, missing mask)``; mask None if none.

        Missing entries (diag and spherical) are marginalised exactly: the kernels see
        the centre ``c`` in their place and the terms of those entries are corrected below,
        so the Gaussian kernel and its statistics serve unchanged.
        """
        if not self.missing:
            return X, None
        mask = np.isnan(X)
        if not mask.any():
            return X, None
        c = self.gaussian.center.astype(X.dtype)
        return np.where(mask, c, X), mask.astype(X.dtype)

    def _full_mask(self, X):
        """The missing entries of ``X`` for full and tied covariances (None if none, or
        another covariance type): those are marginalised in :mod:`._hmm_missing`."""
        if not self.missing or self.covariance_type not in ("full", "tied"):
            return None
        mask = np.isnan(X)
        return mask if mask.any() else None

    def features(self, ep: GaussianParams, X):
        """The Gaussian kernel's features of a block's rows, computed once for both of its
        passes (:meth:`log_prob` and :meth:`stats`); None where they do not apply (the
        exact path, missing entries) or would exceed :data:`SHARED_FEATURES_BYTES` (full
        covariances of many features: ``F = D (D + 1) / 2 + D + 1`` per row; there the
        passes build them per cache-sized block, as GaussianMixture's). In this thread's
        scratch memory: valid for the block."""
        if self.missing:
            return None
        f = n_features_quad(X.shape[1], self.covariance_type)
        if f * X.shape[0] * X.dtype.itemsize > SHARED_FEATURES_BYTES:
            return None
        return self.gaussian.block_features(X, self._prep(ep))

    def log_prob(self, ep: GaussianParams, X, features=None):
        """``log N(x_t | mu_k, Sigma_k)`` (N x K) over the observed entries of every row
        (``features``: :meth:`features` of ``X``, if the caller has them)."""
        if features is not None:
            return self.gaussian.log_prob(ep, X, prep=self._prep(ep), features=features)
        full_mask = self._full_mask(X)
        if full_mask is not None:
            return missing_log_prob(self.gaussian, ep, X, full_mask)
        Xf, mask = self._filled(X)
        L = self.gaussian.log_prob(ep, Xf, prep=self._prep(ep))
        if mask is not None:
            # remove what the filled entries contributed: per state and feature,
            # log U_kd - log(2 pi) / 2 - P_kd (c_d - mu_kd)^2 / 2
            p = _diag_precisions(ep)
            corr = np.log(p) / 2 - 0.5 * LOG_2PI - 0.5 * p * (self.gaussian.center - ep.means) ** 2
            L -= (mask @ corr.T.astype(L.dtype)).astype(L.dtype, copy=False)
        return L

    def stats(self, ep: GaussianParams, X, R, total_weight, features=None):
        """GaussianStats of the state posteriors ``R``; a missing entry contributes its
        conditional moments ``E[x_d] = mu_kd``, ``E[x_d^2] = mu_kd^2 + sigma_kd^2`` (full and
        tied: the conditional Gaussian given the observed entries, :mod:`._hmm_missing`)."""
        if features is not None:
            return self.gaussian.stats_given_resp(
                ep, X, R, total_weight=total_weight, n_rows=X.shape[0], prep=self._prep(ep),
                features=features)
        full_mask = self._full_mask(X)
        if full_mask is not None:
            return missing_stats(self.gaussian, ep, X, full_mask, R,
                                 total_weight=total_weight, n_rows=X.shape[0])
        Xf, mask = self._filled(X)
        es = self.gaussian.stats_given_resp(
            ep, Xf, R, total_weight=total_weight, n_rows=X.shape[0], prep=self._prep(ep)
        )
        if mask is None:
            return es
        M = (R.T @ mask).astype(np.float64)  # K x D: posterior mass of the missing entries
        c, mu, s = self.gaussian.center, ep.means, es.shift
        sx = es.sx + M * (mu - c)
        sxx = es.sxx + M * ((mu - s) ** 2 + 1.0 / _diag_precisions(ep) - (c - s) ** 2)
        return GaussianStats(es.nk, sx, sxx, s, 0.0, 0.0, es.total_weight, es.n_rows)

    def ecll_and_scale(self, ep, es):
        """``(E_Q[log p(X | Z, theta)], the size its round-off is relative to)``."""
        return self.gaussian.ecll_and_scale(ep, es)

    def _cw(self, d):
        ct, cw = self.covariance_type, np.asarray(self.covars_weight, dtype=np.float64)
        return np.maximum(cw - (1.0 if ct in ("diag", "spherical") else d), 0.0)

    def m_step(self, es, old: GaussianParams) -> GaussianParams:
        ct = self.covariance_type
        k_all, d = old.means.shape
        nk = es.nk
        mw = np.asarray(self.means_weight, dtype=np.float64)
        m0 = np.asarray(self.means_prior, dtype=np.float64)
        if self.update_means:
            obs = es.sx + nk[:, None] * es.shift
            den = np.broadcast_to(mw + nk[:, None], obs.shape)
            means = np.divide(mw * m0 + obs, den, out=old.means.copy(), where=den > 0)
        else:
            means = old.means
        if not self.update_covars:
            return old.replace(means=means)
        about = es.about(means)  # scatter about the new means: nothing cancels
        diff = means - m0
        cp = np.asarray(self.covars_prior, dtype=np.float64)
        cw = self._cw(d)
        if ct in ("diag", "spherical"):
            c_n = mw * diff**2 + about.sxx
            cov = (cp + c_n) / np.maximum(cw + nk[:, None], 1e-5)
            if ct == "spherical":
                cov = cov.mean(axis=1)
        else:
            c_n = mw * diff[:, :, None] * diff[:, None, :] + about.sxx
            if ct == "tied":
                cov = (cp + c_n.sum(axis=0)) / (cw + nk.sum())
            else:
                cov = (cp + c_n) / (cw + nk[:, None, None])
        if ct != "tied":  # a state no sequence visits keeps its covariance
            visited = (nk + cw > 0).reshape((-1,) + (1,) * (cov.ndim - 1))
            cov = np.where(visited, cov, old.get_covariances())
        try:
            return GaussianParams.from_covariances(old.weights, means, cov, ct)
        except ValueError:  # GaussianMixture's wording names its reg_covar, not ours
            where = "The tied covariance" if ct == "tied" else (
                f"State {_first_not_pd(cov, ct)}'s '{ct}' covariance")
            raise ValueError(
                f"{where} from the M-step is not positive definite (a state's posterior mass "
                "sits on fewer distinct observations than there are features). Pass "
                "covars_prior as positive-definite matrices (for example a multiple of the "
                "identity, shape (n_components, n_features, n_features) or (n_features, "
                "n_features) for 'tied'), use fewer states, or a diagonal "
                "covariance_type."
            ) from None

    def log_prior(self, ep: GaussianParams) -> float:
        """The log prior that :meth:`m_step` maximises (up to a constant)."""
        ct = self.covariance_type
        k_all, d = ep.means.shape
        mw = np.asarray(self.means_weight, dtype=np.float64)
        cp = np.asarray(self.covars_prior, dtype=np.float64)
        diff = ep.means - np.asarray(self.means_prior, dtype=np.float64)
        cw = self._cw(d)
        P = ep.precisions()
        if ct in ("diag", "spherical"):
            p = P if ct == "diag" else np.repeat(P[:, None], d, axis=1)
            logdet = np.log(p)
            val = -0.5 * (mw * diff**2 + cp) * p + 0.5 * cw * logdet
            return float(np.sum(np.broadcast_to(val, (k_all, d))))
        Pk = np.broadcast_to(P, (k_all, d, d)) if ct == "tied" else P
        quad = np.einsum("ki,kij,kj->k", diff, Pk, diff)
        mean_term = -0.5 * float(np.sum(mw * quad))
        logdet = 2.0 * ep.log_det_cholesky()  # log det P_k
        if ct == "tied":
            return mean_term - 0.5 * float(np.sum(cp * P)) + 0.5 * float(cw * logdet[0])
        cov_term = -0.5 * np.sum(np.broadcast_to(cp, (k_all, d, d)) * P) + 0.5 * np.sum(
            cw * logdet
        )
        return mean_term + float(cov_term)
