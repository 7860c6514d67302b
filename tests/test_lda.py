"""emkit.LatentDirichletAllocation: the bound, monotonicity, references and the scikit-learn API."""

import warnings
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment, minimize
from sklearn.decomposition import LatentDirichletAllocation as SkLDA
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import LatentDirichletAllocation, MonotonicityError
from emkit.models.lda import (
    Corpus,
    LDAModel,
    LDAStats,
    _alpha_objective,
    optimize_dirichlet_prior,
)


def make_corpus(n_docs, n_words, n_topics, doc_len, alpha=0.1, eta=0.05, seed=0):
    """Documents drawn from LDA's generative process; returns counts, topics and proportions."""
    rng = np.random.default_rng(seed)
    alpha = np.broadcast_to(alpha, (n_topics,))
    beta = rng.dirichlet(np.full(n_words, eta), size=n_topics)
    theta = rng.dirichlet(alpha, size=n_docs)
    lengths = rng.poisson(doc_len, size=n_docs)
    counts = np.array([rng.multinomial(n, p) for n, p in zip(lengths, theta @ beta, strict=True)])
    return sp.csr_matrix(counts.astype(np.float64)), beta, theta


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(300, 60, 4, 60, seed=1)


def matched_cosine(components, beta):
    A = components / np.linalg.norm(components, axis=1, keepdims=True)
    Bn = beta / np.linalg.norm(beta, axis=1, keepdims=True)
    cos = Bn @ A.T
    rows, cols = linear_sum_assignment(-cos)
    return float(cos[rows, cols].mean())


# ---------------------------------------------------------------------------- statistics
def test_stats_add_scale_blend_and_chunks(corpus):
    X = corpus[0]
    model = LDAModel(4, 0.25, 0.1, restart_every=0)
    params = model.params(np.random.RandomState(0).gamma(100.0, 0.01, (4, X.shape[1])))
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    full, state = model.e_step(params, X, w, None)
    a, _ = model.e_step(params, X[:120], w[:120], None)
    b, _ = model.e_step(params, X[120:], w[120:], None)
    both = a + b
    np.testing.assert_allclose(both.word_topic, full.word_topic, rtol=1e-12)
    np.testing.assert_allclose(both.elog_theta, full.elog_theta, rtol=1e-12)
    for f in ("n_docs", "doc_rest", "total_weight"):
        assert getattr(both, f) == pytest.approx(getattr(full, f), rel=1e-12)
    assert model.elbo(params, both) == pytest.approx(model.elbo(params, full), rel=1e-12)
    half = a.blend(0.25, b)
    np.testing.assert_allclose(half.word_topic, 0.75 * a.word_topic + 0.25 * b.word_topic)
    assert (2 * a).doc_rest == pytest.approx(2 * a.doc_rest)
    np.testing.assert_array_equal(state.gamma.shape, (X.shape[0], 4))


def test_elbo_equals_sklearn_bound(corpus):
    """elbo(params, stats) is scikit-learn's ``_approx_bound`` for the same gamma and topics."""
    X = corpus[0]
    sk = SkLDA(4, random_state=0, max_iter=2).fit(X)
    model = LDAModel(4, sk.doc_topic_prior_, sk.topic_word_prior_)
    params = model.params(sk.components_)
    stats, state = model.e_step(params, X, None, None)
    expected = sk._approx_bound(X, state.gamma, sub_sampling=False)
    assert model.elbo(params, stats) == pytest.approx(expected, rel=1e-10)


def test_m_step_maximises_the_bound(corpus):
    X = corpus[0]
    model = LDAModel(4, 0.25, 0.1, optimize_alpha=True)
    params = model.params(np.random.RandomState(0).gamma(100.0, 0.01, (4, X.shape[1])))
    stats, _ = model.e_step(params, X, None, None)
    best = model.m_step(stats)
    f_best = model.elbo(best, stats)
    rng = np.random.default_rng(0)
    for _ in range(5):
        lam = best.lambda_ * np.exp(0.05 * rng.standard_normal(best.lambda_.shape))
        alpha = best.alpha * np.exp(0.05 * rng.standard_normal(4))
        assert model.elbo(model.params(lam, alpha), stats) < f_best


