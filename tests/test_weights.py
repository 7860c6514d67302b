"""sample_weight stays float64 whatever X's dtype: weights of any magnitude on float32 data
fit as on float64 data (issue 11, item 3)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from emkit import (
    BayesianGaussianMixture,
    BernoulliMixture,
    GaussianHMM,
    GaussianMixture,
    LatentDirichletAllocation,
)
from emkit._validation import check_sample_weight
from emkit.kernels._rows import unit_weights
from emkit.models.bernoulli import BernoulliModel, BernoulliParams
from emkit.models.gaussian import GaussianModel, GaussianParams

#: the issue's reproducer values: refused as all zero, as infinity, moved by subnormals
SCALES = [1e-50, 1e39, 1e-40]


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) * 0.7 + 4])
    return X, rng.uniform(0.5, 2.0, size=len(X))


def _binary(seed=0):
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(300)[:, None] < 150, 0.2, 0.8)
    return (rng.random((300, 6)) < p).astype(np.float64), rng.uniform(0.5, 2.0, size=300)


def test_unit_weights_is_exact_and_near_one():
    rng = np.random.default_rng(0)
    for s in [1e-300, 1e-50, 1e-40, 1.0, 1.5, 3.0, 1e39, 1e300]:
        w = rng.uniform(0.0, 1.0, size=50) * s
        u, scale = unit_weights(w)
        assert u.dtype == np.float64 and 1.0 <= u.max() < 2.0
        np.testing.assert_array_equal(u * scale, w)  # a power of two: no rounding
    u, scale = unit_weights(np.zeros(3))
    assert scale == 1.0 and not np.any(u)


def test_validated_weights_are_float64_on_float32_data():
    X = np.ones((4, 2), dtype=np.float32)
    for s in SCALES:
        sw = check_sample_weight(np.full(4, s), X)
        assert sw.dtype == np.float64 and np.all(sw == s)


# ---------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("path", ["fast", "exact"])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_e_step_float32_with_float64_weights(path, covariance_type, scale):
    """The float32 E-step with float64 weights gives the float64 E-step's statistics (to
    float32 round-off, relative to the weights' scale): no zeros, no infinities."""
    X, w = _blobs()
    rng = np.random.default_rng(1)
    k, d = 2, X.shape[1]
    means = X[rng.choice(len(X), k, replace=False)]
    full = covariance_type == "full"
    pc = np.broadcast_to(np.eye(d), (k, d, d)).copy() if full else np.ones((k, d))
    params = GaussianParams(np.full(k, 0.5), means, pc, covariance_type)
    c = X.mean(axis=0)
    ref, _ = GaussianModel(covariance_type, center=c, path=path).e_step(params, X, w * scale)
    got, _ = GaussianModel(covariance_type, center=c, path=path, dtype=np.dtype(np.float32)
                           ).e_step(params, X.astype(np.float32), w * scale)
    got = got.about(ref.shift)
    total = float(np.sum(w * scale))
    np.testing.assert_allclose(got.nk / total, ref.nk / total, atol=1e-5)
    np.testing.assert_allclose(got.sx / total, ref.sx / total, atol=1e-4)
    np.testing.assert_allclose(got.sxx / total, ref.sxx / total, atol=1e-3)
    assert got.log_evidence / total == pytest.approx(ref.log_evidence / total, abs=1e-5)
    assert got.total_weight == ref.total_weight


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("scale", SCALES)
def test_bernoulli_e_step_float32_with_float64_weights(sparse, scale):
    X, w = _binary()
    params = BernoulliParams(np.array([0.4, 0.6]), np.array([[0.2] * 6, [0.7] * 6]))
    ref, _ = BernoulliModel().e_step(params, X, w * scale)
    X32 = X.astype(np.float32)
    got, _ = BernoulliModel(dtype=np.dtype(np.float32)).e_step(
        params, sp.csr_matrix(X32) if sparse else X32, w * scale)
    total = float(np.sum(w * scale))
    np.testing.assert_allclose(got.nk / total, ref.nk / total, atol=1e-6)
    np.testing.assert_allclose(got.sx / total, ref.sx / total, atol=1e-6)
    assert got.log_evidence / total == pytest.approx(ref.log_evidence / total, abs=1e-6)


