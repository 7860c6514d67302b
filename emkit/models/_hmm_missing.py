"""Missing observations (NaN) with full and tied covariances, marginalised exactly.

Rows are grouped by which entries they observe (their *pattern*). For a pattern observing the
entries ``o`` and missing ``m``:

- E-step: ``log N(x_o | mu_ko, Sigma_k,oo)``, the marginal of the observed entries, computed by
  GaussianMixture's kernel on those columns with the marginal parameters;
- statistics: the conditional moments of the missing entries given the observed ones and the
  state, ``E[x_m] = mu_km + B_k (x_o - mu_ko)`` with ``B_k = Sigma_k,mo Sigma_k,oo^{-1}`` and
  ``Cov[x_m] = C_k = Sigma_k,mm - B_k Sigma_k,om``. With ``d = x_o - mu_ko`` and
  ``M_k = [I; B_k]`` (D x |o|, rows in feature order), ``x_hat - mu_k = M_k d``, so the
  statistics about the means are ``sum r (x_hat - mu) = M_k a_k`` and ``sum r (x_hat - mu)
  (x_hat - mu)^T + C_k sum r = M_k S_k M_k^T + n_k C_k``, where ``n_k, a_k, S_k`` are the
  observed columns' statistics about ``mu_ko`` (GaussianMixture's statistics kernel).

The M-step and the bound are unchanged: they read these statistics as they read complete
ones (the conditional-Gaussian EM for incomplete data).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .gaussian import GaussianParams, GaussianStats

__all__ = ["missing_log_prob", "missing_stats"]


def _patterns(mask):
    """``(patterns P x D of missing entries, pattern index of every row)``."""
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    return patterns, np.ravel(inverse)


def _sub(gaussian, ep, obs):
    """The Gaussian model and parameters of the observed columns ``obs`` (bool, D)."""
    cov = ep.get_covariances()
    if ep.covariance_type == "full":
        cov = cov[:, obs][:, :, obs]
    else:
        cov = cov[np.ix_(obs, obs)]
    sub_params = GaussianParams.from_covariances(ep.weights, ep.means[:, obs], cov,
                                                 ep.covariance_type)
    center = None if gaussian.center is None else np.asarray(gaussian.center)[obs]
    spread = None if gaussian.spread is None else np.asarray(gaussian.spread)[obs]
    return replace(gaussian, center=center, spread=spread, n_threads=1), sub_params


def missing_log_prob(gaussian, ep, X, mask):
    """``log N(x_o | mu_ko, Sigma_k,oo)`` (N x K): the marginal of every row's observed
    entries (0 for a row with nothing observed)."""
    k_all = ep.n_components
    out = np.zeros((X.shape[0], k_all), dtype=np.dtype(gaussian.dtype))
    patterns, inverse = _patterns(mask)
    for p, missing in enumerate(patterns):
        rows = np.flatnonzero(inverse == p)
        obs = ~missing
        if not obs.any():
            continue
        model, params = _sub(gaussian, ep, obs)
        out[rows] = model.log_prob(params, X[np.ix_(rows, np.flatnonzero(obs))])
    return out


def missing_stats(gaussian, ep, X, mask, R, *, total_weight, n_rows):
    """GaussianStats of the state posteriors ``R`` with every missing entry replaced by its
    conditional moments (see the module docstring), about the shift the complete-data
    statistics of these parameters use, so blocks with and without missing entries add."""
    k_all, d = ep.means.shape
    mu = np.asarray(ep.means, dtype=np.float64)
    cov = ep.get_covariances()
    cov = np.broadcast_to(cov, (k_all, d, d)) if ep.covariance_type == "tied" else cov
    nk = np.zeros(k_all)
    sx = np.zeros((k_all, d))
    sxx = np.zeros((k_all, d, d))
    patterns, inverse = _patterns(mask)
    for p, missing in enumerate(patterns):
        rows = np.flatnonzero(inverse == p)
        Rp = np.asarray(R[rows], dtype=np.float64)
        n_p = Rp.sum(axis=0)
        nk += n_p
        obs = ~missing
        o, m = np.flatnonzero(obs), np.flatnonzero(missing)
        if o.size == 0:  # nothing observed: x_hat = mu, Cov = Sigma
            sxx += n_p[:, None, None] * cov
            continue
        model, params = _sub(gaussian, ep, obs)
        es = model.stats_given_resp(params, X[np.ix_(rows, o)], Rp, total_weight=0.0,
                                    n_rows=0.0).about(mu[:, o])
        M = np.zeros((k_all, d, o.size))
        M[:, o, np.arange(o.size)] = 1.0
        C = np.zeros((k_all, d, d))
        if m.size:
            s_oo = cov[:, o][:, :, o]
            s_om = cov[:, o][:, :, m]
            B = np.swapaxes(np.linalg.solve(s_oo, s_om), 1, 2)  # K x |m| x |o|
            M[:, m, :] = B
            C[np.ix_(np.arange(k_all), m, m)] = cov[:, m][:, :, m] - B @ s_om
        sx += np.einsum("kdo,ko->kd", M, es.sx)
        sxx += M @ es.sxx @ np.swapaxes(M, 1, 2) + n_p[:, None, None] * C
    stats = GaussianStats(nk, sx, sxx, mu, 0.0, 0.0, float(total_weight), float(n_rows))
    prep = gaussian.prepare(ep)
    if prep.path == "fast":
        return stats.about(np.broadcast_to(prep.center.astype(np.float64), (k_all, d)))
    return stats
