"""BayesianGaussianMixture against references nobody here wrote: scikit-learn's iterates, the
ELBO of PRML 10.70-10.77 written out term by term (with scipy's Wishart), scipy's Student-t."""

import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import betaln, digamma, gammaln, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGMM

from emkit import BayesianGaussianMixture

from ._helpers import blobs, canonical_rows

COV_TYPES = ["full", "tied", "diag", "spherical"]
PRIORS = ["dirichlet_process", "dirichlet_distribution"]
X4, _ = blobs(n=300, d=3, k=3, seed=1)


def _fit_both(X, n_iter, **kw):
    """scikit-learn's and emkit's fits; "random" initial responsibilities by default (kmeans'
    Lloyd iterations cost more than the fits: it is tested once, with the others).
    emkit initialises on the rows in a canonical order (its fit does not depend on the row
    order): scikit-learn sees them in that order."""
    kw = dict(n_components=4, max_iter=n_iter, tol=0.0, random_state=0, **kw)
    kw.setdefault("init_params", "random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkBGMM(**kw).fit(canonical_rows(X))
        em = BayesianGaussianMixture(**kw, check_monotonic="raise").fit(X)
    return sk, em


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


NAMES = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
         "weight_concentration_", "mean_precision_", "degrees_of_freedom_",
         "weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
         "degrees_of_freedom_prior_", "covariance_prior_"]


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("n_iter", [1, 5, 20])
def test_variational_parameters_follow_sklearn(prior, ct, n_iter):
    sk, em = _fit_both(X4, n_iter, covariance_type=ct, weight_concentration_prior_type=prior)
    assert em.n_iter_ == sk.n_iter_ == n_iter
    for name in NAMES:
        assert _rel(getattr(em, name), getattr(sk, name)) < 1e-7, name
    Xt, _ = blobs(n=40, d=3, k=3, seed=9)
    np.testing.assert_allclose(em.predict_proba(Xt), sk.predict_proba(Xt), atol=1e-7)
    np.testing.assert_array_equal(em.predict(Xt), sk.predict(Xt))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_initialisation_draws_sklearns_stream(init_params):
    """(With tied covariances, one-point seeds differ: scikit-learn's tied scatter sums
    ``X^T X`` over all rows, also those no seed's responsibility covers.)"""
    sk, em = _fit_both(X4, 5, init_params=init_params)
    for name in NAMES:
        assert _rel(getattr(em, name), getattr(sk, name)) < 1e-7, name


# ----------------------------------------------------------------------------- the full ELBO
def full_precisions(est):
    """``nu_k W_k`` as K full D x D matrices, whatever the covariance type."""
    P, ct, k = est.precisions_, est.covariance_type, est.n_components
    if ct == "tied":
        return np.array([P] * k)
    if ct == "diag":
        return np.array([np.diag(p) for p in P])
    if ct == "spherical":
        return np.array([p * np.eye(est.means_.shape[1]) for p in P])
    return P


