"""What the hidden Markov models share (:class:`_BaseHMM`): fit over sequences, scoring,
decoding, sampling, on :class:`emkit._base.BaseEM` (n_init, warm start, trace, callback,
verbose printing, monotonicity check)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._base import BaseEM
from .._dask import is_dask_collection, on_dask
from .._validation import check_choice, check_int
from ..models.hmm import HMMModel, HMMParams, Sequences
from ._hmm_input import check_hmm_weights, check_lengths, check_probs, lengths_from, monitor_of

__all__ = ["_BaseHMM"]


class _BaseHMM(BaseEM):
    """What the two HMMs share: fit over sequences, scoring, decoding, sampling.

    ``fit(X, lengths)`` and ``score(X, lengths)`` work positionally, as in hmmlearn, although
    the second parameter is named ``y`` as scikit-learn requires: see
    :func:`~emkit.estimators._hmm_input.lengths_from`. The other methods take ``lengths``
    second, as hmmlearn's.
    """

    _max_iter_name = "n_iter"
    _warn_unconverged = False  # hmmlearn's n_iter is a budget; ``monitor_`` reports

    @property
    def monitor_(self):
        """hmmlearn's :class:`ConvergenceMonitor` of the last fit (built from ``trace_``)."""
        if not hasattr(self, "_history_scale_"):
            raise AttributeError("monitor_ is set by fit")
        return monitor_of(self)

    def _set_common(self, n_components, startprob_prior, transmat_prior, algorithm,
                    random_state, n_iter, tol, verbose, params, init_params, implementation,
                    check_monotonic, callback, n_init, warm_start):
        """Store the constructor parameters both HMMs share (only stored, as scikit-learn
        asks)."""
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.check_monotonic = check_monotonic
        self.callback = callback
        self.n_init = n_init
        self.warm_start = warm_start

    def _check_common(self):
        check_int(self.n_components, "n_components", low=1)
        self._check_em_common(allow_bool_verbose=True)
        self._check_restarts()
        check_choice(self.algorithm, "algorithm", ("viterbi", "map"))
        check_choice(self.implementation, "implementation", ("log", "scaling"))
        for name in ("params", "init_params"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}.")

    # ---------------------------------------------------------------- data
    def _sequences(self, X, lengths, fit=False):
        if not fit:
            check_is_fitted(self, "startprob_")
        X = self._validate_X(X, fit)
        return Sequences(X, check_lengths(lengths, X.shape[0]))

    def _continuing(self) -> bool:
        """A warm start: this fit continues from the fitted parameters."""
        return bool(self.warm_start) and hasattr(self, "_params_")

    def _needs_init(self, code, name):
        """hmmlearn's rule: initialise ``name`` if ``code`` is in ``init_params`` or it is
        not set."""
        return code in self.init_params or not hasattr(self, name)

    def _kept(self, code, name) -> bool:
        """Whether the fit starts from the attribute ``name`` as it is (not initialised)."""
        return hasattr(self, name) and (self._continuing() or code not in self.init_params)

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y=None, sample_weight=None, *, lengths=None):
        """Estimate the parameters with Baum-Welch (EM).

        Runs ``n_init`` initialisations (hmmlearn's: the first draws exactly what hmmlearn
        draws) and keeps the one with the largest final log-likelihood plus log prior; all
        their traces are in ``traces_``. With ``warm_start=True`` a fitted model continues
        from its current parameters (as ``init_params=""`` does, but only once fitted).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array
            Concatenated sequences. A dask array (or dataframe) is fitted where its blocks
            live, each block holding whole sequences (see :mod:`._hmm_dask`).
        y : array-like of int, optional
            hmmlearn's ``lengths`` in its place: ``fit(X, lengths)`` works as in hmmlearn.
            It is named ``y`` for scikit-learn, which passes its target here: one value per
            row that is not a valid lengths vector is such a target, and ignored (a valid
            lengths vector, positive integers summing to ``n_samples``, is always lengths).
        sample_weight : array-like of shape (n_sequences,) or (n_samples,), optional
            One non-negative weight per sequence (an integer weight equals repeating the
            sequence), or one per row: step ``t`` then counts as ``w_t`` observations of
            that step (its emission density raised to the power ``w_t``; zero leaves the
            step unobserved). When every sequence has length one, per sequence.
        lengths : array-like of int, optional
            Length of each sequence (summing to ``n_samples``); default: one sequence.

        Returns
        -------
        self
        """
        self._check_common()
        if is_dask_collection(X) or is_dask_collection(sample_weight):
            from ._hmm_dask import dask_fit_data

            seqs, seq_w, facts, total = dask_fit_data(self, X, y, lengths, sample_weight)
            self._check_hyperparameters(seqs)
            model = self._make_model(None, facts=facts, dtype=seqs.dtype)
        else:
            seqs = self._sequences(X, lengths_from(y, lengths, X), fit=True)
            n = seqs.X.shape[0]
            seq_w, obs_w = check_hmm_weights(sample_weight, seqs.n_sequences, n)
            if obs_w is not None:
                seqs = Sequences(seqs.X, seqs.starts, obs_w)
            self._check_hyperparameters(seqs.X)
            row_w = np.ones(n) if seq_w is None else np.repeat(seq_w, seqs.lengths)
            with np.errstate(over="ignore"):  # an infinite total is the error below
                total = float(np.sum(row_w if obs_w is None else row_w * obs_w))
            if not total <= np.finfo(np.float64).max * 1e-6:
                raise ValueError(
                    f"sample_weight's total over the rows is {total:.3g}, too large for "
                    "float64 arithmetic (the fit multiplies it by the data): rescale "
                    "sample_weight."
                )
            self._check_data_scale(seqs.X, total)
            model = self._make_model(seqs.X)  # after the checks: no overflow in its sums
        best = self._fit_runs(model, seqs, seq_w, model.dtype, tol=self.tol / total)
        self._history_scale_ = total  # monitor_ is read off trace_ in these units
        occupancy = best.stats.start + best.stats.trans.sum(axis=0)
        self.unvisited_states_ = np.flatnonzero(occupancy <= 0)
        if self.unvisited_states_.size:
            warnings.warn(
                f"States {self.unvisited_states_.tolist()} have zero posterior probability at "
                "every step of every sequence: their parameters were kept as they were.",
                UserWarning, stacklevel=2,
            )
        return self

    def _init_rows(self, X, sample_weight, random_state):
        """The sequences the initialisation sees (on dask: the rows gathered for it)."""
        return (X.init_rows, None) if on_dask(X) else (X, sample_weight)

    def _begin_init(self, init):
        self._first_init = init == 0

    def _init_stream(self, random_state):
        """What seeds the initial clustering / emissions: hmmlearn's ``random_state`` in the
        first initialisation (the same draws as hmmlearn), the running stream after it (so
        every initialisation differs)."""
        return self.random_state if self._first_init else random_state

    def _initial_params(self, model, X, sample_weight, random_state):
        k = self.n_components
        init = 1.0 / k
        start, trans = getattr(self, "startprob_", None), getattr(self, "transmat_", None)
        if self._needs_init("s", "startprob_"):
            start = random_state.dirichlet(np.full(k, init))
        if self._needs_init("t", "transmat_"):
            trans = random_state.dirichlet(np.full(k, init), size=k)
        return HMMParams(
            check_probs(start, "startprob_", (k,)),
            check_probs(trans, "transmat_", (k, k)),
            self._initial_emission(X.X, random_state, model),
        )

    def _continuation_params(self):
        return self._current_params()

    def _current_params(self):
        k = self.n_components
        return HMMParams(
            check_probs(self.startprob_, "startprob_", (k,)),
            check_probs(self.transmat_, "transmat_", (k, k)),
            self._emission_params(),
        )

    def _set_fitted_params(self, params, dtype):
        self.startprob_ = params.startprob.astype(dtype)
        self.transmat_ = params.transmat.astype(dtype)
        self._set_emission(params.emission, dtype)

    def _check_data_scale(self, X, total):
        """ValueError when the data's scale overflows the fit's sums (Gaussian emissions)."""

    def _infer(self, seqs, what, params=None, first=0, serial=False):
        """``(scalar, per-row result)`` of validated sequences ``seqs`` (a dask block's too).

        ``what``: ``"score"`` (total log-likelihood, None), ``"posteriors"`` (it and the
        state posteriors), ``"viterbi"`` (the best paths' total log-probability and the
        states) or ``"map"`` (hmmlearn's: the sum of the per-step maximal posteriors, and the
        per-step most probable states). The scalar is a sum over the sequences (over the rows
        for ``"map"``), so a dask block's adds to the others'. ``first``: the index of the
        first sequence (for the error messages); ``serial``: kernels on the calling thread
        (a dask task's).
        """
        model = self._make_model(seqs.X, fitting=False)
        if serial:
            model = replace(model, emission=model.emission.serial(), n_threads=1)
        params = self._current_params() if params is None else params
        if what == "viterbi":
            logprob, path = model.viterbi(params, seqs)
            _check_defined(np.atleast_1d(logprob), first=first)
            return float(np.sum(logprob)), path
        if what == "score":
            ll = model.posteriors(params, seqs)[0]
            _check_defined(ll, first=first)
            return float(np.sum(ll)), None
        ll, gamma = model.score_sequences(params, seqs)
        _check_defined(ll, gamma, first=first)
        if what == "map":
            return float(np.max(gamma, axis=1).sum()), np.argmax(gamma, axis=1)
        return float(np.sum(ll)), gamma

    def _run(self, X, lengths, what, y=None):
        """:meth:`_infer` on ``X``: in memory, or block by block on a dask collection
        (:func:`._hmm_dask.dask_infer`: the scalar a 0-d dask array, the rows a lazy dask
        array chunked at sequence boundaries). ``y``: ``lengths`` in its place."""
        check_is_fitted(self, "startprob_")
        if is_dask_collection(X):
            from ._hmm_dask import dask_infer

            return dask_infer(self, X, lengths, what, y=y)
        return self._infer(self._sequences(X, lengths_from(y, lengths, X)), what)

    # ---------------------------------------------------------------- inference
    # (the dask behaviour of these methods is in the README, "On a dask cluster")
    def score_samples(self, X, lengths=None):
        """Total log-likelihood and state posteriors, as hmmlearn's (not scikit-learn's
        per-row log-densities).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array or dataframe
            Concatenated sequences.
        lengths : array-like of int, optional
            Length of each sequence (in memory, also for dask ``X``); default: one sequence.

        Returns
        -------
        log_prob : float, or 0-d dask array
            ``log p(X)``, summed over the sequences. On dask ``X`` the sum of the blocks'
            partial sums, lazy: ``dask.compute(log_prob, posteriors)`` computes both in one
            pass over the blocks, ``float(log_prob)`` the first alone.
        posteriors : ndarray of shape (n_samples, n_components), or dask array
            ``p(z_t = k | X)``. On dask ``X`` lazy, row chunks at sequence boundaries (those
            of ``X`` moved to the next sequence start, as in :meth:`fit`).
        """
        return self._run(X, lengths, "posteriors")

    def score(self, X, y=None, *, lengths=None):
        """Log-likelihood of ``X``, summed over the sequences (as hmmlearn's).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array or dataframe
        y : array-like of int, optional
            hmmlearn's ``lengths`` in its place (``score(X, lengths)``), as in :meth:`fit`.
        lengths : array-like of int, optional
            Length of each sequence; default: one sequence.

        Returns
        -------
        float
            On dask ``X`` too: the blocks' log-likelihoods are computed where they live and
            summed there; only the sum comes back.
        """
        log_prob = self._run(X, lengths, "score", y=y)[0]
        return float(log_prob.compute()) if is_dask_collection(log_prob) else log_prob

    def predict_proba(self, X, lengths=None):
        """Posterior probability of each state at each step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array or dataframe
        lengths : array-like of int, optional

        Returns
        -------
        ndarray of shape (n_samples, n_components), or dask array
            On dask ``X`` lazy, chunked at sequence boundaries (see :meth:`score_samples`).
        """
        return self._run(X, lengths, "posteriors")[1]

    def decode(self, X, lengths=None, algorithm=None):
        """Most likely states by Viterbi (or ``"map"``: the per-step most probable).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array or dataframe
        lengths : array-like of int, optional
        algorithm : {"viterbi", "map"}, optional
            Default: the estimator's ``algorithm``.

        Returns
        -------
        log_prob : float, or 0-d dask array
            Viterbi: the best paths' log-probability, summed over the sequences; ``"map"``:
            hmmlearn's sum of the per-step maximal posteriors. Lazy on dask ``X`` (see
            :meth:`score_samples`).
        states : ndarray of shape (n_samples,), or dask array
            On dask ``X`` lazy, chunked at sequence boundaries.
        """
        algorithm = check_choice(algorithm or self.algorithm, "algorithm", ("viterbi", "map"))
        return self._run(X, lengths, algorithm)

    def predict(self, X, lengths=None):
        """Most likely states (by ``algorithm``): :meth:`decode`'s ``states``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array or dataframe
        lengths : array-like of int, optional

        Returns
        -------
        ndarray of shape (n_samples,), or dask array
            On dask ``X`` lazy, chunked at sequence boundaries.
        """
        return self.decode(X, lengths)[1]

    def get_stationary_distribution(self):
        """The stationary distribution of the chain (left eigenvector of ``transmat_``)."""
        check_is_fitted(self, "transmat_")
        eigvals, eigvecs = np.linalg.eig(np.asarray(self.transmat_).T)
        eigvec = np.real_if_close(eigvecs[:, np.argmax(eigvals)])
        return eigvec / eigvec.sum()

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw ``(X, states)`` from the model (hmmlearn's algorithm and random stream)."""
        check_is_fitted(self, "startprob_")
        self._current_params()
        rs = check_random_state(self.random_state if random_state is None else random_state)
        transmat_cdf = np.cumsum(self.transmat_, axis=1)
        if currstate is None:
            currstate = (np.cumsum(self.startprob_) > rs.rand()).argmax()
        states = [currstate]
        X = [self._sample_state(currstate, rs)]
        for _ in range(n_samples - 1):
            currstate = (transmat_cdf[currstate] > rs.rand()).argmax()
            states.append(currstate)
            X.append(self._sample_state(currstate, rs))
        return np.atleast_2d(X), np.array(states, dtype=int)

    def _n_parameters(self) -> int:
        counts = self._n_fit_scalars()
        return int(sum(counts[p] for p in self.params if p in counts))

    def aic(self, X, lengths=None):
        """``-2 log L + 2 p``, as hmmlearn."""
        return -2 * self.score(X, lengths=lengths) + 2 * self._n_parameters()

    def bic(self, X, lengths=None):
        """``-2 log L + p log(n_samples)``, as hmmlearn."""
        return -2 * self.score(X, lengths=lengths) + self._n_parameters() * np.log(len(X))

    def _chain_model(self, emission, dtype):
        return HMMModel(
            emission, startprob_prior=self.startprob_prior, transmat_prior=self.transmat_prior,
            update_start="s" in self.params, update_trans="t" in self.params,
            dtype=np.dtype(dtype),
        )


def _check_defined(ll, gamma=None, first=0):
    """ValueError when a sequence's log-likelihood (or a posterior) is not a finite number:
    the emission log-densities overflowed (data far outside the fitted states' scale), never
    a silent NaN or -inf. (Every emission density here is positive: a Gaussian's everywhere,
    a categorical's through its floor, so -inf is overflow, not an impossible sequence.)
    ``first``: the index of ``ll``'s first sequence (a dask block's)."""
    bad = np.flatnonzero(~np.isfinite(ll))
    if gamma is not None and not bad.size and not np.all(np.isfinite(gamma)):
        bad = np.array([-1])
    if bad.size:
        where = ("a step's posterior" if bad[0] < 0
                 else f"sequence {first + int(bad[0])}'s log-likelihood")
        raise ValueError(
            f"{where} is not a finite number: the emission log-densities overflow float arithmetic "
            "(the data's scale is too large for the model). Rescale X (and refit), or pass "
            "float64 data."
        )

