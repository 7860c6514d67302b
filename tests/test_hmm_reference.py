"""GaussianHMM and CategoricalHMM against hmmlearn 0.3 from identical initial parameters."""

import numpy as np
import pytest

hmm = pytest.importorskip("hmmlearn.hmm")

import emkit  # noqa: E402

COV_TYPES = ["diag", "spherical", "full", "tied"]
LENGTHS = [30, 50, 20]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def _gaussian_problem(ct, seed=0, k=3, d=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(100, d)) + np.repeat(rng.normal(size=(3, d)) * 3, LENGTHS, axis=0)
    pi = rng.dirichlet(np.ones(k))
    A = rng.dirichlet(np.ones(k) * 3, size=k)
    means = rng.normal(size=(k, d)) * 2
    B = rng.normal(size=(k, d, d)) * 0.3
    full = np.einsum("kij,klj->kil", B, B) + np.eye(d)
    cov = {"diag": rng.uniform(0.5, 2, (k, d)), "spherical": rng.uniform(0.5, 2, k),
           "full": full, "tied": full[0]}[ct]
    return X, dict(startprob_=pi, transmat_=A, means_=means, covars_=cov)


def _set(model, attrs):
    for name, value in attrs.items():
        setattr(model, name, value)
    return model


def _fit_both(name, X, init, n_iter, kw):
    """hmmlearn's and emkit's ``name`` fitted from the same attributes for ``n_iter`` steps.

    hmmlearn stops when the log-likelihood falls (with priors it may, while the MAP objective
    rises); ``tol=-inf`` makes it run its ``n_iter``.
    """
    h = _set(getattr(hmm, name)(3, n_iter=n_iter, **{**kw, "tol": -np.inf}), init)
    e = _set(getattr(emkit, name)(3, n_iter=n_iter, check_monotonic="raise", **kw), init)
    return h.fit(X, LENGTHS), e.fit(X, LENGTHS)


PRIORS = dict(
    startprob_prior=1.5, transmat_prior=2.0, means_prior=0.5, means_weight=2.0,
    covars_prior=0.3, covars_weight=4.0,
)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("priors", [False, True])
def test_gaussian_iterates_equal_hmmlearn(ct, priors):
    X, init = _gaussian_problem(ct)
    kw = dict(covariance_type=ct, tol=0.0, init_params="", **(PRIORS if priors else {}))
    for n_iter in (1, 5, 20):
        h, e = _fit_both("GaussianHMM", X, init, n_iter, kw)
        for name in ("startprob_", "transmat_", "means_"):
            assert _rel(getattr(e, name), getattr(h, name)) < 1e-8, (name, n_iter)
        hc = h._covars_[:, 0] if ct == "spherical" else h._covars_
        assert _rel(e._covars_, hc) < 1e-8, n_iter
        if ct != "spherical":  # hmmlearn's spherical getter tiles (K, D) into K*D matrices
            assert _rel(e.covars_, h.covars_) < 1e-8
        np.testing.assert_allclose(list(e.monitor_.history), list(h.monitor_.history),
                                   rtol=1e-10)
        assert e.monitor_.iter == n_iter
        assert e.score(X, LENGTHS) == pytest.approx(h.score(X, LENGTHS), rel=1e-10)
        np.testing.assert_allclose(e.predict_proba(X, LENGTHS), h.predict_proba(X, LENGTHS),
                                   atol=1e-9)
        lp_e, path_e = e.decode(X, LENGTHS)
        lp_h, path_h = h.decode(X, LENGTHS)
        np.testing.assert_array_equal(path_e, path_h)
        assert lp_e == pytest.approx(lp_h, rel=1e-10)
        lp_e, path_e = e.decode(X, LENGTHS, algorithm="map")
        lp_h, path_h = h.decode(X, LENGTHS, algorithm="map")
        np.testing.assert_array_equal(path_e, path_h)
        assert lp_e == pytest.approx(lp_h, rel=1e-10)
        assert e.bic(X, LENGTHS) == pytest.approx(h.bic(X, LENGTHS), rel=1e-10)
        assert e.aic(X, LENGTHS) == pytest.approx(h.aic(X, LENGTHS), rel=1e-10)


