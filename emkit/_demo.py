"""The data and the runs behind ``emkit demo`` and ``emkit bench`` (see :mod:`emkit.cli`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["lda_corpus", "binarised_digits", "dishonest_casino", "regime_series", "run_demo",
           "run_bench"]

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


def _markov_chain(startprob, transmat, lengths, rng):
    """The states of ``len(lengths)`` independent runs of a Markov chain, concatenated."""
    startprob, transmat = np.asarray(startprob), np.asarray(transmat)
    cum = np.cumsum(transmat, axis=1)
    out = []
    for n in lengths:
        z = np.empty(n, dtype=np.intp)
        z[0] = rng.choice(startprob.size, p=startprob)
        u = rng.uniform(size=n)
        for t in range(1, n):
            z[t] = min(int(np.searchsorted(cum[z[t - 1]], u[t], side="right")),
                       startprob.size - 1)
        out.append(z)
    return np.concatenate(out)


#: the occasionally dishonest casino (Durbin et al. 1998, section 3.2): fair die, loaded die
CASINO = {
    "states": ("fair", "loaded"),
    "transmat": np.array([[0.95, 0.05], [0.10, 0.90]]),
    "emissionprob": np.array([[1 / 6] * 6, [1 / 10] * 5 + [1 / 2]]),
    # the chain's stationary distribution: fair 2/3, loaded 1/3
    "startprob": np.array([2 / 3, 1 / 3]),
}


def dishonest_casino(n_sequences: int = 10, length: int = 300, seed: int = 0):
    """Rolls of the "occasionally dishonest casino" of Durbin, Eddy, Krogh & Mitchison.

    The casino rolls a fair die (each face 1/6) and now and then swaps in a loaded one
    (a six with probability 1/2, each other face 1/10). Before every roll it switches from
    the fair to the loaded die with probability 0.05 and back with probability 0.1 (R. Durbin,
    S. Eddy, A. Krogh and G. Mitchison, *Biological Sequence Analysis: Probabilistic Models of
    Proteins and Nucleic Acids*, Cambridge University Press, 1998, section 3.2). Every
    sequence starts from the chain's stationary distribution (fair 2/3, loaded 1/3); the
    rolls are drawn with a plain NumPy generator, not with emkit.

    Returns
    -------
    X : ndarray of int of shape (n_sequences * length, 1)
        The faces as symbols 0..5 (face ``s + 1``).
    lengths : ndarray of int of shape (n_sequences,)
    states : ndarray of int of shape (n_sequences * length,)
        The die of every roll: 0 fair, 1 loaded.
    """
    rng = np.random.default_rng(seed)
    lengths = np.full(n_sequences, length, dtype=np.int64)
    states = _markov_chain(CASINO["startprob"], CASINO["transmat"], lengths, rng)
    cum = np.cumsum(CASINO["emissionprob"], axis=1)[states]  # inverse CDF of each roll's die
    faces = np.sum(rng.uniform(size=(states.size, 1)) >= cum[:, :-1], axis=1)
    return faces.reshape(-1, 1).astype(np.int64), lengths, states


#: three regimes of a simulated series: mean, standard deviation; sticky switching
REGIMES = {
    "states": ("calm", "volatile", "high"),
    "means": np.array([0.0, 0.0, 3.0]),
    "sds": np.array([0.4, 1.6, 0.6]),
    "transmat": np.array([[0.96, 0.03, 0.01], [0.04, 0.94, 0.02], [0.02, 0.03, 0.95]]),
    "startprob": np.full(3, 1 / 3),
}


def regime_series(n_sequences: int = 4, length: int = 250, seed: int = 0):
    """A simulated regime-switching series: 3 hidden regimes, Gaussian observations.

    The regimes of :data:`REGIMES` ("calm": N(0, 0.4^2), "volatile": N(0, 1.6^2), "high":
    N(3, 0.6^2)) follow a sticky Markov chain (staying with probability 0.94 to 0.96); two
    share their mean, so only the spread tells them apart. Drawn with a plain NumPy
    generator.

    Returns
    -------
    X : ndarray of shape (n_sequences * length, 1)
    lengths : ndarray of int of shape (n_sequences,)
    states : ndarray of int of shape (n_sequences * length,)
    """
    rng = np.random.default_rng(seed)
    lengths = np.full(n_sequences, length, dtype=np.int64)
    states = _markov_chain(REGIMES["startprob"], REGIMES["transmat"], lengths, rng)
    X = REGIMES["means"][states] + REGIMES["sds"][states] * rng.standard_normal(states.size)
    return X.reshape(-1, 1), lengths, states


def _fitted(est, X, **fit_params):
    t0 = time.perf_counter()
    est.fit(X, **fit_params)
    return est, time.perf_counter() - t0


def _demo_runs(covariance_type, random_state):
    """``(key, data name, X, estimator, lengths, true states)`` of every demo fit."""
    from sklearn.datasets import load_iris

    from . import (
        BayesianGaussianMixture,
        BernoulliMixture,
        CategoricalHMM,
        GaussianHMM,
        GaussianMixture,
        LatentDirichletAllocation,
    )

    iris = load_iris().data
    Xd, _ = binarised_digits()
    counts, _, _ = lda_corpus(seed=random_state)
    rolls, roll_lengths, dice = dishonest_casino(seed=random_state)
    series, series_lengths, regimes = regime_series(seed=random_state)
    rs = random_state
    return [
        ("gmm", "iris", iris,
         GaussianMixture(3, covariance_type=covariance_type, random_state=rs, n_init=3,
                         init_params="random_from_data", tol=1e-6, max_iter=200), None, None),
        ("bgmm", "iris", iris,
         BayesianGaussianMixture(n_components=10, covariance_type=covariance_type,
                                 random_state=rs, tol=1e-6, max_iter=300), None, None),
        ("bmm", "binarised digits", Xd,
         BernoulliMixture(10, random_state=rs, n_init=2, tol=1e-6, max_iter=200), None, None),
        ("lda", "LDA corpus", counts,
         LatentDirichletAllocation(4, random_state=rs, max_iter=30), None, None),
        ("ghmm", "3-regime series", series,
         GaussianHMM(3, random_state=rs, n_init=2, n_iter=200), series_lengths, regimes),
        ("chmm", "dishonest casino", rolls,
         CategoricalHMM(2, random_state=rs, n_init=4, n_iter=300), roll_lengths, dice),
    ]


def _note(est, X, lengths, truth):
    """The table's last column: what the fit found, in a few words."""
    if hasattr(est, "n_effective_components_"):
        return f"{est.n_effective_components_} of {est.n_components} components effective"
    if truth is not None:
        from .plotting import match_states

        agreement = match_states(est.predict(X, lengths), truth, est.n_components)[2]
        return f"Viterbi = true states at {agreement:.1%}"
    return ""


