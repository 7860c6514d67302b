"""GaussianMixture against references nobody here wrote: scikit-learn and published mclust fits."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from emkit import GaussianMixture

from ._helpers import blobs, canonical_rows, random_params

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _sk_fit(X, ct, n_iter, w, m, p, reg_covar=1e-6):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SkGaussianMixture(
            len(w), covariance_type=ct, max_iter=n_iter, tol=0.0, reg_covar=reg_covar,
            weights_init=w, means_init=m, precisions_init=p,
        ).fit(X)


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("n_iter", [1, 5, 20])
def test_parameters_follow_sklearn_from_identical_init(ct, n_iter):
    X, _ = blobs(n=400, d=4, k=3, seed=1)
    w, m, p = random_params(3, 4, ct, seed=2, scale=3.0)
    sk = _sk_fit(X, ct, n_iter, w, m, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        em = GaussianMixture(
            3, covariance_type=ct, max_iter=n_iter, tol=0.0, weights_init=w, means_init=m,
            precisions_init=p, check_monotonic="raise",
        ).fit(X)
    assert em.n_iter_ == sk.n_iter_ == n_iter
    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]:
        assert _rel(getattr(em, name), getattr(sk, name)) < 1e-8, name
    # scikit-learn's lower_bound_ is log p(X | theta_{n-1}); emkit's trace holds that value
    # one row earlier and its own lower_bound_ belongs to the final parameters
    assert em.trace_.elbo_after_e[-2] == pytest.approx(sk.lower_bound_, rel=1e-10)
    assert em.lower_bound_ == pytest.approx(sk.score(X), rel=1e-10)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_predictions_equal_sklearn_on_same_parameters(ct):
    X, _ = blobs(n=200, d=3, k=2, seed=3)
    w, m, p = random_params(2, 3, ct, seed=4, scale=2.0)
    sk = _sk_fit(X, ct, 3, w, m, p)
    em = GaussianMixture(
        2, covariance_type=ct, max_iter=3, tol=0.0, weights_init=w, means_init=m,
        precisions_init=p,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        em.fit(X)
    Xt, _ = blobs(n=50, d=3, k=2, seed=5)
    np.testing.assert_allclose(em.score_samples(Xt), sk.score_samples(Xt), rtol=1e-9)
    np.testing.assert_allclose(em.predict_proba(Xt), sk.predict_proba(Xt), atol=1e-9)
    np.testing.assert_array_equal(em.predict(Xt), sk.predict(Xt))
    assert em.score(Xt) == pytest.approx(sk.score(Xt), rel=1e-10)
    assert em.bic(Xt) == pytest.approx(sk.bic(Xt), rel=1e-10)
    assert em.aic(Xt) == pytest.approx(sk.aic(Xt), rel=1e-10)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_same_random_state_gives_sklearns_fit(init_params):
    X, _ = blobs(n=300, d=2, k=3, seed=6)
    kw = dict(n_components=3, init_params=init_params, random_state=7, tol=1e-12, max_iter=5000)
    sk = SkGaussianMixture(**kw).fit(canonical_rows(X))  # emkit's order for initialising
    em = GaussianMixture(**kw, check_monotonic="raise").fit(X)
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_default_tol_stops_where_sklearn_stops(ct, dtype):
    """Same stopping rule: same n_iter_ and parameters; emkit's bound is at those parameters."""
    X = load_iris().data.astype(dtype)
    kw = dict(n_components=3, covariance_type=ct, random_state=0)
    sk = SkGaussianMixture(**kw).fit(canonical_rows(X))
    em = GaussianMixture(**kw, check_monotonic="raise").fit(X)
    assert em.n_iter_ == sk.n_iter_
    rtol = 1e-8 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(em.means_, sk.means_, rtol=rtol)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, rtol=rtol, atol=rtol * 1e-2)
    assert em.lower_bound_ == pytest.approx(sk.score(X), rel=rtol)
    np.testing.assert_array_equal(em.predict(X), sk.predict(X))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("max_iter", [0, 1, 2])
def test_initialisation_and_first_iterations_equal_sklearn(init_params, dtype, max_iter):
    """Same random_state, same initial parameters, same first iterates, in both dtypes.

    Seeds of k-means++ and random_from_data are single points, whose covariance is exactly
    reg_covar: the initial statistics must not lose it to cancellation (float32 included).
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) + 1e3 * (rng.integers(3, size=300)[:, None])
    kw = dict(n_components=3, init_params=init_params, random_state=3, max_iter=max_iter,
              tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGaussianMixture(**kw).fit(canonical_rows(X))
        em = GaussianMixture(**kw, check_monotonic="raise").fit(X.astype(dtype))
        sk32 = SkGaussianMixture(**kw).fit(canonical_rows(X.astype(np.float32)))
    names = ["weights_", "means_", "covariances_"]
    if max_iter == 0 and init_params in ("k-means++", "random_from_data"):
        # scikit-learn leaves one-point seeds with weights 1/n that do not sum to one until
        # the first M-step; emkit normalises them (the responsibilities are the same)
        names = ["means_", "covariances_"]
    for name in names:
        ref, got = getattr(sk, name), getattr(em, name)
        if dtype == np.float64:
            np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12, err_msg=name)
        else:
            # float32 is judged against the float64 reference, norm-wise: no further from it
            # than scikit-learn's own float32 fit, give or take float32 round-off
            err_em = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
            err_sk = np.max(np.abs(getattr(sk32, name) - ref)) / np.max(np.abs(ref))
            assert err_em <= 2 * err_sk + 1e-6, (name, err_em, err_sk)


# Published maximum-likelihood fits of the iris data (150 x 4), 3 components, from mclust
# (Scrucca, Fop, Murphy & Raftery 2016, "mclust 5", The R Journal 8(1); Mclust(iris[,1:4], G=3)):
# model VVV (full) -180.1858, EEE (tied) -256.3547, VVI (diag) -307.1808.
@pytest.mark.parametrize(
    "ct, published", [("full", -180.1858), ("tied", -256.3547), ("diag", -307.1808)]
)
def test_iris_loglik_matches_mclust(ct, published):
    X = load_iris().data
    gm = GaussianMixture(
        3, covariance_type=ct, n_init=10, tol=1e-10, max_iter=2000, random_state=0,
        check_monotonic="raise",
    ).fit(X)
    assert gm.lower_bound_ * X.shape[0] == pytest.approx(published, abs=5e-3)
    assert gm.score(X) * X.shape[0] == pytest.approx(published, abs=5e-3)
