"""HMM fits on dask arrays (whole sequences per block) equal in-memory fits; on a real
LocalCluster the E-steps run on the workers, one task per block per iteration."""

import warnings

import numpy as np
import pytest

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
