"""Gaussian mixture parameters, additive statistics and data summaries (pure values).

:class:`GaussianParams` (named parameters, scikit-learn's precision-Cholesky convention),
:class:`GaussianStats` (the E-step's additive statistics, with ``+``, scaling, :meth:`blend`
and :meth:`about`), conversions between covariances and precision factors, and the blocked
passes over the rows that summarise the data (weighted mean, spread, scatter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import linalg

from ..kernels._parallel import map_row_blocks
from ..kernels._rows import column_reduce
from ._common import ComponentShape, floored_log

__all__ = [
    "COVARIANCE_TYPES",
    "GaussianParams",
    "GaussianStats",
    "center_and_spread",
    "gaussian_n_parameters",
    "row_sum",
    "weighted_scatter",
    "precision_cholesky_from_covariances",
    "precision_cholesky_from_precisions",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _collapse_error(k, reg_covar, dtype, what="is not positive definite"):
    msg = (
        f"Component {k}'s covariance {what} even after adding reg_covar={reg_covar:g}: "
        "the component has collapsed onto too few distinct points. Increase reg_covar, "
        "decrease n_components, or rescale the data."
    )
    if np.dtype(dtype) == np.float32:
        msg += " Passing float64 data instead of float32 can also help."
    return ValueError(msg)


def precision_cholesky_from_covariances(covariances, covariance_type, *, reg_covar=0.0,
                                        dtype=np.float64):
    """Upper-triangular ``U`` with ``U U^T = inv(covariance)`` (scikit-learn's convention).

    Raises a ValueError naming the component when a covariance is not positive definite.
    """
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        covs = covariances[None] if covariance_type == "tied" else covariances
        d = covs.shape[-1]
        out = np.empty_like(covs)
        eye = np.eye(d)
        for k in range(covs.shape[0]):
            try:
                chol = linalg.cholesky(covs[k], lower=True, check_finite=True)
            except (linalg.LinAlgError, ValueError):
                raise _collapse_error(k, reg_covar, dtype) from None
            out[k] = linalg.solve_triangular(chol, eye, lower=True).T
        return out[0] if covariance_type == "tied" else out
    bad = ~(covariances > 0)
    if np.any(bad):
        k = int(np.argwhere(bad)[0][0])
        raise _collapse_error(k, reg_covar, dtype, "has a non-positive variance")
    return 1.0 / np.sqrt(covariances)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """``U`` (upper triangular, ``U U^T = precision``) from precision matrices."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        ps = precisions[None] if covariance_type == "tied" else precisions
        d = ps.shape[-1]
        out = np.empty_like(ps)
        for k in range(ps.shape[0]):
            # P = U U^T with U upper: flip, lower Cholesky, flip back
            flipped = ps[k][::-1, ::-1]
            chol = linalg.cholesky(flipped, lower=True)
            out[k] = chol[::-1, ::-1]
        del d
        return out[0] if covariance_type == "tied" else out
    return np.sqrt(precisions)


def gaussian_n_parameters(n_components, n_features, covariance_type) -> int:
    """Free parameters of a Gaussian mixture: weights, means and covariances."""
    k, d = n_components, n_features
    cov = {
        "full": k * d * (d + 1) / 2.0,
        "diag": k * d,
        "tied": d * (d + 1) / 2.0,
        "spherical": k,
    }[covariance_type]
    return int(cov + k * d + k - 1)


def _precisions_from_cholesky(pc, covariance_type):
    if covariance_type == "full":
        return pc @ np.swapaxes(pc, 1, 2)
    if covariance_type == "tied":
        return pc @ pc.T
    return pc**2


def _covariances_from_cholesky(pc, covariance_type):
    if covariance_type == "full":
        out = np.empty_like(pc)
        for k in range(pc.shape[0]):
            inv_u = linalg.solve_triangular(pc[k], np.eye(pc.shape[-1]), lower=False)
            out[k] = inv_u.T @ inv_u
        return out
    if covariance_type == "tied":
        inv_u = linalg.solve_triangular(pc, np.eye(pc.shape[-1]), lower=False)
        return inv_u.T @ inv_u
    return 1.0 / pc**2


@dataclass(frozen=True, eq=False)
class GaussianParams(ComponentShape):
    """Parameters of a Gaussian mixture, float64.

    ``precisions_cholesky`` has shape (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical,
    with ``U U^T`` the precision matrix as in scikit-learn. ``covariances`` is kept alongside
    when known (the M-step computes it) so it is never re-derived by inversion.
    """

    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str
    covariances: np.ndarray | None = field(default=None, repr=False)
    log_const: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_covariances(cls, weights, means, covariances, covariance_type, *, reg_covar=0.0,
                         dtype=np.float64):
        pc = precision_cholesky_from_covariances(
            covariances, covariance_type, reg_covar=reg_covar, dtype=dtype
        )
        return cls(
            np.asarray(weights, np.float64), np.asarray(means, np.float64), pc,
            covariance_type, np.asarray(covariances, np.float64),
        )

    def get_covariances(self) -> np.ndarray:
        if self.covariances is not None:
            return self.covariances
        return _covariances_from_cholesky(self.precisions_cholesky, self.covariance_type)

    def precisions(self) -> np.ndarray:
        """``U U^T`` (computed once per parameter set; the ELBO and the kernels reuse it)."""
        return self._precisions

    @cached_property
    def _precisions(self) -> np.ndarray:
        return _precisions_from_cholesky(self.precisions_cholesky, self.covariance_type)

    def log_det_cholesky(self) -> np.ndarray:
        """``log det U_k`` per component (half the log-determinant of the precision)."""
        pc, ct, k = self.precisions_cholesky, self.covariance_type, self.n_components
        if ct == "full":
            return np.log(np.diagonal(pc, axis1=1, axis2=2)).sum(axis=1)
        if ct == "tied":
            return np.full(k, np.log(np.diag(pc)).sum())
        if ct == "diag":
            return np.log(pc).sum(axis=1)
        return self.n_features * np.log(pc)

    def log_weights(self) -> np.ndarray:
        return floored_log(self.weights)

    def log_constants(self) -> np.ndarray:
        """Constant of component k's log-density besides ``-D/2 log 2 pi`` and the quadratic
        form: ``log w_k + log det U_k``, or ``log_const`` when given."""
        if self.log_const is not None:
            return self.log_const
        return self._log_constants

    @cached_property
    def _log_constants(self) -> np.ndarray:  # once per parameter set (read once per pass)
        return self.log_weights() + self.log_det_cholesky()

    def replace(self, **changes) -> GaussianParams:
        values = dict(
            weights=self.weights, means=self.means,
            precisions_cholesky=self.precisions_cholesky,
            covariance_type=self.covariance_type, covariances=self.covariances,
            log_const=self.log_const,
        )
        values.update(changes)
        return GaussianParams(**values)


@dataclass(frozen=True, eq=False)
class GaussianStats:
    """Additive sufficient statistics of a Gaussian mixture E-step (float64).

    For each component ``k``, about a reference point ``shift[k]``:
    ``nk[k] = sum_n w_n r_nk``, ``sx[k] = sum_n w_n r_nk (x_n - shift_k)`` and
    ``sxx[k] = sum_n w_n r_nk (x_n - shift_k)(x_n - shift_k)^T`` (K x D x D for full and tied,
    only the diagonal, K x D, for diag and spherical). Plus ``log_evidence``
    (``sum_n w_n log p(x_n)``), ``entropy`` (``-sum_n w_n sum_k r_nk log r_nk``),
    ``total_weight`` and ``n_rows`` (rows seen, which sets the scale of the weights).
    Statistics with the same shift add exactly (``a + b``), and scale (``c * a``) and blend
    (``a.blend(rho, b)``) for stepwise EM. :meth:`about` re-expresses them about other points
    (exactly, up to round-off), which is how statistics of different E-steps are blended: the
    fast path's shift is the model's ``center``, the exact path's the parameters' means.
    """

    nk: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray
    shift: np.ndarray
    log_evidence: float
    entropy: float
    total_weight: float
    n_rows: float = 0.0

    def _check_compatible(self, other):
        if not isinstance(other, GaussianStats):
            return NotImplemented
        if self.shift is not other.shift and not np.array_equal(self.shift, other.shift):
            raise ValueError("GaussianStats about different shifts cannot be added.")
        return None

    def __add__(self, other):
        bad = self._check_compatible(other)
        if bad is NotImplemented:
            return NotImplemented
        return GaussianStats(
            self.nk + other.nk, self.sx + other.sx, self.sxx + other.sxx, self.shift,
            self.log_evidence + other.log_evidence, self.entropy + other.entropy,
            self.total_weight + other.total_weight, self.n_rows + other.n_rows,
        )

    def __mul__(self, c):
        c = float(c)
        return GaussianStats(
            c * self.nk, c * self.sx, c * self.sxx, self.shift, c * self.log_evidence,
            c * self.entropy, c * self.total_weight, c * self.n_rows,
        )

    __rmul__ = __mul__

    def about(self, shift) -> GaussianStats:
        """The same statistics about the points ``shift`` (K x D, or D for all components).

        With ``delta_k = shift_k - shift'_k`` (old minus new point) and ``y = x - shift_k``:
        ``sx' = sx + nk delta``, ``sxx' = sxx + sx delta^T + delta sx^T + nk delta delta^T``
        (the diagonal of it for diag and spherical).
        """
        new = np.broadcast_to(np.asarray(shift, dtype=np.float64), self.sx.shape)
        if new is self.shift or np.array_equal(new, self.shift):
            return self
        delta = self.shift - new
        nd = self.nk[:, None] * delta
        sx = self.sx + nd
        if self.sxx.ndim == 3:
            cross = self.sx[:, :, None] * delta[:, None, :]
            sxx = self.sxx + cross + np.swapaxes(cross, 1, 2) + nd[:, :, None] * delta[:, None, :]
        else:
            sxx = self.sxx + (2.0 * self.sx + nd) * delta
        return GaussianStats(
            self.nk, sx, sxx, new, self.log_evidence, self.entropy, self.total_weight,
            self.n_rows,
        )

    def blend(self, rho: float, other: GaussianStats) -> GaussianStats:
        """``(1 - rho) * self + rho * other`` (stepwise EM), about ``other``'s points.

        ``self`` is first re-expressed (:meth:`about`) about ``other.shift``: the newer E-step's
        points, near the current means or the data's centre.
        """
        return (1.0 - rho) * self.about(other.shift) + rho * other


def _weighted_sum(Xb, wb):
    """``sum_n w_n x_n`` and ``sum_n w_n`` of a block of rows, float64."""
    Xb = np.asarray(Xb, dtype=np.float64)
    if wb is None:
        return np.append(column_reduce(np.add, Xb), Xb.shape[0])
    wb = np.asarray(wb, dtype=np.float64)
    return np.append(wb @ Xb, wb.sum())


def _weighted_sq_dev(Xb, wb, c):
    """``sum_n w_n (x_n - c)^2`` per feature of a block of rows, float64 (infinite, silently,
    where the squares overflow: the caller's scale check names that)."""
    Y = np.asarray(Xb, dtype=np.float64) - c
    with np.errstate(over="ignore", invalid="ignore"):
        Y *= Y
        return column_reduce(np.add, Y) if wb is None else np.asarray(wb, dtype=np.float64) @ Y


def _weighted_scatter(Xb, wb, c):
    """``sum_n w_n (x_n - c)(x_n - c)^T`` of a block of rows, float64."""
    Y = np.asarray(Xb, dtype=np.float64) - c
    return Y.T @ (Y if wb is None else Y * np.asarray(wb, dtype=np.float64)[:, None])


def row_sum(X, sample_weight, func, *args, n_threads=None):
    """``sum_b func(X_b, w_b, *args)`` over row blocks of ``X`` (threads), or over the
    blocks of a dask array's rows (:class:`emkit._dask.DaskRows`, summed on the workers)."""
    if hasattr(X, "map_reduce"):
        return X.map_reduce(func, *args)
    n, d = X.shape
    bs = max(256, (1 << 20) // (8 * max(d, 1)))
    w = sample_weight

    def block(sl):
        return func(X[sl], None if w is None else w[sl], *args)

    return sum(map_row_blocks(block, n, bs, n_threads))


def center_and_spread(X, sample_weight=None, n_threads=None):
    """Weighted mean of the rows and root-mean-square deviation from it, per feature.

    Two passes over row blocks, float64, no ``N x D`` temporary. ``X`` may also be the
    rows of a dask array (:class:`emkit._dask.DaskRows`, weights included): then each pass
    is summed on the workers.
    """
    first = row_sum(X, sample_weight, _weighted_sum, n_threads=n_threads)
    c = first[:-1] / first[-1]
    var = row_sum(X, sample_weight, _weighted_sq_dev, c, n_threads=n_threads) / first[-1]
    return c, np.sqrt(var)


def weighted_scatter(X, sample_weight, c, n_threads=None):
    """``sum_n w_n (x_n - c)(x_n - c)^T`` (D x D, float64) in one pass over row blocks."""
    return row_sum(X, sample_weight, _weighted_scatter, c, n_threads=n_threads)