# ---------------------------------------------------------------------------- estimators
def _fit_quietly(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return est.fit(*args, **kwargs)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_mixture_float32_weights_as_float64(covariance_type, scale):
    """float32 X with weights ``s w``: the float64 fit with the same weights (which, for a
    Gaussian mixture, is the fit with weights ``w``), in fit and score."""
    X, w = _blobs()
    est = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    ref = GaussianMixture(**est.get_params()).fit(X, sample_weight=w)
    got = _fit_quietly(est, X.astype(np.float32), sample_weight=w * scale)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-4)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got.weights_, ref.weights_, atol=1e-5)
    assert got.n_samples_seen_ == pytest.approx(np.sum(w * scale), rel=1e-12)
    assert got.score(X.astype(np.float32), sample_weight=w * scale) == pytest.approx(
        ref.score(X, sample_weight=w), abs=1e-5)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_mixture_partial_fit_float32_weights(scale):
    X, w = _blobs()
    got = GaussianMixture(2, random_state=0)
    ref = GaussianMixture(2, random_state=0)
    for _ in range(2):
        got.partial_fit(X.astype(np.float32), sample_weight=w * scale)
        ref.partial_fit(X, sample_weight=w)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-4)
    np.testing.assert_allclose(got.weights_, ref.weights_, atol=1e-5)


@pytest.mark.parametrize("scale", [1e-50, 1e-40])
def test_bayesian_mixture_float32_weights_as_float64(scale):
    """Variational Bayes counts the weights against its priors, so the reference is the
    float64 fit with the same weights."""
    X, w = _blobs()
    est = BayesianGaussianMixture(n_components=2, random_state=0)
    ref = BayesianGaussianMixture(**est.get_params()).fit(X, sample_weight=w * scale)
    got = _fit_quietly(est, X.astype(np.float32), sample_weight=w * scale)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-4)
    np.testing.assert_allclose(got.weights_, ref.weights_, atol=1e-5)
    np.testing.assert_allclose(got.mean_precision_, ref.mean_precision_, rtol=1e-4)
    assert got.score(X.astype(np.float32), sample_weight=w * scale) == pytest.approx(
        ref.score(X, sample_weight=w * scale), abs=1e-5)


def test_float32_count_attributes_that_would_overflow_are_a_value_error():
    """Weights of 1e39 make BayesianGaussianMixture's and LDA's pseudo-counts exceed float32,
    the dtype of their attributes on float32 data: a ValueError naming them and the fix
    (float64 data fit)."""
    X, w = _blobs()
    with pytest.raises(ValueError, match="float32 attributes weight_concentration_"):
        BayesianGaussianMixture(n_components=2).fit(X.astype(np.float32), sample_weight=w * 1e39)
    BayesianGaussianMixture(n_components=2, random_state=0).fit(X, sample_weight=w * 1e39)
    C = sp.csr_matrix(np.random.default_rng(0).poisson(1.0, size=(30, 8)).astype(np.float32))
    with pytest.raises(ValueError, match="float32 attributes components_"):
        LatentDirichletAllocation(2, max_iter=2).fit(C, sample_weight=np.full(30, 1e39))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("scale", SCALES)
def test_bernoulli_mixture_float32_weights_as_float64(sparse, scale):
    """alpha is counted in units of weight, so the reference is the float64 fit with the
    same weights."""
    X, w = _binary()
    ref = BernoulliMixture(2, random_state=0).fit(X, sample_weight=w * scale)
    X32 = X.astype(np.float32)
    got = _fit_quietly(BernoulliMixture(2, random_state=0),
                       sp.csr_matrix(X32) if sparse else X32, sample_weight=w * scale)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-5)
    np.testing.assert_allclose(got.weights_, ref.weights_, atol=1e-5)
    assert got.score(X32, sample_weight=w * scale) == pytest.approx(
        ref.score(X, sample_weight=w * scale), abs=1e-5)


