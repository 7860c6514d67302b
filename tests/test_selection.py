"""emkit.select against fits done by hand; failures recorded, not raised."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emkit
from emkit import BernoulliMixture, GaussianMixture, LatentDirichletAllocation

from ._helpers import blobs, canonical_rows

X, _ = blobs(n=240, d=2, k=3, sep=6.0, seed=4)
GRID = {"n_components": [1, 2, 3, 4], "covariance_type": ["full", "diag"]}


def test_select_equals_fits_by_hand_and_sklearn_criteria():
    result = emkit.select(GaussianMixture(random_state=0), X, GRID)
    r = result.results_
    assert len(r["params"]) == 8
    n = X.shape[0]
    for i, params in enumerate(r["params"]):
        assert r["param_n_components"][i] == params["n_components"]
        assert r["param_covariance_type"][i] == params["covariance_type"]
        # the peer, by hand (on the rows in the order emkit initialises on)
        sk = SkGaussianMixture(**params, random_state=0).fit(canonical_rows(X))
        ll = float(np.sum(sk.score_samples(X)))
        k, d = params["n_components"], X.shape[1]
        p = (k - 1) + k * d + (k * d * (d + 1) // 2 if params["covariance_type"] == "full"
                               else k * d)
        resp = sk.predict_proba(X)
        entropy = -np.sum(resp * np.log(np.clip(resp, 1e-300, None)))
        assert r["n_parameters"][i] == p
        np.testing.assert_allclose(r["log_likelihood"][i], ll, rtol=1e-7)
        np.testing.assert_allclose(r["bic"][i], -2 * ll + p * np.log(n), rtol=1e-7)
        np.testing.assert_allclose(r["bic"][i], sk.bic(X), rtol=1e-7)
        np.testing.assert_allclose(r["aic"][i], sk.aic(X), rtol=1e-7)
        np.testing.assert_allclose(r["icl"][i], sk.bic(X) + 2 * entropy, rtol=1e-6, atol=1e-6)
        assert r["converged"][i] and r["n_iter"][i] >= 1 and r["fit_seconds"][i] > 0
        assert r["error"][i] == ""
    best = int(np.argmin(r["bic"]))
    assert result.best_index_ == best
    assert result.best_params_ == r["params"][best]
    assert result.best_params_ == {"n_components": 3, "covariance_type": "full"}
    np.testing.assert_allclose(result.best_estimator_.bic(X), r["bic"][best])
    aic = emkit.select(GaussianMixture(random_state=0), X, GRID, criterion="aic")
    assert aic.best_index_ == int(np.argmin(aic.results_["aic"]))


def test_results_are_a_dataframe_and_a_table():
    import pandas as pd

    result = emkit.select(BernoulliMixture(random_state=0), (X > 0).astype(float),
                          {"n_components": [1, 2]}, criterion="icl")
    df = pd.DataFrame(result.results_)
    for col in ["param_n_components", "bic", "aic", "icl", "log_likelihood", "n_parameters",
                "n_iter", "converged", "fit_seconds"]:
        assert col in df.columns
    assert len(df) == 2
    lines = result.table().splitlines()
    assert len(lines) == 3 and lines[1 + result.best_index_].startswith("*")


def test_sample_weight_and_threads():
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=X.shape[0])
    one = emkit.select(GaussianMixture(random_state=0), X, GRID, sample_weight=w)
    two = emkit.select(GaussianMixture(random_state=0), X, GRID, sample_weight=w, n_jobs=2)
    np.testing.assert_array_equal(one.results_["bic"], two.results_["bic"])
    gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X, sample_weight=w)
    i = one.results_["params"].index({"n_components": 2, "covariance_type": "diag"})
    np.testing.assert_allclose(one.results_["bic"][i], gm.bic(X, sample_weight=w))


def test_a_failing_grid_point_is_recorded_not_raised():
    # two exact duplicates of one point per cluster: 3 components of zero variance fail
    Xd = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]]), 10, axis=0)
    result = emkit.select(GaussianMixture(reg_covar=0.0, random_state=0), Xd,
                          {"n_components": [1, 3]})
    r = result.results_
    assert r["error"][0] == "" and np.isfinite(r["bic"][0])
    assert "reg_covar" in r["error"][1] and np.isnan(r["bic"][1]) and np.isnan(r["icl"][1])
    assert result.best_index_ == 0
    assert "failed" in result.table()


def test_bad_calls():
    with pytest.raises(ValueError, match="criterion"):
        emkit.select(GaussianMixture(), X, GRID, criterion="loglik")
    with pytest.raises(ValueError, match="perplexity"):
        emkit.select(LatentDirichletAllocation(), X, {"n_components": [2]})
    with pytest.raises(ValueError, match="Invalid parameter"):
        emkit.select(GaussianMixture(), X, {"n_topics": [2]})
    with pytest.raises(ValueError, match="every fit"):
        emkit.select(GaussianMixture(), X[:3], {"n_components": [5]})


def test_select_refuses_estimators_it_cannot_rank_with_the_reason():
    from emkit import BayesianGaussianMixture, GaussianHMM

    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match="lengths"):
        emkit.select(GaussianHMM(2), X, {"n_components": [1, 2]})
    with pytest.raises(ValueError, match="n_effective_components_"):
        emkit.select(BayesianGaussianMixture(), X, {"n_components": [1, 2]})
