"""Plots of EM fits (optional: needs matplotlib, the ``plot`` extra; imported only when used).

- :func:`plot_trace`: the ELBO of every initialisation, the kept one highlighted.
- :func:`plot_decomposition`: ``log p(X | theta) = ELBO + KL`` per half-step.
- :func:`plot_gmm`, :func:`plot_bernoulli_means`, :func:`plot_topics`: the fitted model.
- :func:`plot_selection`: a criterion against ``n_components`` (see :func:`emkit.select`).
- :func:`plot_hmm_states`: one sequence, its state posteriors and the Viterbi path (against
  the true states when known).

Every function returns the Axes it drew on (a Figure for grids of panels).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_trace",
    "plot_decomposition",
    "plot_gmm",
    "plot_bernoulli_means",
    "plot_topics",
    "plot_selection",
    "plot_hmm_states",
    "match_states",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("emkit's plots need matplotlib: pip install 'emkit[plot]'") from exc
    return plt


def _axes(ax, figsize=(6.4, 4.2)):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax


def _traces(model_or_trace):
    """``(traces, index of the kept one, unit)`` of a fitted model or one Trace."""
    from ._trace import Trace

    if isinstance(model_or_trace, Trace):
        return [model_or_trace], 0, "sample"
    model = model_or_trace
    if not hasattr(model, "trace_"):
        raise ValueError(f"{type(model).__name__} is not fitted: it has no trace_ to plot.")
    traces = list(getattr(model, "traces_", [model.trace_]))
    unit = "token" if hasattr(model, "components_") else "sample"
    return traces, int(getattr(model, "best_init_", 0)), unit


def half_steps(trace):
    """x positions of ``trace.elbo``: ``t`` after E-step ``t``, ``t + 0.5`` after M-step ``t``."""
    return np.arange(2 * len(trace) - 1) / 2.0 if len(trace) else np.empty(0)


def _robust_ylim(ax, traces):
    """Keep the axis on the runs, not on a far-off start.

    Starts from one-point seeds (``random_from_data``, ``k-means++``) can put the first
    half-step orders of magnitude below the rest; then the axis spans the values after it and
    says the first points are below it. ``traces`` are Traces or the arrays drawn.
    """
    vals = [np.asarray(getattr(t, "elbo", t), dtype=np.float64) for t in traces]
    vals = [v[np.isfinite(v)] for v in vals]
    everything = np.concatenate(vals)
    rest = np.concatenate([v[1:] for v in vals])
    if rest.size < 2 or everything.size < 2:
        return
    span, full = np.ptp(rest), np.ptp(everything)
    if span > 0 and full > 20 * span:
        ax.set_ylim(rest.min() - 0.08 * span, rest.max() + 0.08 * span)
        ax.text(0.01, 0.01, f"first half-step off scale (down to {everything.min():.3g})",
                transform=ax.transAxes, fontsize="x-small", color="0.3", va="bottom")


def plot_trace(model_or_trace, ax=None, *, label: str | None = None,
               show_kl: bool | None = None):
    """The ELBO of every initialisation against the iteration, both half-steps.

    Each initialisation in ``traces_`` is drawn as the sequence E-step, M-step, E-step, ...
    (``Trace.elbo``); the kept one (``best_init_``) is drawn bold, the others thin, and the
    end of each is marked: a star where it converged, a cross where ``max_iter`` stopped it.

    Parameters
    ----------
    model_or_trace : fitted emkit estimator or Trace
    ax : matplotlib Axes, optional
    label : str, optional
        Legend label of the kept trace (default "init <i> (kept)").
    show_kl : bool, optional
        Also draw the kept run's KL gap after every M-step on a second (log) axis; default:
        for a Trace yes, for a model no (:func:`plot_decomposition` shows it).

    Returns
    -------
    matplotlib Axes
    """
    traces, best, unit = _traces(model_or_trace)
    ax = _axes(ax)
    styles = ["-", "--", ":", "-."]
    others = [t for i, t in enumerate(traces) if i != best]
    for j, trace in enumerate(others):
        ax.plot(half_steps(trace), trace.elbo, color="0.55", lw=1.2, ls=styles[j % 4],
                label=f"init {trace.init}")
    trace = traces[best]
    ax.plot(half_steps(trace), trace.elbo, color="C0", lw=2.2, zorder=3,
            label=label or f"init {trace.init} (kept)")
    for i, t in enumerate(traces):
        if not len(t):
            continue
        kw = dict(color="C0" if i == best else "0.45", zorder=4, ms=11 if i == best else 8)
        marker = "*" if t.converged else "X"
        ax.plot([len(t) - 1], [t.elbo_after_e[-1]], marker, linestyle="none", **kw)
    # proxies so the legend explains the markers once
    if any(t.converged for t in traces):
        ax.plot([], [], "*", color="k", ms=9, linestyle="none", label="converged")
    if not all(t.converged for t in traces):
        ax.plot([], [], "X", color="k", ms=7, linestyle="none", label="stopped at max_iter")
    ax.set_xlabel("iteration (E-step at t, M-step at t + 0.5)")
    ax.set_ylabel(f"ELBO per {unit}")
    ax.set_title("ELBO of every initialisation")
    _robust_ylim(ax, traces)
    ax.legend(loc="lower right", fontsize="small")
    if show_kl is None:
        from ._trace import Trace

        show_kl = isinstance(model_or_trace, Trace)
    if show_kl and len(trace) > 1 and np.any(np.isfinite(trace.kl[:-1])):
        kl_ax = ax.twinx()
        kl_ax.semilogy(np.arange(len(trace) - 1) + 0.5, np.clip(trace.kl[:-1], 1e-300, None),
                       "r--", lw=1, label="KL gap")
        kl_ax.set_ylabel("KL(Q || posterior) after M-step", color="r")
    return ax


def decomposition(trace):
    """The curves of :func:`plot_decomposition`, per half-step (see there).

    Returns ``(x, evidence, elbo, gap, evidence_label)``; ``evidence`` and ``gap`` are None
    where the evidence is intractable.
    """
    x, elbo = half_steps(trace), trace.elbo
    if not len(trace) or not np.all(np.isfinite(trace.log_evidence)):
        return x, None, elbo, None, None
    n = len(trace)
    ev = np.empty(2 * n - 1)
    gap = np.zeros(2 * n - 1)
    if np.allclose(trace.elbo_after_e, trace.log_evidence, rtol=1e-12, atol=0):
        top, label = trace.log_evidence, r"$\log p(X \mid \theta)$"
    else:  # MAP: what EM raises is the evidence plus the log prior (the E-step touches it)
        top, label = trace.elbo_after_e, r"$\log p(X \mid \theta) + \log p(\theta) / N$"
    ev[0::2] = top  # after E-step t: theta_t
    ev[1::2] = top[1:]  # after M-step t the parameters are theta_{t+1}
    gap[1::2] = trace.kl[:-1]
    return x, ev, elbo, gap, label


def plot_decomposition(model, ax=None, *, max_iter: int | None = None):
    """``log p(X | theta) = ELBO + KL`` at every half-step of the kept run.

    The evidence (black) only moves when the parameters do, at the M-steps; the ELBO (blue)
    rises at the E-step to touch it (the KL gap, red, right axis, drops to zero) and at the
    M-step rises with it but less, opening a new gap that the next E-step closes. For MAP
    models (BernoulliMixture with ``alpha > 0``) the top curve is the evidence plus the log
    prior, what EM raises. Where the evidence is intractable (LDA) the plot says so and shows
    the ELBO alone.

    Parameters
    ----------
    model : fitted emkit estimator (or a Trace)
    ax : matplotlib Axes, optional
    max_iter : int, optional
        Draw only the first ``max_iter`` iterations (the gap is largest early on).

    Returns
    -------
    matplotlib Axes
        The main axes; the KL axis is ``ax.kl_axis`` (None when intractable).
    """
    traces, best, unit = _traces(model)
    trace = traces[best]
    x, ev, elbo, gap, ev_label = decomposition(trace)
    if max_iter is not None:
        keep = x <= max_iter
        x, elbo = x[keep], elbo[keep]
        ev, gap = (None, None) if ev is None else (ev[keep], gap[keep])
    ax = _axes(ax)
    ax.kl_axis = None
    if ev is not None:
        ax.plot(x, ev, "k-", lw=1.6, label=ev_label)
        ax.fill_between(x, elbo, ev, color="C3", alpha=0.15, lw=0, label="KL gap")
    ax.plot(x, elbo, "-", color="C0", lw=1.2, label="ELBO")
    ax.plot(x[0::2], elbo[0::2], "o", color="C0", ms=4, label="after E-step")
    ax.plot(x[1::2], elbo[1::2], "s", mfc="white", color="C0", ms=4, label="after M-step")
    ax.set_xlabel("iteration (E-step at t, M-step at t + 0.5)")
    ax.set_ylabel(f"per {unit}")
    ax.set_title("log-evidence = ELBO + KL, per half-step")
    _robust_ylim(ax, [elbo] if ev is None else [elbo, ev])  # what is drawn (to max_iter)
    handles, labels = ax.get_legend_handles_labels()
    if ev is None:
        ax.text(0.4, 0.4, "log p(X | θ) is intractable for this model:\n"
                "only the ELBO is drawn, the KL gap is unknown",
                transform=ax.transAxes, ha="center", va="center", fontsize="medium",
                bbox=dict(boxstyle="round", fc="lightyellow", ec="0.6"))
    else:
        kl = ax.twinx()
        kl.plot(x, gap, "--", color="C3", lw=1, label="KL(Q || posterior)")
        kl.set_ylabel("KL gap (red dashed)", color="C3")
        kl.tick_params(axis="y", colors="C3")
        kl.set_ylim(bottom=0)
        ax.kl_axis = kl
        h2, l2 = kl.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="center right" if ev is not None else "lower right",
              fontsize="small")
    return ax


def _sub_covariance(model, k, f):
    cov = model.covariances_
    ct = model.covariance_type
    if ct == "full":
        return cov[k][np.ix_(f, f)]
    if ct == "tied":
        return cov[np.ix_(f, f)]
    if ct == "diag":
        return np.diag(cov[k][list(f)])
    return np.eye(2) * cov[k]


def ellipse(cov, n_sigma):
    """``(width, height, angle in degrees)`` of the ``n_sigma`` contour of a 2 x 2 covariance."""
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    vals = np.clip(vals, 0.0, None)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))  # of the largest axis
    return 2 * n_sigma * np.sqrt(vals[1]), 2 * n_sigma * np.sqrt(vals[0]), angle


def plot_gmm(model, X, ax=None, features=(0, 1), *, feature_names=None):
    """The data coloured by component, and every component's 1 and 2 sigma ellipse.

    Parameters
    ----------
    model : fitted GaussianMixture or BayesianGaussianMixture
    X : array-like of shape (n_samples, n_features)
    ax : matplotlib Axes, optional
    features : pair of int, default=(0, 1)
        The two features drawn (the ellipses are of the marginal covariance of that pair).
    feature_names : sequence of str, optional
        Axis labels (default "feature i").

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib.patches import Ellipse

    X = np.asarray(X)
    f = [int(i) for i in features]
    if len(f) != 2 or not all(0 <= i < X.shape[1] for i in f):
        raise ValueError(f"features must be two column indices of X; got {features!r}.")
    ax = _axes(ax, figsize=(6.4, 5.0))
    labels = model.predict(X)
    for k in range(model.n_components):
        color = f"C{k % 10}"
        pts = X[labels == k]
        ax.scatter(pts[:, f[0]], pts[:, f[1]], s=12, color=color, alpha=0.6,
                   label=f"component {k} (w = {model.weights_[k]:.2f})")
        mean = model.means_[k, f]
        for n_sigma, ls in ((1, "-"), (2, "--")):
            w, h, angle = ellipse(_sub_covariance(model, k, f), n_sigma)
            ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, ec=color, lw=1.5, ls=ls))
        ax.plot(*mean, "k+", ms=10, mew=2)
    ax.plot([], [], "k-", label="1 sigma")
    ax.plot([], [], "k--", label="2 sigma")
    names = feature_names or [f"feature {i}" for i in range(X.shape[1])]
    ax.set_xlabel(names[f[0]])
    ax.set_ylabel(names[f[1]])
    ax.set_title(f"{type(model).__name__}, {model.covariance_type} covariances")
    ax.legend(loc="best", fontsize="small")
    ax.autoscale_view()
    return ax


