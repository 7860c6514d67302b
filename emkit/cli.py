"""The ``emkit`` command (also ``python -m emkit``).

``emkit`` with no arguments runs the short demo: a 3-component GaussianMixture fitted to the
iris data bundled with scikit-learn, printing the per-iteration ELBO table of both EM
half-steps. Subcommands::

    emkit fit --model gmm|bgmm|bmm|lda|ghmm|chmm -k K DATA [--lengths L] [--out MODEL.npz]
              [--trace T.csv] [--plot T.png]
    emkit predict MODEL.npz DATA [--lengths L] [--proba]
    emkit select --model gmm|bmm -k 1-9 DATA [--covariance-type full,diag]
    emkit demo [--out DIR]
    emkit bench [--quick]

Bad arguments and unreadable files print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser", "read_data"]

MODELS = {"gmm": "GaussianMixture", "bgmm": "BayesianGaussianMixture", "bmm": "BernoulliMixture",
          "lda": "LatentDirichletAllocation", "ghmm": "GaussianHMM", "chmm": "CategoricalHMM"}
#: the models with a covariance_type, and its default for each
GAUSSIAN = {"gmm": "full", "bgmm": "full", "ghmm": "diag"}
#: the hidden Markov models: data in sequences (``--lengths``), ``n_iter`` for ``max_iter``
HMMS = ("ghmm", "chmm")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DATA_SUFFIXES = (".csv", ".npy", ".npz", ".mtx", ".txt")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------------------- argument types
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}")
    return value


def _k_range(text: str) -> list[int]:
    """``"1-9"``, ``"2,4,8"`` or ``"3"`` as a sorted list of positive ints."""
    values = set()
    try:
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            lo = int(lo)
            hi = int(hi) if sep else lo
            if lo < 1 or hi < lo:
                raise ValueError
            values.update(range(lo, hi + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be positive integers like 1-9 or 2,4,8, got {text!r}"
        ) from None
    return sorted(values)


def _covariance_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in COVARIANCE_TYPES]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of {', '.join(COVARIANCE_TYPES)}, got {text!r}"
        )
    return items


# ---------------------------------------------------------------------------- data
def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_csv(path):
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    def numeric(field):
        field = field.strip()
        if not field:
            return True  # an empty field is a missing value, not a column name
        try:
            float(field)
        except ValueError:
            return False
        return True

    # a header row has a field that is neither a number nor empty
    skip = 0 if all(numeric(v) for v in first.split(",")) else 1
    X = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    return X


def _read_npz(path):
    import scipy.sparse as sp

    with np.load(path, allow_pickle=False) as npz:
        files = list(npz.files)
        if "__emkit__" in files:
            raise CLIError(f"{path} is an emkit model file, not data")
        if {"format", "shape", "indptr"} <= set(files) or {"format", "shape", "row"} <= set(files):
            return sp.load_npz(path).tocsr()
        if len(files) == 1:
            return npz[files[0]]
        if "X" in files:
            return npz["X"]
    raise CLIError(f"{path} holds {len(files)} arrays ({', '.join(files[:5])}); "
                   "store one array, or name it X")


def read_lengths(path, n_rows):
    """The sequence lengths in ``path`` for data of ``n_rows`` rows (``--lengths``).

    A ``.npy`` array, or text with one integer per line (blank lines are skipped). They must
    be positive integers summing to ``n_rows``; anything else is a :class:`CLIError` naming
    the file.
    """
    from .estimators._hmm_input import check_lengths

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"--lengths {path}: no such file")
    try:
        if path.suffix.lower() == ".npy":
            lengths = np.load(path, allow_pickle=False)
        else:
            with open(path, encoding="utf-8") as fh:
                lines = [(i, ln.strip()) for i, ln in enumerate(fh, 1) if ln.strip()]
            values = []
            for i, text in lines:
                try:
                    values.append(int(text))
                except ValueError:
                    raise CLIError(f"--lengths {path}: line {i} is {text!r}, not an integer "
                                   "(one sequence length per line)") from None
            lengths = np.array(values, dtype=np.int64)
    except CLIError:
        raise
    except Exception as exc:  # an unreadable file is the user's: say so in one line
        raise CLIError(f"cannot read --lengths {path}: {_first_line(exc)}") from None
    lengths = np.asarray(lengths)
    if lengths.ndim == 2 and 1 in lengths.shape:
        lengths = lengths.ravel()
    try:
        check_lengths(lengths, n_rows)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--lengths {path}: {_first_line(exc)}") from None
    return lengths.astype(np.int64)


def _read_text(path, vocabulary=None):
    from sklearn.feature_extraction.text import CountVectorizer

    with open(path, encoding="utf-8") as fh:
        docs = [line.rstrip("\n") for line in fh]
    if not docs:
        raise CLIError(f"{path} has no documents (one per line)")
    vec = CountVectorizer(vocabulary=vocabulary)
    counts = vec.fit_transform(docs).astype(np.float64)
    return counts, np.asarray(vec.get_feature_names_out(), dtype=str)


def read_data(path, *, text_ok=False, vocabulary=None):
    """The data matrix in ``path`` and, for a text file, its vocabulary.

    ``.csv`` (numbers; a header row is skipped), ``.npy``, ``.npz`` (one dense array, or a
    ``scipy.sparse.save_npz`` matrix), ``.mtx`` (Matrix Market) or, when ``text_ok``, ``.txt``:
    one document per line, counted with scikit-learn's ``CountVectorizer`` (with
    ``vocabulary``, that fixed vocabulary).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise CLIError(f"{path}: unknown data format {suffix or '(no suffix)'!r}; use one of "
                       f"{', '.join(DATA_SUFFIXES)}")
    if suffix == ".txt" and not text_ok:
        raise CLIError(f"{path}: text files (one document per line) are for --model lda")
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    try:
        if suffix == ".txt":
            return _read_text(path, vocabulary)
        if suffix == ".csv":
            X = _read_csv(path)
        elif suffix == ".npy":
            X = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            X = _read_npz(path)
        else:
            import scipy.io

            X = scipy.io.mmread(str(path))
            X = X.tocsr() if hasattr(X, "tocsr") else np.asarray(X)
    except CLIError:
        raise
    except Exception as exc:  # any parse failure is the user's file: say so in one line
        raise CLIError(f"cannot read {path}: {_first_line(exc)}") from None
    if getattr(X, "ndim", 2) != 2:
        raise CLIError(f"{path}: expected a 2-D matrix (samples x features), got shape "
                       f"{getattr(X, 'shape', '?')}")
    return X, None