def test_alpha_newton_matches_scipy():
    rng = np.random.default_rng(3)
    theta = rng.dirichlet([0.3, 1.0, 2.0, 0.1], size=500)
    T = np.log(theta).sum(axis=0)
    a = optimize_dirichlet_prior(T, 500.0, np.full(4, 0.25))
    res = minimize(lambda la: -_alpha_objective(np.exp(la), T, 500.0), np.zeros(4),
                   method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(a, np.exp(res.x), rtol=1e-4)
    np.testing.assert_allclose(a, [0.3, 1.0, 2.0, 0.1], rtol=0.2)


# ---------------------------------------------------------------------------- monotone bound
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(optimize_doc_topic_prior=True),
        dict(n_jobs=2, optimize_doc_topic_prior=True),
        dict(max_doc_update_iter=3),
    ],
)
def test_batch_bound_never_decreases(corpus, kwargs):
    X = corpus[0]
    lda = LatentDirichletAllocation(4, max_iter=15, random_state=0, check_monotonic="raise",
                                    **kwargs).fit(X)
    seq = lda.trace_.elbo
    assert len(lda.trace_) == 16
    assert np.all(np.diff(seq) >= -1e-12 * np.abs(seq[1:]))
    assert lda.bound_ == pytest.approx(np.exp(-lda.trace_.elbo_after_e[-1]))


def test_float32_monotone_and_dtype(corpus):
    X = corpus[0].astype(np.float32)
    lda = LatentDirichletAllocation(4, max_iter=10, random_state=0, check_monotonic="raise")
    Xt = lda.fit_transform(X)
    assert lda.components_.dtype == np.float32 and Xt.dtype == np.float32


def test_monotonicity_check_raises_on_a_broken_m_step(corpus):
    from emkit._em import run_em

    X = corpus[0]
    lam0 = np.random.RandomState(0).gamma(100.0, 0.01, (4, X.shape[1]))
    calls = []

    class Broken(LDAModel):
        def m_step(self, stats):  # goes back to the initial topics on the second M-step
            calls.append(1)
            return super().m_step(stats) if len(calls) == 1 else self.params(lam0)

    model = Broken(4, 0.25, 0.1)
    params = model.params(lam0)
    with pytest.raises(MonotonicityError):
        run_em(model, X, None, params, max_iter=5, tol=0.0, check_monotonic="raise")


def test_result_does_not_depend_on_threads(corpus):
    X = sp.vstack([corpus[0]] * 80).tocsr()  # large enough to be split into blocks
    fits = [LatentDirichletAllocation(4, max_iter=2, random_state=0, n_jobs=n,
                                      optimize_doc_topic_prior=True).fit(X) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].components_, fits[1].components_)
    np.testing.assert_array_equal(fits[0].doc_topic_prior_, fits[1].doc_topic_prior_)


# ---------------------------------------------------------------------------- references
def test_recovers_true_topics_and_matches_sklearn_perplexity():
    X, beta, _ = make_corpus(700, 80, 5, 80, seed=2)
    train, test = X[:600], X[600:]
    lda = LatentDirichletAllocation(5, max_iter=30, random_state=0,
                                    check_monotonic="raise").fit(train)
    assert matched_cosine(lda.components_, beta) >= 0.9
    sk = SkLDA(5, max_iter=30, random_state=0).fit(train)
    # one common routine on both models' topics: emkit's held-out bound with the same priors
    common = LDAModel(5, 0.2, 0.2)
    perp = [
        np.exp(-common.document_bound(common.params(c), common.e_step(common.params(c), test)[0])
               / test.sum())
        for c in (lda.components_, sk.components_)
    ]
    assert perp[0] <= perp[1] * 1.005
    assert lda.perplexity(test) <= sk.perplexity(test) * 1.005


