"""What the order- and repeat-invariant initialisation costs on a default GaussianMixture fit.

The initialisation runs on the weighted empirical distribution (distinct rows with their
total weights, in a canonical order; see ``emkit/_empirical.py``). This script times, in one
process, that step alone (``empirical_rows``: hashing, sorting, gathering the distinct rows)
against a whole default fit (``GaussianMixture(K, random_state=0).fit(X)``: k-means
initialisation and EM to tol=1e-3), and, with ``--compare PATH``, the same default fit with
another emkit checkout (for example one before the change) in alternating fresh processes.

    python benchmarks/bench_init.py                       # N=100k, D=16, K=16
    python benchmarks/bench_init.py --compare /path/to/old/checkout --repeat 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np

FIT = """
import sys, time, warnings, numpy as np
warnings.simplefilter("ignore")
from emkit import GaussianMixture
rng = np.random.default_rng(0)
n, d, k = {n}, {d}, {k}
centers = rng.normal(scale=4.0, size=(k, d))
X = centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))
GaussianMixture(2, max_iter=2, random_state=0).fit(X[:2000])  # compile / warm up
t = time.perf_counter()
gm = GaussianMixture(k, random_state=0).fit(X)
print(time.perf_counter() - t, gm.n_iter_)
"""


def data(n, d, k):
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=4.0, size=(k, d))
    return centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))


def fit_in(path, n, d, k):
    env = dict(os.environ, PYTHONPATH=path)
    out = subprocess.run([sys.executable, "-c", FIT.format(n=n, d=d, k=k)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compare", default=None, help="another emkit checkout (PYTHONPATH)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    import emkit
    from emkit import GaussianMixture
    from emkit._empirical import empirical_rows

    here = os.path.dirname(os.path.dirname(os.path.abspath(emkit.__file__)))
    n, d, k = args.n, args.d, args.k
    X = data(n, d, k)
    print(f"uptime: {os.getloadavg()}")
    print(f"N={n} D={d} K={k} float64, default GaussianMixture(K, random_state=0)")
    GaussianMixture(2, max_iter=2, random_state=0).fit(X[:2000])
    step, fits = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        Xu, _ = empirical_rows(X, None, max_rows=n, salt=0)
        step.append(time.perf_counter() - t)
        t = time.perf_counter()
        gm = GaussianMixture(k, random_state=0).fit(X)
        fits.append(time.perf_counter() - t)
    s, f = min(step), min(fits)
    print(f"empirical_rows alone: {s * 1e3:.1f} ms (best of {args.repeat}; {Xu.shape[0]} "
          f"distinct rows)")
    print(f"whole default fit:    {f:.3f} s (best of {args.repeat}; n_iter_={gm.n_iter_})")
    print(f"share of the fit:     {100 * s / f:.2f} %")
    if args.compare:
        new, old = [], []
        for _ in range(args.repeat):  # alternate, so load changes hit both alike
            old.append(fit_in(args.compare, n, d, k))
            new.append(fit_in(here, n, d, k))
        bo, bn = min(t for t, _ in old), min(t for t, _ in new)
        print(f"fresh-process default fit, best of {args.repeat}: this checkout {bn:.3f} s "
              f"(n_iter_ {new[0][1]}), {args.compare} {bo:.3f} s (n_iter_ {old[0][1]}); "
              f"ratio new/old {bn / bo:.3f}")
        print("all runs (s):", [round(t, 3) for t, _ in new], [round(t, 3) for t, _ in old])
    print(f"uptime: {os.getloadavg()}")


if __name__ == "__main__":
    main()
