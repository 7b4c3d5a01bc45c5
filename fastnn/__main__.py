"""Command line: `python -m fastnn {info,bench,bench-report,train}` (also installed as `fastnn`).

    fastnn info                        version, available backends, why the others are unavailable
    fastnn bench [--quick] [-k EXPR]   run bench/ with pytest-benchmark, write and print a report
    fastnn bench-report FILE.json      the report (Markdown table + bar chart) of a saved run
    fastnn train perceptron [...]      fit a model on a data set of fastnn.datasets; print accuracy,
    fastnn train kernel-perceptron     mistakes per epoch and fit time (needs scikit-learn)
"""
import argparse
import os
import subprocess
import sys
import time

QUICK_OPTIONS = ["--benchmark-max-time=0.1", "--benchmark-min-rounds=3"]


def cmd_info(args):
    import fastnn

    print(f"fastnn {fastnn.__version__}")
    print(f"available backends: {', '.join(fastnn.available_backends())} (default: {fastnn.get_backend()})")
    if "cython" in fastnn.available_backends():
        from fastnn.backends import cython_kernels

        print(f"cython build: {cython_kernels.BUILD} (fastnn._ext{'.avx2' if cython_kernels.BUILD == 'avx2' else ''})")
    unavailable = fastnn.unavailable_backends()
    if not unavailable:
        print("unavailable backends: none")
    for name, reason in unavailable.items():
        print(f"unavailable backend {name}: {reason}")
    return 0


def write_report(json_path, out_dir, header=None):
    """Write <out_dir>/benchmarks.md and benchmarks.png from json_path; print header and table."""
    from . import _bench_report as report

    data = report.load(json_path)
    if header is None:
        summary = data.get("machine_info", {}).get("fastnn")
        header = report.format_machine(summary) if summary else "machine: not recorded in the JSON file"
    rows = report.build_rows(data)
    table = report.markdown_table(rows)
    os.makedirs(out_dir, exist_ok=True)
    md_path = os.path.join(out_dir, "benchmarks.md")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(f"# fastnn benchmarks\n\n{header}\n\n{table}")
    print(header)
    print()
    print(table)
    print(f"wrote {md_path}")
    if rows:
        try:
            print(f"wrote {report.bar_chart(rows, os.path.join(out_dir, 'benchmarks.png'))}")
        except ImportError as exc:
            print(f"no chart: {exc}", file=sys.stderr)
    return 0


def cmd_bench(args):
    from . import _bench_report as report

    if not os.path.isdir(args.bench_dir):
        print(f"error: benchmark directory {args.bench_dir!r} not found. The benchmarks ship only with a "
              f"source checkout of fastnn: run from the repository root or pass --bench-dir.", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "benchmarks.json")
    if os.path.exists(json_path):
        os.remove(json_path)  # never report a previous run's results
    # -P (Python 3.11+): do not put the current directory on sys.path, so the benchmarks import the
    # installed fastnn with its compiled extensions, not the source tree they are run from.
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    command = [sys.executable, *safe_path, "-m", "pytest", args.bench_dir, "--benchmark-only",
               f"--benchmark-json={json_path}", "-q"]
    if args.quick:
        command += QUICK_OPTIONS
    if args.k:
        command += ["-k", args.k]
    print("running:", " ".join(command), flush=True)
    returncode = subprocess.call(command)
    if not os.path.exists(json_path):
        print(f"error: pytest exited with code {returncode} and wrote no {json_path}", file=sys.stderr)
        return returncode or 1
    write_report(json_path, args.out, header=report.format_machine(report.machine_summary()))
    if returncode:
        print(f"warning: pytest exited with code {returncode} (see its output above)", file=sys.stderr)
    return returncode


def cmd_bench_report(args):
    if not os.path.isfile(args.json):
        print(f"error: {args.json!r} not found", file=sys.stderr)
        return 2
    return write_report(args.json, args.out)


