"""Fits on dask arrays equal in-memory fits; on a real LocalCluster the E-steps run on the
workers, one task per block per iteration, and a fit survives the loss of a worker."""

import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from emkit import (  # noqa: E402
    BayesianGaussianMixture,
    BernoulliMixture,
    GaussianMixture,
    LatentDirichletAllocation,
    _base,  # noqa: E402
)
from emkit._dask import E_STEP_PREFIX  # noqa: E402

from ._helpers import blobs, random_params  # noqa: E402

COV_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on 127.0.0.1, started and stopped here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=40,
        )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def gmm_init(k, d, ct, seed=2):
    w, m, p = random_params(k, d, ct, seed=seed)
    return dict(covariance_type=ct, weights_init=w, means_init=m, precisions_init=p)


def assert_same_gmm(a, b, rtol=1e-9):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=rtol, atol=1e-12)
    assert a.n_iter_ == b.n_iter_
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=rtol)
    np.testing.assert_allclose(b.trace_.elbo_after_e, a.trace_.elbo_after_e, rtol=rtol)


def corpus(n=300, v=50, k=3, seed=0):
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(v, 0.1), size=k)
    theta = rng.dirichlet(np.full(k, 0.3), size=n)
    X = np.vstack([rng.multinomial(40, t @ topics) for t in theta]).astype(np.float64)
    return sp.csr_matrix(X)


def quiet_fit(est, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        warnings.simplefilter("error", category=__import__("emkit").MonotonicityWarning)
        return est.fit(X, **kw)


# ----------------------------------------------------------------------------- local scheduler
def test_importing_emkit_does_not_import_dask():
    code = "import sys, emkit; emkit.GaussianMixture(2).fit([[0.], [1.], [2.]]); " \
           "sys.exit('dask' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("ct", COV_TYPES)
def test_gmm_dask_equals_in_memory(ct):
    X, _ = blobs(n=1200, d=3, k=3, seed=1)
    w = np.random.default_rng(0).uniform(0.2, 2.0, size=len(X))
    kw = dict(max_iter=15, tol=0.0, random_state=0, check_monotonic="raise", **gmm_init(3, 3, ct))
    a = quiet_fit(GaussianMixture(3, **kw), X, sample_weight=w)
    b = quiet_fit(GaussianMixture(3, **kw), da.from_array(X, chunks=250), sample_weight=w)
    assert_same_gmm(a, b)


def test_gmm_default_init_on_dask_equals_in_memory():
    X, _ = blobs(n=900, d=2, k=3, seed=3)
    a = quiet_fit(GaussianMixture(3, random_state=0), X)
    b = quiet_fit(GaussianMixture(3, random_state=0), da.from_array(X, chunks=200))
    assert_same_gmm(a, b)


def test_subsampled_initialisation_same_rows_in_memory_and_on_dask(monkeypatch):
    """Above the sample size both draw the same rows with random_state and agree."""
    monkeypatch.setattr(_base, "INIT_MAX_ROWS", 300)
    X, _ = blobs(n=3000, d=2, k=3, seed=4)
    assert _base.init_sample_size(3000, 2, 8, 3) == 300
    a = quiet_fit(GaussianMixture(3, random_state=0, max_iter=5, tol=0), X)
    b = quiet_fit(GaussianMixture(3, random_state=0, max_iter=5, tol=0),
                  da.from_array(X, chunks=700))
    assert_same_gmm(a, b)


def test_dask_dataframe_input():
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, _ = blobs(n=600, d=3, k=2, seed=5)
    df = dd.from_pandas(pd.DataFrame(X, columns=list("abc")), npartitions=3)
    kw = dict(max_iter=10, tol=0.0, **gmm_init(2, 3, "full"))
    a = quiet_fit(GaussianMixture(2, **kw), X)
    b = quiet_fit(GaussianMixture(2, **kw), df)
    assert_same_gmm(a, b)
    assert list(b.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(b.predict(df).compute(), a.predict(X))


def test_predictions_on_dask_are_lazy_and_equal():
    X, _ = blobs(n=700, d=3, k=3, seed=6)
    gm = quiet_fit(GaussianMixture(3, random_state=0), X)
    Xd = da.from_array(X, chunks=200)
    for method in ("predict", "predict_proba", "score_samples"):
        out = getattr(gm, method)(Xd)
        assert isinstance(out, da.Array), method
        np.testing.assert_allclose(out.compute(), getattr(gm, method)(X), rtol=1e-12)
    w = np.random.default_rng(1).uniform(size=len(X))
    assert gm.score(Xd) == pytest.approx(gm.score(X), rel=1e-12)
    assert gm.score(Xd, sample_weight=w) == pytest.approx(gm.score(X, sample_weight=w),
                                                          rel=1e-12)
    assert gm.bic(Xd) == pytest.approx(gm.bic(X), rel=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_bernoulli_dask_equals_in_memory(sparse):
    rng = np.random.default_rng(0)
    means = rng.uniform(0.05, 0.95, size=(3, 20))
    z = rng.integers(3, size=800)
    X = (rng.uniform(size=(800, 20)) < means[z]).astype(np.float64)
    Xm = sp.csr_matrix(X) if sparse else X
    Xd = da.from_array(Xm, chunks=(150, -1), asarray=not sparse)
    kw = dict(max_iter=20, tol=0.0, check_monotonic="raise",
              weights_init=np.full(3, 1 / 3), means_init=rng.uniform(0.3, 0.7, size=(3, 20)))
    a = quiet_fit(BernoulliMixture(3, **kw), Xm)
    b = quiet_fit(BernoulliMixture(3, **kw), Xd)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-9)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-9)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-9)
    np.testing.assert_allclose(b.predict_proba(Xd).compute(), a.predict_proba(Xm), rtol=1e-9)