def test_optimize_alpha_learns_asymmetric_prior():
    X, beta, _ = make_corpus(800, 60, 3, 60, alpha=[0.05, 0.5, 2.0], seed=5)
    lda = LatentDirichletAllocation(3, max_iter=30, random_state=0, optimize_doc_topic_prior=True,
                                    check_monotonic="raise").fit(X)
    order = linear_sum_assignment(-(beta @ lda.components_.T))[1]
    alpha = lda.doc_topic_prior_[order]
    assert alpha[0] < alpha[1] < alpha[2]
    assert lda.doc_topic_prior_.shape == (3,)


def test_score_transform_agree_with_sklearn_for_the_same_topics(corpus):
    X = corpus[0]
    ours = LatentDirichletAllocation(4, max_iter=0, random_state=0).fit(X)
    sk = SkLDA(4, max_iter=0, random_state=0).fit(X)
    np.testing.assert_allclose(ours.components_, sk.components_)
    np.testing.assert_allclose(ours.exp_dirichlet_component_, sk.exp_dirichlet_component_,
                               rtol=1e-8)
    np.testing.assert_allclose(ours.transform(X), sk.transform(X), rtol=1e-4, atol=1e-6)
    assert ours.score(X) == pytest.approx(sk.score(X), rel=1e-6)
    assert ours.perplexity(X) == pytest.approx(sk.perplexity(X), rel=1e-6)
    assert ours.perplexity(X, sub_sampling=True) == pytest.approx(
        sk.perplexity(X, sub_sampling=True), rel=1e-6)
    assert ours.perplexity(X) == pytest.approx(np.exp(-ours.score(X) / X.sum()))


# ---------------------------------------------------------------------------- weights
def test_integer_weights_equal_repeated_documents(corpus):
    X = corpus[0][:80]
    w = np.random.default_rng(0).integers(0, 3, X.shape[0])
    Xr = X[np.repeat(np.arange(X.shape[0]), w)]
    a = LatentDirichletAllocation(4, max_iter=5, random_state=0).fit(X, sample_weight=w)
    b = LatentDirichletAllocation(4, max_iter=5, random_state=0).fit(Xr)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-9)
    assert a.score(X, sample_weight=w) == pytest.approx(b.score(Xr), rel=1e-10)
    assert a.bound_ == pytest.approx(b.bound_, rel=1e-10)


# ---------------------------------------------------------------------------- online
def test_online_fit_and_partial_fit():
    X, beta, _ = make_corpus(600, 60, 4, 60, seed=1)
    kw = dict(batch_size=64, random_state=2)  # a seed whose start leads to the true topics
    lda = LatentDirichletAllocation(4, learning_method="online", max_iter=10, **kw).fit(X)
    sk = SkLDA(4, learning_method="online", max_iter=10, **kw).fit(X)
    assert matched_cosine(lda.components_, beta) >= 0.9
    assert lda.perplexity(X) <= sk.perplexity(X) * 1.01
    assert lda.n_iter_ == 10 and lda.n_batch_iter_ == 1 + 10 * 10
    assert len(lda.trace_) == 11
    part = LatentDirichletAllocation(4, total_samples=600, **kw)
    for _ in range(10):
        part.partial_fit(X)
    assert matched_cosine(part.components_, beta) >= 0.9
    # continuing a batch fit online keeps the topics' scale
    lda2 = LatentDirichletAllocation(4, max_iter=5, total_samples=600, **kw).fit(X)
    lda2.partial_fit(X[:64])
    assert matched_cosine(lda2.components_, beta) >= 0.9