# ---------------------------------------------------------------------------- progress
class Progress:
    """The fit's callback: one table row per iteration; a tqdm bar when on a terminal."""

    def __init__(self, max_iter, stream=None, bar=None):
        self.stream = stream or sys.stdout
        self.max_iter = max_iter
        self.use_bar = self.stream.isatty() if bar is None else bar
        self.bar = None
        self.init = None
        self._write(f"{'init':>4}  {'iteration':>9}  {'ELBO':>16}  {'change':>11}  "
                    f"{'seconds':>8}")

    def _write(self, line):
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def __call__(self, info):
        if self.use_bar and info.init != self.init:
            from tqdm import tqdm

            self.close()
            self.bar = tqdm(total=self.max_iter, desc=f"init {info.init}", unit="it",
                            leave=False)
        self.init = info.init
        change = "" if not np.isfinite(info.change) else f"{info.change:.3e}"
        self._write(f"{info.init:>4}  {info.iteration:>9}  {info.elbo:>16.8f}  {change:>11}  "
                    f"{info.seconds:>8.3f}")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(elbo=f"{info.elbo:.6g}")

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------- commands
def _estimator(args, **extra):
    import emkit

    cls = getattr(emkit, MODELS[args.model])
    params = dict(n_components=args.n_components, random_state=args.seed, **extra)
    if args.max_iter is not None:
        params["n_iter" if args.model in HMMS else "max_iter"] = args.max_iter
    if args.model in GAUSSIAN:
        params["covariance_type"] = args.covariance_type or GAUSSIAN[args.model]
    elif args.covariance_type:
        raise CLIError(f"--covariance-type is for --model gmm, bgmm or ghmm, not {args.model}")
    if args.n_init is not None:
        if args.model == "lda":
            raise CLIError("--n-init is for --model gmm, bgmm, bmm, ghmm or chmm "
                           "(lda starts once)")
        params["n_init"] = args.n_init
    if getattr(args, "lengths", None) is not None and args.model not in HMMS:
        raise CLIError(f"--lengths is for --model ghmm or chmm, not {args.model}")
    if args.binarize is not None:
        if args.model != "bmm":
            raise CLIError(f"--binarize is for --model bmm, not {args.model}")
        params["binarize"] = args.binarize
    return cls(**params)


