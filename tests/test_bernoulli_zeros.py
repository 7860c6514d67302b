"""BernoulliMixture with alpha=0: exact zeros among the means (issue 11, item 4).

A sample impossible under the model scores -inf (the fit's -708 log floor never reaches a
prediction), and float32 fits compute their bound to float32 precision although means of
exactly 0 or 1 occur.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

from emkit import BernoulliMixture
from emkit.models.bernoulli import BernoulliModel


def _binary(n=200, d=12, k=3, seed=0):
    """Binary data drawn from a K-component Bernoulli mixture."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.05, 0.95, (k, d))
    z = rng.integers(k, size=n)
    return (rng.random((n, d)) < means[z]).astype(np.float64), z


def test_impossible_sample_scores_minus_inf_and_has_no_posterior():
    """alpha=0 lets a mean be exactly 0: a 1 there has probability 0, in every dtype and format.

    Textbook values: one class, means = column frequencies [3/4, 3/4, 0]; the unseen pattern
    [0, 0, 1] has log p = log(1/4) + log(1/4) + log(0) = -inf. The fit floors log 0 at
    log(2**-1022) to keep its arithmetic finite; the floor never reaches a prediction
    (it used to: the row scored -711.2).
    """
    X = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    unseen = np.array([[0, 0, 1], [1, 0, 0]], dtype=float)
    for dtype in (np.float32, np.float64):
        bm = BernoulliMixture(1, alpha=0.0).fit(X.astype(dtype))
        for Xu in (unseen, unseen.astype(np.float32), sp.csr_matrix(unseen),
                   sp.csr_matrix(unseen.astype(np.float32))):
            got = bm.score_samples(Xu)
            assert got[0] == -np.inf
            assert got[1] == pytest.approx(np.log(0.75 * 0.25), rel=1e-6)
            assert bm.score(Xu) == -np.inf
            assert bm.bic(Xu) == np.inf
            np.testing.assert_array_equal(bm.predict_proba(Xu), [[1.0], [1.0]])
            np.testing.assert_array_equal(bm.predict(Xu), [0, 0])
        # the bound on the training data is the log-likelihood (no row needs the floor)
        ll = np.sum(np.log(np.where(X == 1, [0.75, 0.75, 0.0], [0.25, 0.25, 1.0])))
        assert bm.lower_bound_ * 4 == pytest.approx(ll, rel=1e-6)
        assert bm.score(X) * 4 == pytest.approx(ll, rel=1e-6)


def _eps_posterior(weights, means, Y, eps):
    """Textbook posterior with every probability of exactly 0 replaced by ``eps``."""
    p1 = np.where(means == 0, eps, np.where(means == 1, 1 - eps, means))
    logs = np.where(Y[:, None, :] == 1, np.log(p1), np.log1p(-p1)).sum(axis=2)
    L = np.log(weights) + logs
    return np.exp(L - logsumexp(L, axis=1, keepdims=True))


def test_sample_impossible_under_some_or_all_components():
    """Two classes with exact zeros (alpha=0), rows possible under one class or under none.

    References: the textbook mixture density with log(0) = -inf, written plainly; and for the
    posterior, the textbook posterior with each zero probability read as ``eps``, in the limit
    ``eps -> 0`` (here 1e-12 and 1e-14, which agree to 1e-10).
    """
    X = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1]] * 5, dtype=float)
    # hard k-means starts: the two classes' means are exactly 0 and 1 in two features
    bm = BernoulliMixture(2, alpha=0.0, init_params="kmeans", random_state=0).fit(X)
    assert np.any(bm.means_ == 0) and np.any(bm.means_ == 1)
    Y = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]], dtype=float)
    with np.errstate(divide="ignore"):
        log_mu, log1m = np.log(bm.means_), np.log1p(-bm.means_)
        L = np.log(bm.weights_) + np.where(Y[:, None, :] == 1, log_mu, log1m).sum(axis=2)
    ll = logsumexp(L, axis=1)
    assert np.isneginf(ll).sum() == 2 and np.isfinite(ll).sum() == 3
    for Yin in (Y, sp.csr_matrix(Y)):
        got = bm.score_samples(Yin)
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ll))
        ok = np.isfinite(ll)
        np.testing.assert_allclose(got[ok], ll[ok], rtol=1e-12)
        proba = bm.predict_proba(Yin)
        np.testing.assert_allclose(proba[ok], np.exp(L[ok] - ll[ok, None]), rtol=1e-12, atol=0)
        assert np.all(np.sum(proba[ok] == 0, axis=1) == 1)  # the impossible component: 0
        limit = _eps_posterior(bm.weights_, bm.means_, Y, 1e-14)
        np.testing.assert_allclose(_eps_posterior(bm.weights_, bm.means_, Y, 1e-12), limit,
                                   atol=1e-10)
        np.testing.assert_allclose(proba, limit, atol=1e-10)
        np.testing.assert_array_equal(bm.predict(Yin), np.argmax(limit, axis=1))