def cmd_train(args):
    import numpy as np

    from . import datasets
    from .models import KernelPerceptron, Perceptron

    X_train, X_test, y_train, y_test = datasets.DATASETS[args.dataset](
        test_size=args.test_size, random_state=args.split_seed)
    common = dict(max_epochs=args.epochs, shuffle=not args.no_shuffle, random_state=args.random_state,
                  backend=args.backend, dtype=np.dtype(args.dtype))
    if args.model == "perceptron":
        model = Perceptron(**common)
        description = "perceptron"
    else:
        model = KernelPerceptron(kernel=args.kernel, gamma=args.gamma, degree=args.degree, coef0=args.coef0, **common)
        description = f"kernel perceptron, kernel={args.kernel}, gamma={args.gamma}"
        if args.kernel == "poly":
            description += f", degree={args.degree}, coef0={args.coef0}"
    try:
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import fastnn

    backend = args.backend or fastnn.get_backend()
    print(f"{description} on {args.dataset}: {X_train.shape[0]} training and {X_test.shape[0]} test examples, "
          f"{X_train.shape[1]} features, {len(model.classes_)} classes; backend {backend}, {args.dtype}")
    converged = model.mistakes_[-1] == 0
    print(f"epochs: {model.n_iter_}{' (no mistake in the last one)' if converged else ''}")
    print(f"mistakes per epoch: {' '.join(str(m) for m in model.mistakes_)}")
    if args.model == "kernel-perceptron":
        print(f"support vectors: {len(model.support_)} of {X_train.shape[0]}")
    print(f"fit time: {fit_time:.3f} s")
    print(f"train accuracy: {model.score(X_train, y_train):.4f}")
    print(f"test accuracy: {model.score(X_test, y_test):.4f}")
    return 0


def add_train_parser(commands):
    from .datasets import DATASETS

    train = commands.add_parser("train", help="fit a perceptron or kernel perceptron on a data set")
    models = train.add_subparsers(dest="model", required=True)
    for name, text in (("perceptron", "multiclass perceptron (Algorithm 1)"),
                       ("kernel-perceptron", "kernel multiclass perceptron (Algorithm 2)")):
        model = models.add_parser(name, help=text)
        model.add_argument("--dataset", choices=sorted(DATASETS), default="digits", help="data set (default: digits)")
        model.add_argument("--test-size", type=float, default=0.25, help="fraction held out for testing (default: 0.25)")
        model.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split (default: 0)")
        model.add_argument("--epochs", type=int, default=20, help="maximum number of epochs (default: 20)")
        model.add_argument("--random-state", type=int, default=0, help="seed of the example orders (default: 0)")
        model.add_argument("--no-shuffle", action="store_true", help="visit the examples in the data's order")
        model.add_argument("--backend", choices=["numpy", "numba", "cython"], default=None,
                           help="backend (default: the fastest available)")
        model.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="default: float64")
        if name == "kernel-perceptron":
            model.add_argument("--kernel", choices=["rbf", "poly", "linear"], default="rbf", help="default: rbf")
            model.add_argument("--gamma", type=float, default=None, help="default: 1 / n_features")
            model.add_argument("--degree", type=int, default=3, help="for poly (default: 3)")
            model.add_argument("--coef0", type=float, default=1.0, help="for poly (default: 1.0)")
        model.set_defaults(run=cmd_train)


def build_parser():
    parser = argparse.ArgumentParser(prog="fastnn", description="fastnn: fast CPU building blocks for small neural networks.")
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="version, available backends and why others are unavailable")
    info.set_defaults(run=cmd_info)

    bench = commands.add_parser("bench", help="run the benchmarks (source checkout) and write a report")
    bench.add_argument("--bench-dir", default="bench", help="directory of the benchmarks (default: bench)")
    bench.add_argument("--out", default="bench-results", help="output directory (default: bench-results)")
    bench.add_argument("-k", metavar="EXPR", help="only run benchmarks matching this pytest -k expression")
    bench.add_argument("--quick", action="store_true", help="short timing runs (" + " ".join(QUICK_OPTIONS) + ")")
    bench.set_defaults(run=cmd_bench)

    report = commands.add_parser("bench-report", help="table and chart from a saved --benchmark-json file")
    report.add_argument("json", metavar="FILE.json")
    report.add_argument("--out", default="bench-results", help="output directory (default: bench-results)")
    report.set_defaults(run=cmd_bench_report)

    add_train_parser(commands)
    return parser


def main(argv=None):
    """Entry point of `python -m fastnn` and the `fastnn` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