def test_online_update_matches_sklearn_from_the_same_start():
    """Blending the scaled statistics is scikit-learn's online update of ``components_``."""
    X, _, _ = make_corpus(100, 30, 3, 40, seed=3)
    sk = SkLDA(3, learning_method="online", max_iter=1, batch_size=50, random_state=0,
               total_samples=100).fit(X)
    rs = np.random.RandomState(0)
    lam0 = rs.gamma(100.0, 0.01, (3, 30))
    model = LDAModel(3, 1 / 3, 1 / 3, restart_every=0)
    params, stats = model.params(lam0), LDAStats.from_lambda(lam0, 1 / 3)
    for t, sl in enumerate((slice(0, 50), slice(50, 100)), start=1):
        gamma0 = rs.gamma(100.0, 0.01, (50, 3))  # scikit-learn's draw for this mini-batch
        batch, _ = model.e_step(params, X[sl], None, gamma0)
        stats = stats.blend((10.0 + t) ** -0.7, batch * (100 / 50))
        params = model.m_step(stats)
    np.testing.assert_allclose(params.lambda_, sk.components_, rtol=1e-5)


# ---------------------------------------------------------------------------- inputs
def test_input_validation(corpus):
    X = corpus[0]
    lda = LatentDirichletAllocation(3, max_iter=2, random_state=0)
    bad = X.toarray()
    bad[0, 0] = -1
    with pytest.raises(ValueError, match="Negative"):
        lda.fit(bad)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        lda.fit(bad)
    with pytest.raises(ValueError, match="learning_method"):
        LatentDirichletAllocation(learning_method="stochastic").fit(X)
    lda.fit(X)
    with pytest.raises(ValueError, match="features"):
        lda.transform(X[:, :-1])
    with pytest.raises(ValueError, match="features"):
        lda.perplexity(X[:, :-1])
    with pytest.raises(ValueError):
        lda.score(X, sample_weight=np.ones(3))


def test_formats_float_counts_empty_documents_and_no_mutation(corpus):
    X = corpus[0][:50].copy()
    X.data = X.data * 0.5  # float counts
    X = X.tolil()
    X[5, :] = 0
    X = X.tocsr()
    copy = X.copy()
    lda = LatentDirichletAllocation(3, max_iter=3, random_state=0, doc_topic_prior=0.3)
    reference = lda.fit(X).transform(X)
    np.testing.assert_array_equal(X.toarray(), copy.toarray())
    np.testing.assert_allclose(reference[5], np.full(3, 1 / 3))  # empty: the (uniform) prior
    for fmt in (X.toarray(), X.tocoo(), X.tocsc(), X.tolil()):
        out = LatentDirichletAllocation(3, max_iter=3, random_state=0,
                                        doc_topic_prior=0.3).fit(fmt).transform(fmt)
        np.testing.assert_allclose(out, reference, rtol=1e-12)
    unnorm = lda.transform(X, normalize=False)
    np.testing.assert_allclose(unnorm[5], np.full(3, 0.3))


def test_corpus_columns_keep_duplicates():
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0]), np.array([0, 2, 3])),
                      shape=(2, 3))
    c = Corpus.from_matrix(X)
    col_indptr, col_docs, col_pos = c.columns
    np.testing.assert_array_equal(col_indptr, [0, 1, 3, 3])
    np.testing.assert_array_equal(col_docs, [1, 0, 0])
    np.testing.assert_array_equal(np.sort(col_pos[1:]), [0, 1])


def test_evaluate_every_stops_on_perplexity(corpus):
    X = corpus[0]
    lda = LatentDirichletAllocation(4, max_iter=200, evaluate_every=1, perp_tol=1e-1,
                                    random_state=0).fit(X)
    assert lda.n_iter_ < 200
    perp = np.exp(-lda.trace_.elbo_after_e)
    assert abs(perp[-1] - perp[-2]) < 1e-1


def test_stats_from_lambda_round_trip():
    lam = np.random.RandomState(0).gamma(100.0, 0.01, (3, 7))
    model = LDAModel(3, 0.3, 0.1)
    np.testing.assert_allclose(model.m_step(LDAStats.from_lambda(lam, 0.1)).lambda_, lam)


