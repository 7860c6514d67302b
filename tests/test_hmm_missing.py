"""Missing observations (NaN) with full and tied covariances against a plain computation:
marginal densities from scipy on the observed entries, a plain forward-backward, and the
conditional-Gaussian EM step written row by row."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import emkit

from ._helpers import plain_forward_backward


def _spd(rng, d):
    A = rng.normal(size=(d, d)) * 0.6
    return A @ A.T + 0.5 * np.eye(d)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    lengths = [35, 45]
    X = rng.normal(size=(80, 3))
    X[15:40] += 2.5
    X[rng.random(X.shape) < 0.25] = np.nan
    X[7] = np.nan  # a step with nothing observed
    X[8] = [0.5, -0.2, 1.0]  # and complete ones (the plain Gaussian kernel)
    return X, lengths


def _conditional(x, mean, cov):
    """``(E[x | observed entries], Cov[x | observed entries])`` of one row, plainly."""
    miss = np.isnan(x)
    obs = ~miss
    xh = np.where(miss, 0.0, x)
    C = np.zeros_like(cov)
    if miss.any():
        B = cov[np.ix_(miss, obs)] @ np.linalg.inv(cov[np.ix_(obs, obs)])
        xh[miss] = mean[miss] + B @ (x[obs] - mean[obs])
        C[np.ix_(miss, miss)] = cov[np.ix_(miss, miss)] - B @ cov[np.ix_(obs, miss)]
    return xh, C


@pytest.mark.parametrize("ct", ["full", "tied"])
def test_missing_values_marginalised_exactly(ct):
    X, lengths = _data()
    starts = np.concatenate([[0], np.cumsum(lengths)])
    rng = np.random.default_rng(1)
    k, d = 3, 3
    pi, A = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)
    means = rng.normal(size=(k, d))
    covs = np.array([_spd(rng, d) for _ in range(k)]) if ct == "full" else _spd(rng, d)
    per_state = covs if ct == "full" else np.array([covs] * k)
    est = emkit.GaussianHMM(k, covariance_type=ct, n_iter=1, init_params="", covars_prior=0.1,
                            check_monotonic="raise")
    est.startprob_, est.transmat_, est.means_, est.covars_ = pi, A, means, covs

    # the marginal density of each row's observed entries (scipy), then forward-backward
    L = np.zeros((len(X), k))
    for t, x in enumerate(X):
        obs = ~np.isnan(x)
        if obs.any():
            for j in range(k):
                L[t, j] = multivariate_normal(means[j][obs],
                                              per_state[j][np.ix_(obs, obs)]).logpdf(x[obs])
    parts = [plain_forward_backward(L[a:b], pi, A) for a, b in zip(starts[:-1], starts[1:],
                                                                    strict=True)]
    gamma = np.concatenate([p[1] for p in parts])
    assert est.score(X, lengths) == pytest.approx(sum(p[0] for p in parts), rel=1e-12)
    np.testing.assert_allclose(est.predict_proba(X, lengths), gamma, atol=1e-12)

    # one EM step: the missing entries contribute their conditional moments
    est.fit(X, lengths)
    cond = [[_conditional(x, means[j], per_state[j]) for j in range(k)] for x in X]
    nk = gamma.sum(axis=0)
    new_means = np.array([sum(gamma[t, j] * cond[t][j][0] for t in range(len(X))) / nk[j]
                          for j in range(k)])
    scatter = np.array([
        sum(gamma[t, j] * (np.outer(cond[t][j][0] - new_means[j], cond[t][j][0] - new_means[j])
                           + cond[t][j][1]) for t in range(len(X)))
        for j in range(k)
    ])
    # hmmlearn's M-step: (covars_prior + scatter) / (max(covars_weight - D, 0) + counts)
    new_covs = (0.1 + scatter) / nk[:, None, None] if ct == "full" else (
        (0.1 + scatter.sum(axis=0)) / nk.sum())
    np.testing.assert_allclose(est.means_, new_means, rtol=1e-10)
    np.testing.assert_allclose(est._covars_, new_covs, rtol=1e-10)
    np.testing.assert_allclose(est.startprob_, gamma[starts[:-1]].sum(0) / 2, rtol=1e-10)


@pytest.mark.parametrize("ct", ["full", "tied"])
def test_missing_values_fit_monotone_and_in_blocks(ct):
    """From hmmlearn's initialisation many iterations never lower the objective
    (``check_monotonic="raise"``), and sequences in blocks give what one block gives."""
    X, lengths = _data(2)
    est = emkit.GaussianHMM(2, covariance_type=ct, n_iter=15, random_state=0,
                            check_monotonic="raise").fit(X, lengths)
    assert np.all(np.isfinite(est.means_)) and np.all(np.isfinite(est._covars_))
    model, params = est._model_, est._params_
    from dataclasses import replace

    from emkit.models.hmm import Sequences

    seqs = Sequences(X, np.concatenate([[0], np.cumsum(lengths)]))
    whole, _ = model.e_step(params, seqs)
    split, _ = replace(model, block_rows=40).e_step(params, seqs)  # one block per sequence
    assert split.log_evidence == pytest.approx(whole.log_evidence, rel=1e-12)
    np.testing.assert_allclose(split.emission.about(whole.emission.shift).sxx,
                               whole.emission.sxx, rtol=1e-10, atol=1e-10)


def test_missing_values_with_float32_data_stay_float32():
    X, lengths = _data(3)
    est = emkit.GaussianHMM(2, covariance_type="full", n_iter=5, random_state=0).fit(
        X.astype(np.float32), lengths)
    assert est.means_.dtype == np.float32 and np.all(np.isfinite(est.means_))
