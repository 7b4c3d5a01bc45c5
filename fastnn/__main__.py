"""Command line: `python -m fastnn {info,bench,bench-report}` (also installed as `fastnn`).

    fastnn info                        version, available backends, why the others are unavailable
    fastnn bench [--quick] [-k EXPR]   run bench/ with pytest-benchmark, write and print a report
    fastnn bench-report FILE.json      the report (Markdown table + bar chart) of a saved run
"""
import argparse
import os
import subprocess
import sys

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
    return parser


def main(argv=None):
    """Entry point of `python -m fastnn` and the `fastnn` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
