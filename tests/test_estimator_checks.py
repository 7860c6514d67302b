"""scikit-learn's estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import BayesianGaussianMixture, GaussianMixture


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(covariance_type="diag", n_init=2),
        # two or more components: the sample-weight equivalence checks are not trivial
        GaussianMixture(n_components=2),
        GaussianMixture(n_components=3, covariance_type="tied", init_params="k-means++"),
        BayesianGaussianMixture(n_components=2),
        BayesianGaussianMixture(),
        BayesianGaussianMixture(
            covariance_type="tied", n_init=2,
            weight_concentration_prior_type="dirichlet_distribution",
        ),
        BayesianGaussianMixture(covariance_type="spherical", init_params="random"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