def _grid(n, ncols, panel):
    plt = _pyplot()
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, axes.flat[:n]


def plot_bernoulli_means(model, shape, *, ncols: int = 5, cmap="gray_r"):
    """Every component's means as an image of ``shape`` (e.g. (8, 8) for digits).

    Panels are in component order, titled with the component and its weight; the colour
    scale is the probability of a 1, from 0 to 1.

    Returns
    -------
    matplotlib Figure
    """
    shape = tuple(int(s) for s in shape)
    if int(np.prod(shape)) != model.means_.shape[1]:
        raise ValueError(f"shape {shape} does not hold {model.means_.shape[1]} features.")
    fig, axes = _grid(model.n_components, ncols, (1.9, 2.1))
    for k, ax in enumerate(axes):
        im = ax.imshow(model.means_[k].reshape(shape), cmap=cmap, vmin=0.0, vmax=1.0)
        ax.set_title(f"{k}: w = {model.weights_[k]:.2f}", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="P(pixel on)")
    fig.suptitle("BernoulliMixture component means")
    return fig


def topic_words(model, n_words):
    """``(indices, probabilities)`` of every topic's ``n_words`` most probable words."""
    beta = np.asarray(model.components_, dtype=np.float64)
    beta = beta / beta.sum(axis=1, keepdims=True)
    idx = np.argsort(-beta, axis=1, kind="stable")[:, :n_words]
    return idx, np.take_along_axis(beta, idx, axis=1)