def _agg_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_plot(function, what, path, name):
    """Draw ``emkit.plotting.<function>(what)`` with Agg and write it to ``path``."""
    plt = _agg_pyplot()
    from . import plotting

    fig = getattr(plotting, function)(what).figure
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"{name} written to {path}")


def _check_out(path, suffixes, flag):
    if path is not None and Path(path).suffix.lower() not in suffixes:
        raise CLIError(f"{flag} {path}: the file name must end in {' or '.join(suffixes)}")
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise CLIError(f"{flag} {path}: no such directory {Path(path).parent}")


def _write_trace_csv(trace, path):
    cols = ["elbo_after_e", "elbo_after_m", "log_evidence", "kl", "seconds"]
    table = np.column_stack([np.arange(len(trace))] + [getattr(trace, c) for c in cols])
    np.savetxt(path, table, delimiter=",", header=",".join(["iteration", *cols]),
               comments="", fmt=["%d"] + ["%.17g"] * len(cols))


def _cmd_fit(args) -> int:
    import emkit

    _check_out(args.out, (".npz",), "--out")
    _check_out(args.trace, (".csv",), "--trace")
    _check_out(args.plot, (".png", ".pdf", ".svg"), "--plot")
    model = _estimator(args)
    X, vocab = read_data(args.data, text_ok=args.model == "lda")
    hmm = args.model in HMMS
    lengths = None if args.lengths is None else read_lengths(args.lengths, X.shape[0])
    budget = model.get_params()["n_iter" if hmm else "max_iter"]
    progress = Progress(budget)
    model.set_params(callback=progress)
    try:
        model.fit(X, **({"lengths": lengths} if hmm else {}))
    finally:
        progress.close()
    model.set_params(callback=None)
    if vocab is not None:
        model.vocabulary_ = vocab
    unit = "token" if args.model == "lda" else "sample"
    state = {True: "converged", False: "did not converge"}.get(getattr(model, "converged_", None),
                                                              "stopped")
    n_seq = 1 if lengths is None else len(lengths)
    seqs = f" in {n_seq} sequence{'s' * (n_seq > 1)}" if hmm else ""
    print(f"{MODELS[args.model]} K={model.n_components} on {X.shape[0]} x {X.shape[1]}{seqs}: "
          f"{state} after {model.n_iter_} iterations; final ELBO "
          f"{model.trace_.elbo_after_e[-1]:.8f} per {unit}")
    if args.out:
        emkit.save(model, args.out)
        print(f"model written to {args.out}")
    if args.trace:
        _write_trace_csv(model.trace_, args.trace)
        print(f"trace written to {args.trace}")
    if args.plot:
        _save_plot("plot_trace", model, args.plot, "trace plot")
    return 0


