"""BernoulliMixture: textbook EM, a published LCA fit, invariants, input handling, digits."""

import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

from emkit import BernoulliMixture
from emkit.models.bernoulli import BernoulliModel, BernoulliParams

SPARSE_FORMATS = ["csr", "csc", "coo", "bsr", "lil", "dok", "dia"]


def _binary(n=200, d=12, k=3, seed=0):
    """Binary data drawn from a K-component Bernoulli mixture."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.05, 0.95, (k, d))
    z = rng.integers(k, size=n)
    return (rng.random((n, d)) < means[z]).astype(np.float64), z


# --------------------------------------------------------------------------- textbook EM
def textbook_em(X, weights, means, n_iter):
    """Maximum-likelihood EM for a Bernoulli mixture, written plainly."""
    lls, history = [], [(weights, means)]
    for t in range(n_iter + 1):
        log_p = np.log(weights) + X @ np.log(means).T + (1 - X) @ np.log(1 - means).T
        log_px = logsumexp(log_p, axis=1)
        lls.append(log_px.sum())
        if t == n_iter:
            break
        resp = np.exp(log_p - log_px[:, None])
        nk = resp.sum(axis=0)
        weights = nk / X.shape[0]
        means = (resp.T @ X) / nk[:, None]
        history.append((weights, means))
    return np.array(lls), history


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
def test_follows_textbook_em_iteration_for_iteration(fmt):
    X, _ = _binary()
    rng = np.random.default_rng(1)
    w0 = np.array([0.3, 0.3, 0.4])
    m0 = rng.uniform(0.2, 0.8, (3, X.shape[1]))
    n_iter = 12
    lls, history = textbook_em(X, w0, m0, n_iter)
    Xin = X if fmt == "dense" else sp.csr_matrix(X).asformat(fmt)
    for t in range(1, n_iter + 1):
        bm = BernoulliMixture(
            3, alpha=0.0, weights_init=w0, means_init=m0, max_iter=t, tol=0.0,
            check_monotonic="raise",
        )
        with pytest.warns(ConvergenceWarning):
            bm.fit(Xin)
        np.testing.assert_allclose(bm.weights_, history[t][0], rtol=0, atol=1e-8)
        np.testing.assert_allclose(bm.means_, history[t][1], rtol=0, atol=1e-8)
        # the trace's per-sample log-evidence at theta_0 .. theta_t
        np.testing.assert_allclose(
            bm.trace_.log_evidence * X.shape[0], lls[: t + 1], rtol=0, atol=1e-8
        )
    assert np.all(np.diff(lls) > -1e-10)


# --------------------------------------------------------------------------- published LCA
# Stouffer & Toby (1951) role-conflict data as tabulated by Goodman (1974, Biometrika 61(2),
# 215-231, Table 1) and shipped with R's poLCA as ``data(values)``: 216 respondents, four
# dichotomous items A-D, 1 = particularistic, 2 = universalistic response. Pattern order
# A, B, C, D with D varying fastest. The poLCA documentation (``?values``, version 1.3.1)
# gives the log-likelihoods of its replication of Goodman (2002), Tables 5b and 5c:
# one class -543.6498, two classes -504.4677 (Goodman's L = -504.5 for the 2-class model).
# Cross-checked: the same 16 counts appear (items B and C in swapped order, which leaves every
# log-likelihood unchanged) in the Stouffer-Toby table used for Bock & Aitkin's (1981) IRT
# example, as typed into a public R test script: 42,23,6,6,1,24,25,7,4,2,1,38,9,6,2,20.
STOUFFER_TOBY_COUNTS = [42, 23, 6, 25, 6, 24, 7, 38, 1, 4, 1, 6, 2, 9, 2, 20]
STOUFFER_TOBY_LOGLIK = {1: -543.6498, 2: -504.4677}


def _stouffer_toby():
    patterns = np.array(list(itertools.product([1, 2], repeat=4)))
    return (patterns == 1).astype(np.float64), np.array(STOUFFER_TOBY_COUNTS, np.float64)


@pytest.mark.parametrize("n_classes", [1, 2])
@pytest.mark.parametrize("expanded", [False, True])
def test_reproduces_published_latent_class_fit(n_classes, expanded):
    X, counts = _stouffer_toby()
    assert counts.sum() == 216
    bm = BernoulliMixture(
        n_classes, alpha=0.0, tol=1e-12, max_iter=5000, n_init=5, random_state=0,
        check_monotonic="raise",
    )
    if expanded:
        Xe = np.repeat(X, counts.astype(int), axis=0)
        bm.fit(Xe)
        loglik = bm.score(Xe) * 216
    else:
        bm.fit(X, sample_weight=counts)
        loglik = bm.score(X, sample_weight=counts) * 216
    assert loglik == pytest.approx(STOUFFER_TOBY_LOGLIK[n_classes], abs=1e-3)
    # with alpha = 0 the bound is the log-likelihood itself
    assert bm.lower_bound_ * 216 == pytest.approx(loglik, abs=1e-8)


# --------------------------------------------------------------------------- invariants
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(4, 40),
    d=st.integers(1, 8),
    k=st.integers(1, 4),
    alpha=st.sampled_from([0.0, 0.01, 0.5, 1.0, 3.0]),
    sparse=st.booleans(),
    weighted=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_em_invariants_on_random_problems(n, d, k, alpha, sparse, weighted, seed):
    """E-step closes the gap; M-step and the next E-step never lower the objective."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < rng.uniform(0.05, 0.95)).astype(np.float64)
    w = rng.uniform(0, 3, n) if weighted else None
    Xin = sp.csr_matrix(X) if sparse else X
    model = BernoulliModel(alpha=alpha)
    weights = rng.dirichlet(np.ones(k))
    params = BernoulliParams(weights, rng.uniform(0.01, 0.99, (k, d)))
    stats, _ = model.e_step(params, Xin, w)
    scale = max(1.0, abs(stats.log_evidence))
    for _ in range(6):
        e_val = model.elbo(params, stats)
        assert e_val == pytest.approx(
            stats.log_evidence + model.log_prior(params), rel=1e-12, abs=1e-9 * scale
        )
        new = model.m_step(stats)
        m_val = model.elbo(new, stats)
        assert m_val >= e_val - 1e-10 * scale
        new_stats, _ = model.e_step(new, Xin, w)
        assert new_stats.log_evidence + model.log_prior(new) >= m_val - 1e-10 * scale
        params, stats = new, new_stats


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_trace_is_monotone_and_bound_is_map_objective(alpha):
    X, _ = _binary(n=300, d=20, k=4, seed=3)
    bm = BernoulliMixture(4, alpha=alpha, random_state=0, tol=1e-8, max_iter=300,
                          check_monotonic="raise").fit(X)
    seq = bm.trace_.elbo
    assert np.all(np.diff(seq) >= -1e-12 * np.abs(seq[:-1]))
    assert bm.lower_bounds_[-1] == bm.lower_bound_
    model = BernoulliModel(alpha=alpha)
    params = BernoulliParams(bm.weights_.astype(float), bm.means_.astype(float))
    prior = model.log_prior(params)
    if alpha == 0.0:
        assert prior == 0.0
    # lower_bound_ is the MAP objective; score is the log-likelihood alone
    assert bm.lower_bound_ == pytest.approx(bm.score(X) + prior / X.shape[0], rel=1e-10)


