"""scikit-learn's estimator checks for BernoulliMixture, with no expected failures.

The checks feed continuous (and negative) data. BernoulliMixture's default ``binarize=None``
rejects non-binary input with a ValueError, as the issue requires, so the checks run on
instances configured to binarize (``binarize=0.0`` is scikit-learn's ``BernoulliNB`` default),
the same way ``parametrize_with_checks`` is given configured instances of other estimators.
``test_default_rejects_continuous_data`` covers the default's behaviour on that data.

Two more things make the checks pass without expected failures, both real behaviour:
- the sparse-input check expects ``predict_proba`` to have 2 columns (4 for "multi_class"),
  reading ``classifier_tags`` even of non-classifiers, so the instances have 2 and 4
  components and ``__sklearn_tags__`` describes ``predict_proba``'s width;
- with more than one component the sample-weight check needs a fit that depends only on the
  weighted empirical distribution: the initialisation runs on the distinct patterns in a
  canonical order with summed weights, so row order and integer weights vs repeats agree.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import BernoulliMixture


@parametrize_with_checks(
    [
        BernoulliMixture(2, binarize=0.0),
        BernoulliMixture(4, binarize=0.5, alpha=0.0, n_init=2, init_params="random"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
