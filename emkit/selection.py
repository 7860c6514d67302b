"""Model selection by information criteria: :func:`select` fits a grid and ranks it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import ParameterGrid

__all__ = ["select", "SelectionResult", "CRITERIA"]

CRITERIA = ("bic", "aic", "icl")
_COLUMNS = ("bic", "aic", "icl", "log_likelihood", "n_parameters", "n_iter", "converged",
            "fit_seconds", "error")


@dataclass
class SelectionResult:
    """What :func:`select` returns.

    Attributes
    ----------
    best_estimator_ : estimator
        The fitted estimator of the grid point with the lowest criterion.
    best_params_ : dict
        Its grid parameters.
    best_index_ : int
        Its row in ``results_``.
    criterion : str
        The criterion ranked on.
    results_ : dict of lists
        One entry per grid point, as scikit-learn's ``cv_results_``
        (``pandas.DataFrame(result.results_)`` works): ``param_<name>`` for every grid
        parameter, ``params`` (the dicts), ``bic``, ``aic``, ``icl``, ``log_likelihood``,
        ``n_parameters``, ``n_iter``, ``converged``, ``fit_seconds`` and ``error`` (the message
        of a fit that failed, whose criteria are NaN; ``""`` otherwise).
    """

    best_estimator_: object
    best_params_: dict
    best_index_: int
    criterion: str
    results_: dict = field(repr=False)

    def table(self) -> str:
        """The results as a fixed-width text table, the best row marked with ``*``."""
        names = [c for c in self.results_ if c.startswith("param_")]
        head = [n[len("param_"):] for n in names] + ["bic", "aic", "icl", "log_lik", "n_par",
                                                     "n_iter", "conv", "seconds"]
        rows = []
        for i in range(len(self.results_["params"])):
            r = self.results_
            cells = [str(r[n][i]) for n in names]
            cells += [f"{r[c][i]:.4f}" for c in ("bic", "aic", "icl", "log_likelihood")]
            cells += [str(r["n_parameters"][i]), str(r["n_iter"][i]),
                      "yes" if r["converged"][i] else "no", f"{r['fit_seconds'][i]:.3f}"]
            if r["error"][i]:
                cells.append(f"failed: {r['error'][i]}")
            rows.append(("*" if i == self.best_index_ else " ", cells))
        widths = [max(len(h), *(len(c[j]) for _, c in rows)) for j, h in enumerate(head)]
        out = ["  " + "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
        for mark, cells in rows:
            fixed = "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=False))
            out.append(f"{mark} " + fixed + "".join("  " + c for c in cells[len(widths):]))
        return "\n".join(out)


def classification_entropy(resp: np.ndarray, sample_weight=None) -> float:
    """``-sum_n w_n sum_k r_nk log r_nk`` (0 log 0 = 0): the entropy of the soft labels."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(resp > 0, resp * np.log(resp), 0.0).sum(axis=1)
    if sample_weight is None:
        return float(-np.sum(terms))
    return float(-np.dot(np.asarray(sample_weight, dtype=np.float64), terms))


