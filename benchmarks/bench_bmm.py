"""BernoulliMixture per-iteration speed, measured side by side in one run.

Cases (the issue's performance targets):

1. dense float64, N x D = 100k x 784, K = 20: emkit vs a plain NumPy EM written the textbook
   way (``X @ log(mu).T + (1 - X) @ log(1 - mu).T``: two GEMMs and an N x D temporary for the
   E-step, a third GEMM for ``R^T X``), both with the default ``alpha=1`` M-step, the peer
   timed with BLAS at its default threads and at one thread and credited with the better,
   target >= 2x;
2. dense float32 vs emkit's own float64 on the same data, target >= 1.5x;
3. CSR at 1% density, same shape: emkit's sparse path vs emkit's dense path on the same data
   (densified), target >= 10x;
4. a 20000 x 200000 CSR matrix at 0.05% density fitted to convergence (dense it would take
   32 GB in float64).

Per-iteration time of emkit is read from the fit's trace (one M-step plus one E-step between
consecutive rows), so input validation and initialisation are not counted. Each ratio takes
the best of ``--repeats`` alternated measurements, which tames the noise of a shared machine.

``--lca`` instead measures the initialisation on published latent class data: poLCA's
carcinoma data (``tests/data/carcinoma.csv``; published maxima of the log-likelihood -317.2568,
-293.705 and -289.2858 for 2, 3 and 4 classes, poLCA's ``?carcinoma``), maximum likelihood
(``alpha=0``), for each ``init_params``: how many of R single starts (``random_state`` 0..R-1,
``n_init=1``) reach the maximum, and how many of R fits with ``n_init=10`` do; plus the
bound and adjusted Rand index on the binarised digits (K=10, default ``alpha``, 5 seeds).

Usage::

    python benchmarks/bench_bmm.py            # full sizes (about 1-2 minutes)
    python benchmarks/bench_bmm.py --quick    # small sizes, a few seconds
    python benchmarks/bench_bmm.py --lca      # initialisations on latent class data
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from emkit import BernoulliMixture


def plain_numpy_em(X, weights, means, n_iter, alpha=1.0):
    """Median seconds per iteration of textbook EM in plain NumPy.

    With the same add-``alpha`` M-step as emkit (``alpha=0`` lets a mean reach 0 and the
    next ``log`` give -inf and NaNs, which would slow the peer down unfairly).
    """
    times = []
    for _ in range(n_iter):
        t0 = time.perf_counter()
        log_p = np.log(weights) + X @ np.log(means).T + (1 - X) @ np.log(1 - means).T
        log_px = logsumexp(log_p, axis=1)
        resp = np.exp(log_p - log_px[:, None])
        nk = resp.sum(axis=0)
        means = (resp.T @ X + alpha) / (nk[:, None] + 2 * alpha)
        weights = nk / X.shape[0]
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def emkit_per_iter(X, weights, means, n_iter, alpha=1.0):
    """Median seconds per EM iteration of BernoulliMixture, from its trace."""
    bm = BernoulliMixture(
        len(weights), alpha=alpha, weights_init=weights, means_init=means, max_iter=n_iter,
        tol=0.0, check_monotonic="raise",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bm.fit(X)
    s = bm.trace_.seconds[:-1]  # the last row only closes the trace
    return float(np.median(np.diff(s)))


def mixture_data(n, d, k, rng, dtype=np.float64, low=0.02, high=0.5):
    """Binary data from a random K-component Bernoulli mixture."""
    probs = rng.uniform(low, high, (k, d)).astype(np.float32)
    z = rng.integers(k, size=n)
    out = np.empty((n, d), dtype=dtype)
    for start in range(0, n, 10000):
        sl = slice(start, min(start + 10000, n))
        out[sl] = rng.random((sl.stop - sl.start, d), dtype=np.float32) < probs[z[sl]]
    return out


def sparse_mixture(n, d, k, density, rng, dtype=np.float64, own=2 / 3):
    """CSR binary data at about ``density``: each component favours its own feature block."""
    per_row = rng.poisson(density * d, size=n)
    z = rng.integers(k, size=n)
    rows = np.repeat(np.arange(n), per_row)
    block = d // k
    # a fraction ``own`` of a row's ones fall in its component's block, the rest anywhere
    in_block = rng.random(rows.size) < own
    cols = np.where(
        in_block,
        np.repeat(z, per_row) * block + rng.integers(block, size=rows.size),
        rng.integers(d, size=rows.size),
    )
    X = sp.csr_matrix((np.ones(rows.size, dtype=dtype), (rows, cols)), shape=(n, d))
    X.sum_duplicates()
    X.data[:] = 1
    return X


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        n_cpu = len(os.sched_getaffinity(0))
    except AttributeError:
        n_cpu = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} threads)"
            for i in threadpool_info() if i["user_api"] == "blas"
        )
    except ImportError:
        pass
    return (
        f"{cpu}, {n_cpu} usable cores, Python {platform.python_version()}, NumPy "
        f"{np.__version__}, BLAS {blas}; load average before the run "
        f"{' '.join(f'{v:.2f}' for v in load)}"
    )


#: published maxima of the log-likelihood on carcinoma (poLCA's ?carcinoma, Agresti 2002)
CARCINOMA_MAXIMA = {2: -317.2568, 3: -293.705, 4: -289.2858}


def lca_inits(n_seeds, inits=("kmeans", "kmeans_jitter", "random")):
    """Print how often each initialisation reaches poLCA's published maxima on carcinoma."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import adjusted_rand_score

    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "carcinoma.csv")
    table = np.loadtxt(path, delimiter=",", comments="#", skiprows=8)
    X, counts = table[:, :7], table[:, 7]
    n = counts.sum()
    print(f"carcinoma: {X.shape[0]} patterns, {n:.0f} slides; {n_seeds} seeds per cell; "
          "alpha=0, tol=1e-10, max_iter=5000")
    print()
    print("| init_params | K | single starts reaching the maximum | fits with n_init=10 "
          "reaching it | worst of the n_init=10 fits |")
    print("|---|---:|---:|---:|---:|")
    for init in inits:
        for k, best in CARCINOMA_MAXIMA.items():
            hits = {}
            worst = np.inf
            for n_init in (1, 10):
                ok = 0
                for seed in range(n_seeds):
                    bm = BernoulliMixture(k, alpha=0.0, tol=1e-10, max_iter=5000,
                                          n_init=n_init, init_params=init, random_state=seed)
                    ll = bm.fit(X, sample_weight=counts).score(X, sample_weight=counts) * n
                    ok += ll > best - 1e-3
                    if n_init == 10:
                        worst = min(worst, ll)
                hits[n_init] = ok
            print(f"| {init} | {k} | {hits[1]}/{n_seeds} | {hits[10]}/{n_seeds} | "
                  f"{worst:.4f} |", flush=True)
    digits = load_digits()
    print()
    print("| init_params | digits (K=10) mean lower bound [min, max] | mean ARI [min, max] |")
    print("|---|---|---|")
    for init in inits:
        lbs, aris = [], []
        for seed in range(5):
            bm = BernoulliMixture(10, binarize=7.0, init_params=init, random_state=seed)
            labels = bm.fit_predict(digits.data)
            lbs.append(bm.lower_bound_)
            aris.append(adjusted_rand_score(digits.target, labels))
        print(f"| {init} | {np.mean(lbs):.3f} [{min(lbs):.3f}, {max(lbs):.3f}] | "
              f"{np.mean(aris):.3f} [{min(aris):.3f}, {max(aris):.3f}] |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="alternated measurements")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lca", action="store_true",
                        help="initialisations on published latent class data instead")
    parser.add_argument("--lca-seeds", type=int, default=30)
    args = parser.parse_args(argv)
    if args.lca:
        print(f"# bench_bmm.py --lca  {datetime.datetime.now().isoformat(timespec='seconds')}")
        print(f"# {machine()}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lca_inits(args.lca_seeds)
        return 0

    if args.quick:
        n, d, k, n_iter, repeats = 10000, 784, 20, 4, args.repeats or 2
        big = (4000, 40000, 0.0005, 10)
    else:
        n, d, k, n_iter, repeats = 100000, 784, 20, 6, args.repeats or 5
        big = (20000, 200000, 0.0005, 20)
    rng = np.random.default_rng(args.seed)
    print(f"# bench_bmm.py{' --quick' if args.quick else ''}  "
          f"{datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# {machine()}")

    bn, bd, bdens, bk = big
    Xb = sparse_mixture(bn, bd, bk, bdens, rng, own=0.25)
    t0 = time.perf_counter()
    bm = BernoulliMixture(bk, random_state=0, max_iter=100, check_monotonic="raise").fit(Xb)
    secs = time.perf_counter() - t0
    mb = (Xb.data.nbytes + Xb.indices.nbytes + Xb.indptr.nbytes) / 2**20
    dense_gb = bn * bd * 8 / 1e9
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Large sparse fit: {bn}x{bd} CSR at {100 * bdens:g}% density (nnz {Xb.nnz}, "
          f"{mb:.0f} MB; dense float64 would be {dense_gb:.0f} GB), K={bk}: fitted in "
          f"{secs:.1f} s including initialisation, {bm.n_iter_} iterations, "
          f"converged={bm.converged_}, per-iteration "
          f"{np.median(np.diff(bm.trace_.seconds[:-1])) if bm.n_iter_ > 1 else float('nan'):.3f}"
          f" s, lower bound {bm.lower_bound_:.4f}; peak resident memory of the process "
          f"so far {peak_mb:.0f} MB.")
    del Xb

    weights = np.full(k, 1.0 / k)
    means = rng.uniform(0.1, 0.9, (k, d))
    X64 = mixture_data(n, d, k, rng)
    X32 = X64.astype(np.float32)
    emkit_per_iter(X64[:2000], weights, means, 2)  # compile/warm up
    emkit_per_iter(X32[:2000], weights, means, 2)

    rows = []
    best = {"plain": np.inf, "f64": np.inf, "f32": np.inf}
    for _ in range(repeats):
        # the peer gets its best BLAS threading: on a loaded 2-core machine OpenBLAS with two
        # threads can be several times slower than with one
        best["plain"] = min(best["plain"], plain_numpy_em(X64, weights, means, n_iter))
        with threadpool_limits(limits=1, user_api="blas"):
            best["plain"] = min(best["plain"], plain_numpy_em(X64, weights, means, n_iter))
        best["f64"] = min(best["f64"], emkit_per_iter(X64, weights, means, n_iter))
        best["f32"] = min(best["f32"], emkit_per_iter(X32, weights, means, n_iter))
    rows.append((f"dense f64 {n}x{d} K={k}", "plain NumPy EM f64", best["f64"], best["plain"],
                 2.0))
    rows.append((f"dense f32 {n}x{d} K={k}", "emkit dense f64", best["f32"], best["f64"], 1.5))
    del X32

    Xs = sparse_mixture(n, d, k, 0.01, rng)
    Xd = Xs.toarray()
    emkit_per_iter(Xs[:2000], weights, means, 2)
    b_sp, b_dn = np.inf, np.inf
    for _ in range(repeats):
        b_sp = min(b_sp, emkit_per_iter(Xs, weights, means, n_iter))
        b_dn = min(b_dn, emkit_per_iter(Xd, weights, means, n_iter))
    rows.append((f"CSR 1% {n}x{d} K={k} (nnz {Xs.nnz})", "emkit dense f64", b_sp, b_dn, 10.0))
    del Xd, X64

    print()
    print("| case | peer | emkit s/iter | peer s/iter | speed-up | target |")
    print("|---|---|---:|---:|---:|---:|")
    for case, peer, mine, theirs, target in rows:
        ratio = theirs / mine
        ok = "ok" if ratio >= target else "MISSED"
        print(f"| {case} | {peer} | {mine:.4f} | {theirs:.4f} | {ratio:.1f}x | "
              f">= {target:g}x {ok} |")

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
