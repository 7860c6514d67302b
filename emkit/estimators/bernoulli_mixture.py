"""``emkit.BernoulliMixture``: latent class analysis / mixtures of multivariate Bernoullis."""

from __future__ import annotations

import numbers
from functools import partial

import numpy as np
import scipy.sparse as sp
from sklearn.utils import ClassifierTags, check_array
from sklearn.utils.validation import check_is_fitted

from .._base import INIT_PARAMS, BaseEMMixture, as_resp, initial_assignments
from .._validation import (
    check_choice,
    check_fit_data,
    check_means,
    check_predict_data,
    check_real,
    check_weights,
)
from ..kernels.bernoulli import is_binary
from ..models.bernoulli import BernoulliModel, BernoulliParams

__all__ = ["BernoulliMixture"]



def _check_binarize(binarize):
    if binarize is None:
        return None
    if (
        isinstance(binarize, bool)
        or not isinstance(binarize, numbers.Real)
        or not np.isfinite(binarize)
    ):
        raise ValueError(f"binarize must be None or a finite real threshold, got {binarize!r}.")
    return float(binarize)


def _binarize(X, threshold):
    """``X > threshold`` as 0/1 in ``X``'s dtype: a new array, ``X`` is never modified."""
    if sp.issparse(X):
        if threshold < 0:
            raise ValueError(
                f"binarize={threshold!r} would turn the implicit zeros of a sparse X into ones: "
                "use a threshold >= 0 with sparse input."
            )
        out = X.copy()
        out.data = (out.data > threshold).astype(X.dtype)
        out.eliminate_zeros()
        return out
    return (X > threshold).astype(X.dtype)


def _check_binary(X):
    values = X.data if sp.issparse(X) else X
    if is_binary(values):
        return X
    bad = values[(values != 0) & (values != 1)]
    raise ValueError(
        "BernoulliMixture needs binary data (every entry 0 or 1), but X contains "
        f"{bad.size} other value(s), e.g. {bad.flat[0]!r}. Pass binarize=threshold to map "
        "values above the threshold to 1 and the rest to 0."
    )


def _prepare_binary(X, threshold):
    """Validated 0/1 data: duplicates of a sparse ``X`` summed, then binarised at
    ``threshold`` (None: checked to be binary). ``X`` itself is never modified."""
    if sp.issparse(X) and not X.has_canonical_format:
        # duplicate entries add up (scipy's semantics): sum them, on a copy, before the
        # binary check or the threshold sees the individual entries
        X = X.copy()
        X.sum_duplicates()
    if threshold is None:
        return _check_binary(X)
    return _binarize(X, threshold)


def _binary_block(Xb, dtype, threshold):
    """One block of a dask array, validated and made binary where it lives."""
    Xb = check_array(Xb, accept_sparse="csr", dtype=dtype, ensure_min_samples=0)
    return _prepare_binary(Xb, threshold)


#: rows per chunk when building row keys (bounds the temporary CSR of a dense chunk)
_KEY_CHUNK_ROWS = 4096


def _row_keys(X):
    """One bytes key per row of binary ``X`` (dense or CSR), equal iff the rows are equal.

    The key is the row's sorted column indices of its ones (int64 bytes) whatever the format,
    so dense and sparse copies of the same data sort into the same canonical order (and so
    give the same initialisation for a given ``random_state``). Built in row chunks: a
    sparse ``X`` is never densified, and the caller's matrix is never touched (row slices
    are copies).
    """
    n = X.shape[0]
    keys = np.empty(n, dtype=object)
    for start in range(0, n, _KEY_CHUNK_ROWS):
        stop = min(start + _KEY_CHUNK_ROWS, n)
        if sp.issparse(X):
            B = sp.csr_matrix(X[start:stop], copy=True)
            B.eliminate_zeros()
            B.sort_indices()
            ind = B.indices.astype(np.int64, copy=False)
            ptr = B.indptr
        else:
            rows, ind = np.nonzero(np.asarray(X[start:stop]) != 0)  # row-major: sorted columns
            ind = ind.astype(np.int64, copy=False)
            ptr = np.zeros(stop - start + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=stop - start), out=ptr[1:])
        keys[start:stop] = [ind[ptr[i] : ptr[i + 1]].tobytes() for i in range(stop - start)]
    return keys