# --------------------------------------------------------------------------- input handling
def test_default_rejects_continuous_data():
    X = np.random.default_rng(0).random((20, 3))
    with pytest.raises(ValueError, match="binary.*binarize"):
        BernoulliMixture().fit(X)
    with pytest.raises(ValueError, match="binary"):
        BernoulliMixture().fit(sp.csr_matrix(np.where(X > 0.5, X, 0)))
    # binarize=threshold maps X > threshold to 1, as BernoulliNB
    a = BernoulliMixture(2, binarize=0.5, random_state=0).fit(X)
    b = BernoulliMixture(2, random_state=0).fit((X > 0.5).astype(float))
    np.testing.assert_allclose(a.means_, b.means_)
    np.testing.assert_allclose(a.score_samples(X), b.score_samples((X > 0.5) * 1.0))
    fitted = BernoulliMixture(2, random_state=0).fit((X > 0.5).astype(float))
    with pytest.raises(ValueError, match="binary"):
        fitted.predict(X)


@pytest.mark.parametrize(
    "kwargs, X, match",
    [
        (dict(alpha=-0.1), None, "alpha"),
        (dict(alpha=np.nan), None, "alpha"),
        (dict(binarize="yes"), None, "binarize"),
        (dict(init_params="spectral"), None, "init_params"),
        (dict(n_components=50), None, "fewer samples than components"),
        (dict(means_init=np.full((1, 12), 1.5)), None, r"\[0, 1\]"),
        (dict(), np.full((5, 2), np.nan), "NaN"),
        (dict(binarize=-1.0), "sparse", "sparse"),
    ],
)
def test_invalid_input_raises(kwargs, X, match):
    Xb, _ = _binary(n=30)
    if X is None:
        X = Xb
    elif isinstance(X, str):
        X = sp.csr_matrix(Xb)
    with pytest.raises(ValueError, match=match):
        BernoulliMixture(**kwargs).fit(X)


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")
@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_every_sparse_format_matches_dense(fmt):
    X, _ = _binary(n=150, d=10, k=2, seed=5)
    kw = dict(n_components=2, random_state=0, check_monotonic="raise")
    dense = BernoulliMixture(**kw).fit(X)
    Xs = sp.csr_matrix(X).asformat(fmt)
    sparse = BernoulliMixture(**kw).fit(Xs)
    np.testing.assert_allclose(sparse.means_, dense.means_, atol=1e-10)
    np.testing.assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X), atol=1e-10)
    assert sparse.score(Xs) == pytest.approx(dense.score(X), rel=1e-12)
    assert sparse.bic(Xs) == pytest.approx(dense.bic(X), rel=1e-12)
    arr = sp.csr_array(X).asformat(fmt)
    np.testing.assert_array_equal(BernoulliMixture(**kw).fit(arr).predict(arr), dense.predict(X))


