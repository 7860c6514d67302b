"""GaussianMixture behaviour: the driver, the trace, weights, dtypes, bad input."""

import io
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from emkit import GaussianMixture, IterationInfo, MonotonicityError, MonotonicityWarning, Trace
from emkit._em import monotonic_rtol, run_em
from emkit.models.gaussian import GaussianModel, GaussianParams, precision_cholesky_from_precisions

from ._helpers import blobs, random_params

COV_TYPES = ["full", "tied", "diag", "spherical"]


def fit(X, **kw):
    kw.setdefault("random_state", 0)
    kw.setdefault("check_monotonic", "raise")
    return GaussianMixture(**kw).fit(X)


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    ct=st.sampled_from(COV_TYPES),
    k=st.integers(1, 4),
    d=st.integers(1, 4),
    weighted=st.booleans(),
    path=st.sampled_from(["auto", "exact"]),
)
def test_design_invariants_on_random_problems(seed, ct, k, d, weighted, path):
    """E-step closes the gap; M-step raises the bound; the next E-step raises it again.

    ``path="auto"`` takes the fast quadratic form wherever its round-off rule allows, so this
    also tests that rule. With ``reg_covar > 0`` the M-step maximises ``objective`` (the ELBO
    minus reg_covar's implied penalty), which is what is checked for that half-step.
    """
    rng = np.random.default_rng(seed)
    X, _ = blobs(n=200, d=d, k=max(k, 1), seed=seed)
    w = rng.uniform(0.0, 2.0, size=200) if weighted else None
    wi, m, p = random_params(k, d, ct, seed=seed + 1, scale=2.0)
    params = GaussianParams(wi, m, precision_cholesky_from_precisions(p, ct), ct)
    model = GaussianModel(ct, reg_covar=1e-6, center=X.mean(0), path=path)
    for _ in range(3):
        stats, _ = model.e_step(params, X, w)
        scale = max(abs(stats.log_evidence), stats.total_weight)
        assert model.elbo(params, stats) == pytest.approx(stats.log_evidence, abs=1e-11 * scale)
        new = model.m_step(stats)
        assert model.objective(new, stats) >= model.objective(params, stats) - 1e-12 * scale
        nxt, _ = model.e_step(new, X, w)
        assert nxt.log_evidence >= model.elbo(new, stats) - 1e-10 * scale
        params = new


@pytest.mark.parametrize("ct", COV_TYPES)
def test_trace_half_steps_never_lower_the_elbo(ct):
    X, _ = blobs(n=300, d=3, k=3, seed=2)
    gm = fit(X, n_components=3, covariance_type=ct, tol=1e-8, max_iter=300,
             init_params="random")
    tr = gm.trace_
    assert isinstance(tr, Trace) and len(tr) == gm.n_iter_ + 1
    seq = tr.elbo
    assert np.all(np.diff(seq) >= -1e-12 * np.abs(seq[:-1]).max())
    np.testing.assert_allclose(tr.elbo_after_e, tr.log_evidence, rtol=1e-12)
    assert np.all(tr.kl[:-1] >= -1e-12) and np.isnan(tr.kl[-1]) and np.isnan(tr.elbo_after_m[-1])
    # the KL gap after an M-step is exactly what the next E-step recovers
    np.testing.assert_allclose(tr.kl[:-1], tr.elbo_after_e[1:] - tr.elbo_after_m[:-1],
                               atol=1e-12)
    assert np.all(np.diff(tr.seconds) >= 0)
    assert gm.lower_bound_ == tr.elbo_after_e[-1] == gm.lower_bounds_[-1]
    assert len(gm.lower_bounds_) == gm.n_iter_
    assert gm.lower_bound_ == pytest.approx(gm.score(X), rel=1e-12)
    assert tr.to_dict()["n_iter"] == gm.n_iter_ and "elbo_after_e" in tr.table()


