"""Gaussian mixture kernels: one pass over a block of rows.

Two ways to get the log-densities and the sufficient statistics of a block:

* **Blocked quadratic form** (fast path). With the data centred at ``c``, the log of
  ``w_k N(x | mu_k, P_k^{-1})`` is linear in the features ``phi(x)``:

  - full / tied: ``phi = [x_i x_j (i <= j), x, 1]``, ``F = D (D + 1) / 2 + D + 1``;
  - diag / spherical: ``phi = [x_i^2, x, 1]``, ``F = 2 D + 1``.

  So the log-densities of a block are one GEMM ``Phi @ W`` (``B x F`` by ``F x K``), and the
  statistics ``N_k, sum r x, sum r x x^T`` are a second GEMM ``R^T Phi``. Exp and
  log-sum-exp run vectorised in NumPy. The features are built by a Numba kernel.
  Precision: the expansion ``x'Px - 2 mu'Px + mu'P mu`` cancels when a component's mean sits
  far from ``c`` in its own metric; :func:`fast_path_ok` decides when it is safe.

* **Per-component Cholesky** (exact path, the reference twin and the fallback):
  ``y = (x - mu_k) U_k`` as scikit-learn computes it, and statistics taken about each
  component's own mean, so nothing cancels.

Every Numba kernel here states its NumPy equivalent and has a ``*_ref`` twin that the tests
compare it with in float32 and float64.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit

__all__ = [
    "quad_features",
    "quad_features_ref",
    "square_features",
    "square_features_ref",
    "n_features_quad",
    "normalize_log_prob",
]

LOG_2PI = float(np.log(2.0 * np.pi))


def n_features_quad(n_features: int, covariance_type: str) -> int:
    """Width ``F`` of the feature map for ``covariance_type``."""
    d = n_features
    if covariance_type in ("full", "tied"):
        return d * (d + 1) // 2 + d + 1
    return 2 * d + 1


def _quad_features(X, center, out):
    """Quadratic features of centred rows.

    NumPy equivalent (``quad_features_ref``)::

        Y = X - center
        i, j = np.triu_indices(D)
        out[:] = np.hstack([Y[:, i] * Y[:, j], Y, np.ones((B, 1))])
    """
    n, d = X.shape
    y = np.empty(d, dtype=out.dtype)
    last = out.shape[1] - 1
    for r in range(n):
        for i in range(d):
            y[i] = X[r, i] - center[i]
        col = 0
        for i in range(d):
            yi = y[i]
            for j in range(i, d):
                out[r, col] = yi * y[j]
                col += 1
        for i in range(d):
            out[r, col + i] = y[i]
        out[r, last] = 1.0


def _square_features(X, center, out):
    """Diagonal features of centred rows.

    NumPy equivalent (``square_features_ref``)::

        Y = X - center
        out[:] = np.hstack([Y * Y, Y, np.ones((B, 1))])
    """
    n, d = X.shape
    last = out.shape[1] - 1
    for r in range(n):
        for i in range(d):
            yi = X[r, i] - center[i]
            out[r, i] = yi * yi
            out[r, d + i] = yi
        out[r, last] = 1.0


_quad_features_jit = jit(_quad_features)
_square_features_jit = jit(_square_features)


def quad_features(X, center, out=None):
    """Quadratic features ``[y_i y_j (i <= j), y, 1]`` of ``y = X - center`` (Numba)."""
    n, d = X.shape
    if out is None:
        out = np.empty((n, n_features_quad(d, "full")), dtype=X.dtype)
    _quad_features_jit(X, center.astype(X.dtype, copy=False), out)
    return out


def quad_features_ref(X, center):
    """NumPy twin of :func:`quad_features`."""
    Y = X - center.astype(X.dtype, copy=False)
    i, j = np.triu_indices(X.shape[1])
    return np.hstack([Y[:, i] * Y[:, j], Y, np.ones((X.shape[0], 1), dtype=X.dtype)])


def square_features(X, center, out=None):
    """Diagonal features ``[y^2, y, 1]`` of ``y = X - center`` (Numba)."""
    n, d = X.shape
    if out is None:
        out = np.empty((n, 2 * d + 1), dtype=X.dtype)
    _square_features_jit(X, center.astype(X.dtype, copy=False), out)
    return out


def square_features_ref(X, center):
    """NumPy twin of :func:`square_features`."""
    Y = X - center.astype(X.dtype, copy=False)
    return np.hstack([Y * Y, Y, np.ones((X.shape[0], 1), dtype=X.dtype)])


def normalize_log_prob(L, sample_weight=None):
    """Turn log-probabilities into responsibilities, in place.

    ``L`` (``B x K``, finite) holds ``log w_k + log p(x_n | k)``. On return it holds the
    responsibilities ``r_nk``. Returns ``(R, log_norm, sum_log_norm, entropy)`` where
    ``log_norm[n] = logsumexp(L[n])``, ``sum_log_norm = sum_n w_n log_norm[n]`` and
    ``entropy = -sum_n w_n sum_k r_nk log r_nk``, both accumulated in float64.

    NumPy/SciPy equivalent::

        log_norm = scipy.special.logsumexp(L, axis=1)
        log_r = L - log_norm[:, None]
        R = np.exp(log_r)
        entropy = -(w[:, None] * R * log_r).sum()
    """
    mx = L.max(axis=1)
    L -= mx[:, None]
    E = np.exp(L)
    s = E.sum(axis=1)
    # sum_k r_k (L_k - mx) = (sum_k e_k L_k) / s ; entropy_n = log s - that
    rl = np.einsum("nk,nk->n", E, L) / s
    np.divide(E, s[:, None], out=L)
    log_s = np.log(s)
    log_norm = mx + log_s
    ent_rows = log_s - rl
    if sample_weight is None:
        return (
            L,
            log_norm,
            float(np.sum(log_norm, dtype=np.float64)),
            float(np.sum(ent_rows, dtype=np.float64)),
        )
    w = sample_weight.astype(np.float64, copy=False)
    return (
        L,
        log_norm,
        float(np.dot(w, log_norm.astype(np.float64))),
        float(np.dot(w, ent_rows.astype(np.float64))),
    )