def test_sparse_path_never_densifies(monkeypatch):
    X, _ = _binary(n=120, d=30, k=2, seed=6)
    Xs = sp.csr_matrix(X)

    def boom(*args, **kwargs):
        raise AssertionError("the sparse path densified X")

    for cls in {c for t in (sp.csr_matrix, sp.csr_array, sp.csc_matrix) for c in t.__mro__}:
        for name in ("toarray", "todense", "__array__"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, boom)
    with pytest.raises(AssertionError, match="densified"):
        Xs.toarray()
    with pytest.raises(AssertionError, match="densified"):
        np.asarray(Xs.todense())
    bm = BernoulliMixture(2, random_state=0, init_params="random").fit(Xs)
    bm.predict_proba(Xs)
    bm.score(Xs)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_path_never_densifies_more_than_a_seed_row(monkeypatch, init_params, fmt):
    """Every initialisation and every method; only k-means++ may read a single seed row."""
    X, _ = _binary(n=120, d=30, k=2, seed=6)
    w = np.random.default_rng(0).uniform(0.5, 2, 120)
    Xs = sp.csr_matrix(X).asformat(fmt)

    def guard(original):
        def densify(self, *args, **kwargs):
            if self.shape[0] > 1:
                raise AssertionError(f"the sparse path densified a {self.shape} matrix")
            return original(self, *args, **kwargs)

        return densify

    for cls in {c for t in (sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.coo_matrix)
                for c in t.__mro__}:
        for name in ("toarray", "todense", "__array__"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, guard(vars(cls)[name]))
    with pytest.raises(AssertionError, match="densified"):
        Xs.toarray()
    for kw in (dict(), dict(binarize=0.5)):
        bm = BernoulliMixture(2, random_state=0, init_params=init_params, **kw)
        bm.fit(Xs, sample_weight=w)
        bm.fit_predict(Xs)
        bm.predict(Xs)
        bm.predict_proba(Xs)
        bm.score_samples(Xs)
        bm.score(Xs, sample_weight=w)
        bm.bic(Xs)
        bm.aic(Xs)


