"""The data and the runs behind ``emkit demo`` and ``emkit bench`` (see :mod:`emkit.cli`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["lda_corpus", "binarised_digits", "run_demo", "run_bench"]

#: the themes of the demo corpus: each topic puts most of its mass on its own words
THEMES = {
    "space": "planet orbit rocket star moon galaxy telescope astronaut comet launch",
    "kitchen": "flour butter oven recipe sugar bake knife pepper garlic onion",
    "sport": "goal match team coach score league stadium referee season player",
    "music": "guitar chord melody drum concert album rhythm singer piano tempo",
}


def lda_corpus(n_docs: int = 300, doc_length: int = 60, seed: int = 0):
    """A corpus drawn from the LDA generative process over :data:`THEMES`.

    Topic ``k`` (fixed, not drawn) puts 90% of its mass evenly on its
    theme's ten words, 10% over the whole vocabulary; each document draws
    ``theta ~ Dir(0.3)`` and ``Poisson(doc_length)`` words.

    Returns
    -------
    counts : CSR matrix of shape (n_docs, n_words)
    vocabulary : ndarray of str
    beta : ndarray of shape (n_topics, n_words), the true topics
    """
    words = [w for theme in THEMES.values() for w in theme.split()]
    vocab = np.array(words)
    k, v = len(THEMES), len(vocab)
    beta = np.full((k, v), 0.1 / v)
    for t in range(k):
        beta[t, t * 10:(t + 1) * 10] += 0.9 / 10
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(k, 0.3), size=n_docs)
    lengths = np.maximum(1, rng.poisson(doc_length, size=n_docs))
    rows = [rng.multinomial(n, theta[d] @ beta) for d, n in enumerate(lengths)]
    return sp.csr_matrix(np.array(rows, dtype=np.float64)), vocab, beta


def binarised_digits(threshold: float = 7.0):
    """scikit-learn's bundled 8 x 8 digits (1,797 images), pixels ``> threshold`` as 1."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data > threshold).astype(np.float64), digits.target


def _fitted(est, X):
    t0 = time.perf_counter()
    est.fit(X)
    return est, time.perf_counter() - t0


def run_demo(out_dir=None, *, covariance_type="full", random_state=0, stream=None):
    """Fit every estimator on its embedded data, print a summary; PNGs under ``out_dir``.

    Returns the list of files written.
    """
    from . import BernoulliMixture, GaussianMixture, LatentDirichletAllocation

    def say(*args):
        print(*args, file=stream)

    from sklearn.datasets import load_iris

    iris = load_iris()
    Xd, _ = binarised_digits()
    counts, vocab, _ = lda_corpus(seed=random_state)
    runs = [
        ("gmm", "GaussianMixture", "iris", iris.data,
         GaussianMixture(3, covariance_type=covariance_type, random_state=random_state,
                         n_init=3, init_params="random_from_data", tol=1e-6, max_iter=200)),
        ("bmm", "BernoulliMixture", "binarised digits", Xd,
         BernoulliMixture(10, random_state=random_state, n_init=2, tol=1e-6, max_iter=200)),
        ("lda", "LatentDirichletAllocation", "LDA corpus", counts,
         LatentDirichletAllocation(4, random_state=random_state, max_iter=30)),
    ]
    rows, fitted = [], {}
    for key, name, data_name, X, est in runs:
        est, seconds = _fitted(est, X)
        fitted[key] = (est, X)
        unit = "token" if key == "lda" else "sample"
        rows.append((name, data_name, f"{X.shape[0]}x{X.shape[1]}", est.n_components,
                     est.n_iter_, getattr(est, "converged_", "-"),
                     f"{est.trace_.elbo_after_e[-1]:.4f} per {unit}", f"{seconds:.2f}"))
    head = ("estimator", "data", "shape", "K", "n_iter", "converged", "final ELBO", "seconds")
    widths = [max(len(str(r[j])) for r in [head, *rows]) for j in range(len(head))]
    for r in [head, *rows]:
        say("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if out_dir is None:
        return []
    return _demo_pictures(Path(out_dir), fitted, iris.feature_names, vocab)


def _demo_pictures(out, fitted, iris_names, vocab):
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plotting

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    for key, (est, _) in fitted.items():
        save(plotting.plot_trace(est).figure, f"{key}_trace.png")
        save(plotting.plot_decomposition(est, max_iter=12).figure, f"{key}_decomposition.png")
    gm, X = fitted["gmm"]
    save(plotting.plot_gmm(gm, X, features=(2, 3), feature_names=iris_names).figure,
         "gmm_ellipses.png")
    save(plotting.plot_bernoulli_means(fitted["bmm"][0], (8, 8)), "bmm_means.png")
    save(plotting.plot_topics(fitted["lda"][0], vocab, n_words=10, ncols=4), "lda_topics.png")
    return written


def _timed(make, X, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        est = make().fit(X)
        best = min(best, time.perf_counter() - t0)
    return est, best


def run_bench(quick=False, stream=None):
    """emkit against scikit-learn on this machine: time ratios and the bound reached."""
    import warnings

    from sklearn.decomposition import LatentDirichletAllocation as SkLDA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture as SkGMM

    from . import GaussianMixture, LatentDirichletAllocation

    rng = np.random.default_rng(0)
    n, d, k = (3000, 8, 4) if quick else (50_000, 16, 8)
    centers = rng.normal(scale=4, size=(k, d))
    X = centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    counts, _, _ = lda_corpus(n_docs=300 if quick else 3000, seed=0)
    repeats = 1 if quick else 3
    iters = 5 if quick else 20
    cases = [
        (f"GaussianMixture full N={n} D={d} K={k}", X,
         lambda: GaussianMixture(k, max_iter=iters, tol=0, random_state=0),
         lambda: SkGMM(k, max_iter=iters, tol=0, random_state=0),
         lambda m: m.score(X), "log-lik/sample"),
        (f"LatentDirichletAllocation docs={counts.shape[0]} V={counts.shape[1]} K=4", counts,
         lambda: LatentDirichletAllocation(4, max_iter=iters, random_state=0),
         lambda: SkLDA(4, max_iter=iters, learning_method="batch", random_state=0),
         lambda m: m.perplexity(counts), "perplexity"),
    ]
    print(f"{'case':<50} {'emkit s':>9} {'sklearn s':>9} {'speed-up':>9}  quality "
          "(emkit / sklearn)", file=stream)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, data, ours, theirs, quality, what in cases:
            a, ta = _timed(ours, data, repeats)
            b, tb = _timed(theirs, data, repeats)
            print(f"{name:<50} {ta:>9.3f} {tb:>9.3f} {tb / ta:>8.2f}x  {what} "
                  f"{quality(a):.4f} / {quality(b):.4f}", file=stream)
    return 0