def plot_topics(model, feature_names, n_words: int = 10, *, ncols: int = 5):
    """The ``n_words`` most probable words of every topic as horizontal bars.

    Bar lengths are ``E[beta_kw] = lambda_kw / sum_w lambda_kw``, largest at the top.

    Returns
    -------
    matplotlib Figure
    """
    names = np.asarray(feature_names)
    if names.shape[0] != model.components_.shape[1]:
        raise ValueError(f"feature_names has {names.shape[0]} names for "
                         f"{model.components_.shape[1]} words.")
    idx, prob = topic_words(model, n_words)
    fig, axes = _grid(model.n_components, ncols, (2.6, 0.32 * n_words + 1.0))
    for k, ax in enumerate(axes):
        y = np.arange(idx.shape[1])[::-1]
        ax.barh(y, prob[k], color=f"C{k % 10}")
        ax.set_yticks(y, [str(w) for w in names[idx[k]]], fontsize="small")
        ax.set_title(f"topic {k}", fontsize="medium")
        ax.set_xlabel("P(word | topic)", fontsize="small")
        ax.tick_params(axis="x", labelsize="x-small")
    fig.suptitle("LatentDirichletAllocation: top words per topic")
    return fig


def plot_selection(result, criterion: str | None = None, ax=None):
    """A criterion against ``n_components``, one line per covariance type (as mclust's BIC plot).

    Parameters
    ----------
    result : SelectionResult from :func:`emkit.select`
    criterion : {"bic", "aic", "icl"}, optional
        Default: the one ``result`` was ranked on. Lower is better (scikit-learn's sign).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    criterion = criterion or result.criterion
    r = result.results_
    if "param_n_components" not in r:
        raise ValueError("plot_selection needs n_components in the grid.")
    ks = np.asarray(r["param_n_components"], dtype=float)
    values = np.asarray(r[criterion], dtype=float)
    others = [c for c in r if c.startswith("param_") and c != "param_n_components"]
    groups = [tuple(r[c][i] for c in others) for i in range(len(ks))]
    ax = _axes(ax)
    markers = "osD^vP*X"
    for j, g in enumerate(dict.fromkeys(groups)):
        rows = np.array([i for i, h in enumerate(groups) if h == g])
        rows = rows[np.argsort(ks[rows], kind="stable")]
        label = ", ".join(f"{c[len('param_'):]}={v}" for c, v in zip(others, g, strict=True))
        ax.plot(ks[rows], values[rows], marker=markers[j % len(markers)],
                label=label or criterion.upper())
    b = result.best_index_
    ax.plot([ks[b]], [values[b]], "o", ms=14, mfc="none", mec="k", mew=1.5,
            label=f"best: {', '.join(f'{k}={v}' for k, v in result.best_params_.items())}")
    ax.set_xlabel("n_components")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.set_xticks(np.unique(ks[np.isfinite(ks)]))
    ax.set_title(f"Model selection by {criterion.upper()}")
    ax.legend(fontsize="small")
    return ax


def match_states(states, truth, n_states=None):
    """Relabel ``states`` to agree best with ``truth`` (states are found up to a permutation).

    The permutation maximises the number of steps where the two agree (an assignment problem
    on their confusion matrix, solved by :func:`scipy.optimize.linear_sum_assignment`).

    Parameters
    ----------
    states, truth : array-like of int of shape (n_samples,)
    n_states : int, optional
        Number of labels (default: one more than the largest in either).

    Returns
    -------
    relabelled : ndarray of int
        ``mapping[states]``, in the labels of ``truth``.
    mapping : ndarray of int of shape (n_states,)
        ``mapping[k]`` is the true label matched to state ``k``.
    agreement : float
        Fraction of steps where ``relabelled == truth``.
    """
    from scipy.optimize import linear_sum_assignment

    states = np.asarray(states, dtype=np.intp).ravel()
    truth = np.asarray(truth, dtype=np.intp).ravel()
    if states.shape != truth.shape:
        raise ValueError(f"states has {states.size} steps but truth has {truth.size}.")
    if states.size and min(states.min(), truth.min()) < 0:
        raise ValueError("states and truth must be non-negative integer labels.")
    top = int(max(states.max(initial=-1), truth.max(initial=-1))) + 1
    k = top if n_states is None else int(n_states)
    if k < top:
        raise ValueError(f"n_states={k} but the labels go up to {top - 1}.")
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (states, truth), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    mapping = np.empty(k, dtype=np.intp)
    mapping[rows] = cols
    relabelled = mapping[states]
    agreement = float(np.mean(relabelled == truth)) if states.size else float("nan")
    return relabelled, mapping, agreement


def plot_hmm_states(model, X, lengths=None, *, true_states=None, sequence: int = 0,
                    feature_names=None, state_names=None):
    """One sequence of a fitted HMM: the data, the state posteriors and the decoded path.

    Three panels sharing the time axis: the observations (GaussianHMM: each feature as a
    line; CategoricalHMM: the symbols as dots), coloured by the Viterbi state; the posterior
    probability of every state (``predict_proba``, stacked); and a strip of the Viterbi
    states (``predict``) under the true states when ``true_states`` is given. With the truth
    the fitted states are first relabelled to match it (:func:`match_states`, over all the
    sequences) and the agreement is in the title.

    Parameters
    ----------
    model : fitted GaussianHMM or CategoricalHMM
    X : array-like of shape (n_samples, n_features)
        The concatenated sequences.
    lengths : array-like of int, optional
        Lengths of the sequences in ``X`` (default: one sequence).
    true_states : array-like of int of shape (n_samples,), optional
        The states that generated ``X``, for simulated data.
    sequence : int, default=0
        Which sequence to draw.
    feature_names, state_names : sequence of str, optional
        Legend labels (default "feature i", "state k").

    Returns
    -------
    matplotlib Figure
        Its axes are ``[data, posteriors, states]``.
    """
    X = np.asarray(X)
    X2 = X.reshape(-1, 1) if X.ndim == 1 else X
    n = X2.shape[0]
    lengths = np.array([n]) if lengths is None else np.asarray(lengths, dtype=np.int64).ravel()
    if not 0 <= sequence < lengths.size:
        raise ValueError(f"sequence must be in 0..{lengths.size - 1}, got {sequence}.")
    viterbi = model.predict(X, lengths)
    proba = model.predict_proba(X, lengths)
    k = model.n_components
    order = np.arange(k)  # the colour (and the name) of state j is that of order[j]
    title = f"{type(model).__name__}, sequence {sequence} of {lengths.size}"
    if true_states is not None:
        true_states = np.asarray(true_states, dtype=np.intp).ravel()
        if true_states.size != n:
            raise ValueError(f"true_states has {true_states.size} steps but X has {n} rows.")
        k = max(k, int(true_states.max()) + 1)
        viterbi, order, agreement = match_states(viterbi, true_states, k)
        title += f": Viterbi states = true states at {agreement:.1%} of all steps"
    start = int(lengths[:sequence].sum())
    sl = slice(start, start + int(lengths[sequence]))
    t = np.arange(sl.stop - sl.start)
    x, z, p = X2[sl], viterbi[sl], proba[sl]
    names = list(state_names) if state_names is not None else [f"state {j}" for j in range(k)]
    colors = [f"C{j % 10}" for j in range(k)]

    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(9.0, 6.4), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": [3, 2, 1.2]})
    ax = axes[0]
    categorical = hasattr(model, "emissionprob_")
    if categorical:
        for j in range(k):
            on = z == j
            ax.plot(t[on], x[on, 0], "o", ms=3, color=colors[j], label=f"Viterbi: {names[j]}")
        ax.set_ylabel("symbol")
    else:
        fnames = feature_names or [f"feature {i}" for i in range(x.shape[1])]
        for i in range(x.shape[1]):
            ax.plot(t, x[:, i], "-", color="0.6", lw=0.8, label=fnames[i])
            for j in range(k):
                on = z == j
                ax.plot(t[on], x[on, i], ".", ms=4, color=colors[j],
                        label=f"Viterbi: {names[j]}" if i == 0 else None)
        ax.set_ylabel("observation")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper right", fontsize="x-small", ncols=min(k + 1, 4))

    ax = axes[1]
    # column j of the posteriors is fitted state j; stack them in the matched labels' order
    stacked = np.zeros((t.size, k))
    stacked[:, order[:p.shape[1]]] = p
    ax.stackplot(t, stacked.T, colors=colors, labels=[f"P({nm} | X)" for nm in names],
                 alpha=0.8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("posterior")
    ax.legend(loc="upper right", fontsize="x-small", ncols=min(k, 4))

    ax = axes[2]
    from matplotlib.colors import ListedColormap

    rows = [z] if true_states is None else [true_states[sl], z]
    labels = ["Viterbi"] if true_states is None else ["truth", "Viterbi"]
    ax.imshow(np.vstack(rows), aspect="auto", interpolation="nearest",
              cmap=ListedColormap(colors), vmin=-0.5, vmax=k - 0.5,
              extent=(-0.5, t.size - 0.5, len(rows) - 0.5, -0.5))
    ax.set_yticks(range(len(rows)), labels)
    ax.set_xlabel("step")
    return fig