def test_bernoulli_binarize_runs_where_the_blocks_live():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 10))
    kw = dict(binarize=0.0, random_state=0, max_iter=10, tol=0.0)
    a = quiet_fit(BernoulliMixture(2, **kw), X)
    b = quiet_fit(BernoulliMixture(2, **kw), da.from_array(X, chunks=(120, 10)))
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-9)


@pytest.mark.parametrize("method", ["batch", "online"])
def test_lda_dask_equals_in_memory(method):
    X = corpus()
    w = np.random.default_rng(2).integers(1, 3, size=X.shape[0]).astype(float)
    kw = dict(n_components=3, random_state=0, learning_method=method, max_iter=8,
              batch_size=64, check_monotonic="raise")
    a = quiet_fit(LatentDirichletAllocation(**kw), X, sample_weight=w)
    # online: the mini-batches are the blocks (re-cut to batch_size), as in memory
    Xd = da.from_array(X, chunks=(100, -1), asarray=False)
    b = quiet_fit(LatentDirichletAllocation(**kw), Xd, sample_weight=w)
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-9)
    assert b.bound_ == pytest.approx(a.bound_, rel=1e-9)
    np.testing.assert_allclose(b.transform(Xd).compute(), a.transform(X), rtol=1e-9)
    assert b.perplexity(Xd) == pytest.approx(a.perplexity(X), rel=1e-9)
    assert b.score(Xd) == pytest.approx(a.score(X), rel=1e-9)


