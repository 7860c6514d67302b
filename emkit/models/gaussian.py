"""Gaussian mixture model: E-step, M-step and ELBO (parameters and statistics: see
:mod:`emkit.models.gaussian_params`, re-exported here).

Everything here is a pure function of its arguments. The E-step makes one pass over the rows
(in blocks, see :mod:`emkit.kernels.gaussian`) and returns :class:`GaussianStats`; the M-step
and the ELBO read only statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import gaussian as kern
from ..kernels import gaussian_exact as kexact
from ..kernels._parallel import map_row_blocks, scratch
from ..kernels._rows import unit_weights
from ._common import one_hot
from ._gaussian_cost import PATH_COST, _fast_cheaper, cost_features, path_costs
from .gaussian_params import (
    COVARIANCE_TYPES,
    GaussianParams,
    GaussianStats,
    center_and_spread,
    gaussian_n_parameters,
    precision_cholesky_from_covariances,
    precision_cholesky_from_precisions,
    row_sum,
    weighted_scatter,
)

__all__ = [
    "COVARIANCE_TYPES",
    "PATH_COST",
    "cost_features",
    "path_costs",
    "GaussianParams",
    "GaussianStats",
    "GaussianModel",
    "center_and_spread",
    "gaussian_n_parameters",
    "row_sum",
    "weighted_scatter",
    "precision_cholesky_from_covariances",
    "precision_cholesky_from_precisions",
]

LOG_2PI = kern.LOG_2PI

#: How much larger than the exact path's round-off the fast path's may be, per dtype. The fast
#: path sums products ``P_ij y_i y_j`` of centred data ``y = x - c``; the exact path sums the
#: squares of ``(x - mu_k) U_k``, about D for a point of component k. So the fast path is used
#: while ``max_k s_k^T |P_k| s_k / D`` stays below this factor, with
#: ``s_k = |mu_k - c| + spread`` (spread: the data's per-feature deviation about c). The same
#: ratio bounds the cancellation in the M-step's ``S / N_k - m m^T`` about c.
FAST_PATH_MAX_AMPLIFICATION = {np.dtype(np.float64): 1e4, np.dtype(np.float32): 100.0}


def _add_parts(a, b):
    """Fold two blocks' ``(stats, log-evidence, entropy)`` (the first owns its arrays)."""
    sa, sb = a[0], b[0]
    if isinstance(sa, tuple):
        for x, y in zip(sa, sb, strict=True):
            x += y
    else:
        sa += sb
    return sa, a[1] + b[1], a[2] + b[2]


def _add_parts_stats(a, b):
    """Fold two blocks' ``(nk, sx, sxx)`` (the first owns its arrays)."""
    for x, y in zip(a, b, strict=True):
        x += y
    return a


@dataclass(frozen=True)
class _Prepared:
    path: str
    dtype: np.dtype
    center: np.ndarray
    Wt: np.ndarray | None = None         # fast path: K x F coefficients, data dtype
    means: np.ndarray | None = None      # exact path: K x D, float64
    pc: np.ndarray | None = None         # exact path: precisions_cholesky, float64
    const: np.ndarray | None = None      # exact path: log w_k + log det U_k - D/2 log 2 pi
    shift: np.ndarray | None = None      # exact path: float64 copy of ``means``
    work: np.dtype = np.dtype(np.float64)  # exact path: dtype of its arithmetic


