"""scikit-learn's estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import GaussianMixture


@parametrize_with_checks([GaussianMixture(), GaussianMixture(covariance_type="diag", n_init=2)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