def test_convergence_uses_per_sample_change():
    """Stops after the M-step following two E-steps closer than tol (scikit-learn's rule)."""
    X, _ = blobs(n=200, d=2, k=2, seed=3)
    gm = fit(X, n_components=2, tol=1e-4)
    assert gm.converged_
    e, n = gm.trace_.elbo_after_e, gm.n_iter_
    assert abs(e[n - 1] - e[n - 2]) < 1e-4
    assert n == 2 or abs(e[n - 2] - e[n - 3]) >= 1e-4


def test_max_iter_warns_and_max_iter_zero_keeps_init():
    X, _ = blobs(n=200, d=2, k=2, seed=4)
    with pytest.warns(ConvergenceWarning):
        gm = fit(X, n_components=2, max_iter=1, tol=0.0)
    assert gm.n_iter_ == 1 and not gm.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm0 = fit(X, n_components=2, max_iter=0)
    assert gm0.n_iter_ == 0 and len(gm0.trace_) == 1 and gm0.lower_bounds_ == []


def test_n_init_keeps_best_and_all_traces():
    X, _ = blobs(n=300, d=2, k=4, seed=5)
    gm = fit(X, n_components=4, n_init=4, init_params="random_from_data")
    assert len(gm.traces_) == 4
    finals = [t.elbo_after_e[-1] for t in gm.traces_]
    assert gm.lower_bound_ == max(finals) and gm.trace_ is gm.traces_[gm.best_init_]
    assert [t.init for t in gm.traces_] == [0, 1, 2, 3]


