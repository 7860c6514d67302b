"""Hidden Markov models: a Markov chain composed with an emission model, on the one driver.

Baum-Welch is EM: the E-step (forward-backward, :mod:`emkit.kernels.hmm`) sets Q(Z) to the exact
posterior over state paths and returns additive statistics, which are the start counts, the
expected transition counts and the emission model's statistics with the state posteriors as
responsibilities (for Gaussian emissions exactly :class:`~emkit.models.gaussian.GaussianStats`;
for categorical emissions K x V counts). Statistics of different sequences add up, so blocks of
sequences are summed like blocks of rows.

The M-step is hmmlearn's (0.3), priors included: Dirichlet priors on the start and transition
probabilities (and the categorical emissions), a Normal prior on the means and an inverse-gamma
(diag, spherical) or inverse-Wishart (full, tied) prior on the covariances. ``log_prior`` is the
log density (up to a constant) that this M-step maximises jointly with the ELBO. hmmlearn keeps a
zero start or transition probability at zero (left-right chains); so does :meth:`HMMModel.m_step`,
which reads the parameters the statistics were computed at (``stats.at``) for that and for the
parameters not being updated (``params`` without ``"s"``, ``"t"``, ...).
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ..kernels import hmm as kern
from ..kernels._parallel import map_row_blocks, scratch
from ..kernels.gaussian import n_features_quad
from ._common import floored_log
from ._hmm_categorical import CategoricalEmission, dirichlet_log_prior, dirichlet_m_step
from ._hmm_missing import missing_log_prob, missing_stats
from .gaussian import LOG_2PI, GaussianModel, GaussianParams, GaussianStats

__all__ = [
    "Sequences",
    "HMMParams",
    "HMMStats",
    "HMMModel",
    "GaussianEmission",
    "CategoricalEmission",
    "dirichlet_m_step",
]


@dataclass(frozen=True, eq=False)
class Sequences:
    """Concatenated sequences: ``X`` (N x D, or N symbols) and ``starts`` (S + 1 offsets).

    ``weights`` (N,), optional: per-observation weights; the emission density of step ``t``
    is raised to the power ``weights[t]`` (``w_t`` observations of the same step; zero: the
    step is unobserved). Per-sequence weights are the E-step's ``sample_weight``.
    """

    X: np.ndarray
    starts: np.ndarray
    weights: np.ndarray | None = None
    _blocks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    @property
    def n_sequences(self) -> int:
        return len(self.starts) - 1

    def blocks(self, max_rows: int) -> list:
        """Runs of whole sequences of about ``max_rows`` rows: ``[(Sequences, seq slice)]``
        (cut once per ``max_rows``: every E-step of a fit walks the same blocks)."""
        hit = self._blocks.get(max_rows)
        if hit is not None:
            return hit
        out, starts = [], self.starts.tolist()
        s, n_seq = 0, self.n_sequences
        while s < n_seq:
            e = s + 1
            while e < n_seq and starts[e + 1] - starts[s] <= max_rows:
                e += 1
            a, b = starts[s], starts[e]
            w = None if self.weights is None else self.weights[a:b]
            out.append((Sequences(self.X[a:b], self.starts[s : e + 1] - a, w), slice(s, e)))
            s = e
        self._blocks[max_rows] = out
        return out


@dataclass(frozen=True, eq=False)
class HMMParams:
    """``startprob`` (K,), ``transmat`` (K, K) and the emission parameters, float64."""

    startprob: np.ndarray
    transmat: np.ndarray
    emission: object
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_components(self) -> int:
        return self.startprob.shape[0]

    def log_chain(self):
        """``(log startprob, log transmat)``, floored (computed once per parameter set)."""
        if "logs" not in self._cache:
            self._cache["logs"] = (floored_log(self.startprob), floored_log(self.transmat))
        return self._cache["logs"]

    def cached(self, key, owner, compute):
        """``compute()`` once per parameter set and ``owner`` (the model asking, or a tuple of
        the objects the value depends on besides the parameters, compared by identity).

        The owners are held by weak reference: a value cached for the statistics of an
        earlier E-step must not keep them alive (they refer to their own parameters, whose
        cache would hold the statistics before, and so on back to the first iteration: a
        chain as long as the fit, which pickle could not walk after some hundred iterations).
        """
        owners = owner if isinstance(owner, tuple) else (owner,)
        hit = self._cache.get(key)
        if hit is None or len(hit[0]) != len(owners) or any(
            r() is not b for r, b in zip(hit[0], owners, strict=True)
        ):
            hit = self._cache[key] = (tuple(weakref.ref(o) for o in owners), compute())
        return hit[1]

    def __getstate__(self):
        # the cache (weak references, derived values) is not part of the parameters
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state


@dataclass(frozen=True, eq=False)
class HMMStats:
    """Additive statistics of a forward-backward pass (float64).

    ``start[k] = sum_s w_s gamma_s0(k)``, ``trans[i, j] = sum_s w_s sum_t xi_st(i, j)``,
    ``emission``: the emission model's statistics of ``w_s gamma_st``. ``log_evidence``
    ``= sum_s w_s log p(x_s)``, ``entropy`` ``= H(Q)`` of the chain posterior, ``total_weight``
    ``= sum_s w_s T_s`` (the per-sample unit is one time step), ``at``: the parameters of the
    E-step (what the M-step keeps where it does not update).
    """

    start: np.ndarray
    trans: np.ndarray
    emission: object
    log_evidence: float
    entropy: float
    total_weight: float
    n_rows: float
    at: HMMParams | None = None

    def __add__(self, other):
        if not isinstance(other, HMMStats):
            return NotImplemented
        return HMMStats(
            self.start + other.start, self.trans + other.trans, self.emission + other.emission,
            self.log_evidence + other.log_evidence, self.entropy + other.entropy,
            self.total_weight + other.total_weight, self.n_rows + other.n_rows, self.at,
        )

    def __mul__(self, c):
        c = float(c)
        return HMMStats(
            c * self.start, c * self.trans, self.emission * c, c * self.log_evidence,
            c * self.entropy, c * self.total_weight, c * self.n_rows, self.at,
        )

    __rmul__ = __mul__

    def blend(self, rho: float, other: HMMStats) -> HMMStats:
        """``(1 - rho) * self + rho * other`` (stepwise EM)."""
        return (1.0 - rho) * self + rho * other


# ---------------------------------------------------------------------------- emissions
def _diag_precisions(ep: GaussianParams) -> np.ndarray:
    """Per-state, per-feature precisions (K x D) of diag or spherical parameters."""
    p = ep.precisions()
    return p if ep.covariance_type == "diag" else np.repeat(p[:, None], ep.n_features, axis=1)


def _first_not_pd(cov, ct):
    """Index of the first state whose covariance is not positive definite."""
    for k in range(cov.shape[0]):
        if ct in ("diag", "spherical"):
            if not np.all(cov[k] > 0):
                return k
        elif np.any(~np.isfinite(cov[k])) or np.linalg.eigvalsh(cov[k])[0] <= 0:
            return k
    return 0


#: the largest block of emission features shared by an E-step's two passes (one per thread,
#: kept in its scratch memory): blocks of 16,384 float64 rows up to 31 features for diag and
#: spherical covariances, up to 9 for full and tied
SHARED_FEATURES_BYTES = 8 << 20


@dataclass(frozen=True)
class GaussianEmission:
    """Gaussian emissions: GaussianMixture's kernel and statistics, hmmlearn's M-step.

    ``gaussian`` computes the log-densities (its log-probability path with every state weight
    one, so the per-state constant has no mixture weight) and the statistics about the current
    means. ``means_prior``/``means_weight``/``covars_prior``/``covars_weight`` are hmmlearn's.
    ``missing``: NaN entries of X are missing observations, marginalised exactly in the
    E-step; the statistics then hold their conditional moments, so the M-step and the bound
    are unchanged (diag and spherical below, full and tied in :mod:`._hmm_missing`).
    """

    gaussian: GaussianModel
    means_prior: object = 0.0
    means_weight: object = 0.0
    covars_prior: object = 1e-2
    covars_weight: object = 1.0
    update_means: bool = True
    update_covars: bool = True
    missing: bool = False
    #: the Gaussian kernel's coefficients of the last parameters seen (every block of an
    #: E-step, and both of its passes, use the same ones)
    _prepared: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def covariance_type(self) -> str:
        return self.gaussian.covariance_type

    def _prep(self, ep: GaussianParams):
        hit = self._prepared.get("last")
        if hit is None or hit[0] is not ep:
            hit = (ep, self.gaussian.prepare(ep))
            self._prepared["last"] = hit
        return hit[1]

    def serial(self) -> GaussianEmission:
        """The same emissions with the Gaussian passes on the calling thread."""
        return replace(self, gaussian=replace(self.gaussian, n_threads=1))

    def _filled(self, X):
        """``(X with NaN replaced by the model's centre, missing mask)``; mask None if none.

        Missing entries (diag and spherical) are marginalised exactly: the kernels see
        the centre ``c`` in their place and the terms of those entries are corrected below,
        so the Gaussian kernel and its statistics serve unchanged.
        """
        if not self.missing:
            return X, None
        mask = np.isnan(X)
        if not mask.any():
            return X, None
        c = self.gaussian.center.astype(X.dtype)
        return np.where(mask, c, X), mask.astype(X.dtype)

    def _full_mask(self, X):
        """The missing entries of ``X`` for full and tied covariances (None if none, or
        another covariance type): those are marginalised in :mod:`._hmm_missing`."""
        if not self.missing or self.covariance_type not in ("full", "tied"):
            return None
        mask = np.isnan(X)
        return mask if mask.any() else None

    def features(self, ep: GaussianParams, X):
        """The Gaussian kernel's features of a block's rows, computed once for both of its
        passes (:meth:`log_prob` and :meth:`stats`); None where they do not apply (the
        exact path, missing entries) or would exceed :data:`SHARED_FEATURES_BYTES` (full
        covariances of many features: ``F = D (D + 1) / 2 + D + 1`` per row; there the
        passes build them per cache-sized block, as GaussianMixture's). In this thread's
        scratch memory: valid for the block."""
        if self.missing:
            return None
        f = n_features_quad(X.shape[1], self.covariance_type)
        if f * X.shape[0] * X.dtype.itemsize > SHARED_FEATURES_BYTES:
            return None
        return self.gaussian.block_features(X, self._prep(ep))

    def log_prob(self, ep: GaussianParams, X, features=None):
        """``log N(x_t | mu_k, Sigma_k)`` (N x K) over the observed entries of every row
        (``features``: :meth:`features` of ``X``, if the caller has them)."""
        if features is not None:
            return self.gaussian.log_prob(ep, X, prep=self._prep(ep), features=features)
        full_mask = self._full_mask(X)
        if full_mask is not None:
            return missing_log_prob(self.gaussian, ep, X, full_mask)
        Xf, mask = self._filled(X)
        L = self.gaussian.log_prob(ep, Xf, prep=self._prep(ep))
        if mask is not None:
            # remove what the filled entries contributed: per state and feature,
            # log U_kd - log(2 pi) / 2 - P_kd (c_d - mu_kd)^2 / 2
            p = _diag_precisions(ep)
            corr = np.log(p) / 2 - 0.5 * LOG_2PI - 0.5 * p * (self.gaussian.center - ep.means) ** 2
            L -= (mask @ corr.T.astype(L.dtype)).astype(L.dtype, copy=False)
        return L

    def stats(self, ep: GaussianParams, X, R, total_weight, features=None):
        """GaussianStats of the state posteriors ``R``; a missing entry contributes its
        conditional moments ``E[x_d] = mu_kd``, ``E[x_d^2] = mu_kd^2 + sigma_kd^2`` (full and
        tied: the conditional Gaussian given the observed entries, :mod:`._hmm_missing`)."""
        if features is not None:
            return self.gaussian.stats_given_resp(
                ep, X, R, total_weight=total_weight, n_rows=X.shape[0], prep=self._prep(ep),
                features=features)
        full_mask = self._full_mask(X)
        if full_mask is not None:
            return missing_stats(self.gaussian, ep, X, full_mask, R,
                                 total_weight=total_weight, n_rows=X.shape[0])
        Xf, mask = self._filled(X)
        es = self.gaussian.stats_given_resp(
            ep, Xf, R, total_weight=total_weight, n_rows=X.shape[0], prep=self._prep(ep)
        )
        if mask is None:
            return es
        M = (R.T @ mask).astype(np.float64)  # K x D: posterior mass of the missing entries
        c, mu, s = self.gaussian.center, ep.means, es.shift
        sx = es.sx + M * (mu - c)
        sxx = es.sxx + M * ((mu - s) ** 2 + 1.0 / _diag_precisions(ep) - (c - s) ** 2)
        return GaussianStats(es.nk, sx, sxx, s, 0.0, 0.0, es.total_weight, es.n_rows)

    def ecll_and_scale(self, ep, es):
        """``(E_Q[log p(X | Z, theta)], the size its round-off is relative to)``."""
        return self.gaussian.ecll_and_scale(ep, es)

    def _cw(self, d):
        ct, cw = self.covariance_type, np.asarray(self.covars_weight, dtype=np.float64)
        return np.maximum(cw - (1.0 if ct in ("diag", "spherical") else d), 0.0)

    def m_step(self, es, old: GaussianParams) -> GaussianParams:
        ct = self.covariance_type
        k_all, d = old.means.shape
        nk = es.nk
        mw = np.asarray(self.means_weight, dtype=np.float64)
        m0 = np.asarray(self.means_prior, dtype=np.float64)
        if self.update_means:
            obs = es.sx + nk[:, None] * es.shift
            den = np.broadcast_to(mw + nk[:, None], obs.shape)
            means = np.divide(mw * m0 + obs, den, out=old.means.copy(), where=den > 0)
        else:
            means = old.means
        if not self.update_covars:
            return old.replace(means=means)
        about = es.about(means)  # scatter about the new means: nothing cancels
        diff = means - m0
        cp = np.asarray(self.covars_prior, dtype=np.float64)
        cw = self._cw(d)
        if ct in ("diag", "spherical"):
            c_n = mw * diff**2 + about.sxx
            cov = (cp + c_n) / np.maximum(cw + nk[:, None], 1e-5)
            if ct == "spherical":
                cov = cov.mean(axis=1)
        else:
            c_n = mw * diff[:, :, None] * diff[:, None, :] + about.sxx
            if ct == "tied":
                cov = (cp + c_n.sum(axis=0)) / (cw + nk.sum())
            else:
                cov = (cp + c_n) / (cw + nk[:, None, None])
        if ct != "tied":  # a state no sequence visits keeps its covariance
            visited = (nk + cw > 0).reshape((-1,) + (1,) * (cov.ndim - 1))
            cov = np.where(visited, cov, old.get_covariances())
        try:
            return GaussianParams.from_covariances(old.weights, means, cov, ct)
        except ValueError:  # GaussianMixture's wording names its reg_covar, not ours
            where = "The tied covariance" if ct == "tied" else (
                f"State {_first_not_pd(cov, ct)}'s '{ct}' covariance")
            raise ValueError(
                f"{where} from the M-step is not positive definite (a state's posterior mass "
                "sits on fewer distinct observations than there are features). Pass "
                "covars_prior as positive-definite matrices (for example a multiple of the "
                "identity, shape (n_components, n_features, n_features) or (n_features, "
                "n_features) for 'tied'), use fewer states, or a diagonal "
                "covariance_type."
            ) from None

    def log_prior(self, ep: GaussianParams) -> float:
        """The log prior that :meth:`m_step` maximises (up to a constant)."""
        ct = self.covariance_type
        k_all, d = ep.means.shape
        mw = np.asarray(self.means_weight, dtype=np.float64)
        cp = np.asarray(self.covars_prior, dtype=np.float64)
        diff = ep.means - np.asarray(self.means_prior, dtype=np.float64)
        cw = self._cw(d)
        P = ep.precisions()
        if ct in ("diag", "spherical"):
            p = P if ct == "diag" else np.repeat(P[:, None], d, axis=1)
            logdet = np.log(p)
            val = -0.5 * (mw * diff**2 + cp) * p + 0.5 * cw * logdet
            return float(np.sum(np.broadcast_to(val, (k_all, d))))
        Pk = np.broadcast_to(P, (k_all, d, d)) if ct == "tied" else P
        quad = np.einsum("ki,kij,kj->k", diff, Pk, diff)
        mean_term = -0.5 * float(np.sum(mw * quad))
        logdet = 2.0 * ep.log_det_cholesky()  # log det P_k
        if ct == "tied":
            return mean_term - 0.5 * float(np.sum(cp * P)) + 0.5 * float(cw * logdet[0])
        cov_term = -0.5 * np.sum(np.broadcast_to(cp, (k_all, d, d)) * P) + 0.5 * np.sum(
            cw * logdet
        )
        return mean_term + float(cov_term)


# ---------------------------------------------------------------------------- the HMM
def _emission_scaled(emission, params, X, reuse=False, features=None):
    """``B = exp(L - max_k L)`` and the per-step maxima (float64) of a block.

    An emission model may compute them itself (``scaled``: categorical emissions need no
    exponential at all).
    """
    if hasattr(emission, "scaled"):
        return emission.scaled(params.emission, X, reuse=reuse, features=features)
    L = np.ascontiguousarray(emission.log_prob(params.emission, X, features=features))
    return L, kern.row_max_exp(L)  # in place: L is this call's own array


def _weighted_log_prob(emission, params, X, weights, features=None):
    """Emission log-densities (N x K) times the per-observation ``weights`` (if any), and the
    dtype of the unweighted ones. Weighted: float64, as the weights stay (a float32 product
    would overflow to -inf for weights near 1e38, or a log-density times a weight beyond
    3.4e38)."""
    L = emission.log_prob(params.emission, X, features=features)
    dtype = L.dtype
    if weights is not None:
        L = np.asarray(L, dtype=np.float64) * np.asarray(weights, dtype=np.float64)[:, None]
    return L, dtype


def _forward_backward(emission, params, X, starts, weights=None, reuse=False, features=None):
    """``(loglik per sequence, gamma, trans per sequence)`` of the sequences of ``X``.

    The scaled kernel on the emissions shifted by their per-step maximum; a sequence where
    that underflows (a state the chain can reach sits more than ~700 nats below the best one,
    so every reachable state's scaled emission is 0) is redone in log space, never left NaN.
    ``weights``: per-observation weights (the emission log-densities are multiplied by them).
    With ``reuse`` the N x K arrays live in this thread's scratch memory, so ``gamma`` is valid
    only until the thread's next block (the E-step's blocks: a fresh 2 MB array per block is
    returned to the operating system and faulted in again, measured 12,600 page faults per
    categorical E-step of 200,000 x 16). ``features``: the emission model's
    ``features(params.emission, X)``, shared with the statistics pass.
    """
    if weights is None:
        B, mx = _emission_scaled(emission, params, X, reuse, features)
    else:
        B, dtype = _weighted_log_prob(emission, params, X, weights, features)
        mx = kern.row_max_exp(B)  # in place: B is this call's own (float64) array
        B = B.astype(dtype, copy=False)  # scaled emissions in [0, 1]: the data's dtype
    out = scratch("hmm-gamma", B.shape, B.dtype) if reuse else None
    gamma, ll, trans = kern.forward_backward(B, starts, params.startprob, params.transmat,
                                             out=out)
    ll += np.add.reduceat(mx, starts[:-1])
    # posteriors are in [0, 1] when all is well: one sum tells (no N x K mask)
    if np.isfinite(ll).all() and np.isfinite(np.sum(gamma, dtype=np.float64)):
        return ll, gamma, trans
    ok = np.isfinite(ll) & np.logical_and.reduceat(
        np.isfinite(gamma).all(axis=1), starts[:-1])
    for s in np.flatnonzero(~ok):
        a, b = int(starts[s]), int(starts[s + 1])
        wb = None if weights is None else weights[a:b]
        L = np.asarray(_weighted_log_prob(emission, params, X[a:b], wb)[0], dtype=np.float64)
        with np.errstate(invalid="ignore"):  # overflowed log-densities: NaN, reported
            g, l, t = kern.forward_backward_log(L, np.array([0, b - a]), params.startprob,
                                                params.transmat)
        gamma[a:b], ll[s], trans[s] = g, l[0], t[0]
    return ll, gamma, trans


@dataclass(frozen=True)
class HMMModel:
    """A hidden Markov model as EM sees it: a Markov chain plus an ``emission`` model.

    ``update_start``/``update_trans``: hmmlearn's ``"s"``/``"t"`` in ``params``.
    ``block_rows``: sequences are processed in runs of about this many rows (a longer
    sequence is one run of its own), so memory does not grow with the number of sequences;
    the runs are spread over ``n_threads`` threads (default: the usable CPUs).
    """

    emission: object
    startprob_prior: object = 1.0
    transmat_prior: object = 1.0
    update_start: bool = True
    update_trans: bool = True
    dtype: np.dtype = np.dtype(np.float64)
    block_rows: int = 1 << 14
    n_threads: int | None = None

    @cached_property
    def _serial_emission(self):
        return self.emission.serial()

    # ------------------------------------------------------------------ passes
    def posteriors(self, params: HMMParams, seqs: Sequences):
        """``(loglik per sequence (S,), gamma (N x K), trans per sequence (S x K x K))``."""
        return _forward_backward(self.emission, params, seqs.X, seqs.starts, seqs.weights)

    def _block_stats(self, params, block, w, emission):
        """Statistics of one block of whole sequences (``w``: their weights or None; the
        per-observation weights, if any, are ``block.weights``)."""
        n = block.X.shape[0]
        # the emission features once for both passes (a block longer than block_rows is one
        # long sequence: its passes run in row blocks of their own instead)
        feats = emission.features(params.emission, block.X) if n <= self.block_rows else None
        ll, gamma, trans = _forward_backward(emission, params, block.X, block.starts,
                                             block.weights, reuse=True, features=feats)
        if w is None:
            start = gamma[block.starts[:-1]].sum(axis=0, dtype=np.float64)
            trans_sum = trans.sum(axis=0)
            R, log_ev, row_w = gamma, float(np.sum(ll)), None
        else:
            start = w @ gamma[block.starts[:-1]].astype(np.float64)
            trans_sum = np.tensordot(w, trans, axes=1)
            row_w = np.repeat(w, block.lengths)
            log_ev = float(w @ ll)
        if block.weights is not None:
            row_w = block.weights if row_w is None else row_w * block.weights
        if row_w is not None:
            # float64: the emission statistics bring the weights near one where they meet
            # the data's dtype (a float32 cast here would lose 1e-50 or 1e39)
            R = gamma * np.asarray(row_w, dtype=np.float64)[:, None]
        weight = float(n) if row_w is None else float(np.sum(row_w, dtype=np.float64))
        es = emission.stats(params.emission, block.X, R, weight, features=feats)
        return HMMStats(start, trans_sum, es, log_ev, 0.0, weight, float(n))

    def e_step(self, params: HMMParams, X: Sequences, sample_weight=None, state=None):
        """Forward-backward over every sequence: statistics at ``params`` (KL = 0).

        Blocks of whole sequences (about ``block_rows`` rows each) run on emkit's thread
        pool, their statistics summed in block order (reproducible whatever the threads);
        with a single large block (one long sequence) the emission model's own passes use the
        threads instead.
        """
        blocks = X.blocks(self.block_rows)
        # threads inside the emission passes only for one large block (a thread-pool round
        # trip costs more than a small block's GEMM)
        threaded = len(blocks) == 1 and X.X.shape[0] >= 2 * self.block_rows
        emission = self.emission if threaded else self._serial_emission

        def run(sl):
            block, seq = blocks[sl.start]
            w = None if sample_weight is None else np.asarray(sample_weight[seq], np.float64)
            return self._block_stats(params, block, w, emission)

        # one block per task: blocks are large already, and with fewer tasks than about
        # 4 per thread the last ones leave a thread idle (measured 1.5x instead of 1.9x
        # on two threads with 13 blocks in 7 tasks)
        parts = map_row_blocks(run, len(blocks), 1, self.n_threads, combine=operator.add,
                               blocks_per_task=1)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        terms = self._terms(params, total)
        stats = HMMStats(
            total.start, total.trans, total.emission, total.log_evidence,
            total.log_evidence - terms[0], total.total_weight, total.n_rows, params,
        )
        params.cached(("terms", id(stats)), (self, stats), lambda: terms)
        return stats, None

    # ------------------------------------------------------------------ M-step and bound
    def m_step(self, stats: HMMStats) -> HMMParams:
        old = stats.at
        start = old.startprob
        if self.update_start:
            start = dirichlet_m_step(stats.start, self.startprob_prior, old.startprob)
        trans = old.transmat
        if self.update_trans:
            trans = dirichlet_m_step(stats.trans, self.transmat_prior, old.transmat, axis=1)
            # a state never left keeps its row (hmmlearn would leave a row of zeros)
            trans = np.where(trans.sum(axis=1, keepdims=True) > 0, trans, old.transmat)
        return HMMParams(start, trans, self.emission.m_step(stats.emission, old.emission))

    def expected_complete_loglik(self, params: HMMParams, stats: HMMStats) -> float:
        """``E_Q[log p(X, Z | theta)]`` from the statistics; computed once per parameter set
        and statistics (the driver asks for the same pair several times per iteration)."""
        return self._cached_terms(params, stats)[0]

    def _cached_terms(self, params, stats):
        return params.cached(("terms", id(stats)), (self, stats),
                             lambda: self._terms(params, stats))

    def _terms(self, params, stats):
        """``(E_Q[log p(X, Z | theta)], the sum of the absolute values of its terms)``,
        chain and emissions, in one evaluation."""
        log_pi, log_a = params.log_chain()
        t_start, t_trans = stats.start * log_pi, stats.trans * log_a
        e_ecll, e_size = self.emission.ecll_and_scale(params.emission, stats.emission)
        return (float(t_start.sum() + t_trans.sum()) + e_ecll,
                float(np.abs(t_start).sum() + np.abs(t_trans).sum()) + e_size)

    def log_prior(self, params: HMMParams) -> float:
        """The log prior the M-step maximises (up to a constant), computed once per
        parameter set."""
        return params.cached("log_prior", self, lambda: (
            dirichlet_log_prior(self.startprob_prior, params.startprob)
            + dirichlet_log_prior(self.transmat_prior, params.transmat)
            + self.emission.log_prior(params.emission)
        ))

    def elbo(self, params: HMMParams, stats: HMMStats) -> float:
        """``E_Q[log p(X, Z | theta)] + H(Q) + log p(theta)``; equals ``log_evidence +
        log_prior`` at the E-step's parameters."""
        return self.expected_complete_loglik(params, stats) + stats.entropy + self.log_prior(
            params
        )

    def objective(self, params: HMMParams, stats: HMMStats) -> float:
        """What :meth:`m_step` maximises: :meth:`elbo` (MAP)."""
        return self.elbo(params, stats)

    def roundoff_scale(self, params: HMMParams, stats: HMMStats) -> float:
        """Sum of the absolute terms of the bound (once per parameter set and statistics)."""
        return (self._cached_terms(params, stats)[1] + abs(stats.entropy)
                + abs(stats.log_evidence))

    # ------------------------------------------------------------------ prediction
    def score_sequences(self, params: HMMParams, seqs: Sequences):
        """``(loglik per sequence, posteriors N x K)``."""
        ll, gamma, _ = self.posteriors(params, seqs)
        return ll, gamma

    def viterbi(self, params: HMMParams, seqs: Sequences):
        """``(log-probability of each sequence's best path, states (N,))``."""
        L = self.emission.log_prob(params.emission, seqs.X)
        with np.errstate(divide="ignore"):  # a forbidden start or transition is -inf here
            log_chain = np.log(params.startprob), np.log(params.transmat)
        path, logprob = kern.viterbi(L, seqs.starts, *log_chain)
        return logprob, path