@parametrize_with_checks(
    [LatentDirichletAllocation(3, max_iter=5, random_state=0),
     LatentDirichletAllocation(2, max_iter=3, optimize_doc_topic_prior=True, n_jobs=2,
                               random_state=0),
     LatentDirichletAllocation(2, learning_method="online", max_iter=3,
                               optimize_doc_topic_prior=True, random_state=0)]
)
def test_sklearn_compatible(estimator, check):
    """Batch and online learning, no expected failures.

    The online instance keeps the default ``batch_size`` (128): the checks' data sets fit in one
    mini-batch per pass. With several mini-batches per pass no online learner can pass the
    sample-weight equivalence check: it shuffles the weighted rows but not the repeated ones,
    and stepwise updates depend on the order of the mini-batches
    (:func:`test_online_learning_depends_on_document_order`).
    """
    check(estimator)


def test_online_learning_depends_on_document_order(corpus):
    """Why the online instance above has one mini-batch per pass: the same documents in another
    order give other topics (as in scikit-learn), so weighted rows in shuffled order cannot
    reproduce repeated rows in their original order."""
    X = corpus[0][:120]
    perm = np.random.default_rng(0).permutation(X.shape[0])
    kw = dict(learning_method="online", batch_size=16, max_iter=2, random_state=0)
    for cls in (LatentDirichletAllocation, SkLDA):
        a, b = cls(4, **kw).fit(X), cls(4, **kw).fit(X[perm])
        assert not np.allclose(a.components_, b.components_, rtol=1e-3)
    # one mini-batch per pass: the order does not matter
    kw["batch_size"] = 200
    a = LatentDirichletAllocation(4, **kw).fit(X)
    b = LatentDirichletAllocation(4, **kw).fit(X[perm])
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-9)


# ---------------------------------------------------------------------------- counters
@pytest.mark.parametrize("learning_method", ["batch", "online"])
@pytest.mark.parametrize("evaluate_every, max_iter", [(1, 10), (2, 10), (-1, 4), (3, 4), (1, 0)])
def test_counters_match_sklearn(corpus, learning_method, evaluate_every, max_iter):
    """n_iter_ / n_batch_iter_ as scikit-learn counts them, also when perp_tol stops the fit
    (a huge perp_tol stops both at their second evaluation, whatever the perplexities)."""
    X = corpus[0]
    kw = dict(learning_method=learning_method, evaluate_every=evaluate_every, perp_tol=1e12,
              max_iter=max_iter, batch_size=100, random_state=0)
    ours, sk = LatentDirichletAllocation(4, **kw).fit(X), SkLDA(4, **kw).fit(X)
    assert (ours.n_iter_, ours.n_batch_iter_) == (sk.n_iter_, sk.n_batch_iter_)
    # bound_ is the training perplexity at the final topics; from the same initial topics (no
    # update) it is scikit-learn's, and afterwards the warm-started gamma is at least as good
    # as a fresh transform
    if max_iter == 0:
        assert ours.bound_ == pytest.approx(sk.bound_, rel=1e-7)
    assert ours.bound_ <= ours.perplexity(X) * (1 + 1e-10)


# ---------------------------------------------------------------------------- review: inputs
@pytest.mark.parametrize("fmt", ["dok", "lil", "coo", "csc", "dense"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_counts_raise_in_every_format(corpus, fmt, value):
    """DOK and LIL used to reach the kernels with NaN (scikit-learn cannot check them in place)."""
    X = corpus[0][:30].tolil()
    X[2, 3] = value
    X = X.toarray() if fmt == "dense" else X.asformat(fmt)
    lda = LatentDirichletAllocation(3, max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="NaN|infinity"):
        lda.fit(X)
    fitted = LatentDirichletAllocation(3, max_iter=2, random_state=0).fit(corpus[0][:30])
    for method in (fitted.transform, fitted.score, fitted.perplexity, fitted.partial_fit):
        with pytest.raises(ValueError, match="NaN|infinity"):
            method(X)


def test_shapes_and_vocabulary_size(corpus):
    X = corpus[0][:30]
    lda = LatentDirichletAllocation(3, max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="2D"):
        lda.fit(X.toarray()[0])
    with pytest.raises(ValueError, match="0 sample"):
        lda.fit(X[:0])
    lda.fit(X)
    for method in (lda.transform, lda.score, lda.perplexity, lda.partial_fit):
        with pytest.raises(ValueError, match="features"):
            method(X[:, :-1])
    with pytest.raises(ValueError, match="undefined"):
        lda.perplexity(sp.csr_matrix(X.shape))  # no words: exp(-bound / 0)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, bool])
def test_integer_and_bool_counts_are_float64(corpus, dtype):
    X = corpus[0][:40]
    Xi = X.astype(dtype)
    a = LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(Xi)
    b = LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(Xi.astype(np.float64))
    assert a.components_.dtype == np.float64 and a.transform(Xi).dtype == np.float64
    np.testing.assert_array_equal(a.components_, b.components_)


def _non_canonical(X):
    """The same matrix with reversed (unsorted) indices in every row and explicit zeros."""
    X = X.tocsr(copy=True)
    indptr, indices, data = X.indptr, X.indices.copy(), X.data.copy()
    for d in range(X.shape[0]):
        sl = slice(indptr[d], indptr[d + 1])
        indices[sl], data[sl] = indices[sl][::-1], data[sl][::-1]
    # an explicit zero in a word the document does not use
    rows, new_ind, new_dat = [], [], []
    for d in range(X.shape[0]):
        sl = slice(indptr[d], indptr[d + 1])
        unused = np.setdiff1d(np.arange(X.shape[1]), indices[sl])[:1]
        new_ind.append(np.concatenate([indices[sl], unused]))
        new_dat.append(np.concatenate([data[sl], np.zeros(len(unused))]))
        rows.append(len(new_ind[-1]))
    Y = sp.csr_matrix((np.concatenate(new_dat), np.concatenate(new_ind),
                       np.concatenate([[0], np.cumsum(rows)])), shape=X.shape)
    Y.has_sorted_indices = False
    return Y


def test_unsorted_indices_and_explicit_zeros_change_nothing_and_are_not_modified(corpus):
    X = corpus[0][:60]
    Y = _non_canonical(X)
    assert not Y.has_canonical_format and np.any(Y.data == 0)
    saved = (Y.data.copy(), Y.indices.copy(), Y.indptr.copy())
    a = LatentDirichletAllocation(3, max_iter=4, random_state=0).fit(X)
    b = LatentDirichletAllocation(3, max_iter=4, random_state=0).fit(Y)
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-10)
    np.testing.assert_allclose(b.transform(Y), a.transform(X), rtol=1e-10)
    assert b.score(Y) == pytest.approx(a.score(X), rel=1e-12)
    b.partial_fit(Y)
    for got, want in zip((Y.data, Y.indices, Y.indptr), saved, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_callers_arrays_are_never_modified(corpus, dtype):
    X = corpus[0][:60].astype(dtype)
    D = X.toarray()
    w = np.random.default_rng(0).uniform(0.5, 2.0, 60)
    saved = [X.data.copy(), X.indices.copy(), X.indptr.copy(), D.copy(), w.copy()]
    for learning_method in ("batch", "online"):
        for M in (X, D):
            lda = LatentDirichletAllocation(3, max_iter=2, learning_method=learning_method,
                                            batch_size=16, random_state=0)
            lda.fit(M, sample_weight=w)
            lda.transform(M), lda.score(M, sample_weight=w), lda.perplexity(M)
            lda.partial_fit(M, sample_weight=w)
    for got, want in zip((X.data, X.indices, X.indptr, D, w), saved, strict=True):
        np.testing.assert_array_equal(got, want)


def test_float32_agrees_with_float64():
    X, _, _ = make_corpus(300, 60, 4, 60, seed=1)
    a = LatentDirichletAllocation(4, max_iter=30, random_state=0, check_monotonic="raise")
    b = LatentDirichletAllocation(4, max_iter=30, random_state=0, check_monotonic="raise")
    a.fit(X.astype(np.float32))
    b.fit(X)
    assert a.components_.dtype == np.float32 and a.exp_dirichlet_component_.dtype == np.float32
    np.testing.assert_allclose(a.components_, b.components_, rtol=5e-3)
    np.testing.assert_allclose(a.transform(X), b.transform(X), atol=1e-4)
    assert a.perplexity(X) == pytest.approx(b.perplexity(X), rel=1e-5)
    assert a.bound_ == pytest.approx(b.bound_, rel=1e-5)


def test_huge_counts_raise_or_stay_finite(corpus):
    X = corpus[0][:40]
    with pytest.raises(ValueError, match="too large"):
        LatentDirichletAllocation(3, max_iter=2, random_state=0).fit(
            X.astype(np.float32) * np.float32(1e34))
    with pytest.raises(ValueError, match="overflows"):
        LatentDirichletAllocation(3, max_iter=2, random_state=0).fit(
            X * 1e200, sample_weight=np.full(40, 1e200))
    # very large but representable counts: a finite fit (exp(psi(x)) used to overflow at 1e51)
    lda = LatentDirichletAllocation(3, max_iter=3, random_state=0, check_monotonic="raise")
    lda.fit(X * 1e100)
    assert np.all(np.isfinite(lda.components_)) and np.isfinite(lda.bound_)


@pytest.mark.parametrize("scale", [1e-12, 1e-300])
def test_tiny_weights_keep_the_bound_monotone(corpus, scale):
    """The bound is a small difference of large topic terms: round-off is relative to them."""
    X = corpus[0][:40]
    w = np.zeros(40)
    w[:3] = scale
    lda = LatentDirichletAllocation(3, max_iter=5, random_state=0, check_monotonic="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lda.fit(X, sample_weight=w)
        assert lda.bound_ >= 1.0  # ELBO <= 0; inf where the topic terms swamp tiny tokens
    assert np.all(np.isfinite(lda.components_))


def test_weights_scale_like_repeats(corpus):
    """Weights are repeat counts: weight c on every document is the corpus repeated c times."""
    X = corpus[0][:40]
    a = LatentDirichletAllocation(3, max_iter=4, random_state=0)
    a.fit(X, sample_weight=np.full(40, 3))
    b = LatentDirichletAllocation(3, max_iter=4, random_state=0).fit(sp.vstack([X] * 3).tocsr())
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-9)


# ---------------------------------------------------------------------------- review: E-step
def test_e_step_is_never_below_the_previous_q_nor_the_fresh_start(corpus):
    """The E-step ends at least at the previous q's bound under the new topics (the M-step's
    value: monotone) and at least at scikit-learn's fresh E-step (its document update from
    gamma = 1); where the fresh solutions reach that bound they are kept as they are."""
    X = corpus[0]
    rs = np.random.RandomState(0)
    model = LDAModel(4, 0.25, 0.1)
    p0 = model.params(rs.gamma(100.0, 0.01, (4, X.shape[1])))
    stats0, state = model.e_step(p0, X, None, None)
    p1 = model.m_step(stats0)
    new, _ = model.e_step(p1, X, None, state)
    fresh, _ = model.e_step(p1, X, None, None)
    assert model.elbo(p1, new) >= model.elbo(p1, fresh) - 1e-9 * abs(model.elbo(p1, fresh))
    assert model.elbo(p1, new) >= model.elbo(p1, stats0)  # the M-step's value
    if model.elbo(p1, fresh) >= model.elbo(p1, stats0):
        np.testing.assert_array_equal(new.word_topic, fresh.word_topic)
    # the fresh start's bound is scikit-learn's for its own gamma = 1 document update
    sk = SkLDA(4, doc_topic_prior=0.25, topic_word_prior=0.1).fit(X[:5])
    sk.components_ = p1.lambda_
    sk.exp_dirichlet_component_ = np.exp(p1.elog_beta)
    sk.doc_topic_prior_, sk.topic_word_prior_ = 0.25, 0.1
    assert model.elbo(p1, fresh) == pytest.approx(sk.score(X), rel=1e-6)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_e_step_falls_back_to_warm_starts_below_the_floor(corpus, kernels):
    """Fresh starts cut short (2 updates) end below the previous q's bound: the E-step then
    keeps only as many of them as the surplus pays for and is still not below that bound;
    without statistics in the state the floor is each document's old-gamma bound."""
    X = corpus[0]
    rs = np.random.RandomState(1)
    tight = LDAModel(4, 0.25, 0.1, mean_change_tol=1e-10, max_doc_update_iter=1000,
                     kernels=kernels)
    p0 = tight.params(rs.gamma(100.0, 0.01, (4, X.shape[1])))
    stats0, state0 = tight.e_step(p0, X, None, None)
    p1 = tight.m_step(stats0)
    stats1, state1 = tight.e_step(p1, X, None, state0)
    p2 = tight.m_step(stats1)
    short = replace(tight, max_doc_update_iter=2)
    fresh, _ = short.e_step(p2, X, None, None)
    floor = short.elbo(p2, stats1)
    assert short.elbo(p2, fresh) < floor  # the fallback path is exercised
    new, state2 = short.e_step(p2, X, None, state1)
    assert short.elbo(p2, new) >= floor
    assert not np.array_equal(state2.gamma, state1.gamma)
    raw, _ = short.e_step(p2, X, None, state1.gamma)  # no statistics: per-document floors
    old_only, _ = replace(short, max_doc_update_iter=0).e_step(p2, X, None, state1.gamma)
    assert short.elbo(p2, raw) >= short.elbo(p2, old_only)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_word_no_topic_explains_gives_no_nan(dtype):
    """An unseen word under a tiny topic_word_prior: exp(E[log beta]) underflows in every
    topic; it must add nothing rather than n / tiny = inf (and inf * 0 = NaN)."""
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, (40, 30)).astype(dtype)
    X[:, -1] = 0
    new = np.zeros((1, 30), dtype=dtype)
    new[0, :5] = 1
    new[0, -1] = 5
    lda = LatentDirichletAllocation(5, topic_word_prior=1e-3 if dtype == np.float64 else 1e-2,
                                    random_state=0, max_iter=5).fit(X)
    theta = lda.transform(new)
    assert np.all(np.isfinite(theta)) and theta.sum() == pytest.approx(1.0, rel=1e-5)
    assert np.isfinite(lda.score(new))
    # the same through fit: the unseen word inside the training data of a second fit
    lda.fit(np.vstack([X, new]))
    assert np.all(np.isfinite(lda.components_)) and np.isfinite(lda.bound_)


def test_tiny_gammas_give_no_nan():
    """Float counts of 1e-4 and alpha = 1e-6: sum(gamma) ~ 1e-3, exp(psi(gamma)) flushes to
    0 while exp(-psi(sum gamma)) overflows; E[theta] is formed in log space instead."""
    rng = np.random.default_rng(0)
    X = rng.random((30, 20)) * (rng.random((30, 20)) < 0.3) * 1e-4
    lda = LatentDirichletAllocation(4, doc_topic_prior=1e-6, random_state=0, max_iter=3,
                                    check_monotonic="raise").fit(X)
    assert np.all(np.isfinite(lda.components_)) and np.isfinite(lda.bound_)