def test_bad_dask_input_is_a_clear_error():
    X, _ = blobs(n=300, d=2, k=2, seed=7)
    bad = X.copy()
    bad[123, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(da.from_array(bad, chunks=100))
    with pytest.raises(ValueError, match="Negative"):
        GaussianMixture(2).fit(da.from_array(X, chunks=100), sample_weight=-np.ones(300))
    with pytest.raises(ValueError, match="binary"):
        BernoulliMixture(2).fit(da.from_array(X, chunks=100))
    with pytest.raises(ValueError, match="Negative"):
        LatentDirichletAllocation(2).fit(da.from_array(sp.csr_matrix(X), chunks=(100, -1),
                                                       asarray=False))
    gm = quiet_fit(GaussianMixture(2, random_state=0), X)
    with pytest.raises(ValueError, match="features"):
        gm.set_params(warm_start=True).fit(da.from_array(np.hstack([X, X]), chunks=100))


# ----------------------------------------------------------------------------- chunked == batch
def test_chunked_statistics_equal_batch_for_every_model():
    """The E-step over row chunks, summed, is the E-step over all rows (to 1e-10)."""
    from emkit.models.bernoulli import BernoulliModel, BernoulliParams
    from emkit.models.gaussian import GaussianModel, GaussianParams
    from emkit.models.lda import LDAModel

    X, _ = blobs(n=1000, d=3, k=2, seed=8)
    w = np.random.default_rng(3).uniform(size=1000)
    cuts = [slice(0, 137), slice(137, 600), slice(600, 1000)]

    def check(model, params, data, fields):
        full, _ = model.e_step(params, data, w, None)
        parts = [model.e_step(params, data[c], w[c], None)[0] for c in cuts]
        total = parts[0] + parts[1] + parts[2]
        scale = max(abs(full.log_evidence) if np.isfinite(full.log_evidence) else 0.0,
                    full.total_weight)
        for f in fields:
            np.testing.assert_allclose(getattr(total, f), getattr(full, f), rtol=1e-10,
                                       atol=1e-12 * scale)

    for ct in COV_TYPES:
        wi, m, p = random_params(2, 3, ct, seed=9)
        from emkit.models.gaussian import precision_cholesky_from_precisions

        params = GaussianParams(wi, m, precision_cholesky_from_precisions(p, ct), ct)
        check(GaussianModel(ct, center=X.mean(0)), params, X,
              ["nk", "sx", "sxx", "log_evidence", "entropy", "total_weight"])
    for ct in COV_TYPES:  # variational Bayes: Q(theta) from a fit's M-step
        vb = quiet_fit(BayesianGaussianMixture(n_components=2, covariance_type=ct,
                                               max_iter=2, random_state=0), X)
        check(vb._model_, vb._params_, X, ["nk", "sx", "sxx", "entropy", "total_weight"])
    B = (X > 0).astype(np.float64)
    check(BernoulliModel(alpha=1.0), BernoulliParams(np.array([0.4, 0.6]),
                                                     np.full((2, 3), 0.3) + [[0], [0.4]]),
          B, ["nk", "sx", "log_evidence", "entropy"])
    C = corpus(n=1000, v=30, k=2)
    lda = LDAModel(2, 0.5, 0.5)
    params = lda.params(np.random.default_rng(4).gamma(100, 0.01, size=(2, 30)))
    check(lda, params, C, ["word_topic", "elog_theta", "n_docs", "doc_rest", "total_weight"])


def test_memory_mapped_input_fits_like_in_memory(tmp_path):
    X, _ = blobs(n=2000, d=3, k=3, seed=10)
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    kw = dict(max_iter=10, tol=0.0, **gmm_init(3, 3, "full"))
    a = quiet_fit(GaussianMixture(3, **kw), X)
    b = quiet_fit(GaussianMixture(3, **kw), Xm)
    assert_same_gmm(a, b, rtol=1e-12)
    np.testing.assert_array_equal(np.load(path), X)  # the file is untouched


@pytest.mark.parametrize("given", ["all", "means"])
def test_fit_memory_is_bounded_by_blocks_not_rows(monkeypatch, given):
    """The memory a fit adds does not grow with N (blocks + statistics + the initialisation's
    bounded subsample, never N x K)."""
    import tracemalloc

    monkeypatch.setattr(_base, "INIT_MAX_ROWS", 5_000)
    init = gmm_init(4, 4, "full")
    if given == "means":
        init = dict(means_init=init["means_init"])

    def peak(n):
        X, _ = blobs(n=n, d=4, k=4, seed=11)
        tracemalloc.start()
        quiet_fit(GaussianMixture(4, max_iter=2, tol=0, random_state=0, **init), X)
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out, X.nbytes

    small, _ = peak(200_000)
    big, nbytes = peak(800_000)
    assert big < small + 0.05 * nbytes, (small, big, nbytes)


# ----------------------------------------------------------------------------- LocalCluster
def e_step_tasks(stream):
    return [t for t in stream if str(t["key"]).startswith(E_STEP_PREFIX)]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cluster_fit_equals_in_memory_and_runs_on_the_workers(client):
    X, _ = blobs(n=2000, d=3, k=3, seed=12)
    Xd = client.persist(da.from_array(X, chunks=400))  # 5 blocks, held by the workers
    kw = dict(max_iter=6, tol=0.0, **gmm_init(3, 3, "full"))
    a = quiet_fit(GaussianMixture(3, **kw), X)
    with distributed.get_task_stream(client) as ts:
        b = quiet_fit(GaussianMixture(3, **kw), Xd)
    assert_same_gmm(a, b)
    tasks = e_step_tasks(ts.data)
    # one E-step per block for the first E-step and after every M-step
    assert len(tasks) == 5 * (b.n_iter_ + 1)
    workers = set(client.scheduler_info()["workers"])
    assert {t["worker"] for t in tasks} <= workers
    assert len({t["worker"] for t in tasks}) == 2  # both workers did E-steps


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cluster_lda_keeps_document_state_on_the_workers(client):
    X = corpus(n=400)
    Xd = da.from_array(X, chunks=(100, -1), asarray=False)
    kw = dict(n_components=3, random_state=0, max_iter=6, check_monotonic="raise")
    a = quiet_fit(LatentDirichletAllocation(**kw), X)
    with distributed.get_task_stream(client) as ts:
        b = quiet_fit(LatentDirichletAllocation(**kw), Xd)
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-9)
    assert np.all(np.diff(b.trace_.elbo) >= -1e-12 * np.abs(b.trace_.elbo[1:]))
    assert len(e_step_tasks(ts.data)) == 4 * (b.n_iter_ + 1)