def test_warm_start_continues_from_fitted_parameters():
    X, _ = blobs(n=300, d=2, k=3, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = fit(X, n_components=3, max_iter=2, tol=0.0, warm_start=True)
        first = gm.lower_bound_
        gm.fit(X)
    assert gm.trace_.elbo_after_e[0] == pytest.approx(first, rel=1e-13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        straight = fit(X, n_components=3, max_iter=4, tol=0.0)
    np.testing.assert_allclose(gm.means_, straight.means_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_predict_equals_fit_then_predict():
    X, _ = blobs(n=200, d=2, k=3, seed=7)
    labels = GaussianMixture(3, random_state=1, max_iter=3, tol=0).fit_predict(X)
    gm = GaussianMixture(3, random_state=1, max_iter=3, tol=0).fit(X)
    np.testing.assert_array_equal(labels, gm.predict(X))


def test_callback_and_verbose_report_progress(capsys):
    X, _ = blobs(n=200, d=2, k=2, seed=8)
    seen = []
    gm = fit(X, n_components=2, callback=seen.append, verbose=2, verbose_interval=1)
    assert len(seen) == gm.n_iter_ and all(isinstance(i, IterationInfo) for i in seen)
    assert seen[-1].converged and seen[-1].elbo == gm.lower_bound_
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 1\t time lapse" in out
    assert "ll change" in out and "Initialization converged." in out
    fit(X, n_components=2, verbose=1, verbose_interval=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Initialization 0" and out[1] == "  Iteration 2"
    assert out[-1] == "Initialization converged."


# ----------------------------------------------------------------------------- weights and dtype
@pytest.mark.parametrize("ct", COV_TYPES)
def test_integer_weights_equal_repeated_rows(ct):
    X, _ = blobs(n=80, d=3, k=2, seed=9)
    counts = np.random.default_rng(0).integers(0, 4, size=80)
    w, m, p = random_params(2, 3, ct, seed=1, scale=2.0)
    kw = dict(n_components=2, covariance_type=ct, weights_init=w, means_init=m,
              precisions_init=p, tol=0.0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(**kw).fit(X, sample_weight=counts)
        b = GaussianMixture(**kw).fit(np.repeat(X, counts, axis=0))
    for name in ["weights_", "means_", "covariances_"]:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-10)
    assert a.score(X, sample_weight=counts) == pytest.approx(
        b.score(np.repeat(X, counts, axis=0)), rel=1e-10
    )


@pytest.mark.parametrize("ct", COV_TYPES)
def test_float32_stays_float32_and_agrees_with_float64(ct):
    X, _ = blobs(n=400, d=3, k=3, seed=10)
    g64 = fit(X, n_components=3, covariance_type=ct, tol=1e-6)
    g32 = fit(X.astype(np.float32), n_components=3, covariance_type=ct, tol=1e-6)
    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]:
        assert getattr(g32, name).dtype == np.float32, name
    assert g32.predict_proba(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(g32.means_, g64.means_, rtol=1e-3, atol=1e-3)
    assert g32.lower_bound_ == pytest.approx(g64.lower_bound_, rel=1e-4)


@pytest.mark.parametrize("scale", [1e-15, 1e6])
def test_fit_does_not_depend_on_the_scale_of_sample_weight(scale):
    X, _ = blobs(n=150, d=2, k=2, seed=13)
    plain = fit(X, n_components=2)
    scaled = GaussianMixture(2, random_state=0, check_monotonic="raise").fit(
        X, sample_weight=np.full(150, scale)
    )
    np.testing.assert_allclose(scaled.means_, plain.means_, rtol=1e-10)
    assert scaled.n_iter_ == plain.n_iter_


def test_predictions_upcast_float32_input_of_a_float64_fit():
    X, _ = blobs(n=150, d=2, k=2, seed=14)
    gm = fit(X, n_components=2)
    X32 = X.astype(np.float32)
    assert gm.predict_proba(X32).dtype == np.float64
    np.testing.assert_allclose(gm.score_samples(X32), gm.score_samples(X32.astype(np.float64)))


def test_monotonic_rtol_scales_with_precision():
    assert monotonic_rtol(np.float64) == pytest.approx(1e-13)
    assert monotonic_rtol(np.float32) > 1e-6


# ----------------------------------------------------------------------------- the check itself
class _DroppingModel:
    """A deliberately broken model whose M-step lowers the objective on iteration 2."""

    class S:
        log_evidence = 0.0
        total_weight = 10.0

    def __init__(self):
        self.calls = 0

    def e_step(self, params, X, w, state):
        return self.S(), None

    def m_step(self, stats):
        self.calls += 1
        return self.calls

    def elbo(self, params, stats):
        return -5.0 if params == 2 else -float(params == 0)

    objective = elbo

    def log_prior(self, params):
        return 0.0


def test_monotonicity_check_names_iteration_half_step_and_size():
    with pytest.raises(MonotonicityError, match=r"iteration 2: the M-step lowered .* by 5\.0"):
        run_em(_DroppingModel(), None, None, 0, max_iter=5, tol=0.0, check_monotonic="raise")
    with pytest.warns(MonotonicityWarning, match="iteration 2"):
        run_em(_DroppingModel(), None, None, 0, max_iter=3, tol=0.0, check_monotonic="warn")
    run_em(_DroppingModel(), None, None, 0, max_iter=3, tol=0.0, check_monotonic="ignore")
    with pytest.raises(ValueError, match="check_monotonic"):
        GaussianMixture(check_monotonic="sometimes").fit(X_OK)


# ----------------------------------------------------------------------------- bad input
X_OK = blobs(n=50, d=2, k=2, seed=11)[0]


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "infinity"),
        (np.arange(10.0), "2D array"),
        (np.empty((0, 3)), "0 sample"),
        (np.ones((1, 3)), "minimum of 2"),
    ],
)
def test_bad_X_is_a_clear_error(X, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture().fit(X)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="fewer samples than components"):
        GaussianMixture(n_components=5).fit(X_OK[:3])


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(weights_init=[0.5, 0.2]), "normalized"),
        (dict(weights_init=[0.5, 0.3, 0.2]), "shape"),
        (dict(weights_init=[1.5, -0.5]), "range"),
        (dict(means_init=np.zeros((3, 2))), "shape"),
        (dict(precisions_init=np.zeros((2, 2, 2))), "positive-definite"),
        (dict(precisions_init=np.array([[[1, 2], [0, 1]]] * 2)), "symmetric"),
        (dict(precisions_init=np.ones((2, 3, 3))), "shape"),
        (dict(covariance_type="banana"), "covariance_type"),
        (dict(init_params="magic"), "init_params"),
        (dict(reg_covar=-1.0), "reg_covar"),
        (dict(n_components=0), "n_components"),
        (dict(tol=-1.0), "tol"),
        (dict(reg_covar=np.inf), "reg_covar"),
        (dict(verbose_interval=0), "verbose_interval"),
        (dict(warm_start="yes"), "warm_start"),
    ],
)
def test_bad_parameters_are_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(n_components=kw.pop("n_components", 2), **kw).fit(X_OK)