@pytest.mark.parametrize("scale", [1e-50, 1e-40])
def test_lda_float32_weights_as_float64(scale):
    rng = np.random.default_rng(0)
    C = sp.csr_matrix(rng.poisson(1.0, size=(40, 12)).astype(np.float64))
    w = rng.uniform(0.5, 2.0, size=40) * scale
    ref = LatentDirichletAllocation(2, max_iter=5, random_state=0).fit(C, sample_weight=w)
    got = LatentDirichletAllocation(2, max_iter=5, random_state=0).fit(
        C.astype(np.float32), sample_weight=w)
    np.testing.assert_allclose(got.components_, ref.components_, rtol=1e-4, atol=1e-4)
    assert got.score(C.astype(np.float32), sample_weight=w) == pytest.approx(
        ref.score(C, sample_weight=w), rel=1e-5)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_hmm_float32_sequence_weights_as_float64(scale):
    X, _ = _blobs()
    lengths = [30] * 10
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=10) * scale
    kw = dict(n_components=2, random_state=0, n_iter=5, tol=0.0)
    ref = GaussianHMM(**kw).fit(X, lengths, sample_weight=w)
    got = GaussianHMM(**kw).fit(X.astype(np.float32), lengths, sample_weight=w)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-4)
    np.testing.assert_allclose(got.transmat_, ref.transmat_, atol=1e-5)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_hmm_float32_per_row_weights_as_float64(scale):
    """Per-row weights (tempered emissions) stay float64 on float32 data: the weighted
    log-densities are formed in float64 (a float32 product overflows near 1e38)."""
    X, _ = _blobs()
    lengths = [30] * 10
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=X.shape[0]) * scale
    kw = dict(n_components=2, random_state=0, n_iter=5, tol=0.0)
    ref = GaussianHMM(**kw).fit(X, lengths, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = GaussianHMM(**kw).fit(X.astype(np.float32), lengths, sample_weight=w)
    assert np.all(np.isfinite(got.means_)) and np.all(np.isfinite(got.transmat_))
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-4)
    np.testing.assert_allclose(got.transmat_, ref.transmat_, atol=1e-5)


@pytest.mark.parametrize("scale", SCALES)
def test_dask_float32_weights_as_float64(scale):
    da = pytest.importorskip("dask.array")
    X, w = _blobs()
    Xd = da.from_array(X.astype(np.float32), chunks=(100, 3))
    wd = da.from_array(w * scale, chunks=100)
    got = GaussianMixture(2, random_state=0).fit(Xd, sample_weight=wd)
    ref = GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-4)
    assert got.score(Xd, sample_weight=wd) == pytest.approx(ref.score(X, sample_weight=w),
                                                            abs=1e-5)


# ---------------------------------------------------------------------------- item 3c
INITS = ["kmeans", "k-means++", "random", "random_from_data"]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("init_params", INITS)
@pytest.mark.parametrize("n_components", [2, 3, 5])
def test_sklearn_sample_weight_equivalence_on_dense_data(covariance_type, init_params,
                                                         n_components):
    """scikit-learn's own check: integer weights (zeros included) on shuffled rows are the
    same as the rows repeated in order, for every initialisation."""
    from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

    est = GaussianMixture(n_components, covariance_type=covariance_type,
                          init_params=init_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_sample_weight_equivalence_on_dense_data("GaussianMixture", est)


def _same_fit(a, b, atol=1e-9):
    np.testing.assert_allclose(a.means_, b.means_, rtol=0, atol=atol)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=0, atol=atol)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=0, atol=atol)


