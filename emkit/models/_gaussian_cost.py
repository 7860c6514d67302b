"""The cost model that chooses the Gaussian E-step's path (re-exported by
:mod:`emkit.models.gaussian`)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..kernels import gaussian as kern

__all__ = ["PATH_COST", "cost_features", "path_costs"]


#: Cost model of the two E-step paths, seconds per row on one thread: ``PATH_COST[family][path]``
#: dotted with :func:`cost_features`. Fitted (non-negative least squares on relative error)
#: to one-thread E-step timings over D in 2..256, K in 1..64 by
#: ``python benchmarks/bench_gmm.py --calibrate`` (see benchmarks/RESULTS.md for the run).
#: Only the ratio of the two paths' costs matters, so a faster or slower machine shifts both.
PATH_COST = {
    "full": {"fast": (2.85e-08, 9.34e-10, 2.56e-10, 2.43e-10),
             "exact": (2.97e-08, 5.46e-09, 1.02e-10)},
    "diag": {"fast": (2.13e-08, 1.08e-09, 2.13e-10, 0.0),
             "exact": (2.9e-08, 2.67e-09)},
}


def cost_features(covariance_type: str, n_features: int, n_components: int) -> dict:
    """Terms of each path's cost per row: ``{"fast": [...], "exact": [...]}``.

    fast: ``[1, F, F K, F spill]`` (building the ``F`` features, the two ``F x K`` GEMMs,
    and ``spill`` = 1 when even a 64-row block of features exceeds the 1.5 MB the block size
    aims at, so they stream from memory); exact, full and tied: ``[K, K D, K D^2]`` (per
    component: call overheads, the ``B x D`` passes, the triangular product and rank-B
    update); exact, diag and spherical: ``[K, K D]``.
    """
    d, k = n_features, n_components
    f = kern.n_features_quad(d, covariance_type)
    spill = 1.0 if f * 64 * 8 > (3 << 19) else 0.0
    fast = [1.0, f, f * k, f * spill]
    if covariance_type in ("full", "tied"):
        return {"fast": fast, "exact": [k, k * d, k * d * d]}
    return {"fast": fast, "exact": [k, k * d]}


def path_costs(covariance_type: str, n_features: int, n_components: int) -> dict:
    """Modelled seconds per row of an E-step on each path (see :data:`PATH_COST`)."""
    family = "full" if covariance_type in ("full", "tied") else "diag"
    feats = cost_features(covariance_type, n_features, n_components)
    return {p: float(np.dot(PATH_COST[family][p], feats[p])) for p in ("fast", "exact")}


@lru_cache(maxsize=256)
def _fast_cheaper(covariance_type, n_features, n_components) -> bool:
    costs = path_costs(covariance_type, n_features, n_components)
    return costs["fast"] < costs["exact"]
