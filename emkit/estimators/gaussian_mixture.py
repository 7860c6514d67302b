"""``emkit.GaussianMixture``: a drop-in for ``sklearn.mixture.GaussianMixture``."""

from __future__ import annotations

from .._base import initial_assignments
from .._validation import check_means, check_precisions, check_weights
from ..models.gaussian import GaussianModel, GaussianParams, precision_cholesky_from_precisions
from ._gaussian_common import GaussianMixtureBase

__all__ = ["GaussianMixture"]

class GaussianMixture(GaussianMixtureBase):
    """Gaussian mixture fitted by EM, with a visible ELBO trace and fast blocked kernels.

    Same constructor, attributes and methods as ``sklearn.mixture.GaussianMixture``; beyond it:
    ``sample_weight`` in ``fit``/``score`` (weights act as repeat counts), float32 data kept
    float32, the per-iteration :class:`~emkit.Trace` of both EM half-steps, a check that no
    half-step lowers the ELBO, and online (stepwise) EM by :meth:`partial_fit`.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Full matrix per component, one shared matrix, diagonal per component, or one variance
        per component.
    tol : float, default=1e-3
        Convergence threshold on the change of the per-sample lower bound between iterations.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of every covariance.
    max_iter : int, default=100
        Maximum number of EM iterations (M-steps).
    n_init : int, default=1
        Number of initialisations; the best (largest final bound) is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How the initial responsibilities are set, as in scikit-learn, on the weighted
        empirical distribution of ``X``: its distinct rows, each with the total weight of
        its copies, in a canonical order (by a hash of the values). So the fit never depends
        on the row order, and integer ``sample_weight`` is the same as repeating rows. With
        more than 100,000 rows (or 32 MB of them) the initialisation runs on the 100,000
        distinct rows of smallest hash salted from ``random_state``, so it costs bounded time
        and memory whatever N is (and, for a dask array, only those rows are gathered to the
        client). Measured cost of the distinct rows on a default fit (N=100k, D=16, K=16):
        about 2-4 % (``benchmarks/bench_init.py``).
    weights_init, means_init, precisions_init : array-like, optional
        User initial parameters (override the ones from ``init_params``).
    random_state : int, RandomState instance or None
        Seed for the initialisation (the same seed gives scikit-learn's initialisation on the
        rows in the canonical order above).
    warm_start : bool, default=False
        Continue from the fitted parameters on the next ``fit``.
    verbose : int, default=0
        1 prints per initialisation, 2 also every ``verbose_interval`` iterations. Printing is
        done by a progress callback, never inside the EM loop.
    verbose_interval : int, default=10
    check_monotonic : {"warn", "raise", "ignore"}, default="warn"
        What to do if an E- or M-step lowers the objective beyond round-off
        (:class:`~emkit.MonotonicityWarning` / :class:`~emkit.MonotonicityError`).
    callback : callable, optional
        Called with an :class:`~emkit.IterationInfo` after every iteration (and every
        :meth:`partial_fit` step).
    learning_decay : float, default=0.7
        kappa of online EM's step size ``rho_t = (t + learning_offset) ** -learning_decay``
        (:meth:`partial_fit`), in ``[0, 1]``; ``(0.5, 1]`` guarantees convergence. The name,
        default and bounds of ``LatentDirichletAllocation``'s.
    learning_offset : float, default=10.0
        tau_0 (>= 1) of the step size: larger values down-weight the early steps.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        As in scikit-learn, in the dtype of the training data.
    converged_ : bool
    n_iter_ : int
        Number of M-steps of the best initialisation.
    lower_bound_ : float
        Per-sample log-likelihood at the *final* parameters (scikit-learn's lags one M-step).
    lower_bounds_ : list of float
        The bound after each iteration, ``lower_bounds_[-1] == lower_bound_``.
    trace_ : Trace
        Per-iteration ELBO after each half-step, log-evidence, KL gap and time.
    traces_ : list of Trace
        One trace per initialisation.
    best_init_ : int
        Index of the initialisation kept.
    n_samples_seen_ : float
        Total sample weight seen: by :meth:`fit` (its data), plus every :meth:`partial_fit`
        mini-batch since. Online EM scales each mini-batch's statistics to it; the M-step of a
        Gaussian mixture does not depend on that common scale (``reg_covar`` is added to the
        covariances, not counted in samples).
    n_features_in_ : int
    feature_names_in_ : ndarray
        Only when ``X`` had string feature names.

    Notes
    -----
    Each E-step takes one of two kernels (:class:`emkit.models.gaussian.GaussianModel`): a
    quadratic-feature form (two GEMMs of width ``D (D + 1) / 2`` for full covariances) where
    it is accurate and a measured cost model finds it cheaper, otherwise the per-component
    Cholesky form (blocked triangular BLAS), so wide data with few components runs the latter.
    float32 data is computed in float32 on either kernel, except where the Cholesky form is
    taken for accuracy (ill-conditioned covariances, means far from the data's centre): there
    it runs in float64, because float32 would round away the digits that made the
    quadratic-feature form unsafe, so such float32 fits cost what float64 ones do.
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        check_monotonic="warn",
        callback=None,
        learning_decay=0.7,
        learning_offset=10.0,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.check_monotonic = check_monotonic
        self.callback = callback
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ---------------------------------------------------------------- hooks
    def _check_hyperparameters(self, X):
        self._check_gaussian_config()
        k, d = self.n_components, X.shape[1]
        self._weights_init = None if self.weights_init is None else check_weights(
            self.weights_init, k
        )
        self._means_init = None if self.means_init is None else check_means(self.means_init, k, d)
        self._precisions_init = None if self.precisions_init is None else check_precisions(
            self.precisions_init, self.covariance_type, k, d
        )

    def _make_model(self, X, sample_weight=None):
        return GaussianModel(**self._kernel_config(X, sample_weight))

    def _init_needs_data(self) -> bool:
        return not (
            self._weights_init is not None
            and self._means_init is not None
            and self._precisions_init is not None
        )

    def _initial_params(self, model, X, sample_weight, random_state):
        ct = self.covariance_type
        if not self._init_needs_data():
            # nothing to estimate: skip the initial clustering (but keep the random stream
            # consumption of scikit-learn out of it: no draw is needed)
            return GaussianParams(
                self._weights_init, self._means_init,
                precision_cholesky_from_precisions(self._precisions_init, ct), ct,
            )
        resp = initial_assignments(
            X, self.n_components, self.init_params, sample_weight, random_state
        )
        params = model.m_step(model.stats_from_resp(X, resp, sample_weight))
        weights = params.weights if self._weights_init is None else self._weights_init
        means = params.means if self._means_init is None else self._means_init
        if self._precisions_init is None:
            return params.replace(weights=weights, means=means)
        return GaussianParams(
            weights, means, precision_cholesky_from_precisions(self._precisions_init, ct), ct
        )

    def _set_fitted_params(self, params, dtype):
        self.weights_ = params.weights.astype(dtype)
        self.means_ = params.means.astype(dtype)
        self.covariances_ = params.get_covariances().astype(dtype)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype)
        self.precisions_ = params.precisions().astype(dtype)