def _killer(client, at=3):
    """A callback that kills one worker process (SIGKILL) after iteration ``at``."""
    pids = client.run(os.getpid)
    killed = []

    def kill_one(info):
        if info.iteration == at and not killed:
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    return kill_one, killed


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cluster_fit_survives_a_killed_worker(client):
    X, _ = blobs(n=3000, d=3, k=3, seed=13)
    kw = dict(max_iter=12, tol=0.0, **gmm_init(3, 3, "full"))
    a = quiet_fit(GaussianMixture(3, **kw), X)
    kill_one, killed = _killer(client)
    b = quiet_fit(GaussianMixture(3, callback=kill_one, **kw), da.from_array(X, chunks=500))
    assert killed
    assert_same_gmm(a, b)
    client.wait_for_workers(2, timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cluster_lda_survives_a_killed_worker(client):
    """The lost documents' state is recomputed from its lineage: the same fit, still monotone."""
    client.wait_for_workers(2, timeout=60)
    X = corpus(n=400)
    kw = dict(n_components=3, random_state=0, max_iter=8, check_monotonic="raise")
    a = quiet_fit(LatentDirichletAllocation(**kw), X)
    kill_one, killed = _killer(client)
    b = quiet_fit(LatentDirichletAllocation(callback=kill_one, **kw),
                  da.from_array(X, chunks=(100, -1), asarray=False))
    assert killed
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-9)
    client.wait_for_workers(2, timeout=60)


