"""The ``emkit`` command through ``subprocess``, as a user types it.

Every run is ``python -m emkit ...`` with this tree on PYTHONPATH; independent runs go in
parallel (each pays the interpreter's start and emkit's imports).
"""

import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import emkit
from emkit._demo import dishonest_casino, regime_series

from ._helpers import blobs

ROOT = str(Path(__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": ROOT, "MPLBACKEND": "Agg"}


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "emkit", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=120)


def run_all(commands, cwd=None):
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda c: run(*c, cwd=cwd), commands))


def _chain(*commands):
    """Run commands one after the other (a fit, then its predict); stop at a failure."""
    def go(cwd):
        out = []
        for c in commands:
            out.append(run(*c, cwd=cwd))
            if out[-1].returncode:
                break
        return out
    return go


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    X, _ = blobs(n=150, d=3, k=3, seed=7)
    np.savetxt(d / "x.csv", X, delimiter=",", header="a,b,c", comments="")
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.poisson(0.8, size=(50, 16)).astype(float))
    sp.save_npz(d / "counts.npz", counts)
    scipy.io.mmwrite(str(d / "counts.mtx"), counts)
    np.save(d / "bin.npy", (X > 0).astype(float))
    words = ["cat", "dog", "mouse", "star", "moon", "planet", "orbit", "pet"]
    docs = [" ".join(rng.choice(words, size=8)) for _ in range(40)]
    (d / "docs.txt").write_text("\n".join(docs) + "\n")
    np.save(d / "cube.npy", np.zeros((2, 2, 2)))
    (d / "bad.csv").write_text("1,2\nthree,four\n")
    (d / "x.json").write_text("{}")
    (d / "empty.npz").write_bytes(b"")
    # sequences for the HMMs: dice rolls (symbols 0..5) and a 1-D series, 3 sequences each
    rolls, _, _ = dishonest_casino(n_sequences=3, length=20, seed=3)
    np.savetxt(d / "rolls.csv", rolls, fmt="%d")
    (d / "l3.txt").write_text("20\n\n20\n20\n")  # a blank line is skipped
    np.save(d / "l3.npy", np.array([20, 20, 20]))
    for name, text in [("lsum.txt", "20\n20\n"), ("lneg.txt", "70\n-10\n"),
                       ("lword.txt", "20\ntwenty\n20\n"), ("lempty.txt", ""),
                       ("lzero.txt", "0\n60\n")]:
        (d / name).write_text(text)
    np.save(d / "lfloat.npy", np.array([30.5, 29.5]))
    np.save(d / "l2d.npy", np.full((2, 2), 15))
    (d / "lgarbage.npy").write_bytes(b"not an array")
    return d, X, counts, docs


def _ok(p):
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return p.stdout