@pytest.mark.parametrize("init_params", INITS)
def test_initialisation_depends_only_on_the_weighted_distribution(init_params):
    """Shuffled rows, rows repeated instead of weighted, zero-weight rows added: one fit
    (30 random problems of the issue's kind: 3-5 components on blobs)."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        X = np.vstack([rng.normal(size=(40, 2)) + c for c in rng.normal(scale=4, size=(4, 2))])
        counts = rng.integers(1, 4, size=len(X))
        k = int(rng.integers(3, 6))
        kw = dict(n_components=k, init_params=init_params, random_state=seed, tol=1e-10,
                  max_iter=300)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = GaussianMixture(**kw).fit(X, sample_weight=counts)
            perm = rng.permutation(len(X))
            shuffled = GaussianMixture(**kw).fit(X[perm], sample_weight=counts[perm])
            rep = np.repeat(X, counts, axis=0)
            repeated = GaussianMixture(**kw).fit(rep[rng.permutation(len(rep))])
            Xz = np.vstack([X, rng.normal(size=(7, 2)) * 50])
            zeros = GaussianMixture(**kw).fit(Xz, sample_weight=np.r_[counts, np.zeros(7)])
        for other in (shuffled, repeated, zeros):
            _same_fit(ref, other, atol=1e-7)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=5
def test_subsampled_initialisation_depends_only_on_the_distribution(monkeypatch):
    """Above the initialisation's sample size the subsample is a salted-hash selection of
    distinct rows: shuffled, repeated and dask input give the fit of the weighted rows."""
    from emkit import _base

    monkeypatch.setattr(_base, "INIT_MAX_ROWS", 200)
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(400, 2)) + c for c in ([0, 0], [6, 0], [0, 6])])
    counts = rng.integers(1, 3, size=len(X))
    kw = dict(n_components=3, random_state=0, max_iter=5, tol=0.0)
    ref = GaussianMixture(**kw).fit(X, sample_weight=counts)
    perm = rng.permutation(len(X))
    _same_fit(ref, GaussianMixture(**kw).fit(X[perm], sample_weight=counts[perm]))
    rep = np.repeat(X, counts, axis=0)
    _same_fit(ref, GaussianMixture(**kw).fit(rep[rng.permutation(len(rep))]))
    da = pytest.importorskip("dask.array")
    _same_fit(ref, GaussianMixture(**kw).fit(da.from_array(X, chunks=250),
                                             sample_weight=da.from_array(counts * 1.0,
                                                                         chunks=250)))


@pytest.mark.parametrize("scale", [1e10, 1e39, 1e200])
def test_bayesian_score_with_huge_weights_is_the_maximum_likelihood_limit(scale):
    """With counts of 1e10-1e200 the priors vanish and the posterior predictive (a Student-t
    mixture with huge degrees of freedom) is the maximum-likelihood Gaussian mixture's
    density: scikit-learn's GaussianMixture score, not NaN (an overflowing product) nor off
    (log Gamma differences of huge arguments, 0 at 1e39)."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X, _ = _blobs()
    ref = SkGaussianMixture(2, random_state=0, tol=1e-10).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = BayesianGaussianMixture(n_components=2, random_state=0, tol=1e-10).fit(
            X, sample_weight=np.full(len(X), scale))
        score = got.score(X, sample_weight=np.full(len(X), scale))
    assert score == pytest.approx(ref.score(X), rel=1e-6)


def _timestamps(n=50_000, seed=0):
    """Rows distinct in float64 but only ~50 distinct values in float32 (1e9-scale)."""
    return 1e9 + np.random.default_rng(seed).uniform(0, 3000, size=(n, 1))


def test_subsample_capped_when_float64_rows_collide_in_float32():
    """Rows equal in float32 share a canonical-order hash, not a selection key: the
    subsample still has exactly max_rows distinct rows of the data (it had all 49,999)."""
    from emkit._empirical import empirical_rows

    X = _timestamps()
    assert np.unique(X.astype(np.float32)).size < 100 and np.unique(X).size > 49_000
    Xu, wu = empirical_rows(X, None, max_rows=5000, salt=12345)
    assert Xu.shape == (5000, 1) and np.unique(Xu).size == 5000
    assert np.all(np.isin(Xu[:, 0], X[:, 0])) and np.all(wu == 1.0)
    da = pytest.importorskip("dask.array")
    import dask

    from emkit._dask import DaskRows

    with dask.config.set(scheduler="synchronous"):
        rows = DaskRows(da.from_array(X, chunks=(7000, 1)))
        Xd, wd = empirical_rows(rows, None, max_rows=5000, salt=12345,
                                row_sum=rows.map_reduce)
    np.testing.assert_array_equal(Xd, Xu)
    np.testing.assert_array_equal(wd, wu)
    # below the cap of distinct rows but above it in rows: all distinct rows, weights summed
    Xs, ws = empirical_rows(np.repeat(X[:3000], 3, axis=0), None, max_rows=5000, salt=7)
    assert Xs.shape == (3000, 1) and np.all(ws == 3.0)


def test_colliding_subsample_depends_only_on_the_distribution():
    """On rows that collide in float32: shuffled rows, integer weights as repeated rows,
    zero-weight rows and dask blocks all give the same subsample, row for row."""
    from emkit._dask import DaskRows
    from emkit._empirical import empirical_rows

    rng = np.random.default_rng(1)
    X = _timestamps(8000, seed=1)
    X[::5] = X[1::5]  # some copies as well
    counts = rng.integers(1, 4, size=len(X)).astype(np.float64)
    kw = dict(max_rows=600, salt=2**63 + 5)
    ref = empirical_rows(X, counts, **kw)
    assert ref[0].shape[0] == 600

    perm = rng.permutation(len(X))
    rep = np.repeat(X, counts.astype(int), axis=0)
    Xz = np.vstack([X, 1e9 + rng.uniform(0, 3000, size=(50, 1))])
    others = [empirical_rows(X[perm], counts[perm], **kw),
              empirical_rows(rep[rng.permutation(len(rep))], None, **kw),
              empirical_rows(Xz, np.r_[counts, np.zeros(50)], **kw)]
    da = pytest.importorskip("dask.array")
    import dask

    with dask.config.set(scheduler="synchronous"):
        for chunks in (1000, 2999):
            rows = DaskRows(da.from_array(X[perm], chunks=(chunks, 1)),
                            da.from_array(counts[perm], chunks=chunks))
            others.append(empirical_rows(rows, None, row_sum=rows.map_reduce, **kw))
    for Xo, wo in others:
        np.testing.assert_array_equal(Xo, ref[0])
        np.testing.assert_array_equal(wo, ref[1])


