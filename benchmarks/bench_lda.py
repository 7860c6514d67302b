"""emkit.LatentDirichletAllocation vs scikit-learn (and gensim, if importable), same run.

Corpus: documents drawn from LDA's generative process (default 20,000 training + 2,000
held-out documents, 5,000 words, 20 topics, ~100 tokens each). Every model gets the same priors
(alpha = eta = 1 / n_topics, scikit-learn's defaults) and the same number of passes; the
held-out perplexity of every model is computed by one common routine on its topics (lambda):
emkit's E-step from gamma = 1 and the per-token bound of the documents' terms.

    python benchmarks/bench_lda.py            # the full comparison (a few minutes)
    python benchmarks/bench_lda.py --quick    # small corpus, for a smoke test

gensim is not a dependency of emkit; install it anywhere on ``PYTHONPATH`` to include it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy.sparse as sp


def make_corpus(n_docs, n_words, n_topics, doc_len, alpha=0.1, eta=0.05, seed=0):
    """LDA generative process, vectorised over tokens; returns CSR counts."""
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(n_words, eta), size=n_topics)
    theta = rng.dirichlet(np.full(n_topics, alpha), size=n_docs)
    lengths = np.maximum(rng.poisson(doc_len, size=n_docs), 1)
    doc = np.repeat(np.arange(n_docs), lengths)
    z = (rng.random(len(doc))[:, None] > np.cumsum(theta, axis=1)[doc]).sum(axis=1)
    z = np.minimum(z, n_topics - 1)
    word = np.empty(len(doc), dtype=np.int64)
    cum_beta = np.cumsum(beta, axis=1)
    for k in range(n_topics):
        idx = np.flatnonzero(z == k)
        word[idx] = np.minimum(np.searchsorted(cum_beta[k], rng.random(len(idx))), n_words - 1)
    X = sp.coo_matrix((np.ones(len(doc)), (doc, word)), shape=(n_docs, n_words)).tocsr()
    X.sum_duplicates()
    return X


def heldout_perplexity(lam, X_test, alpha, eta):
    """The common routine: exp(-documents' bound per token) under topics ``lam``."""
    from emkit.models.lda import LDAModel

    model = LDAModel(lam.shape[0], alpha, eta, n_threads=os.cpu_count())
    params = model.params(np.asarray(lam, dtype=np.float64))
    stats, _ = model.e_step(params, X_test, None, None)
    return float(np.exp(-model.document_bound(params, stats) / X_test.sum()))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpus, few passes")
    parser.add_argument("--docs", type=int, default=None)
    parser.add_argument("--passes", type=int, default=None)
    parser.add_argument("--online-passes", type=str, default=None,
                        help="passes for the online models (peers use the first value); "
                             "emkit also runs at every further value, for time-to-quality")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--no-online", action="store_true")
    parser.add_argument("--seeds", type=str, default="0",
                        help="comma-separated random_state values for the batch comparison "
                             "(the corpus stays the same); one row each and the mean ratio")
    args = parser.parse_args(argv)
    seeds = [int(x) for x in args.seeds.split(",")]

    from sklearn.decomposition import LatentDirichletAllocation as SkLDA

    import emkit

    n_docs = args.docs or (3000 if args.quick else 20000)
    passes = args.passes or (5 if args.quick else 10)
    online_list = ([int(x) for x in args.online_passes.split(",")] if args.online_passes
                   else [1 if args.quick else 2])
    online_passes = online_list[0]
    n_words, n_topics, doc_len = (1000 if args.quick else 5000), 20, 100
    n_test = max(500, n_docs // 10)
    X_all = make_corpus(n_docs + n_test, n_words, n_topics, doc_len)
    X, X_test = X_all[:n_docs], X_all[n_docs:]
    prior = 1.0 / n_topics
    print(f"corpus: {n_docs} docs (+{n_test} held out), {n_words} words, {n_topics} topics, "
          f"{X.sum() / n_docs:.0f} tokens/doc, nnz {X.nnz}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, emkit {emkit.__version__}, "
          f"date {time.strftime('%Y-%m-%d %H:%M')}")
    # compile (or load from cache) the kernels outside the timings
    emkit.LatentDirichletAllocation(3, max_iter=1).fit(X[:50])

    rows = []

    def add(method, name, seconds, lam):
        perp = heldout_perplexity(lam, X_test, prior, prior)
        rows.append((method, name, seconds, perp))
        print(f"  {method:6s} {name:34s} {seconds:8.2f} s   held-out perplexity {perp:9.2f}",
              flush=True)

    common = dict(n_components=n_topics, doc_topic_prior=prior, topic_word_prior=prior,
                  random_state=0, n_jobs=-1)
    print(f"batch, {passes} passes:")
    per_seed = []
    for seed in seeds:
        kw = dict(common, random_state=seed)
        em, t_em = timed(
            lambda kw=kw: emkit.LatentDirichletAllocation(max_iter=passes, **kw).fit(X)
        )
        sk, t_sk = timed(lambda kw=kw: SkLDA(max_iter=passes, **kw).fit(X))
        if seed == seeds[0]:
            add("batch", "emkit", t_em, em.components_)
            add("batch", "sklearn (n_jobs=-1)", t_sk, sk.components_)
        p_em = heldout_perplexity(em.components_, X_test, prior, prior)
        p_sk = heldout_perplexity(sk.components_, X_test, prior, prior)
        per_seed.append((seed, t_em, t_sk, p_em, p_sk))
    if len(seeds) > 1:
        print(f"  {'seed':>4s} {'emkit s':>8s} {'sklearn s':>9s} {'speed-up':>8s} "
              f"{'emkit perp':>10s} {'sklearn perp':>12s} {'ratio':>6s}")
        for seed, t_em, t_sk, p_em, p_sk in per_seed:
            print(f"  {seed:4d} {t_em:8.2f} {t_sk:9.2f} {t_sk / t_em:7.2f}x {p_em:10.1f} "
                  f"{p_sk:12.1f} {p_em / p_sk:6.3f}")
        ratios = np.array([r[3] / r[4] for r in per_seed])
        speed = np.array([r[2] / r[1] for r in per_seed])
        print(f"  mean over {len(seeds)} seeds: speed-up {speed.mean():.2f}x, perplexity ratio "
              f"{ratios.mean():.4f} (min {ratios.min():.3f}, max {ratios.max():.3f}; "
              f"emkit no worse on {np.sum(ratios <= 1)} of {len(seeds)})")

    if not args.no_online:
        print(f"online, {online_passes} passes, batch_size {args.batch_size}:")
        kw = dict(learning_method="online", max_iter=online_passes, batch_size=args.batch_size)
        em, t = timed(lambda: emkit.LatentDirichletAllocation(**kw, **common).fit(X))
        add("online", "emkit", t, em.components_)
        for more in online_list[1:]:
            kw_more = dict(kw, max_iter=more)
            em, t = timed(lambda kw_more=kw_more: emkit.LatentDirichletAllocation(
                **kw_more, **common).fit(X))
            p_more = heldout_perplexity(em.components_, X_test, prior, prior)
            print(f"  online emkit, {more} passes{'':20s} {t:8.2f} s   held-out perplexity "
                  f"{p_more:9.2f}", flush=True)
        sk, t = timed(lambda: SkLDA(**kw, **common).fit(X))
        add("online", "sklearn (n_jobs=-1)", t, sk.components_)
        try:
            import gensim
            from gensim.matutils import Sparse2Corpus
            from gensim.models import LdaModel, LdaMulticore
        except ImportError:
            print("  gensim not importable: skipped")
        else:
            corpus = list(Sparse2Corpus(X, documents_columns=False))
            gkw = dict(num_topics=n_topics, id2word={i: str(i) for i in range(n_words)},
                       alpha=np.full(n_topics, prior), eta=prior, passes=online_passes,
                       chunksize=args.batch_size, decay=0.7, offset=10.0, iterations=100,
                       gamma_threshold=1e-3, eval_every=None, random_state=0)
            g, t = timed(lambda: LdaModel(corpus, update_every=1, **gkw))
            add("online", f"gensim {gensim.__version__} LdaModel", t, g.state.get_lambda())
            g, t = timed(lambda: LdaMulticore(corpus, workers=max(1, os.cpu_count() - 1),
                                              **gkw))
            add("online", "gensim LdaMulticore", t, g.state.get_lambda())

    print()
    print(f"{'mode':6s} {'peer':34s} {'speed-up':>9s} {'perplexity ratio':>17s}")
    mine = {m: (s, p) for m, n, s, p in rows if n == "emkit"}
    for method, name, seconds, perp in rows:
        if name == "emkit":
            continue
        s0, p0 = mine[method]
        print(f"{method:6s} {name:34s} {seconds / s0:8.2f}x {p0 / perp:17.4f}")
    print("(speed-up = peer seconds / emkit seconds; perplexity ratio = emkit / peer, "
          "<= 1 is no worse)")


if __name__ == "__main__":
    main()