def _cmd_predict(args) -> int:
    import emkit

    model = emkit.load(args.model_file)
    vocab = getattr(model, "vocabulary_", None)
    X, _ = read_data(args.data, text_ok=vocab is not None, vocabulary=vocab)
    if isinstance(model, (emkit.GaussianHMM, emkit.CategoricalHMM)):
        lengths = None if args.lengths is None else read_lengths(args.lengths, X.shape[0])
        if args.proba:  # the posterior of every state at every step
            np.savetxt(sys.stdout, model.predict_proba(X, lengths), delimiter=",", fmt="%.10g")
        else:  # the Viterbi path (or per-step MAP with algorithm="map"), one state a line
            sys.stdout.write("".join(f"{v}\n" for v in model.predict(X, lengths)))
        return 0
    if args.lengths is not None:
        raise CLIError(f"--lengths is for hidden Markov models; {args.model_file} holds a "
                       f"{type(model).__name__}")
    is_lda = hasattr(model, "transform") and not hasattr(model, "predict_proba")
    if args.proba:
        P = model.transform(X) if is_lda else model.predict_proba(X)
        np.savetxt(sys.stdout, P, delimiter=",", fmt="%.10g")
    else:
        labels = np.argmax(model.transform(X), axis=1) if is_lda else model.predict(X)
        sys.stdout.write("".join(f"{v}\n" for v in labels))
    return 0


def _cmd_select(args) -> int:
    import emkit

    if args.model in ("lda", "bgmm"):
        raise CLIError("select compares mixtures by BIC/AIC/ICL: use --model gmm or bmm "
                       "(bgmm switches components off itself: fit it with a large -k)")
    if args.model in HMMS:
        raise CLIError(f"select compares mixtures (gmm, bmm), not hidden Markov models: fit "
                       f"--model {args.model} for each -k and compare the models' "
                       "bic(X, lengths)")
    _check_out(args.plot, (".png", ".pdf", ".svg"), "--plot")
    if args.covariance_type and args.model != "gmm":
        raise CLIError(f"--covariance-type is for --model gmm, not {args.model}")
    grid = {"n_components": args.n_components}
    if args.model == "gmm":
        grid["covariance_type"] = args.covariance_type or ["full"]
    base = _estimator(argparse.Namespace(**{**vars(args), "n_components": 1,
                                            "covariance_type": None}))
    X, _ = read_data(args.data)
    result = emkit.select(base, X, grid, criterion=args.criterion)
    print(result.table())
    best = ", ".join(f"{k}={v}" for k, v in result.best_params_.items())
    print(f"best by {args.criterion} (lower is better): {best}")
    if args.plot:
        _save_plot("plot_selection", result, args.plot, "selection plot")
    return 0


def _short_demo(args) -> int:
    from sklearn.datasets import load_iris

    from . import GaussianMixture

    X = load_iris().data
    gm = GaussianMixture(
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        tol=args.tol,
        max_iter=args.max_iter,
        random_state=args.random_state,
    ).fit(X)
    print(
        f"emkit GaussianMixture on iris (n={X.shape[0]}, d={X.shape[1]}), "
        f"K={args.n_components}, covariance_type={args.covariance_type!r}"
    )
    print("Per-sample ELBO after each E-step and M-step; kl is the gap the next E-step closes.")
    print(gm.trace_.table())
    print(
        f"converged={gm.converged_} after {gm.n_iter_} iterations; "
        f"log-likelihood {gm.lower_bound_:.6f} per sample, {gm.lower_bound_ * X.shape[0]:.4f} "
        "in total"
    )
    with np.printoptions(precision=3, suppress=True):
        print("weights:", gm.weights_)
        print("means:\n", gm.means_, sep="")
    return 0


def _cmd_demo(args) -> int:
    from ._demo import run_demo

    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise CLIError(f"--out {args.out}: exists and is not a directory")
    _short_demo(args)
    print("\nEvery estimator on its embedded data:")
    if args.out is not None:
        _agg_pyplot()
    written = run_demo(args.out, covariance_type=args.covariance_type,
                       random_state=args.random_state)
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_bench(args) -> int:
    from ._demo import run_bench

    return run_bench(quick=args.quick)