def test_tied_selection_keys_are_cut_by_value(monkeypatch):
    """Should distinct rows share a selection key (a 64-bit collision; forced here with keys
    of the float32 rounding), the cut to max_rows still keeps exactly max_rows rows,
    whatever the row order, on the smallest values among the tied."""
    from emkit import _empirical

    coarse = _empirical.row_keys
    monkeypatch.setattr(_empirical, "row_keys",
                        lambda Xb, salt: coarse(np.asarray(Xb, np.float32), salt))
    X = _timestamps(3000, seed=2)
    perm = np.random.default_rng(3).permutation(len(X))
    Xu, wu = _empirical.empirical_rows(X, None, max_rows=500, salt=11)
    Xp, wp = _empirical.empirical_rows(X[perm], None, max_rows=500, salt=11)
    assert Xu.shape == (500, 1) and np.unique(Xu).size == 500
    np.testing.assert_array_equal(Xu, Xp)
    np.testing.assert_array_equal(wu, wp)
    f32 = X[:, 0].astype(np.float32)
    for v in np.unique(Xu[:, 0].astype(np.float32)):  # a tied group is cut from below
        group, kept = np.sort(X[f32 == v, 0]), np.sort(Xu[Xu[:, 0].astype(np.float32) == v, 0])
        np.testing.assert_array_equal(kept, group[: kept.size])


def test_dask_subsample_never_holds_more_than_max_rows(monkeypatch):
    """Rows repeated in every dask block (each block has all the distinct rows): the blocks'
    selections are merged in a tree of tasks, each cut to max_rows, so no selection (a
    task's result, or what the client receives) is larger than max_rows; the subsample is
    the in-memory one, weights summed over the blocks."""
    da = pytest.importorskip("dask.array")
    import dask

    from emkit import _empirical
    from emkit._dask import DaskRows

    rng = np.random.default_rng(4)
    base = rng.normal(size=(900, 2))
    X = np.vstack([base[rng.permutation(900)] for _ in range(40)])  # 40 blocks of copies
    kw = dict(max_rows=300, salt=99)
    ref = _empirical.empirical_rows(X, None, **kw)
    sizes = []
    init = _empirical.Selection.__init__

    def spy(self, *args):
        init(self, *args)
        sizes.append(self.X.shape[0])

    monkeypatch.setattr(_empirical.Selection, "__init__", spy)
    with dask.config.set(scheduler="synchronous"):
        rows = DaskRows(da.from_array(X, chunks=(900, 2)))
        Xd, wd = _empirical.empirical_rows(rows, None, row_sum=rows.map_reduce, **kw)
    assert len(sizes) >= 40 and max(sizes) <= 300
    np.testing.assert_array_equal(Xd, ref[0])
    np.testing.assert_array_equal(wd, ref[1])
    assert np.all(wd == 40.0)


def test_dask_block_without_positive_weight_or_selected_rows():
    """A dask block whose weights are all zero (no row in the distribution) contributes an
    empty selection, in memory and on dask: the fit equals the in-memory one."""
    da = pytest.importorskip("dask.array")
    import dask

    from emkit import GaussianMixture
    from emkit._empirical import select_block

    empty = select_block(np.zeros((0, 2)), None, 1, None, 10)
    assert empty.X.shape == (0, 2) and empty.w.shape == (0,)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 2))
    w = np.ones(1000)
    w[:100] = 0.0
    ref = GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    with dask.config.set(scheduler="synchronous"):
        got = GaussianMixture(2, random_state=0).fit(
            da.from_array(X, chunks=100), sample_weight=da.from_array(w, chunks=100))
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10)