def run_demo(out_dir=None, *, covariance_type="full", random_state=0, stream=None):
    """Fit every estimator on its embedded data, print a summary; PNGs under ``out_dir``.

    The data: iris (GaussianMixture with 3 components; BayesianGaussianMixture with 10, of
    which it switches most off), scikit-learn's digits binarised (BernoulliMixture), a corpus
    drawn from the LDA process (:func:`lda_corpus`), a simulated 3-regime series
    (GaussianHMM, :func:`regime_series`) and the occasionally dishonest casino
    (CategoricalHMM, :func:`dishonest_casino`). ``covariance_type`` is that of the two iris
    mixtures.

    Returns the list of files written.
    """
    def say(*args):
        print(*args, file=stream)

    rows, fitted = [], {}
    for key, data_name, X, est, lengths, truth in _demo_runs(covariance_type, random_state):
        fit_params = {} if lengths is None else {"lengths": lengths}
        # (the estimators run a k-means this small on one OpenMP thread: small_kmeans)
        est, seconds = _fitted(est, X, **fit_params)
        fitted[key] = (est, X, lengths, truth)
        unit = "token" if key == "lda" else "sample"
        shape = f"{X.shape[0]}x{X.shape[1]}"
        if lengths is not None:
            shape += f" ({len(lengths)} seq)"
        rows.append((type(est).__name__, data_name, shape, est.n_components, est.n_iter_,
                     getattr(est, "converged_", "-"),
                     f"{est.trace_.elbo_after_e[-1]:.4f} per {unit}", f"{seconds:.2f}",
                     _note(est, X, lengths, truth)))
    head = ("estimator", "data", "shape", "K", "n_iter", "converged", "final ELBO", "seconds",
            "")
    widths = [max(len(str(r[j])) for r in [head, *rows]) for j in range(len(head))]
    for r in [head, *rows]:
        say("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if out_dir is None:
        return []
    from sklearn.datasets import load_iris

    return _demo_pictures(Path(out_dir), fitted, load_iris().feature_names,
                          lda_corpus(seed=random_state)[1])


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

    for key, (est, *_) in fitted.items():
        save(plotting.plot_trace(est).figure, f"{key}_trace.png")
        save(plotting.plot_decomposition(est, max_iter=12).figure, f"{key}_decomposition.png")
    for key in ("gmm", "bgmm"):
        est, X, *_ = fitted[key]
        save(plotting.plot_gmm(est, X, features=(2, 3), feature_names=iris_names).figure,
             f"{key}_ellipses.png")
    save(plotting.plot_bernoulli_means(fitted["bmm"][0], (8, 8)), "bmm_means.png")
    save(plotting.plot_topics(fitted["lda"][0], vocab, n_words=10, ncols=4), "lda_topics.png")
    for key, names in (("ghmm", REGIMES["states"]), ("chmm", CASINO["states"])):
        est, X, lengths, truth = fitted[key]
        fig = plotting.plot_hmm_states(est, X, lengths, true_states=truth, state_names=names)
        save(fig, f"{key}_states.png")
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