def prml_elbo(X, R, est):
    """PRML 10.70-10.77 term by term from the data, the responsibilities and Q(theta).

    Every Q(Lambda_k) is a Wishart with a full scale matrix ``W_k`` (diagonal for diag,
    ``w_k I`` for spherical, one shared by all components for tied); the Wishart
    normalisers and entropies come from scipy.stats.wishart.
    """
    n, d = X.shape
    k = R.shape[1]
    ct = est.covariance_type
    beta0, nu0, m0 = est.mean_precision_prior_, est.degrees_of_freedom_prior_, est.mean_prior_
    c0 = est.covariance_prior_
    C0 = np.diag(c0) if ct == "diag" else c0 * np.eye(d) if ct == "spherical" else c0
    P = full_precisions(est)
    nu = np.broadcast_to(est.degrees_of_freedom_, (k,)).astype(float)
    W = P / nu[:, None, None]
    beta, m = est.mean_precision_, est.means_
    W0 = np.linalg.inv(C0)

    # E[log pi_k] and the weight terms (10.72, 10.73, 10.76; Beta sticks for the process)
    if est.weight_concentration_prior_type == "dirichlet_process":
        a, b = est.weight_concentration_
        e_lv, e_l1v = digamma(a) - digamma(a + b), digamma(b) - digamma(a + b)
        e_log_pi = e_lv + np.concatenate([[0.0], np.cumsum(e_l1v)[:-1]])
        a0 = est.weight_concentration_prior_
        p_pi = np.sum(-betaln(1.0, a0) + (a0 - 1.0) * e_l1v)
        q_pi = np.sum(-betaln(a, b) + (a - 1.0) * e_lv + (b - 1.0) * e_l1v)
    else:
        alpha, a0 = est.weight_concentration_, est.weight_concentration_prior_
        e_log_pi = digamma(alpha) - digamma(alpha.sum())
        log_c = lambda al: gammaln(al.sum()) - gammaln(al).sum()  # noqa: E731
        p_pi = log_c(np.full(k, a0)) + (a0 - 1.0) * e_log_pi.sum()
        q_pi = np.sum((alpha - 1.0) * e_log_pi) + log_c(alpha)

    Nk = R.sum(axis=0)
    xbar = (R.T @ X) / Nk[:, None]
    elbo = 0.0
    for j in range(k):
        diff = X - xbar[j]
        S = (R[:, j, None] * diff).T @ diff / Nk[j]
        logdet_w = np.linalg.slogdet(W[j])[1]
        e_logdet = np.sum(digamma(0.5 * (nu[j] + 1 - np.arange(1, d + 1)))) + d * np.log(2) \
            + logdet_w  # 10.65
        dm = xbar[j] - m[j]
        # 10.71
        elbo += 0.5 * Nk[j] * (e_logdet - d / beta[j] - nu[j] * np.trace(S @ W[j])
                               - nu[j] * dm @ W[j] @ dm - d * np.log(2 * np.pi))
        # 10.72
        elbo += Nk[j] * e_log_pi[j]
        # 10.74: log B(W0, nu0) from scipy's Wishart density at the identity
        prior = stats.wishart(df=nu0, scale=W0)
        log_b0 = prior.logpdf(np.eye(d)) + 0.5 * np.trace(C0)
        d0 = m[j] - m0
        elbo += 0.5 * (d * np.log(beta0 / (2 * np.pi)) + e_logdet - d * beta0 / beta[j]
                       - beta0 * nu[j] * d0 @ W[j] @ d0)
        elbo += log_b0 + 0.5 * (nu0 - d - 1) * e_logdet - 0.5 * nu[j] * np.trace(C0 @ W[j])
        # 10.77 with H[q(Lambda_k)] from scipy
        h = stats.wishart(df=nu[j], scale=W[j]).entropy()
        elbo -= 0.5 * e_logdet + 0.5 * d * np.log(beta[j] / (2 * np.pi)) - 0.5 * d - h
    # 10.75
    with np.errstate(divide="ignore", invalid="ignore"):
        elbo -= np.sum(np.where(R > 0, R * np.log(R), 0.0))
    return elbo + p_pi - q_pi


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("ct", COV_TYPES)
def test_elbo_is_prml_term_by_term(prior, ct):
    _, em = _fit_both(X4, 7, covariance_type=ct, weight_concentration_prior_type=prior)
    R = em.predict_proba(X4)  # Q(Z) of the final E-step
    ref = prml_elbo(X4, R, em)
    assert em.lower_bound_ * len(X4) == pytest.approx(ref, rel=1e-10)


def sklearn_style_bound(est, log_resp):
    """scikit-learn's ``_compute_lower_bound`` (constants dropped) on ``est``'s Q(theta)."""
    sk = SkBGMM(covariance_type=est.covariance_type,
                weight_concentration_prior_type=est.weight_concentration_prior_type,
                n_components=est.n_components)
    for name in ("weight_concentration_", "mean_prior_", "precisions_cholesky_",
                 "degrees_of_freedom_", "mean_precision_"):
        setattr(sk, name, getattr(est, name))
    return sk._compute_lower_bound(log_resp, None)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("ct", COV_TYPES)