@dataclass(frozen=True)
class GaussianModel:
    """The Gaussian mixture as EM sees it (configuration plus pure functions).

    Parameters
    ----------
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the diagonal of every covariance in the M-step.
    center : ndarray of shape (D,), optional
        Reference point of the fast path's quadratic form (the data's mean works best).
    spread : ndarray of shape (D,), optional
        The data's root-mean-square deviation from ``center`` per feature (see
        :func:`center_and_spread`); used by the fast path's accuracy rule.
    dtype : dtype
        Precision of the passes over the data (float32 or float64).
    path : {"auto", "fast", "exact"}
        ``"fast"``: blocked two-GEMM form; ``"exact"``: per-component Cholesky; ``"auto"``:
        fast where the cost model (:func:`path_costs`) finds it cheaper for the shape and its
        round-off stays within :data:`FAST_PATH_MAX_AMPLIFICATION` of exact. The exact path
        computes in float64 where it is taken for accuracy (whatever the data's dtype: in
        float32, ``(x - mu_k) U_k`` rounds away the same digits on the same ill-conditioned
        covariances, so float32 data is no faster there than float64) and in the data's dtype
        where it is taken for cost; ``"exact"`` forces it, in float64 (the reference).
    block_size : int, optional
        Rows per block (default: sized so a block's features take about 2 MB).
    n_threads : int, optional
        Threads over row blocks (default: the usable CPU count).
    """

    covariance_type: str = "full"
    reg_covar: float = 1e-6
    center: np.ndarray | None = None
    spread: np.ndarray | None = None
    dtype: np.dtype = np.dtype(np.float64)
    path: str = "auto"
    block_size: int | None = None
    n_threads: int | None = None

    # ------------------------------------------------------------------ preparation
    def _center(self, d):
        if self.center is None:
            return np.zeros(d)
        return np.asarray(self.center, dtype=np.float64)

    def amplification(self, params: GaussianParams) -> float:
        """Worst-case round-off of the fast path relative to the exact one (see the constant
        :data:`FAST_PATH_MAX_AMPLIFICATION`)."""
        d = params.n_features
        c = self._center(d)
        spread = np.zeros(d) if self.spread is None else np.asarray(self.spread, np.float64)
        s = np.abs(params.means - c) + spread
        P = np.abs(params.precisions())
        ct = self.covariance_type
        if ct == "full":
            a = np.einsum("ki,kij,kj->k", s, P, s)
        elif ct == "tied":
            a = np.einsum("ki,ij,kj->k", s, P, s)
        elif ct == "diag":
            a = np.sum(P * s**2, axis=1)
        else:
            a = P * np.sum(s**2, axis=1)
        return float(np.max(a) / d) if np.all(np.isfinite(a)) else np.inf

    def fast_path_cheaper(self, n_features: int, n_components: int) -> bool:
        """Whether the cost model (:func:`path_costs`) puts the quadratic-feature path below
        the exact one for this shape. Its ``F = D (D + 1) / 2 + D + 1`` features per row
        (full, tied) only pay off when enough components share them: at D = 256 the exact
        path is cheaper for every K up to 32 at least, at D = 16 the fast path from K = 2."""
        return _fast_cheaper(self.covariance_type, int(n_features), int(n_components))

    def _choice(self, params: GaussianParams) -> tuple[str, np.dtype]:
        """``(path, dtype of its arithmetic)`` for ``params`` (see :meth:`fast_path_ok`)."""
        dtype = np.dtype(self.dtype)
        if self.path == "fast":
            return "fast", dtype
        if self.path == "exact":
            return "exact", np.dtype(np.float64)  # the reference: float64 always
        limit = FAST_PATH_MAX_AMPLIFICATION.get(dtype, 100.0)
        if self.amplification(params) > limit:
            # the rounded quadratic form would lose accuracy in the data's dtype, and so would
            # (x - mu) U in float32 (the same ill-conditioning): exact, in float64
            return "exact", np.dtype(np.float64)
        if self.fast_path_cheaper(params.n_features, params.n_components):
            return "fast", dtype
        # accurate in the data's dtype but dearer than the exact path (wide data, few
        # components): the exact path, in the data's dtype (float32 halves its work)
        return "exact", dtype

    def fast_path_ok(self, params: GaussianParams) -> bool:
        """Whether ``"auto"`` takes the blocked quadratic form for ``params``: it must be both
        accurate enough (:data:`FAST_PATH_MAX_AMPLIFICATION`) and cheaper
        (:meth:`fast_path_cheaper`), so that auto is never slower than the exact path."""
        return self._choice(params)[0] == "fast"

    def prepare(self, params: GaussianParams) -> _Prepared:
        dtype = np.dtype(self.dtype)
        c = self._center(params.n_features)
        const = params.log_constants() - 0.5 * params.n_features * LOG_2PI
        path, work = self._choice(params)
        if path == "fast":
            W = self._coefficients(params, c, const)
            return _Prepared("fast", dtype, c.astype(dtype), Wt=np.ascontiguousarray(W.T))
        return _Prepared(
            "exact", dtype, c.astype(dtype), means=params.means.astype(work),
            pc=params.precisions_cholesky.astype(work), const=const, shift=params.means,
            work=work,
        )

    def _coefficients(self, params, c, const):
        """F x K matrix W with ``phi(x) @ W = log w_k + log N(x | mu_k, Sigma_k)``."""
        ct, d, k = self.covariance_type, params.n_features, params.n_components
        mu = params.means - c
        P = params.precisions()
        if ct in ("full", "tied"):
            Pk = np.broadcast_to(P, (k, d, d)) if ct == "tied" else P
            iu, ju = np.triu_indices(d)
            quad = -Pk[:, iu, ju] * np.where(iu == ju, 0.5, 1.0)
            lin = np.einsum("kij,kj->ki", Pk, mu)
            cq = -0.5 * np.einsum("ki,ki->k", lin, mu)
        else:
            p = P if ct == "diag" else np.repeat(P[:, None], d, axis=1)
            quad = -0.5 * p
            lin = p * mu
            cq = -0.5 * np.sum(lin * mu, axis=1)
        W = np.concatenate([quad, lin, (cq + const)[:, None]], axis=1).T
        return np.ascontiguousarray(W, dtype=self.dtype)

    def _block_size(self, d, path):
        if self.block_size is not None:
            return int(self.block_size)
        itemsize = np.dtype(self.dtype).itemsize
        if path == "fast":
            # a block's features (F x B) of about 1.5 MB stay in cache between the two GEMMs;
            # a row stride that is a multiple of 4 KiB makes the feature rows alias in the
            # cache (measured 2.5x slower at B = 1024 than at B = 960), so avoid it
            f = kern.n_features_quad(d, self.covariance_type)
            b = max(64, min(4000, (3 << 19) // (f * itemsize))) // 8 * 8
            if (b * itemsize) % 4096 == 0:
                b -= 8
            return int(b)
        return int(max(256, min(16384, (1 << 21) // (4 * d * itemsize))))

    # ------------------------------------------------------------------ block passes
    def _features(self, Xb, prep, reuse=False):
        """The block's features ``F x B``; with ``reuse`` in this thread's scratch memory
        (``reuse`` a string: under that name, for a caller that keeps them across calls)."""
        b, d = Xb.shape
        out = work = None
        if reuse:
            f = kern.n_features_quad(d, self.covariance_type)
            name = reuse if isinstance(reuse, str) else "gaussian-features"
            out = scratch(name, (f, b), Xb.dtype)
        if self.covariance_type in ("full", "tied"):
            if reuse:
                work = scratch("gaussian-centred", (d, b), Xb.dtype)
            return kern.quad_features(Xb, prep.center, out=out, work=work)
        return kern.square_features(Xb, prep.center, out=out)

    def _block_log_prob(self, Xb, prep, out):
        """``out[:] = log w_k + log N(x_n | k)`` for a block (B x K). Fast path: one GEMM
        ``Phi^T W`` straight into ``out`` (BLAS reads the transposed operands in place)."""
        if prep.path == "fast":
            np.matmul(self._features(Xb, prep, reuse=True).T, prep.Wt.T, out=out)
        else:
            out[:] = self._exact_log_prob_t(Xb.astype(prep.work, copy=False), prep).T

    def block_features(self, X, prep):
        """The fast path's features of all rows of ``X`` (F x N), in this thread's scratch
        memory (valid until its next call), for a caller that passes them to both
        :meth:`log_prob` and :meth:`stats_given_resp` (``features=``); None on the exact
        path. The hidden Markov models' blocks compute them once per E-step this way."""
        return self._features(X, prep, reuse="gaussian-block-features") \
            if prep.path == "fast" else None

    def _exact_log_prob_t(self, Xb, prep, out=None):
        """The exact path's ``K x B`` log-probabilities of rows ``Xb`` (in ``prep.work``)."""
        if out is None:
            out = np.empty((prep.means.shape[0], Xb.shape[0]), dtype=prep.work)
        return kexact.chol_log_prob_t(Xb, prep.means, prep.pc, prep.const,
                                      self.covariance_type, out)

    def _stats_about(self, Xb, Rw, shift):
        """Exact statistics of a block about per-component points ``shift`` (K x D);
        ``Rw``: B x K weighted responsibilities."""
        return kexact.scatter_about_t(Xb, Rw.T, shift, self.covariance_type)

    def _decode(self, G, d):
        """nk, sx, sxx from the fast path's ``R^T Phi`` (K x F)."""
        k_all = G.shape[0]
        nk = G[:, -1].copy()
        if self.covariance_type in ("full", "tied"):
            t = d * (d + 1) // 2
            iu, ju = np.triu_indices(d)
            sxx = np.empty((k_all, d, d))
            sxx[:, iu, ju] = G[:, :t]
            sxx[:, ju, iu] = G[:, :t]
            sx = G[:, t : t + d].copy()
        else:
            sxx = G[:, :d].copy()
            sx = G[:, d : 2 * d].copy()
        return nk, sx, sxx

    # ------------------------------------------------------------------ EM interface
    def e_step(self, params: GaussianParams, X, sample_weight=None, state=None):
        """One pass over ``X``: statistics at ``params`` (the posterior Q, KL = 0)."""
        prep = self.prepare(params)
        n, d = X.shape
        w = sample_weight

        def block(sl):
            Xb = X[sl]
            # float64 weights, scaled by a power of two ``s`` so the data-dtype arithmetic
            # sees them near one; the block's float64 results are multiplied back by ``s``
            wb, s = (None, 1.0) if w is None else unit_weights(w[sl])
            if prep.path == "fast":
                # F x B features and K x B log-probabilities in scratch memory reused by
                # every block of this thread; only the F x K product leaves the block
                Phi = self._features(Xb, prep, reuse=True)
                Lt = np.matmul(prep.Wt, Phi,
                               out=scratch("gaussian-logp", (prep.Wt.shape[0], Phi.shape[1]),
                                           Phi.dtype))
                # one fused pass: responsibilities times the weights, and log p(x_n)
                log_norm, _ = kern.softmax_t(Lt, wb, reuse=True)
                if wb is not None:
                    ll = float(np.dot(wb, log_norm))
                else:
                    ll = float(np.sum(log_norm))
                # entropy is sum_n w_n log_norm_n - <W, G>, computed once after the merge
                G = (Phi @ Lt.T).astype(np.float64)
                if s != 1.0:
                    G *= s
                return G, ll * s, 0.0
            # exact path: K x B log-probabilities in scratch memory, the fused softmax, and
            # the statistics about each component's mean (blocked BLAS, in prep.work)
            Xb = Xb.astype(prep.work, copy=False)
            Lt = self._exact_log_prob_t(
                Xb, prep, scratch("gaussian-logp-exact", (prep.means.shape[0], Xb.shape[0]),
                                  prep.work))
            log_norm, ent_rows = kern.softmax_t(Lt, wb, reuse=True)
            if wb is None:
                ll, ent = float(np.sum(log_norm)), float(np.sum(ent_rows))
            else:
                ll, ent = float(np.dot(wb, log_norm)), float(np.dot(wb, ent_rows))
            stats = kexact.scatter_about_t(Xb, Lt, prep.shift, self.covariance_type)
            if s != 1.0:
                for a in stats:
                    a *= s
            return stats, ll * s, ent * s

        parts = map_row_blocks(
            block, n, self._block_size(d, prep.path), self.n_threads, combine=_add_parts
        )
        total_weight = float(n if w is None else np.sum(w, dtype=np.float64))
        ll = float(sum(p[1] for p in parts))
        ent = float(sum(p[2] for p in parts))
        if prep.path == "fast":
            G = parts[0][0].copy()
            for p in parts[1:]:
                G += p[0]
            G = G.T  # K x F
            # H(Q) = sum_n w_n logsumexp_n - sum_nk w_n r_nk phi_n . W_k
            ent = ll - float(np.sum(G * prep.Wt.astype(np.float64)))
            nk, sx, sxx = self._decode(G, d)
            shift = np.broadcast_to(prep.center.astype(np.float64), (params.n_components, d))
        else:
            nk, sx, sxx = (sum(p[0][i] for p in parts[1:]) + parts[0][0][i] for i in range(3))
            shift = prep.shift
        return GaussianStats(nk, sx, sxx, shift, ll, ent, total_weight, float(n)), None

    def stats_from_resp(self, X, resp, sample_weight=None) -> GaussianStats:
        """Statistics for given responsibilities (initialisation), exact and in float64.

        ``resp`` is either an ``N x K`` array or, for hard assignments, a pair
        ``(labels, n_components)`` (label ``n_components`` meaning "no component"), which
        never materialises an ``N x K`` array. Two passes: the component means first, then the
        scatter about them, so a one-point component gets exactly zero scatter (its covariance
        is then exactly ``reg_covar``), whatever the data's offset or dtype.
        """
        n, d = X.shape
        if isinstance(resp, tuple):
            labels, k_all = resp
            labels = np.asarray(labels)
        else:
            labels, k_all = None, resp.shape[1]
        c = self._center(d)

        def weights(sl):
            if labels is None:
                Rw = resp[sl].astype(np.float64, copy=True)
            else:
                Rw = one_hot(labels[sl], k_all)
            if sample_weight is not None:
                Rw *= sample_weight[sl, None]
            return Rw

        def first(sl):
            Rw = weights(sl)
            return Rw.sum(axis=0), Rw.T @ (X[sl].astype(np.float64) - c)

        bs = self._block_size(d, "exact")
        parts = map_row_blocks(first, n, bs, self.n_threads)
        nk = sum(p[0] for p in parts)
        sx = sum(p[1] for p in parts)
        means = c + np.divide(sx, nk[:, None], out=np.zeros_like(sx), where=nk[:, None] > 0)

        nk, sx, sxx = self._scatter_about(X, weights, means)
        total = float(n if sample_weight is None else np.sum(sample_weight, dtype=np.float64))
        return GaussianStats(nk, sx, sxx, means, np.nan, np.nan, total, float(n))

    def _scatter_about(self, X, weights, shift):
        """``(nk, sx, sxx)`` of ``X`` about ``shift`` (K x D), exact, float64, one blocked
        pass; ``weights(sl)`` gives the weighted responsibilities of the rows ``sl``."""
        n, d = X.shape
        parts = map_row_blocks(
            lambda sl: self._stats_about(X[sl].astype(np.float64), weights(sl), shift),
            n, self._block_size(d, "exact"), self.n_threads, combine=_add_parts_stats,
        )
        nk, sx, sxx = parts[0]
        for p in parts[1:]:
            nk, sx, sxx = nk + p[0], sx + p[1], sxx + p[2]
        return nk, sx, sxx

    def stats_given_resp(self, params: GaussianParams, X, resp, *, total_weight,
                         n_rows, prep=None, features=None) -> GaussianStats:
        """Statistics of ``X`` for given weighted responsibilities ``resp`` (N x K, sample
        weights already applied), float64.

        The emission statistics of a hidden Markov model (``resp``: the state posteriors at
        ``params``). The path is the E-step's: where :meth:`fast_path_ok` holds, one GEMM of
        the block's features with ``resp`` (statistics about ``center``); otherwise the exact
        per-component pass about ``params.means``. ``log_evidence`` and ``entropy`` are zero:
        they belong to the model whose posteriors ``resp`` are. ``prep``: ``prepare(params)``
        if the caller has it already; ``features``: its :meth:`block_features` of ``X``.
        """
        n, d = X.shape
        prep = self.prepare(params) if prep is None else prep
        if prep.path == "fast":
            def block(sl):
                Phi = self._features(X[sl], prep, reuse=True) if features is None \
                    else features[:, sl]
                r = resp[sl]
                s = 1.0
                if r.dtype != Phi.dtype:  # float64 weights in the responsibilities
                    r, s = unit_weights(r)
                G = (Phi @ r.astype(Phi.dtype, copy=False)).astype(np.float64)
                if s != 1.0:
                    G *= s
                return G, 0, 0

            parts = [block(slice(0, n))] if features is not None else map_row_blocks(
                block, n, self._block_size(d, "fast"), self.n_threads, combine=_add_parts
            )
            G = parts[0][0].copy()
            for p in parts[1:]:
                G += p[0]
            nk, sx, sxx = self._decode(G.T, d)
            shift = np.broadcast_to(prep.center.astype(np.float64), (params.n_components, d))
        else:
            shift = np.asarray(params.means, dtype=np.float64)
            nk, sx, sxx = self._scatter_about(X, lambda sl: resp[sl], shift)
        return GaussianStats(nk, sx, sxx, shift, 0.0, 0.0, float(total_weight), float(n_rows))

    def moments(self, stats: GaussianStats):
        """Weighted counts, means and covariances (with ``reg_covar``) from the statistics:
        scikit-learn's ``_estimate_gaussian_parameters``, shared with variational Bayes."""
        ct, reg = self.covariance_type, self.reg_covar
        # scikit-learn's guard against empty components, 10 eps per unit of weight (so that
        # the fit does not depend on the scale of sample_weight)
        unit = stats.total_weight / stats.n_rows if stats.n_rows > 0 else 1.0
        nk = stats.nk + 10 * float(np.finfo(self.dtype).eps) * unit
        m = stats.sx / nk[:, None]
        means = stats.shift + m
        if ct == "full":
            cov = stats.sxx / nk[:, None, None] - m[:, :, None] * m[:, None, :]
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
            cov[:, np.arange(cov.shape[1]), np.arange(cov.shape[1])] += reg
        elif ct == "tied":
            cov = (stats.sxx.sum(axis=0) - np.einsum("k,ki,kj->ij", nk, m, m)) / nk.sum()
            cov = 0.5 * (cov + cov.T)
            cov[np.diag_indices_from(cov)] += reg
        elif ct == "diag":
            cov = stats.sxx / nk[:, None] - m**2 + reg
        else:
            cov = (stats.sxx / nk[:, None] - m**2 + reg).mean(axis=1)
        return nk, means, cov

    def m_step(self, stats: GaussianStats) -> GaussianParams:
        """Maximise the ELBO (with scikit-learn's ``reg_covar``) from the statistics alone."""
        nk, means, cov = self.moments(stats)
        return GaussianParams.from_covariances(
            nk / nk.sum(), means, cov, self.covariance_type, reg_covar=self.reg_covar,
            dtype=self.dtype,
        )

    def _ecll_terms(self, params: GaussianParams, stats: GaussianStats, absolute=False):
        """Per-component terms of E_Q[log p(X, Z | theta)]: ``nk * const``, and the three
        parts of the quadratic form (about each component's shift).

        With ``absolute=True`` every product is taken of absolute values: the size that the
        round-off of the sums is relative to.
        """
        ct = self.covariance_type
        d = params.n_features
        f = np.abs if absolute else (lambda a: a)
        delta = f(params.means - stats.shift)
        nk, sx, sxx = stats.nk, f(stats.sx), f(stats.sxx)
        if ct in ("full", "tied"):
            P = f(params.precisions())
            Pk = np.broadcast_to(P, (params.n_components, d, d)) if ct == "tied" else P
            q_xx = np.einsum("kij,kij->k", Pk, sxx)
            q_x = np.einsum("ki,ki->k", delta, np.einsum("kij,kj->ki", Pk, sx))
            q_1 = nk * np.einsum("ki,ki->k", delta, np.einsum("kij,kj->ki", Pk, delta))
        else:
            pc = params.precisions_cholesky
            p = pc**2 if ct == "diag" else np.repeat((pc**2)[:, None], d, axis=1)
            q_xx = np.sum(p * sxx, axis=1)
            q_x = np.sum(p * delta * sx, axis=1)
            q_1 = nk * np.sum(p * delta**2, axis=1)
        const = params.log_constants() - 0.5 * d * LOG_2PI
        return nk * f(const), q_xx, q_x, q_1

    def expected_complete_loglik(self, params: GaussianParams, stats: GaussianStats) -> float:
        """``E_Q[log p(X, Z | theta)]``, linear in the statistics."""
        lin, q_xx, q_x, q_1 = self._ecll_terms(params, stats)
        return float(np.sum(lin) - 0.5 * np.sum(q_xx - 2.0 * q_x + q_1))

    def roundoff_scale(self, params: GaussianParams, stats: GaussianStats) -> float:
        """Sum of the absolute products that make up the ELBO: its round-off is relative to
        this, not to the ELBO itself. With collapsed components (precisions ~ 1 / reg_covar)
        the products are many orders larger than the ELBO they cancel down to.
        """
        lin, q_xx, q_x, q_1 = self._ecll_terms(params, stats, absolute=True)
        total = np.sum(lin) + 0.5 * np.sum(q_xx + 2.0 * q_x + q_1)
        ev = stats.log_evidence  # NaN where intractable (variational Bayes)
        return float(total + abs(stats.entropy) + (abs(ev) if np.isfinite(ev) else 0.0))

    def ecll_and_scale(self, params: GaussianParams, stats: GaussianStats):
        """``(expected_complete_loglik, roundoff_scale)`` (the pair a hidden Markov model's
        bound caches per parameters and statistics)."""
        return self.expected_complete_loglik(params, stats), self.roundoff_scale(params, stats)

    def elbo(self, params: GaussianParams, stats: GaussianStats) -> float:
        """ELBO(Q, theta) = E_Q[log p(X, Z | theta)] + H(Q), from statistics only."""
        return self.expected_complete_loglik(params, stats) + stats.entropy

    def objective(self, params: GaussianParams, stats: GaussianStats) -> float:
        """What :meth:`m_step` maximises: the ELBO minus ``reg_covar``'s implied penalty.

        ``Sigma_k = S_k / N_k + reg I`` is the maximiser of
        ``ELBO - reg / 2 * sum_k N_k tr(P_k)``; with ``reg_covar = 0`` this is the ELBO.
        """
        return self.elbo(params, stats) - self.reg_penalty(params, stats)

    def reg_penalty(self, params: GaussianParams, stats: GaussianStats) -> float:
        """``reg_covar / 2 * sum_k N_k tr(P_k)``: what :meth:`objective` subtracts."""
        ct = self.covariance_type
        P = params.precisions()
        if ct == "full":
            tr = np.trace(P, axis1=1, axis2=2)
        elif ct == "tied":
            tr = np.full(params.n_components, np.trace(P))
        elif ct == "diag":
            tr = P.sum(axis=1)
        else:
            tr = params.n_features * P
        return 0.5 * self.reg_covar * float(np.dot(stats.nk, tr))

    def log_prior(self, params: GaussianParams) -> float:
        return 0.0

    # ------------------------------------------------------------------ prediction
    def log_prob(self, params: GaussianParams, X, prep=None, features=None) -> np.ndarray:
        """``log w_k + log N(x_n | mu_k, Sigma_k)`` for every row (N x K, data dtype);
        ``prep``: ``prepare(params)`` if the caller has it already; ``features``: its
        :meth:`block_features` of ``X``, if the caller has them."""
        prep = self.prepare(params) if prep is None else prep
        n, d = X.shape
        out = np.empty((n, params.n_components), dtype=prep.dtype)
        if features is not None:  # block_features(X, prep)
            return np.matmul(features.T, prep.Wt.T, out=out)
        map_row_blocks(lambda sl: self._block_log_prob(X[sl], prep, out[sl]), n,
                       self._block_size(d, prep.path), self.n_threads)
        return out
