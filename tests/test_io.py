"""emkit.save / emkit.load: round trips for every estimator, and hostile files."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import emkit
from emkit import (
    BayesianGaussianMixture,
    BernoulliMixture,
    CategoricalHMM,
    GaussianHMM,
    GaussianMixture,
    LatentDirichletAllocation,
)

from ._helpers import blobs

X, _ = blobs(n=200, d=3, k=3, seed=3)
XB = (X > 0).astype(np.float64)
SYMBOLS = np.random.default_rng(1).integers(0, 4, size=(120, 1))
COUNTS = sp.csr_matrix(np.random.default_rng(0).poisson(1.0, size=(80, 15)).astype(float))


def _fitted():
    return [
        (GaussianMixture(3, covariance_type=ct, n_init=2, random_state=0).fit(X), X)
        for ct in ("full", "tied", "diag", "spherical")
    ] + [
        (BernoulliMixture(3, random_state=0).fit(XB), XB),
        (BernoulliMixture(2, random_state=0).fit(sp.csr_matrix(XB)), sp.csr_matrix(XB)),
        (LatentDirichletAllocation(3, random_state=0, max_iter=5).fit(COUNTS), COUNTS),
        (LatentDirichletAllocation(3, random_state=0, max_iter=3, learning_method="online",
                                   optimize_doc_topic_prior=True).fit(COUNTS), COUNTS),
        (GaussianMixture(2, random_state=0).fit(X.astype(np.float32)), X.astype(np.float32)),
        (BayesianGaussianMixture(n_components=3, random_state=0).fit(X), X),
        (GaussianHMM(2, covariance_type="full", n_iter=5, random_state=0).fit(X), X),
        (CategoricalHMM(2, n_iter=5, random_state=0).fit(SYMBOLS), SYMBOLS),
    ]


def _outputs(model, data):
    if isinstance(model, (GaussianHMM, CategoricalHMM)):
        log_prob, states = model.decode(data)
        return [model.predict_proba(data), np.array(model.score(data)), states,
                np.array(log_prob), np.array(list(model.monitor_.history))]
    if isinstance(model, LatentDirichletAllocation):
        return [model.transform(data), np.array(model.score(data)),
                np.array(model.perplexity(data))]
    return [model.predict(data), model.predict_proba(data), model.score_samples(data)]


@pytest.mark.parametrize("model,data", _fitted(), ids=lambda v: type(v).__name__)
def test_round_trip_gives_identical_predictions(model, data, tmp_path):
    path = tmp_path / "model.npz"
    emkit.save(model, path)
    loaded = emkit.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    for a, b in zip(_outputs(model, data), _outputs(loaded, data), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(loaded.trace_.elbo, model.trace_.elbo)
    for name in vars(model):
        if name.endswith("_") and isinstance(getattr(model, name), np.ndarray):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))


def test_loaded_models_keep_fitting_as_the_saved_ones(tmp_path):
    gm = GaussianMixture(2, warm_start=True, max_iter=3, random_state=0).fit(X)
    emkit.save(gm, tmp_path / "g.npz")
    again = emkit.load(tmp_path / "g.npz")
    np.testing.assert_array_equal(again.fit(X).means_, gm.fit(X).means_)
    lda = LatentDirichletAllocation(2, random_state=0, max_iter=2).fit(COUNTS)
    emkit.save(lda, tmp_path / "l.npz")
    loaded = emkit.load(tmp_path / "l.npz")
    np.testing.assert_array_equal(loaded.partial_fit(COUNTS).components_,
                                  lda.partial_fit(COUNTS).components_)


def test_array_parameters_are_saved_and_callables_are_not(tmp_path):
    seen = []
    gm = GaussianMixture(2, means_init=X[:2], weights_init=[0.3, 0.7], random_state=0,
                         callback=seen.append).fit(X)
    assert seen
    emkit.save(gm, tmp_path / "m.npz")
    loaded = emkit.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.means_init, X[:2])
    assert loaded.weights_init == [0.3, 0.7]
    assert loaded.callback is None
    unfitted = emkit.load(_saved(GaussianMixture(4, random_state=np.random.RandomState(1)),
                                 tmp_path))
    assert unfitted.n_components == 4 and unfitted.random_state is None
    assert not hasattr(unfitted, "means_")


def _saved(model, tmp_path, name="x.npz"):
    path = tmp_path / name
    emkit.save(model, path)
    return path


def test_pickling_still_works():
    gm = GaussianMixture(2, random_state=0).fit(X)
    again = pickle.loads(pickle.dumps(gm))
    np.testing.assert_array_equal(again.predict_proba(X), gm.predict_proba(X))


def _rewrite(path, out, change):
    """Copy the emkit file at ``path`` to ``out`` with its metadata passed through ``change``."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["__emkit__"][()]))
    change(meta)
    arrays["__emkit__"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)
    return out


