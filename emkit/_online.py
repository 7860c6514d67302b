"""Online (stepwise) EM for the mixtures: ``partial_fit``, one step per mini-batch."""

from __future__ import annotations

import time

import numpy as np
from sklearn.utils import check_random_state

from ._dask import em_model, is_dask_collection
from ._em import IterationInfo, gap_after_m, stepwise_update
from ._trace import Trace
from ._validation import check_sample_weight
from .kernels._parallel import blas_single_thread

__all__ = ["OnlineEMMixin"]


class OnlineEMMixin:
    """``partial_fit`` on the hooks of :class:`~emkit._base.BaseEMMixture` (a mixin)."""

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online (stepwise) EM on the mini-batch ``X``.

        Each call is one step on the whole ``X`` passed (as ``MiniBatchKMeans.partial_fit``):
        an E-step on ``X`` at the current parameters gives the mini-batch statistics ``s_B``,
        which are blended into the running statistics ``s``,

            ``s <- (1 - rho_t) s + rho_t (N_t / w_B) s_B``,
            ``rho_t = (t + learning_offset) ** -learning_decay``,

        and an M-step from ``s`` gives the new parameters. ``t`` counts the steps since the
        first call (or the last :meth:`fit`), from 1; ``w_B`` is the weight of the mini-batch
        (``sample_weight.sum()``, or its number of rows) and ``N_t = n_samples_seen_``, the
        total weight seen so far (this mini-batch included): every mini-batch stands for the
        whole stream seen so far, so priors and pseudo-counts (BernoulliMixture's ``alpha``)
        compete with the data seen so far, not with one mini-batch.

        The first call initialises from its mini-batch as :meth:`fit` does (``init_params``,
        ``weights_init``, ...; one initialisation, ``n_init`` is not used), starts the running
        statistics from that mini-batch's E-step and takes one step. After :meth:`fit` the
        next ``partial_fit`` continues from the fitted parameters, its running statistics
        starting from the fit's final E-step (``n_samples_seen_`` is then the fit's total
        weight) and ``t`` from 1. A later :meth:`fit` starts afresh (unless ``warm_start``).
        Later steps use the model set up by the first call (or the fit): its ``reg_covar`` or
        ``alpha``, its dtype (mini-batches are converted to it) and, for ``GaussianMixture``,
        the reference point of the fast E-step (the first mini-batch's mean).

        Online EM makes no monotonicity promise (a mini-batch's bound can go down from one
        step to the next), so ``check_monotonic`` does not apply. ``trace_`` gets one row per
        call, about that mini-batch: ``elbo_after_e`` the bound at the parameters before the
        step, ``elbo_after_m`` at the parameters after it (with the E-step's ``Q``),
        ``log_evidence`` before the step, ``kl`` the gap after it, ``seconds`` the time spent
        in ``partial_fit`` so far; per unit weight, with a prior counted against
        ``n_samples_seen_`` (``bound = log-likelihood / w_B + log p(theta) / N_t``).
        ``n_iter_`` is the number of steps, ``converged_`` is False, ``lower_bound_`` the
        mini-batch's bound at the new parameters (a second E-step on ``X``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The mini-batch; on the first call at least ``n_components`` rows.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), optional
            As in :meth:`fit`.

        Returns
        -------
        self
            One step further.
        """
        t_start = time.perf_counter()
        self._check_common()
        decay, offset = float(self.learning_decay), float(self.learning_offset)
        first = not hasattr(self, "_params_")
        if is_dask_collection(X) or is_dask_collection(sample_weight):
            # a mini-batch on dask: its E-steps run where its blocks live
            X = self._validate_dask_fit(
                X, sample_weight, reset=first, dtype=None if first else self._model_.dtype
            )
            sw, n_positive = None, X.n_positive_weights
        else:
            X = self._validate_fit_X(X) if first else self._validate_step_X(X)
            sw = check_sample_weight(sample_weight, X)
            n_positive = None if sw is None else np.count_nonzero(sw)
        self._check_hyperparameters(X)
        if first:
            self._check_positive_weights(n_positive)
        else:
            self._check_continuation("partial_fit")
        # later steps keep the model (configuration, dtype, reference point) of the first
        # call or of the fit: no pass over the mini-batch to set it up again
        model = self._make_model(X, sw) if first else self._model_
        with blas_single_thread():
            step = em_model(model, X)
            if first:
                random_state = check_random_state(self.random_state)
                Xi, wi = self._init_rows(X, sw, random_state)
                params = self._initial_params(model, Xi, wi, random_state)
                del Xi, wi
            else:
                params = self._params_
            batch, _ = step.e_step(params, X, sw, None)
            weight = float(batch.total_weight)
            seen = weight + (0.0 if first else self.n_samples_seen_)
            scale = seen / weight
            running = batch * scale if first else self._stats_
            t = (0 if first else self._n_steps_) + 1
            new_params, running = stepwise_update(
                model, running, batch, scale, t=t, offset=offset, decay=decay
            )
            after, _ = step.e_step(new_params, X, sw, None)
        # the bounds of the mini-batch standing for the stream (prior against seen), per unit
        scaled, unit = batch * scale, max(seen, 1e-300)
        elbo_m = float(model.elbo(new_params, scaled))
        lower_bound = float(model.elbo(new_params, after * scale)) / unit
        kl = gap_after_m(model, float(after.log_evidence) * scale,
                         float(model.log_prior(new_params)), elbo_m, lower_bound * unit)
        online = not first and self._n_steps_ > 0  # continuing an online run, not a fit
        trace = self.trace_ if online else Trace()
        seconds = (trace.seconds[-1] if len(trace) else 0.0) + time.perf_counter() - t_start
        trace = trace.extended(
            dict(
                elbo_after_e=float(model.elbo(params, scaled)) / unit,
                elbo_after_m=elbo_m / unit,
                log_evidence=float(batch.log_evidence) / weight,
                kl=kl / unit,
                seconds=seconds,
            ),
            n_iter=t, converged=False,
        )
        self._store(
            model, new_params, running, trace, [trace], X.dtype, lower_bound=lower_bound,
            lower_bounds=(self.lower_bounds_ if online else []) + [lower_bound],
            n_samples_seen=seen, n_steps=t,
        )
        if self.callback is not None:
            self.callback(
                IterationInfo(
                    init=0, iteration=t, elbo=lower_bound, change=np.nan, seconds=seconds,
                    converged=False,
                )
            )
        return self