def _csr_from_keys(keys, n_features, dtype):
    """The canonical CSR matrix of rows given by their :func:`_row_keys`: sorted column
    indices, no explicit zeros, data 1 in ``dtype``, index dtype set by the shape alone."""
    index_dtype = np.int32 if n_features < 2**31 else np.int64
    cols = [np.frombuffer(key, dtype=np.int64) for key in keys]
    indptr = np.zeros(len(cols) + 1, dtype=index_dtype)
    np.cumsum([c.size for c in cols], out=indptr[1:])
    indices = np.concatenate(cols).astype(index_dtype) if cols else np.empty(0, index_dtype)
    return sp.csr_matrix(
        (np.ones(indices.size, dtype=dtype), indices, indptr), shape=(len(cols), n_features)
    )


def _distinct_patterns(X, sample_weight):
    """The weighted empirical distribution of ``X``: distinct rows in a canonical form.

    Returns ``(Xu, wu)``: the distinct rows with positive weight, sorted by their bit pattern,
    as a canonical CSR matrix (:func:`_csr_from_keys`) whatever the format of ``X``, and their
    total weights (counts when ``sample_weight`` is None). The initialisation runs on these,
    so a fit depends on the data only through the weighted empirical distribution: it is the
    same whatever the row order, integer weights are the same as repeated rows
    (scikit-learn's ``check_sample_weight_equivalence``), and dense and sparse copies of the
    same data give the same initialisation bit for bit (scikit-learn's KMeans, given a dense
    and a CSR copy of the same points, can break ties differently, so the format is fixed
    here; CSR because a sparse ``X`` must not be densified, and KMeans measured no slower on
    it: 0.06 s vs 0.09 s on the 1797 binarised digits, 6.5 s vs 8.5 s on 40000 x 784). It
    also makes the initialisation cheap on latent class data, which have few distinct
    response patterns.
    """
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    keep = np.flatnonzero(w > 0)
    keys = _row_keys(X[keep] if keep.size < n else X)
    ukeys, inverse = np.unique(keys, return_inverse=True)
    wu = np.bincount(inverse.ravel(), weights=w[keep], minlength=ukeys.size)
    return _csr_from_keys(ukeys, X.shape[1], X.dtype), wu  # float64, as every sample_weight


#: init_params of BernoulliMixture: the mixtures' options plus the jittered k-means default
_INIT_PARAMS = ("kmeans_jitter",) + INIT_PARAMS

#: weight of the random (flat Dirichlet) responsibilities in "kmeans_jitter"
_JITTER = 0.5