@pytest.mark.parametrize("sparse", [False, True])
def test_never_modifies_callers_arrays(sparse):
    rng = np.random.default_rng(7)
    X = rng.random((60, 5))
    X[X < 0.5] = 0
    w = rng.uniform(0.5, 2, 60)
    Xin = sp.csr_matrix(X) if sparse else X
    if sparse:
        Xin.data[0] = 0.0  # an explicit zero, kept by the caller
        before = (Xin.data.copy(), Xin.indices.copy(), Xin.indptr.copy())
    else:
        before = X.copy()
    w0 = w.copy()
    bm = BernoulliMixture(2, binarize=0.3, random_state=0).fit(Xin, sample_weight=w)
    bm.predict_proba(Xin)
    bm.score(Xin, sample_weight=w)
    np.testing.assert_array_equal(w, w0)
    if sparse:
        np.testing.assert_array_equal(Xin.data, before[0])
        np.testing.assert_array_equal(Xin.indices, before[1])
        np.testing.assert_array_equal(Xin.indptr, before[2])
    else:
        np.testing.assert_array_equal(X, before)


def test_sample_weight_equals_repeated_rows_and_order_does_not_matter():
    X, _ = _binary(n=80, d=15, k=3, seed=8)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, 80)
    kw = dict(n_components=3, random_state=0, tol=1e-10, max_iter=500)
    a = BernoulliMixture(**kw).fit(X, sample_weight=w)
    perm = rng.permutation(80)
    b = BernoulliMixture(**kw).fit(np.repeat(X, w, axis=0)[::-1])
    c = BernoulliMixture(**kw).fit(X[perm], sample_weight=w[perm])
    for other in (b, c):
        np.testing.assert_allclose(other.means_, a.means_, atol=1e-8)
        np.testing.assert_allclose(other.predict_proba(X), a.predict_proba(X), atol=1e-8)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("sparse", [False, True])
def test_float32_is_kept_and_follows_the_float64_iterates(alpha, sparse):
    """From identical parameters, float32 EM tracks float64 EM to float32 accuracy.

    The reference is the float64 fit (itself checked against textbook EM above) from the same
    ``weights_init``/``means_init`` for the same fixed number of iterations, so the comparison
    measures precision, not differences of initialisation or of the stopping iteration.
    Twenty iterations: with alpha=0 on digits the float32 iterates used to leave the float64
    ones after 8-20 (2.7e-2 in a mean at 20), when the -708 log floor of means of exactly 0
    or 1 entered the float32 products; they now follow for 20-30. Later they part where
    responsibilities underflow float32's range (1e-45): a mean that float64 keeps at 1e-40
    becomes exactly 0 in float32 (a range limit, not round-off), while a 1e-7 perturbation
    of the float64 start stays within 4e-6.
    """
    X = _digits_binary(600)
    rng = np.random.default_rng(0)
    w0, m0 = np.full(10, 0.1), rng.uniform(0.2, 0.8, (10, X.shape[1]))
    kw = dict(n_components=10, alpha=alpha, weights_init=w0, means_init=m0, max_iter=20,
              tol=0.0, check_monotonic="raise")
    fmt = sp.csr_matrix if sparse else np.asarray
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        b64 = BernoulliMixture(**kw).fit(fmt(X))
        b32 = BernoulliMixture(**kw).fit(fmt(X.astype(np.float32)))
    assert b32.means_.dtype == np.float32 and b32.weights_.dtype == np.float32
    assert b32.predict_proba(fmt(X.astype(np.float32))).dtype == np.float32
    np.testing.assert_allclose(b32.means_, b64.means_, rtol=0, atol=5e-5)
    np.testing.assert_allclose(b32.weights_, b64.weights_, rtol=0, atol=5e-6)
    # per-sample bounds agree to float32 relative precision (about 20 eps)
    np.testing.assert_allclose(b32.lower_bounds_, b64.lower_bounds_, rtol=1e-5)
    assert b32.score(X) == pytest.approx(b64.score(X), rel=1e-5)