class _RunsCode:
    """Unpickling this writes a file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_files_are_value_errors_that_run_no_code(tmp_path):
    good = _saved(GaussianMixture(2, random_state=0).fit(X), tmp_path, "good.npz")
    marker = tmp_path / "code-ran"
    # an object array whose unpickling would run code, beside valid metadata
    with np.load(good, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["a0"] = np.array([_RunsCode(marker)], dtype=object)
    np.savez(tmp_path / "object.npz", **arrays)
    pickled = tmp_path / "pickle.npz"
    with open(pickled, "wb") as fh:
        pickle.dump(_RunsCode(marker), fh)
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    np.savez(tmp_path / "foreign.npz", X=X)
    np.save(tmp_path / "plain.npy", X)
    (tmp_path / "text.npz").write_text("hello")
    bad_json = tmp_path / "badjson.npz"
    np.savez(bad_json, __emkit__=np.array("{not json"))
    cases = {
        "object.npz": "object arrays",
        "pickle.npz": "not a readable",
        "truncated.npz": "not a readable",
        "foreign.npz": "no emkit metadata",
        "plain.npy": "not an .npz",
        "text.npz": "not a readable",
        "badjson.npz": "damaged metadata",
    }
    cases[_rewrite(good, tmp_path / "cls.npz", lambda m: m.update({"class": "os.system"})).name
          ] = "unknown estimator class 'os.system'"
    cases[_rewrite(good, tmp_path / "new.npz", lambda m: m.update({"format_version": 99})).name
          ] = "format version 99 is newer"
    cases[_rewrite(good, tmp_path / "value.npz", lambda m: m["state"].update(
        {"x_": {"__value__": "subprocess.Popen", "fields": {"args": ["touch", str(marker)]}}}
    )).name] = "unknown value type 'subprocess.Popen'"
    cases[_rewrite(good, tmp_path / "param.npz", lambda m: m["params"].update(
        {"evil": 1})).name] = "no parameter"
    cases[_rewrite(good, tmp_path / "dunder.npz", lambda m: m["state"].update(
        {"__class__": 1})).name] = "unexpected attribute"
    cases[_rewrite(good, tmp_path / "method.npz", lambda m: m["state"].update(
        {"predict": 1})).name] = "unexpected attribute 'predict'"
    # a dataclass that an emkit module imports from elsewhere is not one of emkit's values
    cases[_rewrite(good, tmp_path / "foreign_value.npz", lambda m: m["state"].update(
        {"x_": {"__value__": "emkit.estimators.bernoulli_mixture.ClassifierTags",
                "fields": {}}})).name] = "unknown value type"
    deep = tmp_path / "deep.npz"
    np.savez(deep, __emkit__=np.array("[" * 200_000 + "]" * 200_000))
    cases[deep.name] = "damaged metadata"
    (tmp_path / "model.csv").write_text("1,2\n3,4\n")
    cases["model.csv"] = "not an .npz archive"
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message):
            emkit.load(tmp_path / name)
    assert not marker.exists()
    with pytest.raises(FileNotFoundError):
        emkit.load(tmp_path / "missing.npz")


def test_the_file_is_a_plain_npz_with_json_metadata(tmp_path):
    path = _saved(BernoulliMixture(2, random_state=0).fit(XB), tmp_path)
    with zipfile.ZipFile(path) as zf:
        assert all(n.endswith(".npy") for n in zf.namelist())
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__emkit__"][()]))
    assert meta["class"] == "BernoulliMixture"
    assert meta["emkit_version"] == emkit.__version__
    assert meta["params"]["n_components"] == 2
    assert meta["dropped_params"] == []


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="not an emkit estimator"):
        from sklearn.mixture import GaussianMixture as Sk

        emkit.save(Sk(), tmp_path / "x.npz")
    gm = GaussianMixture(2)
    gm.extra_ = io.StringIO()
    with pytest.raises(TypeError, match="extra_"):
        emkit.save(gm, tmp_path / "x.npz")
    gm.extra_ = np.array([object()], dtype=object)
    with pytest.raises(TypeError, match="object array"):
        emkit.save(gm, tmp_path / "x.npz")
