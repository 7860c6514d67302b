"""In-line exponential kernels (emkit/kernels/_exp.py) timed through their three users:
the Gaussian fused softmax, the HMM's row_max_exp and LDA's exp(digamma).

    PYTHONPATH=. python benchmarks/bench_exp.py

Microseconds per call, best of 30, the copy of the input subtracted where the kernel works
in place. Compare two checkouts by running it under each one's PYTHONPATH, alternated.
"""

import time

import numpy as np

from emkit.kernels import _rows, lda
from emkit.kernels import gaussian as gauss


def best(f, n=30):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    rng = np.random.default_rng(0)
    Lt0 = rng.normal(size=(16, 4000)) * 30
    w = rng.random(4000)
    L0 = rng.normal(size=(16000, 16)) * 30
    x = rng.random(24) * 10
    out = np.empty(24)
    bits = np.empty(24, np.int64)

    def softmax():
        gauss.softmax_t(Lt0.copy(), w)

    def row_max_exp():
        _rows.row_max_exp(L0.copy())

    def exp_digamma():
        for _ in range(1000):
            lda._exp_digamma_vec_jit(x, out, bits)

    for f in (softmax, row_max_exp, exp_digamma):
        f()  # compile / load the cache
    print("softmax_t (16 x 4000, weighted) us", (best(softmax) - best(Lt0.copy)) * 1e6)
    print("row_max_exp (16000 x 16) us", (best(row_max_exp) - best(L0.copy)) * 1e6)
    print("exp_digamma (24 lanes x 1000) us", best(exp_digamma) * 1e6)


if __name__ == "__main__":
    main()