def _categorical_problem(seed=0, k=3, v=5):
    rng = np.random.default_rng(seed)
    X = rng.integers(v, size=(100, 1))
    X[30:80] = rng.integers(2, size=(50, 1))
    init = dict(
        startprob_=rng.dirichlet(np.ones(k)), transmat_=rng.dirichlet(np.ones(k) * 2, size=k),
        emissionprob_=rng.dirichlet(np.ones(v), size=k),
    )
    return X, init


@pytest.mark.parametrize("prior", [1.0, 1.7])
def test_categorical_iterates_equal_hmmlearn(prior):
    X, init = _categorical_problem()
    kw = dict(tol=0.0, init_params="", emissionprob_prior=prior, transmat_prior=prior)
    for n_iter in (1, 5, 20):
        h, e = _fit_both("CategoricalHMM", X, init, n_iter, kw)
        for name in ("startprob_", "transmat_", "emissionprob_"):
            assert _rel(getattr(e, name), getattr(h, name)) < 1e-8, (name, n_iter)
        assert e.score(X, LENGTHS) == pytest.approx(h.score(X, LENGTHS), rel=1e-10)
        np.testing.assert_allclose(e.predict_proba(X, LENGTHS), h.predict_proba(X, LENGTHS),
                                   atol=1e-9)
        np.testing.assert_array_equal(e.predict(X, LENGTHS), h.predict(X, LENGTHS))


def test_default_initialisation_follows_hmmlearn():
    X, _ = _gaussian_problem("diag")
    h = hmm.GaussianHMM(3, n_iter=5, random_state=3).fit(X, LENGTHS)
    e = emkit.GaussianHMM(3, n_iter=5, random_state=3, check_monotonic="raise").fit(X, LENGTHS)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        assert _rel(getattr(e, name), getattr(h, name)) < 1e-8, name
    Xc, _ = _categorical_problem()
    h = hmm.CategoricalHMM(3, n_iter=5, random_state=4).fit(Xc, LENGTHS)
    e = emkit.CategoricalHMM(3, n_iter=5, random_state=4).fit(Xc, LENGTHS)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        assert _rel(getattr(e, name), getattr(h, name)) < 1e-8, name


def test_sample_follows_hmmlearn():
    _, init = _gaussian_problem("full")
    h = _set(hmm.GaussianHMM(3, covariance_type="full"), init)
    e = _set(emkit.GaussianHMM(3, covariance_type="full"), init)
    Xh, sh = h.sample(20, random_state=5)
    Xe, se = e.sample(20, random_state=5)
    np.testing.assert_array_equal(se, sh)
    np.testing.assert_allclose(Xe, Xh, rtol=1e-12)
    np.testing.assert_allclose(e.get_stationary_distribution(),
                               h.get_stationary_distribution(), rtol=1e-10)


@pytest.mark.parametrize("params, init_params", [("tm", ""), ("smc", "st"), ("se", "")])
def test_params_and_init_params_follow_hmmlearn(params, init_params):
    # (not "c" without "m": hmmlearn then drops the posterior counts its covariance update
    # needs and its covariances blow up; emkit updates them about the fixed means)
    if "e" in params:
        X, init = _categorical_problem()
        name = "CategoricalHMM"
    else:
        X, init = _gaussian_problem("diag")
        name = "GaussianHMM"
    init = {k: v for k, v in init.items() if k[0] not in init_params}
    kw = dict(tol=0.0, params=params, init_params=init_params, random_state=2)
    h, e = _fit_both(name, X, init, 5, kw)
    for attr in ("startprob_", "transmat_", "means_", "_covars_", "emissionprob_"):
        if hasattr(h, attr):
            assert _rel(getattr(e, attr), getattr(h, attr)) < 1e-8, attr


def test_float32_data_stays_close_to_hmmlearn():
    X, init = _gaussian_problem("full")
    h, _ = _fit_both("GaussianHMM", X, init, 5, dict(covariance_type="full", tol=0.0,
                                                     init_params=""))
    e = _set(emkit.GaussianHMM(3, covariance_type="full", n_iter=5, tol=0.0, init_params="",
                               check_monotonic="raise"), init).fit(X.astype(np.float32), LENGTHS)
    assert e.means_.dtype == np.float32
    assert _rel(e.means_, h.means_) < 1e-4 and _rel(e.covars_, h.covars_) < 1e-4