def test_elbo_minus_sklearns_bound_is_one_constant(prior, ct):
    """scikit-learn's lower_bound_ after M-step t is the ELBO of (Q_{t-1}(Z), Q_t(theta)) up to
    the constants it drops: emkit's ``elbo_after_m``. (reg_covar = 0: with it, neither
    M-step maximises the ELBO itself and the simplification is not exact.)"""
    kw = dict(covariance_type=ct, weight_concentration_prior_type=prior, reg_covar=0.0)
    _, em = _fit_both(X4, 12, **kw)
    n = len(X4)
    sk = SkBGMM(n_components=4, max_iter=1, random_state=0, init_params="random",
                warm_start=True, **kw)
    diffs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for t in range(12):  # warm starts: one more iteration per fit
            sk.fit(canonical_rows(X4))
            diffs.append(em.trace_.elbo_after_m[t] * n - sk.lower_bound_)
    assert np.ptp(diffs) < 1e-9 * abs(em.lower_bound_ * n)
    assert abs(diffs[0]) > 1.0  # the constants scikit-learn drops are not small


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("ct", COV_TYPES)
def test_bound_never_falls_and_evidence_is_nan(prior, ct):
    X, _ = blobs(n=300, d=2, k=3, seed=5)
    em = BayesianGaussianMixture(
        n_components=5, covariance_type=ct, weight_concentration_prior_type=prior,
        init_params="random", tol=1e-9, max_iter=300, random_state=1, check_monotonic="raise",
    ).fit(X)
    tr = em.trace_
    seq = tr.elbo
    assert np.all(np.diff(seq) >= -1e-12 * np.abs(seq).max())
    assert np.all(np.isnan(tr.log_evidence)) and np.isnan(tr.kl[-1])
    # kl: what each E-step closes, KL(Q_t(Z) || Q_{t+1}(Z)) >= 0
    assert np.all(tr.kl[:-1] >= -1e-12 * np.abs(seq).max())
    assert em.lower_bound_ == tr.elbo_after_e[-1] == em.lower_bounds_[-1]


# ----------------------------------------------------------------------------- predictive
def student_t_mixture(est, X):
    d = X.shape[1]
    k = est.n_components
    P = full_precisions(est)
    nu = np.broadcast_to(est.degrees_of_freedom_, (k,))
    out = []
    for j in range(k):
        dof = nu[j] + 1 - d
        beta = est.mean_precision_[j]
        L = dof * beta / (1 + beta) * P[j] / nu[j]
        t = stats.multivariate_t(loc=est.means_[j], shape=np.linalg.inv(L), df=dof)
        out.append(np.log(est.weights_[j]) + t.logpdf(X))
    return logsumexp(np.column_stack(out), axis=1)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("ct", COV_TYPES)
def test_score_samples_is_scipys_student_t_mixture(prior, ct):
    _, em = _fit_both(X4, 10, covariance_type=ct, weight_concentration_prior_type=prior)
    Xt, _ = blobs(n=50, d=3, k=3, seed=7)
    np.testing.assert_allclose(em.score_samples(Xt), student_t_mixture(em, Xt), rtol=1e-9)
    assert em.score(Xt) == pytest.approx(np.mean(student_t_mixture(em, Xt)), rel=1e-9)


@pytest.mark.parametrize("ct", ["full", "spherical"])
def test_predictive_density_integrates_to_one(ct):
    rng = np.random.default_rng(0)
    X1 = np.concatenate([rng.normal(-2, 0.5, 40), rng.normal(1, 1.0, 60)])[:, None]
    em = BayesianGaussianMixture(n_components=3, covariance_type=ct, random_state=0).fit(X1)
    f1 = lambda x: np.exp(em.score_samples(np.array([[x]])))[0]  # noqa: E731
    assert integrate.quad(f1, -np.inf, np.inf, limit=200)[0] == pytest.approx(1.0, abs=1e-6)
    X2, _ = blobs(n=150, d=2, k=2, seed=3, sep=2.0)
    em2 = BayesianGaussianMixture(n_components=3, covariance_type=ct, random_state=0).fit(X2)
    lo, hi = X2.min(0) - 40, X2.max(0) + 40
    g = [np.linspace(lo[i], hi[i], 801) for i in range(2)]
    gx, gy = np.meshgrid(*g, indexing="ij")
    dens = np.exp(em2.score_samples(np.column_stack([gx.ravel(), gy.ravel()]))).reshape(gx.shape)
    mass = integrate.trapezoid(integrate.trapezoid(dens, g[1], axis=1), g[0])
    assert mass == pytest.approx(1.0, abs=2e-3)  # heavy tails beyond the box