def test_bad_sample_weight():
    with pytest.raises(ValueError, match="Negative"):
        GaussianMixture(2).fit(X_OK, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match="shape"):
        GaussianMixture(2).fit(X_OK, sample_weight=np.ones(49))
    with pytest.raises(ValueError, match="NaN|infinity"):
        GaussianMixture(2).fit(X_OK, sample_weight=np.full(50, np.nan))
    w = np.zeros(50)
    w[0] = 1.0
    with pytest.raises(ValueError, match="positive sample_weight"):
        GaussianMixture(2).fit(X_OK, sample_weight=w)


def test_warm_start_with_a_different_model_is_a_clear_error():
    gm = fit(X_OK, n_components=2, warm_start=True)
    gm.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match="covariance_type"):
        gm.fit(X_OK)
    gm.set_params(covariance_type="full", n_components=3)
    with pytest.raises(ValueError, match="n_components"):
        gm.fit(X_OK)


@pytest.mark.parametrize("make", [
    lambda: GaussianMixture(2, random_state=0, warm_start=True),
    lambda: __import__("emkit").BernoulliMixture(2, random_state=0, warm_start=True,
                                                 binarize=0.0),
])
def test_rejected_warm_start_leaves_the_fit_usable(make):
    est = make().fit(X_OK)
    before = est.score(X_OK)
    with pytest.raises(ValueError, match="features"):
        est.fit(np.hstack([X_OK, X_OK[:, :1]]))
    assert est.n_features_in_ == X_OK.shape[1]
    assert est.score(X_OK) == before


def test_cli_rejects_bad_arguments(capsys):
    from emkit.cli import main

    with pytest.raises(SystemExit):
        main(["demo", "--n-components", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_feature_count_mismatch_at_predict():
    gm = fit(X_OK, n_components=2)
    with pytest.raises(ValueError, match="features"):
        gm.predict(np.ones((3, 5)))


def test_collapsed_component_names_component_and_remedy():
    X = np.vstack([np.zeros((20, 2)), np.random.default_rng(0).normal(size=(20, 2)) + 5])
    with pytest.raises(ValueError, match=r"Component \d.*reg_covar"):
        GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)
    gm = GaussianMixture(2, random_state=0).fit(X)  # reg_covar rescues it, no NaN
    assert np.all(np.isfinite(gm.covariances_))


def test_callers_arrays_are_not_modified():
    X = X_OK.copy()
    w = np.linspace(0.5, 1.5, 50)
    m = X[:2].copy()
    X0, w0, m0 = X.copy(), w.copy(), m.copy()
    gm = GaussianMixture(2, means_init=m, random_state=0).fit(X, sample_weight=w)
    gm.predict_proba(X)
    gm.score(X, sample_weight=w)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(m, m0)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_sample_equals_sklearns_on_the_same_parameters(ct):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X, _ = blobs(n=500, d=2, k=2, seed=12)
    gm = fit(X, n_components=2, covariance_type=ct)
    sk = SkGaussianMixture(2, covariance_type=ct, random_state=0)
    for name in ["weights_", "means_", "covariances_", "precisions_cholesky_"]:
        setattr(sk, name, getattr(gm, name))
    Xs, ys = gm.sample(700)
    Xr, yr = sk.sample(700)
    np.testing.assert_array_equal(ys, yr)
    np.testing.assert_allclose(Xs, Xr, rtol=1e-12)
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)


def test_cli_demo_prints_the_elbo_table():
    from emkit.cli import main

    buf = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(buf):
        assert main(["demo"]) == 0
    out = buf.getvalue()
    assert "elbo_after_e" in out and "iris" in out