# ----------------------------------------------------------------------------- edges
def test_empty_blocks_from_a_boolean_filter():
    X, _ = blobs(n=400, d=3, k=2, seed=14)
    Xd = da.from_array(X, chunks=100)
    Xf = Xd[Xd[:, 0] > np.quantile(X[:, 0], 0.3)]  # unknown chunks, some may be empty
    Xf = da.concatenate([Xf, da.zeros((0, 3), chunks=((0,), (3,)))])  # an empty block for sure
    kept = X[X[:, 0] > np.quantile(X[:, 0], 0.3)]
    kw = dict(max_iter=5, tol=0.0, **gmm_init(2, 3, "full"))
    a = quiet_fit(GaussianMixture(2, **kw), kept)
    b = quiet_fit(GaussianMixture(2, **kw), Xf)
    assert_same_gmm(a, b)
    Xe = da.concatenate([da.from_array(kept, chunks=100), da.zeros((0, 3), chunks=((0,), (3,)))])
    np.testing.assert_array_equal(b.predict(Xe).compute(), a.predict(kept))
    assert b.score(Xe) == pytest.approx(a.score(kept), rel=1e-12)
    C = corpus(n=200)
    Cd = da.concatenate([da.from_array(C, chunks=(100, -1), asarray=False),
                         da.from_array(C[:0], chunks=((0,), (C.shape[1],)), asarray=False)])
    lda = quiet_fit(LatentDirichletAllocation(3, random_state=0, max_iter=3), Cd)
    ref = quiet_fit(LatentDirichletAllocation(3, random_state=0, max_iter=3), C)
    np.testing.assert_allclose(lda.components_, ref.components_, rtol=1e-9)


def test_in_memory_rows_with_dask_weights():
    X, _ = blobs(n=500, d=2, k=2, seed=15)
    w = np.random.default_rng(5).uniform(0.5, 1.5, size=500)
    kw = dict(max_iter=5, tol=0.0, **gmm_init(2, 2, "diag"))
    a = quiet_fit(GaussianMixture(2, **kw), X, sample_weight=w)
    b = quiet_fit(GaussianMixture(2, **kw), X, sample_weight=da.from_array(w, chunks=120))
    assert_same_gmm(a, b)


def test_lazy_outputs_declare_the_dtype_they_compute():
    X, _ = blobs(n=300, d=2, k=2, seed=16)
    gm = quiet_fit(GaussianMixture(2, random_state=0), X.astype(np.float32))
    for Xq in (X, X.astype(np.float32)):
        Xd = da.from_array(Xq, chunks=100)
        for method in ("predict_proba", "score_samples"):
            out = getattr(gm, method)(Xd)
            assert out.dtype == out.compute().dtype, (method, Xq.dtype)


@pytest.mark.parametrize("est", ["gmm", "bmm"])
def test_partial_fit_on_dask_equals_in_memory(est):
    rng = np.random.default_rng(6)
    if est == "gmm":
        X, _ = blobs(n=600, d=2, k=2, seed=17)
        make = lambda: GaussianMixture(2, random_state=0)  # noqa: E731
    else:
        X = (rng.uniform(size=(600, 8)) < 0.3).astype(np.float64)
        make = lambda: BernoulliMixture(2, random_state=0)  # noqa: E731
    a, b = make(), make()
    for part in np.array_split(np.arange(600), 3):
        a.partial_fit(X[part])
        b.partial_fit(da.from_array(X[part], chunks=70))
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-9)
    np.testing.assert_allclose(b.trace_.elbo_after_e, a.trace_.elbo_after_e, rtol=1e-9)


def test_lda_partial_fit_on_dask_equals_in_memory():
    X = corpus(n=300)
    kw = dict(n_components=3, random_state=0, batch_size=64, total_samples=600)
    a, b = LatentDirichletAllocation(**kw), LatentDirichletAllocation(**kw)
    for sl in (slice(0, 150), slice(150, 300)):
        a.partial_fit(X[sl])
        b.partial_fit(da.from_array(X[sl], chunks=(100, -1), asarray=False))
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-9)