def test_undefined_log_density_is_still_refused():
    """Only a true -inf (an impossible sample) passes; NaN and +inf name the row, and so
    does a posterior left undefined."""
    X, _ = _binary(n=50, d=4, k=2)
    bm = BernoulliMixture(2, random_state=0).fit(X)
    R = np.full((3, 2), 0.5)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="Row 11 of X has a non-finite"):
            bm._defined(slice(10, 13), R, np.array([0.0, bad, -np.inf]), density_only=True)
    log_norm = np.array([0.0, -1.0, -np.inf])
    assert bm._defined(slice(0, 3), R, log_norm, density_only=True) is R
    assert bm._defined(slice(0, 3), R, log_norm) is R
    R[2] = np.nan
    with pytest.raises(ValueError, match="Row 2 of X has probability 0 .* undefined"):
        bm._defined(slice(0, 3), R, log_norm)


# --------------------------------------------------------------------------- float32, alpha=0
def _lca_problem(seed):
    """Ordinary binary latent class data: K classes of D items with means in (0.05, 0.95)."""
    rng = np.random.default_rng(seed)
    n, d, k = rng.integers(50, 300), rng.integers(3, 15), int(rng.integers(2, 5))
    means = rng.uniform(0.05, 0.95, (k, d))
    z = rng.integers(k, size=n)
    return (rng.random((n, d)) < means[z]).astype(np.float64), k


@pytest.mark.parametrize("sparse", [False, True])
def test_float32_alpha0_fits_are_monotone(sparse):
    """float32, alpha=0, check_monotonic="raise", tol=1e-8: 100 problems, none raises.

    Exact zeros among the means used to put the -708 log floor into the float32 products and
    multiply float32 round-off in the statistics: 10 of 100 such problems raised at tol=1e-8
    (issue 11, item 4).
    """
    fmt = sp.csr_matrix if sparse else np.asarray
    for seed in range(100):
        X, k = _lca_problem(seed)
        BernoulliMixture(k, alpha=0.0, tol=1e-8, max_iter=1000, random_state=seed,
                         check_monotonic="raise").fit(fmt(X.astype(np.float32)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("sparse", [False, True])
def test_float32_bound_is_float64_to_float32_round_off(sparse):
    """At the same parameters (a float64 alpha=0 fit, with means of exactly 0 or 1), the
    float32 E-step's bound equals the float64 one within a few float32 ulps of the terms it
    sums (``roundoff_scale``), i.e. to float32 precision per sample.

    Reference: the float64 E-step, itself checked against textbook EM above. The float32
    bound used to be off by up to 1.4e-4 per sample here (about 40 float32 ulps of it).
    """
    eps32 = np.finfo(np.float32).eps
    fmt = sp.csr_matrix if sparse else np.asarray
    n_exact = 0
    for seed in range(30):
        X, k = _lca_problem(seed)
        params = BernoulliMixture(k, alpha=0.0, tol=1e-10, max_iter=500,
                                  random_state=seed).fit(X)._params_
        n_exact += int(np.sum((params.means == 0) | (params.means == 1)))
        m64, m32 = BernoulliModel(alpha=0.0), BernoulliModel(alpha=0.0, dtype=np.float32)
        s64, _ = m64.e_step(params, fmt(X))
        s32, _ = m32.e_step(params, fmt(X.astype(np.float32)))
        scale = m64.roundoff_scale(params, s64)
        assert abs(m32.elbo(params, s32) - m64.elbo(params, s64)) <= 4 * eps32 * scale
        assert abs(s32.log_evidence - s64.log_evidence) <= 4 * eps32 * scale
    assert n_exact >= 10  # the comparison did meet exact zeros