def test_alpha_keeps_unseen_patterns_finite():
    X = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    unseen = np.array([[0, 0, 1]], dtype=float)
    ml = BernoulliMixture(1, alpha=0.0).fit(X)
    # log(1/4) + log(1/4) + log(0): the sample is impossible under the fitted model
    assert ml.score_samples(unseen)[0] == -np.inf
    smoothed = BernoulliMixture(1).fit(X)  # default alpha=1
    # add-one rule: (S + 1) / (N + 2) with column sums S = [3, 3, 0], N = 4
    np.testing.assert_allclose(smoothed.means_[0], [4 / 6, 4 / 6, 1 / 6])
    assert smoothed.score(unseen) == pytest.approx(2 * np.log(2 / 6) + np.log(1 / 6))


def test_sample_warm_start_bic_aic():
    X, _ = _binary(n=500, d=8, k=2, seed=10)
    bm = BernoulliMixture(2, random_state=0).fit(X)
    Xs, ys = bm.sample(2000)
    assert Xs.shape == (2000, 8) and ys.shape == (2000,)
    assert set(np.unique(Xs)) <= {0.0, 1.0}
    np.testing.assert_allclose(Xs[ys == 0].mean(axis=0), bm.means_[0], atol=0.08)
    assert bm._n_parameters() == 2 * 8 + 1
    with pytest.raises(ValueError, match="n_samples"):
        bm.sample(0)
    warm = BernoulliMixture(2, random_state=0, warm_start=True, max_iter=1)
    with pytest.warns(ConvergenceWarning):
        warm.fit(X)
    with pytest.warns(ConvergenceWarning):
        warm.fit(X)
    assert warm.n_iter_ == 1


# --------------------------------------------------------------------------- real data
def test_digits_prototypes():
    """8x8 digits binarised at 8/16: ten components recover digit-like prototypes.

    The adjusted Rand index with this seed is about 0.56 (benchmarks/RESULTS.md); the test asks for
    a modest 0.45, and that every component's mean is a blob of a digit's size, not noise.
    """
    from sklearn.datasets import load_digits
    from sklearn.metrics import adjusted_rand_score

    digits = load_digits()
    bm = BernoulliMixture(10, binarize=7.0, random_state=0, check_monotonic="raise").fit(
        digits.data
    )
    ari = adjusted_rand_score(digits.target, bm.predict(digits.data))
    assert ari > 0.45
    on = (bm.means_ > 0.5).sum(axis=1)
    assert np.all((on >= 8) & (on <= 40))


