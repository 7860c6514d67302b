"""emkit.GaussianMixture against sklearn.mixture.GaussianMixture, side by side in one run.

Same data, same initial parameters, same number of iterations (tol=0); reports seconds per
iteration and the speed-up ratio, emkit's GEMM rate against the machine's measured float64
GEMM rate, the float32 speed-up, memory added by fit, and first-fit latency in a fresh process.

    python benchmarks/bench_gmm.py            # the issue's configurations
    python benchmarks/bench_gmm.py --quick    # small, for a smoke test
    python benchmarks/bench_gmm.py --calibrate  # E-step cost of each path, fitted model
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGM
from threadpoolctl import threadpool_info

import emkit

CONFIGS = [
    # (covariance_type, N, D, K, dtype)
    ("full", 200_000, 16, 16, np.float64),
    ("full", 1_000_000, 8, 8, np.float64),
    ("full", 50_000, 64, 32, np.float64),
    ("diag", 200_000, 16, 16, np.float64),
    ("full", 200_000, 16, 16, np.float32),
    # wide data, few components (issue 11): the exact path on cost
    ("full", 20_000, 128, 2, np.float64),
    ("full", 20_000, 128, 8, np.float64),
    ("full", 20_000, 256, 2, np.float64),
    ("full", 20_000, 256, 8, np.float64),
]
QUICK = [("full", 20_000, 8, 4, np.float64), ("diag", 20_000, 8, 4, np.float64),
         ("full", 20_000, 8, 4, np.float32)]


def make_data(n, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    labels = rng.integers(k, size=n)
    X = centers[labels] + rng.normal(size=(n, d))
    return X.astype(dtype)


def init_params(X, k, ct, seed=0):
    """Initial parameters from a short sklearn fit (shared by both estimators)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGM(k, covariance_type=ct, max_iter=1, random_state=seed,
                  init_params="kmeans").fit(X[:20_000])
    return sk.weights_, sk.means_, sk.precisions_


def time_fit(est, X, repeats):
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X)
        best = min(best, time.perf_counter() - t)
    return best


def gemm_rate(dtype=np.float64, n=2048, repeats=7, one_thread=False):
    """The machine's GEMM rate: best of several square n x n products (BLAS, all threads;
    ``one_thread``: OpenBLAS held to one thread, the practical arithmetic peak of a core)."""
    from contextlib import nullcontext

    from emkit.kernels._parallel import blas_single_thread

    a = np.random.default_rng(0).normal(size=(n, n)).astype(dtype)
    with blas_single_thread() if one_thread else nullcontext():
        a @ a
        best = np.inf
        for _ in range(repeats):
            t = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def emkit_flops_per_iter(n, d, k, ct, path="fast"):
    if path == "exact":
        # per component: y = (x - mu) U (dtrmm, D^2 / 2 multiply-adds a row) and the scatter
        # (dsyrk, D^2 / 2); diag and spherical: a few passes of D
        return 2 * n * k * (d * d if ct in ("full", "tied") else 3 * d)
    f = d * (d + 1) // 2 + d + 1 if ct in ("full", "tied") else 2 * d + 1
    return 2 * 2 * n * f * k  # two GEMMs of N x F x K


