"""emkit.plotting: every plot rendered to PNG with Agg, its plotted data checked."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

import emkit  # noqa: E402
from emkit import (  # noqa: E402
    BernoulliMixture,
    GaussianMixture,
    LatentDirichletAllocation,
    plotting,
)

from ._helpers import blobs  # noqa: E402

X, _ = blobs(n=200, d=3, k=3, seed=5)
COUNTS = sp.csr_matrix(np.random.default_rng(1).poisson(1.0, size=(60, 12)).astype(float))


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _png(fig, tmp_path, name="plot.png"):
    path = tmp_path / name
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line.get_xdata(), line.get_ydata()


def test_import_emkit_does_not_import_matplotlib():
    code = "import sys, emkit; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ})
    assert out.stdout.strip() == "False"


def test_plot_trace_draws_every_init_and_highlights_the_kept(tmp_path):
    gm = GaussianMixture(3, n_init=3, init_params="random", random_state=0).fit(X)
    ax = plotting.plot_trace(gm)
    _png(ax.figure, tmp_path)
    best = gm.best_init_
    x, y = _line(ax, f"init {best} (kept)")
    np.testing.assert_array_equal(y, gm.traces_[best].elbo)
    np.testing.assert_array_equal(x, np.arange(len(gm.traces_[best].elbo)) / 2)
    for t in gm.traces_:
        if t.init != best:
            np.testing.assert_array_equal(_line(ax, f"init {t.init}")[1], t.elbo)
    assert ax.get_legend() is not None and ax.get_xlabel() and ax.get_ylabel()
    # Trace.plot goes through the same function
    ax2 = gm.trace_.plot()
    np.testing.assert_array_equal(_line(ax2, f"init {best} (kept)")[1], gm.trace_.elbo)
    assert len(ax2.figure.axes) == 2  # a Trace alone also gets its KL axis
    kl = ax2.figure.axes[1].get_lines()[0].get_ydata()
    # drawn on a log axis: a KL within round-off of 0 (either sign) is drawn at 1e-300
    np.testing.assert_array_equal(kl, np.clip(gm.trace_.kl[:-1], 1e-300, None))


def test_trace_plot_draws_staircase_and_kl(tmp_path):
    gm = GaussianMixture(3, init_params="random", random_state=0, tol=1e-6).fit(X)
    ax = gm.trace_.plot()
    staircase = ax.lines[0]
    np.testing.assert_allclose(staircase.get_ydata(), gm.trace_.elbo)
    assert len(ax.figure.axes) == 2  # the KL axis
    _png(ax.figure, tmp_path)


def test_plot_decomposition_is_evidence_equals_elbo_plus_kl(tmp_path):
    gm = GaussianMixture(3, random_state=0, tol=1e-8).fit(X)
    ax = plotting.plot_decomposition(gm)
    _png(ax.figure, tmp_path)
    t = gm.trace_
    ev = np.empty(2 * len(t) - 1)
    ev[0::2], ev[1::2] = t.log_evidence, t.log_evidence[1:]
    np.testing.assert_array_equal(_line(ax, r"$\log p(X \mid \theta)$")[1], ev)
    np.testing.assert_array_equal(_line(ax, "ELBO")[1], t.elbo)
    gap = _line(ax.kl_axis, "KL(Q || posterior)")[1]
    np.testing.assert_array_equal(gap[0::2], 0.0)  # the E-step closes the gap
    np.testing.assert_array_equal(gap[1::2], t.kl[:-1])
    # the identity: evidence after M-step t == ELBO after M-step t + KL
    np.testing.assert_allclose(ev[1::2], t.elbo_after_m[:-1] + t.kl[:-1], rtol=1e-12)
    assert ax.get_legend() is not None


def test_plot_decomposition_map_and_intractable(tmp_path):
    bm = BernoulliMixture(2, random_state=0).fit((X > 0).astype(float))  # alpha=1: MAP
    ax = plotting.plot_decomposition(bm, max_iter=3)
    (line,) = [ln for ln in ax.get_lines() if "log p(\\theta)" in ln.get_label()]
    np.testing.assert_array_equal(line.get_ydata()[0::2], bm.trace_.elbo_after_e[:4])
    lda = LatentDirichletAllocation(2, random_state=0, max_iter=4).fit(COUNTS)
    ax = plotting.plot_decomposition(lda)
    _png(ax.figure, tmp_path)
    assert ax.kl_axis is None
    assert any("intractable" in txt.get_text() for txt in ax.texts)
    np.testing.assert_array_equal(_line(ax, "ELBO")[1], lda.trace_.elbo)
    assert "token" in ax.get_ylabel()


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_plot_gmm_ellipses_are_the_covariances(ct, tmp_path):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0).fit(X)
    f = (2, 0)
    ax = plotting.plot_gmm(gm, X, features=f)
    _png(ax.figure, tmp_path)
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 2 * gm.n_components
    for k in range(gm.n_components):
        c = gm.covariances_
        cov = {"full": c[k] if ct == "full" else None, "tied": c,
               "diag": np.diag(c[k]) if ct == "diag" else None,
               "spherical": np.eye(3) * c[k] if ct == "spherical" else None}[ct]
        sub = cov[np.ix_(f, f)]
        vals = np.linalg.eigvalsh(sub)
        for n_sigma, e in zip((1, 2), ellipses[2 * k:2 * k + 2], strict=True):
            np.testing.assert_allclose(e.center, gm.means_[k, list(f)])
            np.testing.assert_allclose(sorted([e.width, e.height]),
                                       2 * n_sigma * np.sqrt(vals), rtol=1e-10)
            # the ellipse's own matrix is the covariance: R diag(a^2, b^2) R^T
            a, b, th = e.width / (2 * n_sigma), e.height / (2 * n_sigma), np.radians(e.angle)
            R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
            np.testing.assert_allclose(R @ np.diag([a * a, b * b]) @ R.T, sub, atol=1e-10)
    points = np.vstack([c.get_offsets() for c in ax.collections])
    assert points.shape[0] == X.shape[0]
    assert ax.get_legend() is not None


def test_plot_bernoulli_means_and_topics(tmp_path):
    Xb = (np.random.default_rng(0).uniform(size=(120, 12)) > 0.5).astype(float)
    bm = BernoulliMixture(3, random_state=0).fit(Xb)
    fig = plotting.plot_bernoulli_means(bm, (3, 4))
    _png(fig, tmp_path, "means.png")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    for k, im in enumerate(images):
        np.testing.assert_array_equal(np.asarray(im.get_array()), bm.means_[k].reshape(3, 4))
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_bernoulli_means(bm, (5, 5))

    lda = LatentDirichletAllocation(3, random_state=0, max_iter=3).fit(COUNTS)
    names = [f"w{i}" for i in range(12)]
    fig = plotting.plot_topics(lda, names, n_words=4)
    _png(fig, tmp_path, "topics.png")
    beta = lda.components_ / lda.components_.sum(axis=1, keepdims=True)
    panels = [ax for ax in fig.axes if ax.patches]
    assert len(panels) == 3
    for k, ax in enumerate(panels):
        order = np.argsort(-beta[k])[:4]
        widths = [p.get_width() for p in ax.patches]
        np.testing.assert_allclose(widths, beta[k, order], rtol=1e-6)
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [names[i] for i in order]
    with pytest.raises(ValueError, match="feature_names"):
        plotting.plot_topics(lda, names[:3])


def test_plot_selection_draws_the_results(tmp_path):
    grid = {"n_components": [1, 2, 3], "covariance_type": ["full", "spherical"]}
    result = emkit.select(GaussianMixture(random_state=0), X, grid)
    ax = plotting.plot_selection(result)
    _png(ax.figure, tmp_path)
    r = result.results_
    for ct in grid["covariance_type"]:
        rows = [i for i, p in enumerate(r["params"]) if p["covariance_type"] == ct]
        x, y = _line(ax, f"covariance_type={ct}")
        np.testing.assert_array_equal(x, [r["param_n_components"][i] for i in rows])
        np.testing.assert_array_equal(y, [r["bic"][i] for i in rows])
    assert "lower is better" in ax.get_ylabel()


def test_match_states_is_the_best_permutation():
    import itertools

    rng = np.random.default_rng(4)
    truth = rng.integers(3, size=200)
    states = np.where(rng.uniform(size=200) < 0.8, (truth + 1) % 3, rng.integers(3, size=200))
    relabelled, mapping, agreement = plotting.match_states(states, truth)
    best = max(itertools.permutations(range(3)),
               key=lambda p: np.sum(np.asarray(p)[states] == truth))
    np.testing.assert_array_equal(mapping, best)
    np.testing.assert_array_equal(relabelled, np.asarray(best)[states])
    assert agreement == np.mean(np.asarray(best)[states] == truth)
    with pytest.raises(ValueError, match="steps"):
        plotting.match_states(states[:5], truth)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_plot_hmm_states_draws_posteriors_and_paths(kind, tmp_path):
    from emkit._demo import dishonest_casino, regime_series

    if kind == "gaussian":
        Xs, lengths, truth = regime_series(n_sequences=2, length=60, seed=1)
        model = emkit.GaussianHMM(3, n_iter=20, random_state=0).fit(Xs, lengths)
    else:
        Xs, lengths, truth = dishonest_casino(n_sequences=2, length=60, seed=1)
        model = emkit.CategoricalHMM(2, n_iter=20, random_state=0).fit(Xs, lengths)
    fig = plotting.plot_hmm_states(model, Xs, lengths, true_states=truth, sequence=1)
    _png(fig, tmp_path)
    data_ax, post_ax, strip_ax = fig.axes
    sl = slice(60, 120)
    relabelled, mapping, agreement = plotting.match_states(model.predict(Xs, lengths), truth)
    np.testing.assert_array_equal(strip_ax.images[0].get_array(),
                                  np.vstack([truth[sl], relabelled[sl]]))
    assert f"{agreement:.1%}" in data_ax.get_title()
    # the stacked posteriors: layer mapping[k] is fitted state k's, so the upper edge of
    # layer j is the cumulative posterior of the states matched to labels 0..j
    proba = model.predict_proba(Xs, lengths)[sl]
    layers = np.zeros_like(proba)
    layers[:, mapping] = proba
    upper = np.cumsum(layers, axis=1)
    polys = post_ax.collections
    assert len(polys) == mapping.size
    for j, poly in enumerate(polys):
        v = poly.get_paths()[0].vertices
        for t in range(60):
            ys = v[np.isclose(v[:, 0], t), 1]
            assert np.min(np.abs(ys - upper[t, j])) < 1e-9, (j, t)
    # without the truth: only the Viterbi strip, in the model's own labels
    fig = plotting.plot_hmm_states(model, Xs, lengths)
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(),
                                  model.predict(Xs, lengths)[:60][None, :])
    with pytest.raises(ValueError, match="sequence"):
        plotting.plot_hmm_states(model, Xs, lengths, sequence=2)


def test_decomposition_axis_spans_what_is_drawn_up_to_max_iter():
    from emkit._demo import dishonest_casino

    Xs, lengths, _ = dishonest_casino(n_sequences=4, length=200, seed=0)
    model = emkit.CategoricalHMM(2, n_iter=200, tol=1e-8, random_state=0).fit(Xs, lengths)
    assert model.n_iter_ > 20
    ax = plotting.plot_decomposition(model, max_iter=6)
    drawn = model.trace_.elbo[1:13]  # half-steps 0.5 .. 6 (the first is off scale or not)
    lo, hi = ax.get_ylim()
    assert lo <= drawn.min() and hi >= drawn.max()
    # the final ELBO, far above iteration 6, does not stretch the axis
    assert hi - lo < 3 * (model.trace_.elbo_after_e[6] - drawn.min()) + 1e-12
