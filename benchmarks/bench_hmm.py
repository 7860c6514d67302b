"""emkit's hidden Markov models against hmmlearn 0.3, side by side in one run.

Same data, same initial parameters (set as attributes, ``init_params=""``), same number of
iterations (``tol=0`` for emkit, ``tol=-inf`` for hmmlearn so it never stops early); reports
seconds per iteration (whole ``fit`` / iterations, best of ``--repeats``, the repeats of the
three fits interleaved so that load changes hit them alike) for emkit and for the faster of
hmmlearn's "log" and "scaling" implementations, and the speed-up; "CPU ratio" is the same
ratio of process CPU time per iteration (all of emkit's threads counted: the speed-up its
work alone would give on one core, steadier than wall time on a loaded machine). Also the
forward-backward kernel's time per pass and its arithmetic rate (``6 K^2`` flops per step:
forward, backward and the transition counts, one multiply-add each) against the machine's
float64 rate of one core measured in the same run (the larger of a vectorised multiply-add
loop and a one-thread DGEMM); the kernel runs on one thread there (the fit runs blocks of
sequences on both cores).

    python benchmarks/bench_hmm.py            # the issue's configurations
    python benchmarks/bench_hmm.py --quick    # small, for a smoke test
    python benchmarks/bench_hmm.py --inference  # decode (Viterbi) and predict_proba
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
from bench_gmm import gemm_rate as gemm_rate_of  # the same GEMM probe, on one thread

import emkit
from emkit.kernels import hmm as kern

CONFIGS = [
    # (name, kind, covariance_type, n_seq, length, n_features or symbols, n_states)
    ("diag large", "gaussian", "diag", 100, 2000, 8, 16),
    ("full large", "gaussian", "full", 100, 2000, 8, 16),
    ("categorical large", "categorical", None, 100, 2000, 32, 16),
    ("small K=2", "gaussian", "diag", 50, 100, 1, 2),
    ("small K=5", "gaussian", "diag", 50, 100, 1, 5),
    ("small K=10", "gaussian", "diag", 50, 100, 1, 10),
]
QUICK = [("diag quick", "gaussian", "diag", 20, 500, 4, 4),
         ("categorical quick", "categorical", None, 20, 500, 8, 4)]


def make_problem(kind, ct, n_seq, length, d, k, seed=0):
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(k))
    A = rng.dirichlet(np.ones(k), size=k) * 0.5 + np.eye(k) * 0.5
    lengths = np.full(n_seq, length)
    n = n_seq * length
    states = rng.integers(k, size=n)  # data need not be from the model to time it
    if kind == "categorical":
        E = rng.dirichlet(np.ones(d), size=k)
        X = rng.integers(d, size=(n, 1))
        return X, lengths, dict(startprob_=pi, transmat_=A, emissionprob_=E)
    means = rng.normal(scale=2.0, size=(k, d))
    X = means[states] + rng.normal(size=(n, d))
    cov = np.ones((k, d)) if ct == "diag" else np.tile(np.eye(d), (k, 1, 1))
    return X, lengths, dict(startprob_=pi, transmat_=A, means_=means, covars_=cov)


def make(lib, kind, ct, k, n_iter, impl="log"):
    if lib == "emkit":
        mod, kw = emkit, dict(tol=0.0)
    else:
        from hmmlearn import hmm as mod

        kw = dict(tol=-np.inf, implementation=impl)
    if kind == "categorical":
        return mod.CategoricalHMM(k, n_iter=n_iter, init_params="", **kw)
    return mod.GaussianHMM(k, covariance_type=ct, n_iter=n_iter, init_params="", **kw)


def time_fit(factory, init, X, lengths, n_iter):
    """``(wall, CPU)`` seconds per iteration of one ``fit`` from the given initial
    parameters (CPU: the process's, all threads)."""
    est = factory()
    for name, value in init.items():
        setattr(est, name, value)
    t, c = time.perf_counter(), time.process_time()
    est.fit(X, lengths)
    return (time.perf_counter() - t) / n_iter, (time.process_time() - c) / n_iter


def time_side_by_side(factories, init, X, lengths, n_iter, repeats):
    """Best ``(wall, CPU)`` time per iteration of every factory (each the minimum over the
    repeats), the repeats interleaved (round r runs each factory once), so that a change of
    the machine's load hits all of them alike."""
    best = {name: (np.inf, np.inf) for name in factories}
    for _ in range(repeats):
        for name, factory in factories.items():
            w, c = time_fit(factory, init, X, lengths, n_iter)
            best[name] = (min(best[name][0], w), min(best[name][1], c))
    return best


def fma_peak():
    """Measured float64 multiply-add rate (flops/s) of one core, in vector form.

    64 independent lanes updated ``x = x * a + b`` in a loop that Numba vectorises: the rate a
    Numba kernel can reach on this machine when nothing else limits it.
    """
    from numba import njit

    @njit(fastmath=True, cache=False)
    def fma_loop(x, n):
        for _ in range(n):
            for i in range(x.shape[0]):
                x[i] = x[i] * 0.9999999 + 1e-9
        return x

    x = np.ones(64)
    fma_loop(x, 10)
    n = 2_000_000
    t = time.perf_counter()
    fma_loop(x, n)
    dt = time.perf_counter() - t
    return 2.0 * x.size * n / dt


def kernel_rate(X, lengths, init, k):
    starts = np.concatenate([[0], np.cumsum(lengths)])
    B = np.random.default_rng(0).random((len(X), k))
    kern.forward_backward(B, starts, init["startprob_"], init["transmat_"])
    t = time.perf_counter()
    for _ in range(3):
        kern.forward_backward(B, starts, init["startprob_"], init["transmat_"])
    dt = (time.perf_counter() - t) / 3
    return dt, 6.0 * k * k * len(X) / dt


def time_inference(kind, ct, k, init, X, lengths, repeats):
    """Best seconds of ``decode`` (Viterbi) and ``predict_proba`` for emkit and for the
    faster of hmmlearn's implementations, the repeats interleaved: ``{method: (emkit,
    hmmlearn, impl)}``."""
    ests = {}
    for lib, impl in (("emkit", None), ("hmmlearn", "log"), ("hmmlearn", "scaling")):
        est = make(lib, kind, ct, k, 1) if impl is None else make(lib, kind, ct, k, 1, impl)
        for name, value in init.items():
            setattr(est, name, value)
        est.decode(X[: lengths[0]], lengths[:1])  # compile / warm up
        ests[impl or "emkit"] = est
    out = {}
    for method in ("decode", "predict_proba"):
        best = dict.fromkeys(ests, np.inf)
        for _ in range(repeats):
            for name, est in ests.items():
                t = time.perf_counter()
                getattr(est, method)(X, lengths)
                best[name] = min(best[name], time.perf_counter() - t)
        impl = min(("log", "scaling"), key=best.get)
        out[method] = (best["emkit"], best[impl], impl)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-iter", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--inference", action="store_true",
                    help="time decode (Viterbi) and predict_proba instead of fit")
    ap.add_argument("--only", default=None,
                    help="run only the cases whose name contains this (e.g. 'large')")
    args = ap.parse_args()
    configs = QUICK if args.quick else CONFIGS
    if args.only:
        configs = [c for c in configs if args.only in c[0]]
    if args.inference:
        print(f"# seconds per call, best of {args.repeats}, against the faster hmmlearn impl")
        print(f"{'case':<18} {'method':<14} {'hmmlearn s':>10} {'(impl)':>8} {'emkit s':>8}"
              f"  {'speed-up':>8}")
        for name, kind, ct, n_seq, length, d, k in configs:
            X, lengths, init = make_problem(kind, ct, n_seq, length, d, k)
            for method, (t_em, t_hl, impl) in time_inference(
                    kind, ct, k, init, X, lengths, args.repeats).items():
                print(f"{name:<18} {method:<14} {t_hl:>10.4f} {impl:>8} {t_em:>8.4f}"
                      f"  {t_hl / t_em:>7.1f}x")
        return
    loop_rate, gemm_rate = fma_peak(), gemm_rate_of(n=1000, repeats=3, one_thread=True)
    peak = max(loop_rate, gemm_rate)
    print(f"# float64 rate of one core: vector multiply-add loop {loop_rate / 1e9:.1f} GFLOP/s,"
          f" one-thread DGEMM {gemm_rate / 1e9:.1f} GFLOP/s; '% peak' is against the larger."
          " FB: the forward-backward kernel on one thread over all the sequences")
    print(f"# {args.n_iter} iterations, best of {args.repeats}")
    head = (f"{'case':<18} {'N':>7} {'D/V':>4} {'K':>3}  {'hmmlearn s/it':>13} {'(impl)':>8}"
            f"  {'emkit s/it':>10}  {'speed-up':>8}  {'CPU ratio':>9}"
            f"  {'FB s':>7} {'FB GFLOP/s':>10} {'% peak':>6}")
    print(head)
    for name, kind, ct, n_seq, length, d, k in configs:
        X, lengths, init = make_problem(kind, ct, n_seq, length, d, k)
        n_iter = args.n_iter
        factories = {"emkit": partial(make, "emkit", kind, ct, k, n_iter)}
        for i in ("log", "scaling"):
            factories[i] = partial(make, "hmmlearn", kind, ct, k, n_iter, i)
        best = time_side_by_side(factories, init, X, lengths, n_iter, args.repeats)
        (t_em, c_em) = best.pop("emkit")
        (t_hl, c_hl), impl = min((v, i) for i, v in best.items())
        fb_t, fb_rate = kernel_rate(X, lengths, init, k)
        print(f"{name:<18} {len(X):>7} {d:>4} {k:>3}  {t_hl:>13.4f} {impl:>8}  {t_em:>10.4f}"
              f"  {t_hl / t_em:>7.1f}x  {c_hl / c_em:>8.1f}x  {fb_t:>7.4f} {fb_rate / 1e9:>10.2f} "
              f"{100 * fb_rate / peak:>5.1f}%")


if __name__ == "__main__":
    main()
