"""Turn a pytest-benchmark JSON file (written by --benchmark-json) into a table and a chart.

The benchmarks in bench/ record in `extra_info` what each entry is: kernel, shape, dtype, impl
(a backend such as 'numba', or a baseline such as 'copy'), role ('backend', 'baseline' or
'external') and sometimes a target. From that, `build_rows` makes one row per entry with its
median time, its speed-up over the group's 'numpy' entry and, when the group has a baseline,
its time as a multiple of the baseline's.
"""
import json
import os
import platform

_ROLE_ORDER = {"backend": 0, "external": 1, "baseline": 2}


def load(path):
    """The parsed JSON of a pytest-benchmark results file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _entry(bench):
    info = bench.get("extra_info") or {}
    impl = info.get("impl") or bench.get("param") or bench["name"]
    return {
        "group": bench.get("group") or bench["name"],
        "impl": impl,
        "role": info.get("role", "backend"),
        "target": info.get("target"),
        "median": bench["stats"]["median"],
    }


def build_rows(data):
    """Rows (dicts) grouped by benchmark group, groups in the order they ran.

    Each row: group, impl, role, target, median (seconds), speedup (numpy median / this median,
    None when the group has no 'numpy' entry), baseline (the name of the group's baseline or
    None) and vs_baseline (this median / the baseline's median, or None).
    Within a group: the 'numpy' reference first, then the other backends, external libraries
    and baselines.
    """
    groups = {}
    for bench in data["benchmarks"]:
        entry = _entry(bench)
        groups.setdefault(entry["group"], []).append(entry)
    rows = []
    for entries in groups.values():
        entries.sort(key=lambda e: (_ROLE_ORDER.get(e["role"], 1), e["impl"] != "numpy"))
        reference = next((e for e in entries if e["impl"] == "numpy" and e["role"] == "backend"), None)
        baseline = next((e for e in entries if e["role"] == "baseline"), None)
        target = next((e["target"] for e in entries if e["target"]), None)
        for e in entries:
            rows.append(dict(
                e,
                target=target,
                speedup=reference["median"] / e["median"] if reference else None,
                baseline=baseline["impl"] if baseline else None,
                vs_baseline=e["median"] / baseline["median"] if baseline else None,
            ))
    return rows


def format_time(seconds):
    """3 significant digits in ns, us, ms or s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def markdown_table(rows):
    """A Markdown table of the rows (group named on its first row), then the groups' targets."""
    lines = [
        "| group | implementation | median | speed-up vs numpy | time / baseline |",
        "|---|---|---:|---:|---:|",
    ]
    previous = None
    targets = {}
    for row in rows:
        group = row["group"]
        if row["target"]:
            targets[group] = row["target"]
        name = row["impl"] if row["role"] == "backend" else f"{row['impl']} ({row['role']})"
        speedup = "-" if row["speedup"] is None else f"{row['speedup']:.2f}x"
        vs_baseline = "-" if row["vs_baseline"] is None else f"{row['vs_baseline']:.2f}x {row['baseline']}"
        lines.append(f"| {group if group != previous else ''} | {name} | {format_time(row['median'])} "
                     f"| {speedup} | {vs_baseline} |")
        previous = group
    if targets:
        lines += ["", "Targets:", ""] + [f"- {group}: {target}" for group, target in targets.items()]
    return "\n".join(lines) + "\n"


def bar_chart(rows, path):
    """Save a horizontal bar chart of each entry's speed-up over numpy (log scale), one block per group.

    Needs matplotlib (`pip install fastnn[plot]`); uses the non-interactive Agg backend.
    Returns `path`.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("bar_chart needs matplotlib: pip install fastnn[plot]") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(row["group"] for row in rows))
    impls = list(dict.fromkeys(row["impl"] for row in rows))
    colors = {impl: plt.get_cmap("tab10")(i % 10) for i, impl in enumerate(impls)}
    largest = max(sum(r["group"] == g for r in rows) for g in groups)
    height = 0.8 / largest
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.12 * len(groups) * (largest + 1)))
    seen = set()
    for g, group in enumerate(groups):
        members = [r for r in rows if r["group"] == group and r["speedup"] is not None]
        for i, row in enumerate(members):
            impl = row["impl"]
            ax.barh(g + (i - (len(members) - 1) / 2) * height, row["speedup"], height=height,
                    color=colors[impl], label=None if impl in seen else impl)
            seen.add(impl)
    ax.set_yticks(range(len(groups)), groups, fontsize=7)
    ax.set_ylim(len(groups) - 0.5, -0.5)  # first group at the top
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speed-up over the numpy reference (median time; > 1 is faster)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_summary():
    """What this machine and install are: CPU model, os.cpu_count(), versions, available backends."""
    import numpy

    import fastnn

    try:
        import numba
        numba_version = numba.__version__
    except ImportError:
        numba_version = None
    cython_build = None
    if "cython" in fastnn.available_backends():
        from fastnn.backends import cython_kernels

        cython_build = cython_kernels.BUILD
    return {
        "cpu": _cpu_model(),
        "cython_build": cython_build,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba_version,
        "fastnn": fastnn.__version__,
        "backends": list(fastnn.available_backends()),
    }


def format_machine(summary):
    """One line describing a machine_summary() dict."""
    return (f"{summary['cpu']}, {summary['cpu_count']} logical CPUs; Python {summary['python']}, "
            f"numpy {summary['numpy']}, numba {summary['numba'] or 'not installed'}, "
            f"fastnn {summary['fastnn']}; backends: {', '.join(summary['backends'])}"
            + (f" (cython build: {summary['cython_build']})" if summary.get("cython_build") else ""))