class BernoulliMixture(BaseEMMixture):
    """Mixture of multivariate Bernoullis (latent class analysis) fitted by (MAP-)EM.

    Each component ``k`` has a weight ``w_k`` and a vector of probabilities ``mu_k``; a sample
    is a vector of independent 0/1 features given its component. Dense arrays and every
    ``scipy.sparse`` format are accepted; sparse data are never densified (the E-step is one
    sparse-dense product, ``x . logit(mu) + sum log(1 - mu)``). The per-iteration
    :class:`~emkit.Trace` records both EM half-steps, and every half-step is checked not to
    lower the objective. :meth:`partial_fit` runs online (stepwise) EM on mini-batches.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components (latent classes).
    alpha : float, default=1.0
        Non-negative pseudo-count added to every mean's successes *and* failures:
        ``mu_kd = (sum_n r_nk x_nd + alpha) / (N_k + 2 alpha)``, the MAP estimate under a
        symmetric ``Beta(alpha + 1, alpha + 1)`` prior. ``alpha=0`` is plain maximum
        likelihood (as in poLCA), where a feature never seen "on" in a component gets
        ``mu = 0`` and any new sample with that feature on has likelihood 0 under it.
        The default 1 (Laplace's add-one rule, the same default as scikit-learn's
        ``BernoulliNB``) keeps every mean in ``[1 / (N_k + 2), 1 - 1 / (N_k + 2)]``, so an
        unseen pattern costs at most ``log(N_k + 2)`` per feature instead of ``log(0)``; it
        is a unit-scale count, so ``1 - mu`` stays representable (no rounding to
        ``log(0)``) for any ``N_k`` below ``1e15``, which a tiny ``alpha`` like ``1e-10``
        would not guarantee.
        ``alpha`` is counted in units of ``sample_weight`` (weights are repeat counts, and
        ``alpha`` is that many extra observations): multiplying every weight by ``c`` gives
        the same fit as dividing ``alpha`` by ``c``. With ``alpha=0`` the fit does not depend
        on the overall scale of the weights; with ``alpha > 0`` small weights (say 1e-15)
        let the prior dominate and pull every mean towards 0.5, as few observations would.
    tol : float, default=1e-3
        Convergence threshold, scikit-learn's rule: iteration ``n`` (one M-step then one
        E-step) is the last when the per-sample objectives of the two E-steps before its
        M-step differ by less than ``tol`` (per unit of sample weight). The final E-step is
        at the returned parameters, so ``lower_bound_`` belongs to them.
    max_iter : int, default=100
        Maximum number of EM iterations (M-steps).
    n_init : int, default=1
        Number of initialisations; the one with the largest final objective is kept.
    init_params : {"kmeans_jitter", "kmeans", "k-means++", "random", "random_from_data"}, \
            default="kmeans_jitter"
        How the initial responsibilities of the distinct patterns are set: ``"kmeans"``,
        ``"k-means++"``, ``"random"`` and ``"random_from_data"`` as in ``GaussianMixture``
        (k-means labels, k-means++ seeds, random responsibilities, random samples as seeds);
        ``"kmeans_jitter"`` (the default): k-means labels, each pattern's one-hot row then
        averaged half and half with a random row drawn from a flat Dirichlet, so that every
        initialisation of ``n_init`` starts from a different mix of the k-means clusters.
        The first M-step (with ``alpha``) turns them into parameters.
        Why the default jitters: on latent class data with three or more classes, hard
        k-means starts fall into a few poor basins. On poLCA's carcinoma data (118 slides,
        7 raters; published maxima -293.705 with 3 classes, -289.2858 with 4), 5 and 4 of
        30 single starts from ``"kmeans"`` reached them, and 30 and 18 of 30 from
        ``"kmeans_jitter"``; with ``n_init=10``, 23 and 21 of 30 seeds against 30 and 30
        (``benchmarks/RESULTS.md``). On binarised digits it fits as well as ``"kmeans"``
        (same mean bound over 5 seeds). Jittering the responsibilities
        rather than the means keeps the initial means inside the data's range (sparse data
        keep small means).
        With more than 100,000 rows (fewer for wide data: at most 32 MB of them) it runs on
        a uniform random subsample of that size drawn with ``random_state``, with the rows'
        weights.
    weights_init : array-like of shape (n_components,), optional
        Initial weights (override the ones from ``init_params``).
    means_init : array-like of shape (n_components, n_features), optional
        Initial means, probabilities in [0, 1].
    random_state : int, RandomState instance or None
        Seed for the initialisation and for :meth:`sample`.
    warm_start : bool, default=False
        Continue from the fitted parameters on the next ``fit``.
    binarize : float or None, default=None
        ``None``: the data must be binary (0/1; any other value is a ValueError).
        A threshold: values ``> binarize`` become 1 and the rest 0, in ``fit`` and in every
        method that takes ``X`` (as scikit-learn's ``BernoulliNB``). Must be >= 0 for sparse
        input. The caller's arrays are never modified.
    check_monotonic : {"warn", "raise", "ignore"}, default="warn"
        What to do if an E- or M-step lowers the objective beyond round-off.
    verbose : int, default=0
        As scikit-learn's mixtures: 1 prints each initialisation's start and end and the
        iteration number every ``verbose_interval`` iterations; 2 adds times, the change
        of the bound and the final lower bound.
    verbose_interval : int, default=10
    callback : callable, optional
        Called with an :class:`~emkit.IterationInfo` after every iteration (and every
        :meth:`partial_fit` step).
    learning_decay, learning_offset : float, default=0.7 and 10.0
        The step size of :meth:`partial_fit`, ``rho_t = (t + learning_offset) **
        -learning_decay``: ``learning_decay`` (kappa) in ``[0, 1]``, ``learning_offset``
        (tau_0) >= 1, as in ``GaussianMixture`` and ``LatentDirichletAllocation``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Probability of a 1 in each feature for each component.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Objective per unit of sample weight at the final parameters: the log-likelihood
        plus, when ``alpha > 0``, the log prior of the means (``lower_bound_ =
        score(X, sample_weight=w) + log p(theta) / sum(w)`` on the training data,
        ``sum(w) = n_samples`` without weights). This is what EM raises.
    lower_bounds_ : list of float
    trace_ : Trace
        Per-iteration objective after each half-step (MAP objective when ``alpha > 0``),
        log-evidence, KL gap and time.
    traces_ : list of Trace
    best_init_ : int
    n_samples_seen_ : float
        Total sample weight seen: by :meth:`fit` (its data), plus every :meth:`partial_fit`
        mini-batch since. Online EM scales each mini-batch's statistics to it, so ``alpha``
        (a pseudo-count in units of sample weight) competes with all the data seen so far,
        as it would in a batch fit on that data, not with one mini-batch; in an online trace
        and ``lower_bound_`` the log prior is divided by it.
    n_features_in_ : int
    feature_names_in_ : ndarray
        Only when ``X`` had string feature names.

    Notes
    -----
    :meth:`score` and :meth:`score_samples` return the log-likelihood ``log p(x | theta)``
    only, never the prior: they are comparable across ``alpha`` and with other models, and
    :meth:`bic` / :meth:`aic` are built on them.
    """

    #: with alpha=0 a mean can be exactly 0 or 1, and a sample can have probability 0
    _zero_density_possible = True

    def __init__(
        self,
        n_components=1,
        *,
        alpha=1.0,
        tol=1e-3,
        max_iter=100,
        n_init=1,
        init_params="kmeans_jitter",
        weights_init=None,
        means_init=None,
        random_state=None,
        warm_start=False,
        binarize=None,
        check_monotonic="warn",
        verbose=0,
        verbose_interval=10,
        callback=None,
        learning_decay=0.7,
        learning_offset=10.0,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.binarize = binarize
        self.check_monotonic = check_monotonic
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.callback = callback
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # Not a classifier, but scikit-learn's sparse-input check reads
        # ``classifier_tags.multi_class`` of every estimator that has ``predict_proba`` to know
        # how many columns to expect (2 if False, more otherwise). Ours has n_components.
        tags.classifier_tags = ClassifierTags(
            multi_class=self.n_components != 2, multi_label=False, poor_score=True
        )
        return tags

    # ---------------------------------------------------------------- input
    def _prepare_X(self, X):
        return _prepare_binary(X, _check_binarize(self.binarize))

    def _block_converter(self, dtype):
        return partial(_binary_block, dtype=dtype, threshold=_check_binarize(self.binarize))

    def _validate_fit_X(self, X):
        _check_binarize(self.binarize)
        X = check_fit_data(self, X, n_components=self.n_components, accept_sparse="csr")
        return self._prepare_X(X)

    def _validate_predict_X(self, X):
        X = check_predict_data(self, X, accept_sparse="csr")
        return self._prepare_X(X)

    # ---------------------------------------------------------------- hooks
    def _check_hyperparameters(self, X):
        check_choice(self.init_params, "init_params", _INIT_PARAMS)
        check_real(self.alpha, "alpha", low=0.0)
        if not np.isfinite(self.alpha):
            raise ValueError(f"alpha must be finite, got {self.alpha!r}.")
        k, d = self.n_components, X.shape[1]
        self._weights_init = None if self.weights_init is None else check_weights(
            self.weights_init, k
        )
        self._means_init = None
        if self.means_init is not None:
            means = check_means(self.means_init, k, d)
            if np.any(means < 0) or np.any(means > 1):
                raise ValueError(
                    "The parameter 'means' holds Bernoulli probabilities and should be in "
                    f"[0, 1], but got min {means.min():.5g}, max {means.max():.5g}."
                )
            self._means_init = means

    def _make_model(self, X, sample_weight=None):
        return BernoulliModel(alpha=float(self.alpha), dtype=np.dtype(X.dtype))

    def _init_needs_data(self) -> bool:
        return self._weights_init is None or self._means_init is None

    def _initial_params(self, model, X, sample_weight, random_state):
        if not self._init_needs_data():
            return BernoulliParams(self._weights_init, self._means_init)
        Xu, wu = _distinct_patterns(X, sample_weight)
        if Xu.shape[0] < self.n_components:  # too few distinct patterns: use the rows
            w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
            keep = np.arange(X.shape[0]) if w is None else np.flatnonzero(w > 0)
            Xu = _csr_from_keys(_row_keys(X[keep]), X.shape[1], X.dtype)
            wu = None if w is None else w[keep]  # float64, as every sample_weight
        jitter = self.init_params == "kmeans_jitter"
        assignments = initial_assignments(
            Xu, self.n_components, "kmeans" if jitter else self.init_params, wu, random_state
        )
        resp = as_resp(assignments, Xu.dtype)
        if jitter:
            noise = random_state.dirichlet(np.ones(self.n_components), size=Xu.shape[0])
            resp = (1.0 - _JITTER) * resp + _JITTER * noise.astype(Xu.dtype)
        params = model.m_step(model.stats_from_resp(Xu, resp, wu))
        if self._weights_init is not None:
            params = params.replace(weights=self._weights_init)
        if self._means_init is not None:
            params = params.replace(means=self._means_init)
        return params

    def _set_fitted_params(self, params, dtype):
        self.weights_ = params.weights.astype(dtype)
        self.means_ = params.means.astype(dtype)

    def _n_parameters(self) -> int:
        check_is_fitted(self)
        k, d = self.means_.shape
        return int(k * d + k - 1)

    # ---------------------------------------------------------------- public API
    def score_samples(self, X):
        """Log-likelihood ``log p(x_n | theta)`` of every sample (the prior is not included).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            ``-inf`` for a sample of probability 0: with ``alpha=0`` a mean can be exactly 0
            (or 1), and a sample with a 1 (or a 0) in that feature is impossible under that
            component; if it is under every component, its log-likelihood is ``-inf``. (The
            fit floors ``log 0`` at -708.4 to keep its arithmetic finite; predictions do not.)
        """
        return super().score_samples(X)

    def _normalised_chunks(self, X):
        """The shared prediction chunks, with the posterior of every row that is impossible
        under every component (``log p = -inf``, 0 / 0 there) set to its limit
        (:meth:`~emkit.models.bernoulli.BernoulliModel.limit_log_prob`)."""
        Xv = None
        for rows, R, log_norm in super()._normalised_chunks(X):
            bad = np.isneginf(log_norm)
            if np.any(bad):
                if Xv is None:  # rare: validate again to reach those rows
                    Xv = self._validate_predict_X(X)
                idx = rows.start + np.flatnonzero(bad)
                L = self._model_for(Xv).limit_log_prob(self._params_, Xv[idx])
                L -= L.max(axis=1, keepdims=True)
                np.exp(L, out=L)
                R[bad] = L / L.sum(axis=1, keepdims=True)
            yield rows, R, log_norm

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        A component under which a sample is impossible (a 1 where its mean is exactly 0, or
        a 0 where it is exactly 1, possible with ``alpha=0``) gets probability 0. A sample
        impossible under *every* component (its :meth:`score_samples` is ``-inf``) has no
        posterior by Bayes' rule (0 / 0); it gets the limit of the posterior as the zero
        probabilities shrink together to 0 (read each as the same small ``eps``,
        ``eps -> 0``): the components under which it has the fewest impossible features,
        weighted as usual by their weights and the likelihood of its other features. That
        is what the fit does with such rows too (it floors ``log 0`` at -708.4), and
        :meth:`predict` picks the most probable of them.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        return super().predict_proba(X)

    def score(self, X, y=None, sample_weight=None):
        """Weighted mean log-likelihood per sample, ``log p(x | theta)``, without the prior.

        With ``alpha > 0``, ``lower_bound_`` is this (on the training data) plus the log prior
        of the means divided by the number of samples; ``score`` is the one to compare models
        and held-out data with. It is ``-inf`` if a sample (of positive weight) is impossible
        under the model (see :meth:`score_samples`).
        """
        return super().score(X, y, sample_weight)

    def sample(self, n_samples: int = 1):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            0/1 values in the dtype of ``means_``.
        y : ndarray of shape (n_samples,)
            Component labels.
        """
        counts, rng = self._sample_counts(n_samples, normalise=True)
        y = np.concatenate([np.full(s, j, dtype=int) for j, s in enumerate(counts)])
        X = (rng.uniform(size=(n_samples, self.means_.shape[1])) < self.means_[y]).astype(
            self.means_.dtype
        )
        return X, y
