"""emkit: EM and variational EM estimators with a scikit-learn API.

Every estimator alternates an E-step that sets Q(Z) and an M-step that maximises the evidence
lower bound, records both half-steps in a :class:`Trace` and checks that neither lowers it.
"""

from ._em import IterationInfo
from ._exceptions import MonotonicityError, MonotonicityWarning
from ._io import load, save
from ._trace import Trace
from .estimators.bayesian_gaussian_mixture import BayesianGaussianMixture
from .estimators.bernoulli_mixture import BernoulliMixture
from .estimators.gaussian_mixture import GaussianMixture
from .estimators.hmm import CategoricalHMM, GaussianHMM
from .estimators.lda import LatentDirichletAllocation
from .selection import select

__all__ = [
    "BayesianGaussianMixture",
    "BernoulliMixture",
    "CategoricalHMM",
    "GaussianHMM",
    "GaussianMixture",
    "IterationInfo",
    "LatentDirichletAllocation",
    "MonotonicityError",
    "MonotonicityWarning",
    "Trace",
    "load",
    "save",
    "select",
]

__version__ = "0.1.0"
