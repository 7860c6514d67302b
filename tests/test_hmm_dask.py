"""HMM fits on dask arrays (whole sequences per block) equal in-memory fits; on a real
LocalCluster the E-steps run on the workers, one task per block per iteration. Inference on
dask (predict, predict_proba, score_samples, decode, score) is lazy, chunked at sequence
starts, validated block by block, and equals the in-memory results."""

import warnings

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import emkit  # noqa: E402
from emkit._dask import sequence_chunks  # noqa: E402

from .test_dask import client, e_step_tasks  # noqa: E402, F401  (the LocalCluster fixture)


def _gaussian(seed=0, missing=False):
    rng = np.random.default_rng(seed)
    lengths = [30, 50, 20, 45, 55]
    states = np.concatenate([np.repeat(rng.integers(3, size=n // 5), 5) for n in lengths])
    X = rng.normal(size=(len(states), 2)) + np.array([[-3.0, 0], [0, 2], [3, -1]])[states]
    if missing:
        X[rng.random(X.shape) < 0.1] = np.nan
    return X, lengths


def _symbols(seed=1):
    rng = np.random.default_rng(seed)
    lengths = [30, 50, 20, 45, 55]
    return rng.integers(5, size=(sum(lengths), 1)), lengths


def _same(a, b, names, rtol=1e-9):
    for name in names:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=rtol, atol=1e-12)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.trace_.elbo_after_e, a.trace_.elbo_after_e, rtol=rtol)
    assert list(b.monitor_.history) == pytest.approx(list(a.monitor_.history), rel=rtol)


def _fit(est, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=emkit.MonotonicityWarning)
        return est.fit(X, **kw)


GAUSS = ("startprob_", "transmat_", "means_", "_covars_")


def test_sequence_chunks_move_boundaries_to_sequence_starts():
    starts = np.array([0, 30, 80, 100, 145, 200])
    # boundaries 40, 80, 120, 160 move to the starts 80, 80, 145, 200
    assert sequence_chunks((40, 40, 40, 40, 40), starts) == (80, 65, 55)
    assert sequence_chunks((80, 20, 100), starts) == (80, 20, 100)  # aligned: kept
    assert sequence_chunks((200,), starts) == (200,)


@pytest.mark.parametrize("ct, missing", [("diag", True), ("full", False), ("tied", True)])
def test_gaussian_dask_equals_in_memory(ct, missing):
    X, lengths = _gaussian(missing=missing)
    kw = dict(n_components=3, covariance_type=ct, n_iter=6, tol=0.0, random_state=0)
    a = _fit(emkit.GaussianHMM(**kw), X, lengths=lengths)
    # chunks that cut sequences: moved to the sequence starts
    b = _fit(emkit.GaussianHMM(**kw), da.from_array(X, chunks=(40, 2)), lengths=lengths)
    _same(a, b, GAUSS)
    assert b.n_features_in_ == 2
    np.testing.assert_allclose(b.predict_proba(X, lengths), a.predict_proba(X, lengths),
                               atol=1e-9)


def test_categorical_dask_equals_in_memory_with_weights():
    x, lengths = _symbols()
    kw = dict(n_components=2, n_iter=5, tol=0.0, random_state=0)
    seq_w = np.array([1.0, 2.0, 0.0, 3.0, 1.0])
    row_w = np.random.default_rng(2).uniform(0.5, 2.0, size=len(x))
    xd = da.from_array(x, chunks=(50, 1))
    for w, wd in ((None, None), (seq_w, seq_w), (row_w, da.from_array(row_w, chunks=70))):
        a = _fit(emkit.CategoricalHMM(**kw), x, lengths=lengths, sample_weight=w)
        b = _fit(emkit.CategoricalHMM(**kw), xd, lengths=lengths, sample_weight=wd)
        _same(a, b, ("startprob_", "transmat_", "emissionprob_"))
        assert b.n_features == a.n_features == 5


def test_several_symbols_per_step_on_dask_and_kept_emissions():
    x = np.random.default_rng(4).integers(3, size=(200, 2))
    lengths = [30, 50, 20, 45, 55]
    kw = dict(n_components=2, n_iter=4, tol=0.0, random_state=0)
    a = _fit(emkit.CategoricalHMM(**kw), x, lengths=lengths)
    b = _fit(emkit.CategoricalHMM(**kw), da.from_array(x, chunks=(100, 2)), lengths=lengths)
    _same(a, b, ("startprob_", "transmat_", "emissionprob_"))
    b.set_params(init_params="")
    with pytest.raises(ValueError, match="models 2"):
        b.fit(da.from_array(x[:, :1], chunks=(100, 1)), lengths=lengths)


def test_bad_blocks_are_the_in_memory_errors():
    X, lengths = _gaussian()
    X = X.copy()
    X[130, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        emkit.GaussianHMM(2).fit(da.from_array(X, chunks=(50, 2)), lengths=lengths)
    x, lengths = _symbols()
    with pytest.raises(ValueError, match="integers"):
        emkit.CategoricalHMM(2).fit(da.from_array(x + 0.5, chunks=(50, 1)), lengths=lengths)
    with pytest.raises(ValueError, match="sum to 199"):
        emkit.CategoricalHMM(2).fit(da.from_array(x, chunks=(50, 1)), lengths=[199])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cluster_hmm_fit_equals_in_memory_and_runs_on_the_workers(client):  # noqa: F811
    X, lengths = _gaussian(3)
    Xd = client.persist(da.from_array(X, chunks=((80, 65, 55), (2,))))  # whole sequences
    kw = dict(n_components=3, covariance_type="full", n_iter=5, tol=0.0, random_state=0)
    a = _fit(emkit.GaussianHMM(**kw), X, lengths=lengths)
    with distributed.get_task_stream(client) as ts:
        b = _fit(emkit.GaussianHMM(**kw), Xd, lengths=lengths)
    _same(a, b, GAUSS)
    tasks = e_step_tasks(ts.data)
    assert len(tasks) == 3 * (b.n_iter_ + 1)  # one per block, first E-step and every M-step
    workers = set(client.scheduler_info()["workers"])
    assert {t["worker"] for t in tasks} <= workers
    assert len({t["worker"] for t in tasks}) == 2


# ---------------------------------------------------------------- inference on dask
def _is_lazy(*values):
    from dask import is_dask_collection

    return all(is_dask_collection(v) for v in values)


def _gaussian_fitted(ct="diag", missing=False):
    X, lengths = _gaussian(missing=missing)
    kw = dict(n_components=3, covariance_type=ct, n_iter=4, tol=0.0, random_state=0)
    return _fit(emkit.GaussianHMM(**kw), X, lengths=lengths), X, lengths


def _check_inference(est, X, Xd, lengths, chunks):
    """Every inference method on ``Xd`` is lazy, chunked at ``chunks`` (the sequence starts)
    and equal to the in-memory result."""
    tol = dict(rtol=1e-10, atol=1e-10)
    lp, post = est.score_samples(Xd, lengths)
    assert _is_lazy(lp, post) and lp.shape == () and post.chunks[0] == chunks
    ref_lp, ref_post = est.score_samples(X, lengths)
    lp, post = dask.compute(lp, post)
    assert float(lp) == pytest.approx(ref_lp, rel=1e-10)
    np.testing.assert_allclose(post, ref_post, **tol)
    proba = est.predict_proba(Xd, lengths)
    assert _is_lazy(proba) and proba.chunks == (chunks, (est.n_components,))
    assert proba.dtype == ref_post.dtype
    np.testing.assert_allclose(proba.compute(), ref_post, **tol)
    for algorithm in ("viterbi", "map"):
        lp, states = est.decode(Xd, lengths, algorithm=algorithm)
        assert _is_lazy(lp, states) and states.chunks == (chunks,)
        ref_lp, ref_states = est.decode(X, lengths, algorithm=algorithm)
        assert float(lp) == pytest.approx(ref_lp, rel=1e-10)
        np.testing.assert_array_equal(states.compute(), ref_states)
    labels = est.predict(Xd, lengths)
    assert _is_lazy(labels) and labels.chunks == (chunks,)
    np.testing.assert_array_equal(labels.compute(), est.predict(X, lengths))
    score = est.score(Xd, lengths)  # positionally, as hmmlearn's
    assert isinstance(score, float)
    assert score == pytest.approx(est.score(X, lengths), rel=1e-10)
    assert est.bic(Xd, lengths) == pytest.approx(est.bic(X, lengths), rel=1e-10)


@pytest.mark.parametrize("ct, missing", [("diag", True), ("full", False), ("spherical", False)])
def test_gaussian_inference_on_dask_is_lazy_and_equals_in_memory(ct, missing):
    est, X, lengths = _gaussian_fitted(ct, missing)
    # boundaries 40, 80, 120, 160 inside sequences: moved to the starts 80, 145, 200
    _check_inference(est, X, da.from_array(X, chunks=(40, 2)), lengths, (80, 65, 55))
    _check_inference(est, X, da.from_array(X, chunks=((80, 20, 100), (1, 1))), lengths,
                     (80, 20, 100))  # aligned row chunks kept, column chunks merged
    X32 = X.astype(np.float32)
    assert est.predict_proba(da.from_array(X32, chunks=(40, 2)), lengths).dtype == np.float32


def test_categorical_inference_on_dask_is_lazy_and_equals_in_memory():
    x, lengths = _symbols()
    est = _fit(emkit.CategoricalHMM(2, n_iter=4, tol=0.0, random_state=0), x, lengths=lengths)
    # boundaries 50, 100, 150 move to the starts 80, 100, 200
    _check_inference(est, x, da.from_array(x, chunks=(50, 1)), lengths, (80, 20, 100))
    x2 = np.random.default_rng(4).integers(3, size=(200, 2))  # two symbols per step
    est2 = _fit(emkit.CategoricalHMM(2, n_iter=3, tol=0.0, random_state=0), x2, lengths=lengths)
    _check_inference(est2, x2, da.from_array(x2, chunks=(100, 2)), lengths, (100, 100))
    for one in (x2[:, :1], da.from_array(x2[:, :1], chunks=(100, 1))):
        with pytest.raises(ValueError, match="expecting 2 features"):
            est2.predict(one, lengths)


_READS = []


def _counted(block):
    _READS.append(len(block))
    return block


def _boom(block):
    raise RuntimeError("a block was computed")


def test_a_tuple_is_one_pass_over_the_blocks_and_nothing_runs_before_compute(monkeypatch):
    est, X, lengths = _gaussian_fitted()
    runs = []
    infer = emkit.GaussianHMM._infer

    def counted(self, seqs, what, **kw):
        runs.append((what, seqs.X.shape[0]))
        return infer(self, seqs, what, **kw)

    monkeypatch.setattr(emkit.GaussianHMM, "_infer", counted)
    Xd = da.from_array(X, chunks=((80, 65, 55), (2,))).map_blocks(_counted, dtype=X.dtype)
    _READS.clear()
    lp, states = est.decode(Xd, lengths)
    post = est.predict_proba(Xd, lengths)
    assert _READS == [] and runs == []  # lazy: no block read, nothing inferred yet
    dask.compute(lp, states, post, scheduler="threads")  # here, whatever client is active
    # each block read once; the log-probability and the states share their block tasks
    assert sorted(_READS) == [55, 65, 80]
    assert sorted(runs) == [("posteriors", n) for n in (55, 65, 80)] + [
        ("viterbi", n) for n in (55, 65, 80)]


def test_bad_input_is_a_value_error_before_any_work():
    est, X, lengths = _gaussian_fitted()
    Xd = da.from_array(X, chunks=(40, 2)).map_blocks(_boom, dtype=X.dtype)
    bad_lengths = {"sum to 199": [30, 50, 20, 45, 54], "positive": [30, 50, 20, 45, 55, 0],
                   "integers": [30, 50, 20.5, 44.5, 55]}
    for method in ("predict", "predict_proba", "score_samples", "decode", "score"):
        for match, bad in bad_lengths.items():
            with pytest.raises(ValueError, match=match):
                getattr(est, method)(Xd, lengths=bad)
        with pytest.raises(ValueError, match="3 features"):
            getattr(est, method)(da.from_array(np.zeros((200, 3)), chunks=50), lengths=lengths)
    with pytest.raises(ValueError, match="2-D"):
        est.predict(da.zeros(200, chunks=50), lengths)
    est.transmat_ = est.transmat_ * 2
    with pytest.raises(ValueError, match="transmat_ rows must sum to 1"):
        est.predict(Xd, lengths)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the overflow below
def test_bad_blocks_raise_the_in_memory_errors_on_compute():
    est, X, lengths = _gaussian_fitted()
    X = X.copy()
    X[130, 1] = np.inf
    states = est.predict(da.from_array(X, chunks=(50, 2)), lengths)  # nothing checked yet
    with pytest.raises(ValueError, match="infinity"):
        states.compute()
    X[130, 1], X[150, 0] = 0.0, 1e200  # overflows sequence 4 (the third block): as in memory
    for method in ("score", "predict"):
        with pytest.raises(ValueError, match="sequence 4's log-likelihood is not a finite"):
            getattr(est, method)(X, lengths)
        with pytest.raises(ValueError, match="sequence 4's log-likelihood is not a finite"):
            dask.compute(getattr(est, method)(da.from_array(X, chunks=(50, 2)), lengths))
    x, lengths = _symbols()
    cat = _fit(emkit.CategoricalHMM(2, n_iter=2, random_state=0), x, lengths=lengths)
    for bad, match in ((x + 0.5, "integers"), (x + 1, r"0\.\.4"), (x - 1, "Negative")):
        with pytest.raises(ValueError, match=match):
            cat.predict_proba(da.from_array(bad, chunks=(50, 1)), lengths).compute()
        with pytest.raises(ValueError, match=match):
            cat.predict_proba(bad, lengths)  # the same error in memory


def test_feature_names_of_a_dask_dataframe():
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, lengths = _gaussian(missing=True)
    df = pd.DataFrame(X, columns=["a", "b"])
    ddf = dd.from_pandas(df, npartitions=3)
    kw = dict(n_components=3, n_iter=4, tol=0.0, random_state=0)
    a = _fit(emkit.GaussianHMM(**kw), df, lengths=lengths)
    b = _fit(emkit.GaussianHMM(**kw), ddf, lengths=lengths)
    _same(a, b, GAUSS)
    np.testing.assert_array_equal(b.feature_names_in_, ["a", "b"])
    np.testing.assert_array_equal(a.feature_names_in_, ["a", "b"])
    proba = b.predict_proba(ddf, lengths)
    assert _is_lazy(proba)
    np.testing.assert_allclose(proba.compute(), a.predict_proba(df, lengths), atol=1e-10)
    assert b.score(ddf, lengths) == pytest.approx(a.score(df, lengths), rel=1e-10)
    renamed = ddf.rename(columns={"a": "z"})
    for method in ("predict", "predict_proba", "score_samples", "decode", "score"):
        with pytest.raises(ValueError, match="Feature names unseen at fit time"):
            getattr(b, method)(renamed, lengths)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        b.predict(da.from_array(X, chunks=(50, 2)), lengths)
    # fitted on a dask array: no names, and a dataframe later is warned about
    c = _fit(emkit.GaussianHMM(**kw), da.from_array(X, chunks=(50, 2)), lengths=lengths)
    assert not hasattr(c, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        c.predict(ddf, lengths)
    b.fit(da.from_array(X, chunks=(50, 2)), lengths=lengths)  # a refit forgets them
    assert not hasattr(b, "feature_names_in_")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cluster_inference_runs_on_the_workers(client):  # noqa: F811
    est, X, lengths = _gaussian_fitted("full")
    est.callback = lambda *args: None  # the fit's callback does not travel to the workers
    Xd = client.persist(da.from_array(X, chunks=(40, 2)))
    with distributed.get_task_stream(client) as ts:
        lp, post = est.score_samples(Xd, lengths)
        lp, post = dask.compute(lp, post)
        score = est.score(Xd, lengths)
    ref_lp, ref_post = est.score_samples(X, lengths)
    assert float(lp) == pytest.approx(ref_lp, rel=1e-10)
    assert score == pytest.approx(ref_lp, rel=1e-10)
    np.testing.assert_allclose(post, ref_post, rtol=1e-10, atol=1e-10)
    tasks = [t for t in ts.data
             if str(t["key"]).startswith(("emkit-hmm-posteriors", "emkit-hmm-score"))]
    assert len(tasks) == 2 * 3  # one per block (80, 65, 55) per call
    assert {t["worker"] for t in tasks} <= set(client.scheduler_info()["workers"])