def test_fit_predict_round_trips(data):
    d, X, counts, docs = data
    chains = [
        _chain(("fit", "--model", "gmm", "-k", 3, "x.csv", "--covariance-type", "diag",
                "--n-init", 2, "--seed", 1, "--out", "g.npz", "--trace", "t.csv",
                "--plot", "t.png"),
               ("predict", "g.npz", "x.csv", "--proba")),
        _chain(("fit", "--model", "lda", "-k", 2, "counts.npz", "--max-iter", 5,
                "--out", "l.npz"), ("predict", "l.npz", "counts.mtx", "--proba")),
        _chain(("fit", "--model", "lda", "-k", 2, "docs.txt", "--max-iter", 5,
                "--out", "lt.npz"), ("predict", "lt.npz", "docs.txt", "--proba")),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: c(d), chains))
    (fit_g, proba), (fit_l, lproba), (fit_t, tproba) = [
        [_ok(p) for p in r] for r in results]

    # the per-iteration table, then the summary line
    gm = emkit.load(d / "g.npz")
    assert gm.covariance_type == "diag" and gm.n_init == 2 and gm.random_state == 1
    lines = fit_g.splitlines()
    assert lines[0].split() == ["init", "iteration", "ELBO", "change", "seconds"]
    rows = [ln.split() for ln in lines[1:] if ln.split() and ln.split()[0].isdigit()]
    kept = [r for r in rows if int(r[0]) == gm.best_init_]
    np.testing.assert_allclose([float(r[2]) for r in kept], gm.trace_.elbo_after_e[1:],
                               rtol=1e-7)
    assert "converged" in fit_g and "g.npz" in fit_g
    # predictions equal the saved model's (labels: the same command, in-process)
    from emkit.cli import main

    with redirect_stdout(io.StringIO()) as labels:
        assert main(["predict", str(d / "g.npz"), str(d / "x.csv")]) == 0
    np.testing.assert_array_equal(np.array(labels.getvalue().split(), dtype=int), gm.predict(X))
    np.testing.assert_allclose(np.loadtxt(proba.splitlines(), delimiter=","),
                               gm.predict_proba(X), rtol=1e-8, atol=1e-12)
    # the trace CSV and its picture
    table = np.loadtxt(d / "t.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 1], gm.trace_.elbo_after_e)
    assert (d / "t.png").read_bytes()[:4] == b"\x89PNG"
    # lda on sparse .npz, predicted on .mtx of the same counts
    lda = emkit.load(d / "l.npz")
    np.testing.assert_allclose(np.loadtxt(lproba.splitlines(), delimiter=","),
                               lda.transform(counts), rtol=1e-8)
    assert "per token" in fit_l
    # lda on text: the vocabulary travels with the model
    lt = emkit.load(d / "lt.npz")
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer().fit(docs)
    np.testing.assert_array_equal(lt.vocabulary_, vec.get_feature_names_out())
    np.testing.assert_allclose(np.loadtxt(tproba.splitlines(), delimiter=","),
                               lt.transform(vec.transform(docs)), rtol=1e-8)


def test_bmm_on_npy_and_bench_in_process(data, capsys):
    from emkit.cli import main

    d, X, _, _ = data
    assert main(["fit", "--model", "bmm", "-k", "2", str(d / "bin.npy"), "--n-init", "2",
                 "--out", str(d / "b.npz")]) == 0
    capsys.readouterr()
    assert main(["predict", str(d / "b.npz"), str(d / "bin.npy")]) == 0
    labels = np.array(capsys.readouterr().out.split(), dtype=int)
    bm = emkit.load(d / "b.npz")
    assert bm.n_init == 2
    np.testing.assert_array_equal(labels, bm.predict((X > 0).astype(float)))
    assert main(["fit", "--model", "lda", "-k", "2", str(d / "counts.mtx"), "--max-iter", "3",
                 "--out", str(d / "lm.npz")]) == 0
    capsys.readouterr()
    assert main(["predict", str(d / "lm.npz"), str(d / "counts.mtx")]) == 0
    lm = emkit.load(d / "lm.npz")
    np.testing.assert_array_equal(np.array(capsys.readouterr().out.split(), dtype=int),
                                  np.argmax(lm.transform(data[2]), axis=1))
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "GaussianMixture" in out and "LatentDirichletAllocation" in out and "x " in out


def test_bgmm_fit_and_predict_in_process(data, capsys):
    from emkit.cli import main

    d, X, _, _ = data
    assert main(["fit", "--model", "bgmm", "-k", "4", str(d / "x.csv"), "--covariance-type",
                 "diag", "--out", str(d / "v.npz")]) == 0
    assert "BayesianGaussianMixture K=4" in capsys.readouterr().out
    assert main(["predict", str(d / "v.npz"), str(d / "x.csv")]) == 0
    vb = emkit.load(d / "v.npz")
    assert isinstance(vb, emkit.BayesianGaussianMixture) and vb.covariance_type == "diag"
    np.testing.assert_array_equal(np.array(capsys.readouterr().out.split(), dtype=int),
                                  vb.predict(X))


def test_select_prints_the_table_and_demo_writes_its_pictures(data, tmp_path):
    d, X, _, _ = data
    select = ("select", "--model", "gmm", "-k", "1-3", str(d / "x.csv"),
              "--covariance-type", "full,spherical", "--plot", str(tmp_path / "sel.png"))
    with ThreadPoolExecutor(max_workers=2) as pool:  # the demo beside the two short runs
        demo = pool.submit(run, "demo", "--out", str(tmp_path / "pics"))
        sel, short = run(*select), run()
        demo = demo.result()
    out = _ok(sel)
    result = emkit.select(emkit.GaussianMixture(random_state=0), X,
                          {"n_components": [1, 2, 3], "covariance_type": ["full", "spherical"]})
    body = [ln for ln in out.splitlines()[1:] if ln[2:].split()[:1] in (["full"], ["spherical"])]
    assert len(body) == 6
    for ln, bic in zip(body, result.results_["bic"], strict=True):
        assert float(ln[2:].split()[2]) == pytest.approx(bic, abs=1e-4)
    assert body[result.best_index_].startswith("*")
    assert (tmp_path / "sel.png").exists()

    out = _ok(demo)
    for name in ["GaussianMixture", "BernoulliMixture", "LatentDirichletAllocation",
                 "elbo_after_e"]:
        assert name in out
    pics = sorted(p.name for p in (tmp_path / "pics").iterdir())
    keys = ("gmm", "bgmm", "bmm", "lda", "ghmm", "chmm")
    assert pics == sorted(
        [f"{m}_{kind}.png" for m in keys for kind in ("trace", "decomposition")]
        + ["gmm_ellipses.png", "bgmm_ellipses.png", "bmm_means.png", "lda_topics.png",
           "ghmm_states.png", "chmm_states.png"])
    for p in (tmp_path / "pics").iterdir():
        assert p.read_bytes()[:4] == b"\x89PNG"

    out = _ok(short)  # python -m emkit with no arguments: the short iris demo
    assert "iris" in out and "elbo_after_e" in out and "BernoulliMixture" not in out


BAD = [
    ("fit",),                                                       # missing everything
    ("fit", "--model", "hmm", "-k", 2, "x.csv"),                    # unknown model
    ("fit", "--model", "gmm", "-k", 0, "x.csv"),                    # K < 1
    ("fit", "--model", "gmm", "-k", "two", "x.csv"),                # K not a number
    ("fit", "--model", "gmm", "-k", 2, "missing.csv"),              # no such file
    ("fit", "--model", "gmm", "-k", 2, "x.json"),                   # unknown format
    ("fit", "--model", "gmm", "-k", 2, "bad.csv"),                  # unparsable CSV
    ("fit", "--model", "gmm", "-k", 2, "cube.npy"),                 # not 2-D
    ("fit", "--model", "gmm", "-k", 2, "docs.txt"),                 # text is for lda
    ("fit", "--model", "gmm", "-k", 500, "x.csv"),                  # K > n_samples
    ("fit", "--model", "bmm", "-k", 2, "x.csv"),                    # not binary
    ("fit", "--model", "lda", "-k", 2, "x.csv", "--n-init", 3),     # option of another model
    ("fit", "--model", "bmm", "-k", 2, "bin.npy", "--covariance-type", "full"),
    ("fit", "--model", "gmm", "-k", 2, "x.csv", "--covariance-type", "round"),
    ("fit", "--model", "gmm", "-k", 2, "x.csv", "--out", "model.pkl"),
    ("fit", "--model", "gmm", "-k", 2, "x.csv", "--out", "no/such/dir/m.npz"),
    ("predict", "x.csv", "x.csv"),                                  # not a model file
    ("predict", "missing.npz", "x.csv"),
    ("predict", "counts.npz", "x.csv"),                             # data, not a model
    ("predict", "empty.npz", "x.csv"),                              # a broken model file
    ("predict", "g.npz", "bin.npy", "--proba", "--labels"),         # unknown option
    ("select", "--model", "gmm", "-k", "9-1", "x.csv"),             # empty range
    ("select", "--model", "gmm", "-k", "1-3", "x.csv", "--covariance-type", "full,oval"),
    ("select", "--model", "lda", "-k", "1-3", "counts.npz"),
    ("select", "--model", "bgmm", "-k", "1-3", "x.csv"),            # no BIC for VB
    ("select", "--model", "ghmm", "-k", "1-3", "x.csv"),            # mixtures only
    ("select", "--model", "chmm", "-k", "1-3", "rolls.csv"),
    ("fit", "--model", "chmm", "-k", 2, "rolls.csv", "--lengths", "lsum.txt"),  # sum != rows
    ("fit", "--model", "chmm", "-k", 2, "rolls.csv", "--lengths", "lneg.txt"),
    ("fit", "--model", "chmm", "-k", 2, "rolls.csv", "--lengths", "lzero.txt"),
    ("fit", "--model", "chmm", "-k", 2, "rolls.csv", "--lengths", "lword.txt"),
    ("fit", "--model", "chmm", "-k", 2, "rolls.csv", "--lengths", "lempty.txt"),
    ("fit", "--model", "ghmm", "-k", 2, "rolls.csv", "--lengths", "lfloat.npy"),
    ("fit", "--model", "ghmm", "-k", 2, "rolls.csv", "--lengths", "l2d.npy"),
    ("fit", "--model", "ghmm", "-k", 2, "rolls.csv", "--lengths", "lgarbage.npy"),
    ("fit", "--model", "ghmm", "-k", 2, "rolls.csv", "--lengths", "missing.txt"),
    ("fit", "--model", "gmm", "-k", 2, "x.csv", "--lengths", "l3.txt"),  # not an HMM
    ("fit", "--model", "chmm", "-k", 2, "x.csv"),                   # symbols not integers
    ("fit", "--model", "chmm", "-k", 2, "rolls.csv", "--covariance-type", "full"),
    ("fit", "--model", "ghmm", "-k", 2, "counts.npz"),              # sparse data
    ("frobnicate",),
    ("--max-iter", "-3"),
]


def _one_error_line(err, args):
    lines = err.splitlines()
    assert len(lines) == 1, (args, err)
    assert lines[0].startswith("emkit") and "error" in lines[0], (args, err)
    assert "Traceback" not in err


@pytest.mark.parametrize("args", BAD, ids=lambda a: " ".join(map(str, a)) or "-")
def test_every_bad_argument_exits_2_with_one_line(args, data, capsys, monkeypatch):
    from emkit.cli import main

    monkeypatch.chdir(data[0])
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status == 2, args
    _one_error_line(capsys.readouterr().err, args)


def test_bad_arguments_through_the_real_command(data):
    """The same paths as a user meets them: the interpreter, no traceback, one line."""
    d = data[0]
    cases = [("fit", "--model", "gmm", "-k", 0, "x.csv"),     # argparse
             ("predict", "empty.npz", "bad.csv")]             # a broken model file
    for args, p in zip(cases, run_all(cases, cwd=d), strict=True):
        assert p.returncode == 2, (args, p.stderr)
        _one_error_line(p.stderr, args)


def test_progress_bar_on_a_terminal_and_plain_lines_when_piped(capsys):
    import io

    from emkit.cli import Progress

    for bar in (True, False):
        out = io.StringIO()
        progress = Progress(5, stream=out, bar=bar)
        gm = emkit.GaussianMixture(2, max_iter=5, n_init=2, random_state=0, callback=progress)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(data_blobs())
        progress.close()
        rows = [ln.split() for ln in out.getvalue().splitlines()[1:]]
        assert len(rows) == sum(t.n_iter for t in gm.traces_)
        err = capsys.readouterr().err
        assert ("init 1" in err) == bar  # tqdm's bar, on stderr, only on a terminal


def data_blobs():
    return blobs(n=100, d=2, k=2, seed=1)[0]


def _progress_rows(out):
    lines = out.splitlines()
    assert lines[0].split() == ["init", "iteration", "ELBO", "change", "seconds"]
    return [ln.split() for ln in lines[1:] if ln.split() and ln.split()[0].isdigit()]


@pytest.mark.parametrize("kind", ["chmm", "ghmm"])
def test_hmm_fit_and_predict_in_process(kind, data, tmp_path, capsys):
    """fit/predict --model ghmm|chmm equal the Python API on the same data and lengths."""
    from emkit.cli import main

    d = data[0]
    if kind == "chmm":
        X, lengths, _ = dishonest_casino(n_sequences=3, length=20, seed=3)
        data_file, lengths_file, extra = d / "rolls.csv", d / "l3.txt", []
        ref = emkit.CategoricalHMM(2, n_iter=30, n_init=2, random_state=1)
    else:
        X, lengths, _ = regime_series(n_sequences=3, length=40, seed=2)
        data_file, lengths_file = tmp_path / "series.npy", tmp_path / "lengths.npy"
        np.save(data_file, X)
        np.save(lengths_file, lengths)
        extra = ["--covariance-type", "spherical"]
        ref = emkit.GaussianHMM(2, covariance_type="spherical", n_iter=30, n_init=2,
                                random_state=1)
    out = tmp_path / "m.npz"
    assert main(["fit", "--model", kind, "-k", "2", str(data_file), "--lengths",
                 str(lengths_file), "--n-init", "2", "--max-iter", "30", "--seed", "1",
                 "--out", str(out), "--trace", str(tmp_path / "t.csv"),
                 "--plot", str(tmp_path / "t.png"), *extra]) == 0
    fit_out = capsys.readouterr().out
    model = emkit.load(out)
    ref.fit(X, lengths=lengths)
    assert type(model) is type(ref)
    assert model.n_iter == 30 and model.n_init == 2 and model.random_state == 1
    np.testing.assert_array_equal(model.transmat_, ref.transmat_)
    np.testing.assert_array_equal(model.startprob_, ref.startprob_)
    if kind == "chmm":
        np.testing.assert_array_equal(model.emissionprob_, ref.emissionprob_)
    else:
        assert model.covariance_type == "spherical"
        np.testing.assert_array_equal(model.means_, ref.means_)
    # the progress table is the kept run's trace; the summary line names the sequences
    rows = _progress_rows(fit_out)
    assert len(rows) == sum(t.n_iter for t in ref.traces_)
    kept = [r for r in rows if int(r[0]) == ref.best_init_]
    np.testing.assert_allclose([float(r[2]) for r in kept], ref.trace_.elbo_after_e[1:],
                               rtol=1e-7)
    state = "converged" if ref.converged_ else "did not converge"
    assert (f"{type(ref).__name__} K=2 on {X.shape[0]} x 1 in 3 sequences: {state} after "
            f"{ref.n_iter_} iterations; final ELBO {ref.trace_.elbo_after_e[-1]:.8f} "
            "per sample") in fit_out
    table = np.loadtxt(tmp_path / "t.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 1], ref.trace_.elbo_after_e)
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"

    # predict: Viterbi states one a line, posteriors as CSV; with and without --lengths
    assert main(["predict", str(out), str(data_file), "--lengths", str(lengths_file)]) == 0
    states = np.array(capsys.readouterr().out.split(), dtype=int)
    np.testing.assert_array_equal(states, ref.predict(X, lengths))
    assert main(["predict", str(out), str(data_file), "--lengths", str(lengths_file),
                 "--proba"]) == 0
    proba = np.loadtxt(capsys.readouterr().out.splitlines(), delimiter=",")
    np.testing.assert_allclose(proba, ref.predict_proba(X, lengths), rtol=1e-8, atol=1e-12)
    assert main(["predict", str(out), str(data_file)]) == 0  # one sequence
    np.testing.assert_array_equal(np.array(capsys.readouterr().out.split(), dtype=int),
                                  ref.predict(X))
    # a lengths file that does not fit the data: one line, status 2
    assert main(["predict", str(out), str(data_file), "--lengths", str(d / "lsum.txt")]) == 2
    _one_error_line(capsys.readouterr().err, "predict --lengths lsum.txt")


def test_hmm_defaults_and_lengths_on_a_mixture(data, tmp_path, capsys):
    from emkit.cli import main

    d, X, _, _ = data
    rolls = np.loadtxt(d / "rolls.csv").reshape(-1, 1)
    # ghmm's covariance_type defaults to hmmlearn's "diag"; one sequence without --lengths
    assert main(["fit", "--model", "ghmm", "-k", "2", str(d / "rolls.csv"),
                 "--out", str(tmp_path / "g.npz")]) == 0
    assert "in 1 sequence:" in capsys.readouterr().out
    g = emkit.load(tmp_path / "g.npz")
    ref = emkit.GaussianHMM(2, random_state=0).fit(rolls)
    assert g.covariance_type == "diag" and g.n_iter == ref.n_iter
    np.testing.assert_array_equal(g.means_, ref.means_)
    # --lengths with a mixture's model file is refused
    assert main(["fit", "--model", "gmm", "-k", "2", str(d / "x.csv"),
                 "--out", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.npz"), str(d / "x.csv"), "--lengths",
                 str(d / "l3.txt")]) == 2
    _one_error_line(capsys.readouterr().err, "predict mixture --lengths")


def test_demo_table_has_a_row_for_every_public_estimator():
    """So the demo cannot silently fall behind emkit's estimators again."""
    from sklearn.base import BaseEstimator

    from emkit._demo import run_demo

    public = {name for name in emkit.__all__
              if isinstance(getattr(emkit, name), type)
              and issubclass(getattr(emkit, name), BaseEstimator)}
    assert {"GaussianHMM", "CategoricalHMM", "BayesianGaussianMixture"} <= public
    out = io.StringIO()
    assert run_demo(stream=out) == []
    lines = out.getvalue().splitlines()
    assert lines[0].split()[0] == "estimator"
    names = [ln.split()[0] for ln in lines[1:]]
    assert sorted(names) == sorted(public)
    by_name = dict(zip(names, lines[1:], strict=True))
    assert "components effective" in by_name["BayesianGaussianMixture"]
    for hmm in ("GaussianHMM", "CategoricalHMM"):
        assert "Viterbi = true states at" in by_name[hmm] and "seq)" in by_name[hmm]


def test_the_casino_is_durbins():
    """The simulated rolls follow the published model (Durbin et al. 1998, section 3.2)."""
    X, lengths, states = dishonest_casino(n_sequences=20, length=2000, seed=11)
    assert X.shape == (40_000, 1) and X.dtype.kind == "i" and lengths.tolist() == [2000] * 20
    assert set(np.unique(X)) == set(range(6)) and set(np.unique(states)) == {0, 1}
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    within = np.ones(states.size, dtype=bool)
    within[starts] = False  # transitions only inside a sequence
    prev, cur = states[:-1][within[1:]], states[1:][within[1:]]
    assert np.mean(cur[prev == 0] == 1) == pytest.approx(0.05, abs=0.006)  # fair -> loaded
    assert np.mean(cur[prev == 1] == 0) == pytest.approx(0.10, abs=0.012)  # loaded -> fair
    loaded = np.bincount(X[states == 1, 0], minlength=6) / np.sum(states == 1)
    fair = np.bincount(X[states == 0, 0], minlength=6) / np.sum(states == 0)
    np.testing.assert_allclose(loaded, [0.1] * 5 + [0.5], atol=0.015)
    np.testing.assert_allclose(fair, [1 / 6] * 6, atol=0.012)