# --------------------------------------------------------------------------- review fixes
def _digits_binary(n=400):
    from sklearn.datasets import load_digits

    return (load_digits().data[:n] > 7).astype(np.float64)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_dense_and_sparse_give_the_same_fit_for_a_random_state(init_params):
    """Same data, same random_state: the same initialisation and fit, dense or CSR.

    Ten components on binarised digits have many local optima, so any difference in the
    initialisation shows. The initialisation sees one canonical CSR form of the distinct
    patterns whatever the input's format (scikit-learn's KMeans, given dense and CSR copies
    of the same patterns, labelled 3 of these patterns differently with the same seed).
    """
    from emkit.estimators.bernoulli_mixture import _distinct_patterns

    X = _digits_binary()
    Xu, wu = _distinct_patterns(X, None)
    Su, su = _distinct_patterns(sp.csr_matrix(X), None)
    for a, b in ((Su.indptr, Xu.indptr), (Su.indices, Xu.indices), (Su.data, Xu.data)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(su, wu)
    np.testing.assert_array_equal(np.unique(X, axis=0), np.unique(Xu.toarray(), axis=0))
    kw = dict(n_components=10, random_state=0, init_params=init_params, max_iter=20, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = BernoulliMixture(**kw).fit(X)
        sparse = BernoulliMixture(**kw).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.means_, dense.means_, atol=1e-10)
    np.testing.assert_allclose(sparse.weights_, dense.weights_, atol=1e-12)


def test_dense_and_csr_copies_give_identical_default_fits():
    """40 random problems, default initialisation: the dense and the CSR fit are the same.

    Before the initialisation ran on one canonical form, 20 of 40 such problems gave
    different fits (up to 0.04 in a mean; issue 11, item 4).
    """
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n, d, k = rng.integers(30, 200), rng.integers(3, 12), int(rng.integers(2, 6))
        X = (rng.random((n, d)) < rng.uniform(0.1, 0.9, d)).astype(np.float64)
        w = rng.integers(0, 3, n).astype(float) if seed % 2 else None
        kw = dict(n_components=k, random_state=seed, check_monotonic="raise")
        dense = BernoulliMixture(**kw).fit(X, sample_weight=w)
        sparse = BernoulliMixture(**kw).fit(sp.csr_matrix(X), sample_weight=w)
        np.testing.assert_allclose(sparse.means_, dense.means_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(sparse.weights_, dense.weights_, rtol=0, atol=1e-10)
        assert sparse.n_iter_ == dense.n_iter_
        assert sparse.lower_bound_ == pytest.approx(dense.lower_bound_, rel=1e-12)


def test_sparse_duplicate_entries_are_summed_before_the_binary_check():
    """scipy sums duplicate entries; two entries of 1 at one place are a 2, not binary."""
    X = sp.csr_matrix(
        (np.ones(4), np.array([0, 0, 1, 2]), np.array([0, 2, 4])), shape=(2, 3)
    )
    assert not X.has_canonical_format and X.toarray()[0, 0] == 2
    X = sp.vstack([X] * 3, format="csr")
    X_dup = sp.csr_matrix((np.ones(4), np.array([0, 0, 1, 2]), np.array([0, 2, 4])), shape=(2, 3))
    data_before = X_dup.data.copy()
    with pytest.raises(ValueError, match="binary"):
        BernoulliMixture(1).fit(sp.vstack([X_dup] * 3, format="csr"))
    np.testing.assert_array_equal(X_dup.data, data_before)
    # with binarize, the threshold applies to the summed value: 0.4 + 0.4 > 0.5
    halves = sp.csr_matrix((np.full(2, 0.4), np.array([0, 0]), np.array([0, 2, 2])), shape=(2, 2))
    bm = BernoulliMixture(1, alpha=0.0, binarize=0.5).fit(halves)
    np.testing.assert_allclose(bm.means_, [[0.5, 0.0]])
    np.testing.assert_allclose(halves.data, [0.4, 0.4])
    assert not halves.has_canonical_format


def test_warm_start_with_different_n_components_is_a_clear_error():
    X, _ = _binary(n=100, d=6)
    bm = BernoulliMixture(2, random_state=0, warm_start=True).fit(X)
    bm.set_params(n_components=3)
    with pytest.raises(ValueError, match="warm_start: n_components is 3"):
        bm.fit(X)
    with pytest.raises(ValueError, match="alpha must be finite"):
        BernoulliMixture(2, alpha=np.inf).fit(X)


def test_float32_sparse_input_to_a_float64_fit_computes_in_float64():
    X, _ = _binary(n=100, d=20, seed=11)
    bm = BernoulliMixture(3, random_state=0).fit(X)
    ref = bm.score_samples(X)
    for Xin in (X.astype(np.float32), sp.csr_matrix(X.astype(np.float32))):
        got = bm.score_samples(Xin)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref, rtol=1e-14)
        assert bm.predict_proba(Xin).dtype == np.float64


def test_stops_where_scikit_learns_rule_stops():
    """Textbook EM with scikit-learn's stopping rule (``BaseMixture.fit``), written plainly.

    sklearn's loop: E-step at theta_{n-1} gives ll_{n-1}; M-step gives theta_n; stop when
    |ll_{n-1} - ll_{n-2}| < tol (per sample). emkit then adds one E-step at theta_n.
    """
    X, _ = _binary(n=300, d=10, k=3, seed=12)
    rng = np.random.default_rng(2)
    w, m = np.array([0.3, 0.3, 0.4]), rng.uniform(0.2, 0.8, (3, X.shape[1]))
    w0, m0 = w.copy(), m.copy()
    tol, lower_bound, n_iter = 1e-4, -np.inf, 0
    while n_iter < 500:
        n_iter += 1
        prev = lower_bound
        log_p = np.log(w) + X @ np.log(m).T + (1 - X) @ np.log(1 - m).T
        log_px = logsumexp(log_p, axis=1)
        resp = np.exp(log_p - log_px[:, None])
        nk = resp.sum(axis=0)
        w, m = nk / X.shape[0], (resp.T @ X) / nk[:, None]
        lower_bound = log_px.mean()
        if abs(lower_bound - prev) < tol:
            break
    final = logsumexp(np.log(w) + X @ np.log(m).T + (1 - X) @ np.log(1 - m).T, axis=1).mean()
    bm = BernoulliMixture(3, alpha=0.0, weights_init=w0, means_init=m0, tol=tol,
                          max_iter=500, check_monotonic="raise").fit(X)
    assert bm.converged_ and bm.n_iter_ == n_iter
    np.testing.assert_allclose(bm.means_, m, rtol=0, atol=1e-10)
    assert bm.lower_bound_ == pytest.approx(final, rel=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_sample_weight_scale_acts_only_through_alpha(sparse):
    """alpha is in units of weight: (c * w, c * alpha) fits as (w, alpha); alpha=0 is scale-free.

    Tiny (1e-15) and zero weights included; zero weights equal dropping the rows.
    """
    X, _ = _binary(n=200, d=10, k=3, seed=13)
    w = np.random.default_rng(3).uniform(0.5, 2, 200)
    w[:20] = 0
    fmt = sp.csr_matrix if sparse else np.asarray
    kw = dict(n_components=3, random_state=0, check_monotonic="raise", tol=1e-6, max_iter=500)
    for alpha in (0.0, 1.0):
        ref = BernoulliMixture(alpha=alpha, **kw).fit(fmt(X), sample_weight=w)
        dropped = BernoulliMixture(alpha=alpha, **kw).fit(fmt(X[20:]), sample_weight=w[20:])
        np.testing.assert_allclose(dropped.means_, ref.means_, atol=1e-10)
        for c in (1e-15, 1e6):
            got = BernoulliMixture(alpha=alpha * c, **kw).fit(fmt(X), sample_weight=w * c)
            assert got.n_iter_ == ref.n_iter_
            np.testing.assert_allclose(got.means_, ref.means_, atol=1e-10)
            np.testing.assert_allclose(got.predict_proba(fmt(X)), ref.predict_proba(fmt(X)),
                                       atol=1e-10)
    # with alpha > 0 fixed, tiny weights let the prior win: every mean near 0.5, no NaN
    tiny = BernoulliMixture(alpha=1.0, **kw).fit(fmt(X), sample_weight=w * 1e-15)
    assert np.all(np.isfinite(tiny.means_)) and np.abs(tiny.means_ - 0.5).max() < 1e-12


def test_bic_aic_from_their_definitions():
    """BIC = -2 log L + p log n, AIC = -2 log L + 2 p, p = K D + K - 1, log L textbook."""
    X, _ = _binary(n=300, d=8, k=2, seed=14)
    bm = BernoulliMixture(2, random_state=0).fit(X)
    w, m = bm.weights_, bm.means_
    log_l = logsumexp(np.log(w) + X @ np.log(m).T + (1 - X) @ np.log(1 - m).T, axis=1).sum()
    p = 2 * 8 + 2 - 1
    assert bm.bic(X) == pytest.approx(-2 * log_l + p * np.log(300), rel=1e-12)
    assert bm.aic(X) == pytest.approx(-2 * log_l + 2 * p, rel=1e-12)
    a, ya = bm.sample(50)
    b, yb = bm.sample(50)
    np.testing.assert_array_equal(a, b)  # random_state fixed: reproducible, as scikit-learn
    np.testing.assert_array_equal(ya, yb)