# ---------------------------------------------------------------------------- parser
def _model_options(p, *, k_type, k_help):
    p.add_argument("--model", required=True, choices=sorted(MODELS),
                   help="gmm: GaussianMixture, bgmm: BayesianGaussianMixture, "
                        "bmm: BernoulliMixture, "
                        "lda: LatentDirichletAllocation, ghmm: GaussianHMM, "
                        "chmm: CategoricalHMM (one column of integer symbols 0..n-1)")
    p.add_argument("-k", "--n-components", required=True, type=k_type, help=k_help)
    p.add_argument("data", metavar="DATA", help="data file: " + ", ".join(DATA_SUFFIXES))
    p.add_argument("--n-init", type=_positive_int,
                   help="initialisations (every model but lda)")
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    p.add_argument("--max-iter", type=_positive_int,
                   help="maximum EM iterations (ghmm, chmm: n_iter)")
    p.add_argument("--binarize", type=float, help="bmm: values above this become 1")


def _demo_options(p):
    p.add_argument("--n-components", type=_positive_int, default=3)
    p.add_argument("--covariance-type", default="full", choices=COVARIANCE_TYPES)
    p.add_argument("--tol", type=_non_negative_float, default=1e-6)
    p.add_argument("--max-iter", type=_positive_int, default=200)
    p.add_argument("--random-state", type=int, default=0)


LENGTHS_HELP = ("ghmm, chmm: the sequence lengths, one integer per line (or a .npy); "
                "default: DATA is one sequence")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emkit", description="EM and variational EM with a visible ELBO. "
                     "With no command: the short iris demo.")
    _demo_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = sub.add_parser("fit", help="fit a model to a data file")
    _model_options(fit, k_type=_positive_int, k_help="number of components / topics / states")
    fit.add_argument("--covariance-type", choices=COVARIANCE_TYPES,
                     help="gmm, bgmm (default full), ghmm (default diag)")
    fit.add_argument("--lengths", metavar="FILE", help=LENGTHS_HELP)
    fit.add_argument("--out", metavar="MODEL.npz", help="write the model (emkit.save)")
    fit.add_argument("--trace", metavar="TRACE.csv", help="write the kept run's trace")
    fit.add_argument("--plot", metavar="TRACE.png", help="draw the ELBO of every init")
    fit.set_defaults(func=_cmd_fit)

    pred = sub.add_parser("predict", help="labels, HMM states (or probabilities) from a saved "
                          "model")
    pred.add_argument("model_file", metavar="MODEL.npz")
    pred.add_argument("data", metavar="DATA")
    pred.add_argument("--proba", action="store_true",
                      help="probabilities as CSV (lda: the document-topic distribution; "
                           "an HMM: the state posteriors)")
    pred.add_argument("--lengths", metavar="FILE", help=LENGTHS_HELP)
    pred.set_defaults(func=_cmd_predict)

    sel = sub.add_parser("select", help="fit a grid of sizes and rank it by BIC/AIC/ICL")
    _model_options(sel, k_type=_k_range, k_help="sizes, e.g. 1-9 or 2,4,8")
    sel.add_argument("--covariance-type", type=_covariance_list,
                     help="gmm: comma-separated, e.g. full,diag (default full)")
    sel.add_argument("--criterion", default="bic", choices=["bic", "aic", "icl"])
    sel.add_argument("--plot", metavar="SELECTION.png", help="criterion against K")
    sel.set_defaults(func=_cmd_select)

    demo = sub.add_parser("demo", help="every estimator on embedded data; pictures to --out")
    _demo_options(demo)
    demo.add_argument("--out", metavar="DIR", help="write trace, decomposition and model PNGs")
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser("bench", help="time emkit against scikit-learn on this machine")
    bench.add_argument("--quick", action="store_true", help="small data, one repeat")
    bench.set_defaults(func=_cmd_bench)
    return parser


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    print(f"emkit: warning: {_first_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (2 for user errors, after one stderr line)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    func = getattr(args, "func", _short_demo)
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warnings
    try:
        return func(args)
    except BrokenPipeError:  # `emkit predict ... | head`: the reader has gone; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CLIError, ValueError, TypeError, OSError) as exc:
        print(f"emkit: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emkit: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous
