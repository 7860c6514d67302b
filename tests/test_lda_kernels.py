"""LDA kernels against their NumPy twins, scipy.special and scikit-learn's document update."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import psi
from sklearn.decomposition._lda import _update_doc_distribution

from emkit.kernels import lda as kern
from emkit.models.lda import LDAModel, dirichlet_expectation


def _corpus(n_docs=60, n_words=40, density=0.15, seed=0, empty=(3, 17)):
    X = sp.random(n_docs, n_words, density=density, random_state=seed, format="csr")
    X.data = np.ceil(X.data * 4)
    X = X.tolil()
    for d in empty:
        X[d, :] = 0
    return X.tocsr()


def _outputs(X, n_topics, dtype):
    n = X.shape[0]
    return dict(
        cvals=np.zeros(X.nnz), eth_out=np.zeros((n, n_topics), dtype=dtype),
        elogtheta_out=np.zeros((n, n_topics)), doc_bound=np.zeros(n),
    )


def test_digamma_matches_scipy():
    x = np.concatenate([np.logspace(-4, 6, 500), [0.05, 0.1, 1.0, 5.999, 6.0, 6.001]])
    np.testing.assert_allclose(kern.digamma(x), psi(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kern.digamma(x), kern.digamma_ref(x), rtol=1e-12, atol=1e-12)
    y = x[x > 1e-2]
    np.testing.assert_allclose(kern.exp_digamma(y), np.exp(psi(y)), rtol=1e-11)
    # large arguments (huge counts): the shifted form's product overflowed above ~1e51
    big = np.array([5.9, 6.0, 1e10, 1e60, 1e200, 1e300])
    np.testing.assert_allclose(kern.exp_digamma(big), np.exp(psi(big)), rtol=1e-11)
    # small arguments: relative accuracy down to results of 1e-300, 0 below 1e-307
    small = np.logspace(-4, -2, 200)
    np.testing.assert_allclose(kern.exp_digamma(small), np.exp(psi(small)), rtol=1e-11,
                               atol=1e-307)
    tiny = np.array([1.5e-3, 1.4e-3, 1e-3, 1e-5])
    np.testing.assert_allclose(kern.exp_digamma(tiny), np.exp(psi(tiny)), rtol=1e-11, atol=1e-307)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_exp_digamma_in_kernel_dtype(dtype):
    """The routine the document loop calls, on float32 and float64 gamma, any length."""
    rng = np.random.default_rng(5)
    for n in (1, 7, 8, 20, 24, 33):
        x = (rng.gamma(0.3, 20.0, n) + 0.01).astype(dtype)
        out = np.empty(n, dtype=dtype)
        kern._exp_digamma_vec_jit(x, out, np.empty(n, dtype=np.int64))
        ref = np.exp(psi(x.astype(np.float64)))
        tol = np.finfo(dtype)
        np.testing.assert_allclose(out, ref, rtol=1e-11 if dtype == np.float64 else 1e-6,
                                   atol=1e-307 if dtype == np.float64 else tol.tiny)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_doc_e_step_matches_numpy_twin(dtype):
    rng = np.random.default_rng(1)
    X = _corpus().astype(dtype)
    n_docs, n_topics = X.shape[0], 5
    B = np.ascontiguousarray(
        np.exp(dirichlet_expectation(rng.gamma(1.0, 1.0, (n_topics, X.shape[1])))).T, dtype=dtype
    )
    alpha = rng.uniform(0.05, 0.5, n_topics)
    w = rng.uniform(0.0, 2.0, n_docs)
    gamma0 = rng.gamma(100.0, 0.01, (n_docs, n_topics)).astype(dtype)
    docs = np.arange(1, n_docs, 2, dtype=np.int64)  # a subset, as the fresh-start trials use
    res = {}
    for name, fn in [("numba", kern.doc_e_step), ("numpy", kern.doc_e_step_ref)]:
        gamma = gamma0.copy()
        out = _outputs(X, n_topics, dtype)
        fn(X.indptr, X.indices, X.data, w, B, alpha, gamma, docs, 0, len(docs),
           max_iter=15, tol=0.0, compute_stats=True, **out)
        res[name] = gamma, out
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    g1, o1 = res["numba"]
    g2, o2 = res["numpy"]
    assert g1.dtype == dtype
    np.testing.assert_allclose(g1, g2, rtol=rtol)
    np.testing.assert_array_equal(g1[::2], gamma0[::2])  # documents not in ``docs`` untouched
    for key in ("cvals", "eth_out", "elogtheta_out", "doc_bound"):
        np.testing.assert_allclose(o1[key], o2[key], rtol=rtol, atol=rtol * 1e-3)
    # empty documents get the prior
    np.testing.assert_allclose(g1[17], alpha.astype(dtype), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_word_stats_matches_numpy_twin(dtype):
    rng = np.random.default_rng(2)
    X = _corpus(seed=3).astype(dtype)
    n_topics = 4
    csc = sp.csr_matrix((np.arange(X.nnz), X.indices, X.indptr), shape=X.shape).tocsc()
    cvals = rng.uniform(0.1, 2.0, X.nnz)
    eth = rng.uniform(0.0, 1.0, (X.shape[0], n_topics)).astype(dtype)
    B = rng.uniform(0.0, 1.0, (X.shape[1], n_topics)).astype(dtype)
    out = np.full((X.shape[1], n_topics), np.nan)
    kern.word_stats(csc.indptr.astype(np.int64), csc.indices, csc.data, cvals, eth, B, 0,
                    X.shape[1], out)
    ref = kern.word_stats_ref(X.indptr, X.indices, cvals, eth, B, X.shape[1])
    np.testing.assert_allclose(out, ref, rtol=1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("tol, max_iter, rtol", [(0.0, 25, 1e-6), (1e-3, 100, 1e-5)])
def test_e_step_matches_sklearn_document_update(tol, max_iter, rtol):
    """With the topics fixed and the same starting gamma, the E-step is scikit-learn's."""
    X = _corpus(n_docs=80, n_words=50, seed=4)
    n_topics = 6
    lam = np.random.RandomState(0).gamma(100.0, 0.01, (n_topics, X.shape[1])) + X[:6].toarray()
    model = LDAModel(n_topics, 0.2, 0.1, max_doc_update_iter=max_iter, mean_change_tol=tol,
                     restart_every=0)
    params = model.params(lam)
    gamma0 = np.random.RandomState(7).gamma(100.0, 0.01, (X.shape[0], n_topics))
    stats, state = model.e_step(params, X, None, gamma0)
    exp_topic_word = np.exp(dirichlet_expectation(lam))
    gamma_sk, sstats = _update_doc_distribution(
        X, exp_topic_word, 0.2, max_iter, tol, True, np.random.RandomState(7)
    )
    np.testing.assert_allclose(state.gamma, gamma_sk, rtol=rtol)
    np.testing.assert_allclose(stats.word_topic, sstats * exp_topic_word, rtol=rtol, atol=1e-12)
