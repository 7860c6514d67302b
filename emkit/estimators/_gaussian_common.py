"""What the Gaussian mixture estimators share: configuration checks, the kernel model's
setup, the parameter count and sampling (GaussianMixture, BayesianGaussianMixture)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._base import INIT_PARAMS, BaseEMMixture
from .._dask import on_dask
from .._validation import check_choice, check_data_scale, check_real
from ..models.gaussian import COVARIANCE_TYPES, center_and_spread, gaussian_n_parameters

__all__ = ["GaussianMixtureBase"]


class GaussianMixtureBase(BaseEMMixture):
    """Base of the Gaussian mixtures: ``covariance_type``, ``init_params``, ``reg_covar``."""

    #: the initialisation sees the weighted empirical distribution (row order and repeats
    #: never change a fit; see :mod:`emkit._empirical`)
    _empirical_init = True

    def _check_gaussian_config(self):
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_choice(self.init_params, "init_params", INIT_PARAMS)
        check_real(self.reg_covar, "reg_covar", low=0.0)
        if not np.isfinite(self.reg_covar):
            raise ValueError(f"reg_covar must be finite, got {self.reg_covar!r}.")

    #: (estimator parameter, fitted parameters' attribute) that a continuation must keep
    _continuation_keys = (("covariance_type", "covariance_type"),)

    def _check_continuation(self, how):
        super()._check_continuation(how)
        for name, attr in self._continuation_keys:
            mine, fitted = getattr(self, name), getattr(self._params_, attr)
            if mine != fitted:
                raise ValueError(
                    f"{how}: {name} is {mine!r} but the fitted model has {fitted!r}; "
                    "refit with warm_start=False."
                )

    def _validate_step_X(self, X):
        """A later ``partial_fit`` mini-batch, checked for a scale that overflows as the
        first one was (its model is not set up again)."""
        X = super()._validate_step_X(X)
        check_data_scale(X)
        return X

    def _kernel_config(self, X, sample_weight):
        """Keyword arguments of the Gaussian kernel model for data ``X`` (one pass for the
        reference point of the fast path and the data's spread about it). Data whose scale
        overflows the fit's arithmetic is a ValueError here, before any other pass."""
        if not on_dask(X):
            check_data_scale(X, sample_weight)
        center, spread = center_and_spread(X, sample_weight)
        if on_dask(X):
            check_data_scale(X, X.w if sample_weight is None else sample_weight, spread=spread)
        return dict(
            covariance_type=self.covariance_type,
            reg_covar=float(self.reg_covar),
            center=center,
            spread=spread,
            dtype=np.dtype(X.dtype),
        )

    def _n_parameters(self) -> int:
        check_is_fitted(self)
        k, d = self.means_.shape
        return gaussian_n_parameters(k, d, self._params_.covariance_type)

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture (``weights_``, ``means_``, ``covariances_``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component labels.
        """
        counts, rng = self._sample_counts(n_samples)
        _, d = self.means_.shape
        ct = self._params_.covariance_type
        if ct == "full":
            X = np.vstack([
                rng.multivariate_normal(m, c, int(s))
                for m, c, s in zip(self.means_, self.covariances_, counts, strict=True)
            ])
        elif ct == "tied":
            X = np.vstack([
                rng.multivariate_normal(m, self.covariances_, int(s))
                for m, s in zip(self.means_, counts, strict=True)
            ])
        else:
            X = np.vstack([
                m + rng.standard_normal(size=(s, d)) * np.sqrt(c)
                for m, c, s in zip(self.means_, self.covariances_, counts, strict=True)
            ])
        y = np.concatenate([np.full(s, j, dtype=int) for j, s in enumerate(counts)])
        return X.astype(self.means_.dtype, copy=False), y
