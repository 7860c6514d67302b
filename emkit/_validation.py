"""Input checks shared by all estimators: clear errors before any work, never a silent NaN."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .kernels._rows import column_reduce

__all__ = [
    "check_fit_data",
    "check_predict_data",
    "check_sample_weight",
    "check_weights",
    "check_means",
    "check_mean_prior",
    "check_precisions",
    "check_positive",
    "check_covariance_prior",
    "check_int",
    "check_real",
    "check_choice",
    "fit_dtype",
    "convert_dense_block",
    "block_summary",
    "check_learning_schedule",
    "check_data_scale",
    "check_counts_fit",
    "FLOAT32_SUM_ROWS",
]


def check_int(value, name, *, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}.")
    return int(value)


def check_real(value, name, *, low=None, strict=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or np.isnan(value):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    if low is not None and (value < low or (strict and value == low)):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {low}, got {value!r}.")
    return float(value)


def check_learning_schedule(learning_decay, learning_offset):
    """Online EM's step-size parameters: ``learning_decay`` in [0, 1], ``learning_offset`` >= 1.

    The bounds of scikit-learn's ``LatentDirichletAllocation``. Returns both as floats.
    """
    decay = check_real(learning_decay, "learning_decay", low=0.0)
    if decay > 1.0:
        raise ValueError(f"learning_decay must be <= 1, got {learning_decay!r}.")
    return decay, check_real(learning_offset, "learning_offset", low=1.0)


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}.")
    return value


def check_fit_data(estimator, X, *, n_components, accept_sparse=False,
                   dtype=(np.float64, np.float32)):
    """Validate training data: 2-D, finite, non-empty, at least ``n_components`` rows.

    Sets ``n_features_in_`` (and ``feature_names_in_``), except when a fitted estimator is
    warm-started: then ``X`` must match what it was fitted on, and a rejected fit leaves the
    estimator as it was. Never modifies ``X``.
    """
    warm = bool(getattr(estimator, "warm_start", False)) and hasattr(estimator, "_params_")
    X = validate_data(
        estimator, X, reset=not warm, dtype=list(dtype) if isinstance(dtype, tuple) else dtype,
        accept_sparse=accept_sparse, ensure_min_samples=2,
    )
    if X.shape[0] < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, "
            f"n_samples = {X.shape[0]}: fewer samples than components."
        )
    return X


def check_predict_data(estimator, X, *, accept_sparse=False, dtype=(np.float64, np.float32)):
    """Validate data at predict/score time against what ``fit`` saw."""
    check_is_fitted(estimator)
    return validate_data(
        estimator, X, reset=False, accept_sparse=accept_sparse,
        dtype=list(dtype) if isinstance(dtype, tuple) else dtype,
    )


def check_sample_weight(sample_weight, X):
    """``None`` when no weights are given; else a non-negative finite float64 array.

    Weights act as repeat counts. They stay float64 whatever ``X``'s dtype (only their
    relative sizes and their float64 sum set the fit's scale): the kernels bring them near
    one where they meet float32 data (:func:`emkit.kernels._rows.unit_weights`), so weights
    of 1e-50 or 1e39 on float32 data fit as on float64 data. Negative, NaN/inf, wrongly
    shaped or all-zero weights are a ValueError naming the problem.
    """
    if sample_weight is None:
        return None
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True,
                              copy=False)
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if not np.any(sw > 0):
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight.")
    with np.errstate(over="ignore"):
        total = float(np.sum(sw, dtype=np.float64))
    if not total <= np.finfo(np.float64).max * 1e-6:
        raise ValueError(
            f"sample_weight sums to {total:.3g}, too large for float64 arithmetic (the fit "
            "multiplies it by the data): rescale sample_weight (only its relative sizes matter "
            "for GaussianMixture)."
        )
    return sw


#: most rows a float32 kernel sums in float32 before the sum is taken on in float64 (the
#: Gaussian fast path's block, at most 4000 rows)
FLOAT32_SUM_ROWS = 4096


def _scale_error(what, dtype):
    msg = (
        f"The data's scale overflows {np.dtype(dtype).name} arithmetic: {what}, so the fit's "
        "sums of squared deviations would be infinite. Rescale X (for example divide it by "
        "its largest absolute value, or standardise each feature)"
    )
    if np.dtype(dtype) == np.float32:
        msg += " or pass float64 data"
    return ValueError(msg + ".")


def check_data_scale(X, sample_weight=None, *, spread=None, total=None):
    """ValueError when squares of ``X``'s deviations, summed over the rows as the fit sums
    them, overflow (data near 1e154 in float64, near 1e17 in float32); checked before any work.

    In memory: one pass for each feature's minimum and maximum. Every deviation the fit
    squares (from the data's weighted mean, a component's mean or a k-means centre, all
    inside the data's range) is at most a feature's range ``r``; the statistics sum
    ``w_n`` times such squares, so ``r^2`` times the total weight must be finite in float64
    (with a margin of 16), and for float32 data ``r^2`` times :data:`FLOAT32_SUM_ROWS` (the
    rows a float32 kernel sums) finite in float32. For the rows of a dask array (no pass for
    extremes) ``spread``, the root-mean-square deviation per feature from
    :func:`~emkit.models.gaussian.center_and_spread`, stands in: its square times the total
    weight is the sum of squared deviations itself.
    """
    dtype = np.dtype(X.dtype)
    n = X.shape[0]
    if total is not None:  # the fit's total weight, given by the caller (HMM weights)
        total = float(total)
    elif sample_weight is None:
        total = float(n)
    else:
        total = float(np.sum(sample_weight, dtype=np.float64))
    big = np.finfo(np.float64).max
    if spread is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            r = float(np.max(np.asarray(spread, dtype=np.float64), initial=0.0))
        if not (np.isfinite(r) and r * r <= big / 16 / max(total, 1.0)):
            raise _scale_error(f"a feature's root-mean-square deviation is {r:.3g}", dtype)
        return
    if n == 0 or X.shape[1] == 0:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        # fmin/fmax skip NaN (missing entries of a GaussianHMM); an all-missing feature
        # has no range
        lo = np.asarray(column_reduce(np.fmin, X), dtype=np.float64)
        hi = np.asarray(column_reduce(np.fmax, X), dtype=np.float64)
        ranges = np.where(np.isnan(lo), 0.0, hi - lo)
        r = float(np.max(ranges))
        j = int(np.argmax(ranges))
    what = f"feature {j} spans {r:.3g} (from {lo[j]:.3g} to {hi[j]:.3g})"
    if not (np.isfinite(r) and r * r <= big / 16 / max(total, 1.0)):
        raise _scale_error(what, np.float64 if dtype != np.float32 else dtype)
    if dtype == np.float32:
        rows = min(n, FLOAT32_SUM_ROWS)
        if not r * r <= float(np.finfo(np.float32).max) / 16 / rows:
            raise _scale_error(what, dtype)


def check_counts_fit(total, dtype, attributes):
    """ValueError when fitted attributes that count weight (up to ``total``, float64) cannot
    be stored in ``dtype``: float32 data keep float32 attributes, so pseudo-counts beyond
    about 3e32 (1e-6 of float32's largest value) would be infinite."""
    if np.dtype(dtype) == np.float32 and not total <= float(np.finfo(np.float32).max) * 1e-6:
        raise ValueError(
            f"The weighted total ({total:.3g}) is too large for the float32 attributes "
            f"{attributes}, which count it: rescale sample_weight (keeping the priors in "
            "proportion) or pass float64 data."
        )


def check_weights(weights, n_components):
    """Check user-provided initial mixture weights: shape (K,), in [0, 1], summing to one."""
    weights = np.array(weights, dtype=np.float64, copy=True)
    if weights.shape != (n_components,):
        raise ValueError(
            f"The parameter 'weights' should have the shape of ({n_components},), "
            f"but got {weights.shape}."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("The parameter 'weights' contains NaN or infinity.")
    if np.any(weights < 0) or np.any(weights > 1):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got "
            f"min value {weights.min():.5f}, max value {weights.max():.5f}."
        )
    if not np.allclose(np.abs(1.0 - np.sum(weights)), 0.0, atol=1e-6):
        raise ValueError(
            f"The parameter 'weights' should be normalized: they sum to {np.sum(weights):.5f}, "
            "not 1."
        )
    return weights


def _checked_array(value, shape, name):
    """``value`` as a float64 copy of ``shape`` with finite entries, else a ValueError."""
    arr = np.array(value, dtype=np.float64, copy=True)
    if arr.shape != shape:
        raise ValueError(
            f"The parameter {name} should have the shape of {shape}, but got {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"The parameter {name} contains NaN or infinity.")
    return arr


def check_means(means, n_components, n_features):
    """Check user-provided initial means: shape (K, D), finite."""
    return _checked_array(means, (n_components, n_features), "'means'")


def check_mean_prior(mean_prior, n_features):
    """Check a user prior mean: shape (D,), finite."""
    return _checked_array(mean_prior, (n_features,), "'mean_prior'")


_PRECISION_SHAPES = {
    "full": lambda k, d: (k, d, d),
    "tied": lambda k, d: (d, d),
    "diag": lambda k, d: (k, d),
    "spherical": lambda k, d: (k,),
}


def check_precisions(precisions, covariance_type, n_components, n_features):
    """Check user-provided precisions: shape, symmetry and positive definiteness."""
    precisions = np.array(precisions, dtype=np.float64, copy=True)
    shape = _PRECISION_SHAPES[covariance_type](n_components, n_features)
    if precisions.shape != shape:
        raise ValueError(
            f"The parameter '{covariance_type} precision' should have the shape of {shape}, "
            f"but got {precisions.shape}."
        )
    if not np.all(np.isfinite(precisions)):
        raise ValueError(f"The parameter '{covariance_type} precision' contains NaN or infinity.")
    if covariance_type in ("diag", "spherical"):
        if np.any(precisions <= 0):
            raise ValueError(f"'{covariance_type} precision' should be positive.")
        return precisions
    _check_spd(precisions[None] if covariance_type == "tied" else precisions,
               f"'{covariance_type} precision'", per_component=covariance_type == "full")
    return precisions


def _check_spd(mats, name, per_component):
    """Every matrix of ``mats`` symmetric and positive-definite, else a ValueError naming it."""
    for k, p in enumerate(mats):
        where = f" (component {k})" if per_component else ""
        if not np.allclose(p, p.T):
            raise ValueError(f"{name}{where} should be symmetric.")
        if np.any(np.linalg.eigvalsh(p) <= 0.0):
            raise ValueError(f"{name}{where} should be positive-definite.")


def check_positive(value, name):
    """A finite real number > 0 (priors' concentrations and precisions)."""
    value = check_real(value, name, low=0.0, strict=True)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return value


def check_covariance_prior(prior, covariance_type, n_features):
    """A user covariance prior: D x D symmetric positive-definite (full, tied), D positive
    values (diag) or one positive number (spherical)."""
    name = f"'{covariance_type} covariance_prior'"
    if covariance_type == "spherical":
        return check_positive(prior, "covariance_prior")
    shape = (n_features,) * (2 if covariance_type in ("full", "tied") else 1)
    prior = _checked_array(prior, shape, name)
    if covariance_type == "diag":
        if np.any(prior <= 0):
            raise ValueError(f"{name} should be positive.")
        return prior
    _check_spd(prior[None], name, per_component=False)
    return prior


# ---------------------------------------------------------------------------- dask blocks
def fit_dtype(dtype) -> np.dtype:
    """The dtype a fit computes in: float32 and float64 kept, anything else float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def convert_dense_block(Xb, dtype):
    """One block of a dask array as a finite 2-D ndarray of ``dtype`` (the same checks, and
    the same messages, as :func:`check_fit_data` for in-memory input)."""
    return check_array(Xb, dtype=dtype, ensure_min_samples=0)


def block_summary(Xb, wb):
    """``[rows, rows with a positive weight]`` of a converted block; bad weights raise."""
    n = Xb.shape[0]
    if wb is None:
        return np.array([n, n], dtype=np.float64)
    wb = np.asarray(wb, dtype=np.float64)
    if not np.all(np.isfinite(wb)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(wb < 0):
        raise ValueError("Negative values in data passed to `sample_weight`")
    return np.array([n, np.count_nonzero(wb > 0)], dtype=np.float64)