def peak_added(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


FRESH = """
import time, numpy as np
t=time.perf_counter()
from {mod} import GaussianMixture
X=np.random.default_rng(0).normal(size=(2000,4))
GaussianMixture(3, random_state=0, max_iter=20).fit(X)
print(time.perf_counter()-t)
"""


def fresh_process_seconds(mod, repeats=3):
    out = []
    for _ in range(repeats):
        r = subprocess.run([sys.executable, "-c", FRESH.format(mod=mod)], capture_output=True,
                           text=True, check=True)
        out.append(float(r.stdout.strip().splitlines()[-1]))
    return min(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--only", default=None,
                    help="comma-separated indices into the configuration list (e.g. 5,6,7,8)")
    ap.add_argument("--calibrate", action="store_true",
                    help="time both E-step paths over a grid and fit the path cost model")
    ap.add_argument("--predict-only", action="store_true",
                    help="only the prediction table (score_samples, predict_proba)")
    args = ap.parse_args(argv)
    if args.predict_only:
        return predict_table(args)
    if args.calibrate:
        return calibrate(args)
    configs = QUICK if args.quick else CONFIGS
    if args.only:
        configs = [configs[int(i)] for i in args.only.split(",")]
    blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)"
                     for i in threadpool_info() if i["user_api"] == "blas")
    print(f"# machine: {platform.processor() or platform.machine()}, "
          f"{__import__('os').cpu_count()} CPUs; BLAS: {blas}")
    print(f"# numpy {np.__version__}, sklearn {__import__('sklearn').__version__}, "
          f"emkit {emkit.__version__}; {args.iters} iterations, best of {args.repeats}")
    peak64 = gemm_rate(np.float64)
    print(f"# machine float64 GEMM rate: {peak64 / 1e9:.1f} GFLOP/s; load average "
          f"{os.getloadavg()[0]:.2f}")
    print()
    head = (f"{'cov':<9}{'N':>9}{'D':>4}{'K':>4} {'dtype':<8}{'sklearn s/it':>13}"
            f"{'emkit s/it':>12}{'speed-up':>10}{'GFLOP/s':>9}{'% GEMM':>8}  path")
    print(head)
    emkit64 = {}
    for ct, n, d, k, dtype in configs:
        X = make_data(n, d, k, dtype)
        w, m, p = init_params(X, k, ct)
        kw = dict(covariance_type=ct, max_iter=args.iters, tol=0.0, weights_init=w,
                  means_init=m, precisions_init=p)
        em = emkit.GaussianMixture(k, **kw)
        t_em = t_sk = np.inf
        for _ in range(args.repeats):  # alternated, so that a change of load hits both alike
            t_em = min(t_em, time_fit(em, X, 1) / args.iters)
            t_sk = min(t_sk, time_fit(SkGM(k, **kw), X, 1) / args.iters)
        path = em._model_.prepare(em._params_).path
        rate = emkit_flops_per_iter(n, d, k, ct, path) / t_em
        key = (ct, n, d, k)
        extra = ""
        if dtype == np.float64:
            emkit64[key] = t_em
        elif key in emkit64:
            extra = f"  float32 vs emkit float64: {emkit64[key] / t_em:.2f}x"
        print(f"{ct:<9}{n:>9}{d:>4}{k:>4} {np.dtype(dtype).name:<8}{t_sk:>13.4f}{t_em:>12.4f}"
              f"{t_sk / t_em:>9.1f}x{rate / 1e9:>9.1f}{100 * rate / peak64:>7.0f}%  {path}{extra}",
              flush=True)
    if not args.no_memory:
        ct, n, d, k = ("full", 1_000_000, 8, 8) if not args.quick else ("full", 100_000, 8, 8)
        X = make_data(n, d, k, np.float64)
        w, m, p = init_params(X, k, ct)
        kw = dict(covariance_type=ct, max_iter=2, tol=0.0, weights_init=w, means_init=m,
                  precisions_init=p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # warm up first: compiled kernels, thread pools and BLAS buffers are not "added
            # by fit", they are there once per process
            emkit.GaussianMixture(k, **kw).fit(X[:1000])
            SkGM(k, **kw).fit(X[:1000])
            mem_em = peak_added(lambda: emkit.GaussianMixture(k, **kw).fit(X))
            mem_sk = peak_added(lambda: SkGM(k, **kw).fit(X))
        print()
        print(f"peak memory added by fit (full, N={n}, D={d}, K={k}; data {X.nbytes / 2**20:.0f}"
              f" MiB): sklearn {mem_sk / 2**20:.0f} MiB ({mem_sk / X.nbytes:.2f}x data), "
              f"emkit {mem_em / 2**20:.0f} MiB ({mem_em / X.nbytes:.2f}x data); "
              f"ratio {mem_em / mem_sk:.3f}")
    t_sk = fresh_process_seconds("sklearn.mixture")
    t_em = fresh_process_seconds("emkit")
    print(f"import + first fit in a fresh process (warm Numba cache): sklearn {t_sk:.2f} s, "
          f"emkit {t_em:.2f} s, ratio {t_em / t_sk:.2f}")


def calibrate(args):
    """Time one E-step of each path (one thread, BLAS on one thread) over a grid of D and K,
    fit :func:`emkit.models.gaussian.path_costs`' linear model to it (non-negative least
    squares on relative error) and print the constants, the measurements and the predictions.
    """
    from scipy.optimize import nnls

    from emkit.kernels._parallel import blas_single_thread
    from emkit.kernels.gaussian import n_features_quad
    from emkit.models.gaussian import GaussianModel, GaussianParams, cost_features

    rng = np.random.default_rng(0)
    grids = {
        "full": [(d, k) for d in (2, 4, 8, 16, 32, 64, 128, 256) for k in (1, 2, 4, 8, 16, 32)],
        "diag": [(d, k) for d in (2, 8, 32, 128) for k in (1, 4, 16, 64)],
    }
    print(f"# calibration: one E-step, 1 thread (thread CPU time), best of {args.repeats}; load "
          f"{os.getloadavg()[0]:.2f}; seconds per row x 1e9")
    fitted = {}
    for ct, grid in grids.items():
        rows = []
        for d, k in grid:
            f = n_features_quad(d, ct)
            n = int(np.clip(4e7 / (f * max(k, 4) + 40 * d * k), 2000, 200_000))
            X = rng.normal(size=(n, d))
            means = X[rng.choice(n, k, replace=False)]
            cov = (np.tile(np.cov(X.T).reshape(d, d), (k, 1, 1)) if ct == "full"
                   else np.tile(X.var(0), (k, 1)))
            params = GaussianParams.from_covariances(np.full(k, 1.0 / k), means, cov, ct)
            models = {path: GaussianModel(ct, center=X.mean(0), spread=X.std(0), path=path,
                                          n_threads=1) for path in ("fast", "exact")}
            t = dict.fromkeys(models, np.inf)
            with blas_single_thread():
                for model in models.values():
                    model.e_step(params, X[:1000])
                for _ in range(args.repeats):  # alternated, so load changes hit both alike
                    for path, model in models.items():
                        # CPU time of this thread (one thread does all the work here): far
                        # less disturbed by other processes on a shared machine than wall time
                        t0 = time.thread_time()
                        model.e_step(params, X)
                        t[path] = min(t[path], (time.thread_time() - t0) / n)
            rows.append((d, k, t["fast"], t["exact"]))
        coef = {}
        for j, path in enumerate(("fast", "exact")):
            A = np.array([cost_features(ct, d, k)[path] for d, k, *_ in rows], dtype=float)
            y = np.array([r[2 + j] for r in rows])
            coef[path], _ = nnls(A / y[:, None], np.ones(len(y)))
        fitted[ct] = coef
        print(f"\nPATH_COST[{ct!r}] = {{'fast': {tuple(float(f'{c:.3g}') for c in coef['fast'])}, "
              f"'exact': {tuple(float(f'{c:.3g}') for c in coef['exact'])}}}")
        print(f"{'D':>5}{'K':>4}{'fast ns':>10}{'exact ns':>10}{'model fast':>12}"
              f"{'model exact':>13}  choice")
        for d, k, tf, te in rows:
            feats = cost_features(ct, d, k)
            pf, pe = (float(np.dot(coef[p], feats[p])) for p in ("fast", "exact"))
            pick, best = ("fast" if pf < pe else "exact"), ("fast" if tf < te else "exact")
            note = ""
            if pick != best:
                note = f" (measured {best} faster, x{max(tf, te) / min(tf, te):.2f})"
            print(f"{d:>5}{k:>4}{tf * 1e9:>10.0f}{te * 1e9:>10.0f}{pf * 1e9:>12.0f}"
                  f"{pe * 1e9:>13.0f}  {pick}{note}")
    return fitted


def predict_table(args):
    """Prediction on 1M x 16, K=16 float64 (100k with --quick), full covariance, the same fitted
    parameters on both sides: seconds (best of ``repeats``) and tracemalloc peak per call."""
    n, d, k = (100_000, 16, 16) if args.quick else (1_000_000, 16, 16)
    X = make_data(n, d, k, np.float64)
    w, m, p = init_params(X, k, "full")
    kw = dict(covariance_type="full", max_iter=1, tol=0.0, weights_init=w, means_init=m,
              precisions_init=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        em = emkit.GaussianMixture(k, **kw).fit(X[:20_000])
        sk = SkGM(k, **kw).fit(X[:20_000])
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        setattr(sk, name, getattr(em, name).copy())  # identical parameters on both sides
    print(f"# prediction: full, N={n}, D={d}, K={k}, float64; output of predict_proba "
          f"{n * k * 8 / 2**20:.0f} MiB, of score_samples {n * 8 / 2**20:.0f} MiB; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'method':<15}{'sklearn s':>11}{'emkit s':>9}{'speed-up':>10}"
          f"{'sklearn MiB':>13}{'emkit MiB':>11}")
    for method in ("score_samples", "predict_proba", "predict"):
        np.testing.assert_allclose(getattr(em, method)(X[:1000]), getattr(sk, method)(X[:1000]),
                                   rtol=1e-6, atol=1e-9)
        times = {}
        for side, est in (("sk", sk), ("em", em)):
            fn = getattr(est, method)
            best = np.inf
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn(X)
                best = min(best, time.perf_counter() - t)
            times[side] = (best, peak_added(lambda fn=fn: fn(X)))
        (tsk, msk), (tem, mem) = times["sk"], times["em"]
        print(f"{method:<15}{tsk:>11.3f}{tem:>9.3f}{tsk / tem:>9.1f}x"
              f"{msk / 2**20:>13.0f}{mem / 2**20:>11.0f}")


if __name__ == "__main__":
    main()