def _evaluate(estimator, X, sample_weight):
    """Fit one grid point; its row of the results (NaN criteria and the message on failure)."""
    row = dict.fromkeys(("bic", "aic", "icl", "log_likelihood"), float("nan"))
    row.update(n_parameters=-1, n_iter=-1, converged=False, error="")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in `converged`
            estimator.fit(X, sample_weight=sample_weight)
        n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        bic = float(estimator.bic(X, sample_weight=sample_weight))
        entropy = classification_entropy(estimator.predict_proba(X), sample_weight)
        row.update(
            bic=bic, aic=float(estimator.aic(X, sample_weight=sample_weight)),
            icl=bic + 2.0 * entropy,
            log_likelihood=float(estimator.score(X, sample_weight=sample_weight) * n),
            n_parameters=int(estimator._n_parameters()), n_iter=int(estimator.n_iter_),
            converged=bool(estimator.converged_),
        )
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        row["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        estimator = None
    row["fit_seconds"] = time.perf_counter() - t0
    return estimator, row


def select(
    estimator,
    X,
    param_grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]],
    criterion: str = "bic",
    sample_weight=None,
    n_jobs: int | None = None,
) -> SelectionResult:
    """Fit ``estimator`` at every point of ``param_grid`` and keep the lowest criterion.

    Parameters
    ----------
    estimator : GaussianMixture or BernoulliMixture
        Cloned for every grid point (its other parameters are kept).
    X : array-like of shape (n_samples, n_features)
        The data every grid point is fitted and scored on.
    param_grid : dict or list of dicts
        Constructor parameters and their values, as scikit-learn's ``ParameterGrid``:
        ``{"n_components": range(1, 10), "covariance_type": ["full", "diag"]}``.
    criterion : {"bic", "aic", "icl"}, default="bic"
        ``bic = -2 log L + p log n``, ``aic = -2 log L + 2 p``, ``icl = bic + 2 EN`` with
        ``EN = -sum_n sum_k r_nk log r_nk`` the classification entropy of the fitted
        responsibilities (Biernacki, Celeux & Govaert 2000), ``log L`` the log-likelihood
        (``sum_n w_n log p(x_n | theta)``, never the prior), ``p`` the number of free
        parameters and ``n`` the number (total weight) of samples. All follow
        scikit-learn's sign: **lower is better**. mclust reports ``BIC = 2 log L - p log n``,
        higher is better, so ``mclust BIC = -bic``; its ICL (``mclust::icl``) is
        ``-icl`` with the entropy of the hard (MAP) labels, ``sum_n log max_k r_nk``, in
        place of ``EN``.
    sample_weight : array-like of shape (n_samples,), optional
        Weights (repeat counts) for every fit and criterion.
    n_jobs : int, optional
        Grid points fitted at the same time (joblib threads; None: one at a time).

    Returns
    -------
    SelectionResult
        ``best_estimator_``, ``best_params_``, ``best_index_`` and ``results_``. A grid point
        whose fit fails (a collapsed component, too few samples) is recorded with its
        message in ``results_["error"]`` and NaN criteria, not raised; if every point fails,
        a ValueError names the first failure.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}.")
    name = type(estimator).__name__
    if name in ("GaussianHMM", "CategoricalHMM"):
        raise ValueError(
            f"select does not take {name}: an HMM's criteria need the sequences' lengths; fit "
            "each candidate with fit(X, lengths) and compare bic(X, lengths)."
        )
    if name == "BayesianGaussianMixture":
        raise ValueError(
            "select does not take BayesianGaussianMixture: it has no bic (its evidence is "
            "intractable) and prunes components itself; fit it with a generous n_components "
            "and read n_effective_components_, or compare lower_bound_."
        )
    if not (hasattr(estimator, "bic") and hasattr(estimator, "predict_proba")):
        raise ValueError(
            f"select needs a mixture with bic() and predict_proba(); {name} has none (for "
            "LatentDirichletAllocation compare held-out perplexity instead)."
        )
    grid = list(ParameterGrid(param_grid))
    if not grid:
        raise ValueError("param_grid is empty.")
    for params in grid:
        clone(estimator).set_params(**params)  # unknown parameter names fail here, at once
    candidates = [clone(estimator).set_params(**p) for p in grid]
    if n_jobs is None or n_jobs == 1:
        fitted = [_evaluate(c, X, sample_weight) for c in candidates]
    else:
        from joblib import Parallel, delayed

        fitted = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_evaluate)(c, X, sample_weight) for c in candidates
        )
    names = sorted({k for p in grid for k in p})
    results = {f"param_{k}": [p.get(k) for p in grid] for k in names}
    results["params"] = grid
    for col in _COLUMNS:
        results[col] = [row[col] for _, row in fitted]
    scores = np.asarray(results[criterion], dtype=np.float64)
    if not np.any(np.isfinite(scores)):
        raise ValueError(f"every fit of the grid failed; the first: {results['error'][0]}")
    best = int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan)))
    return SelectionResult(
        best_estimator_=fitted[best][0], best_params_=grid[best], best_index_=best,
        criterion=criterion, results_=results,
    )
