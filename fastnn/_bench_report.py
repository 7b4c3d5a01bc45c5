"""Turn pytest-benchmark results (the JSON of --benchmark-json) into a table, verdicts and a chart.

The benchmarks in bench/ record in `extra_info` what each entry is: kernel, shape, dtype, impl
(a backend such as 'numba', or a baseline such as 'copy'), role ('backend', 'baseline' or
'external') and sometimes a target, a sentence such as "<= 1.2x the time of copy and >= 1.2x faster
than numpy". From that, `build_rows` makes one row per entry with its median and minimum time, its
spread (interquartile range / median), its speed-up over the group's 'numpy' entry, its time as a
multiple of the group's baseline and, for the compiled backends, whether it met the group's target.
"""
import json
import os
import platform
import re

_ROLE_ORDER = {"backend": 0, "external": 1, "baseline": 2}
# A group whose entries' interquartile range exceeds this fraction of their median is flagged as noisy.
NOISE_THRESHOLD = 0.2
REFERENCE = "numpy"


def load(path):
    """The parsed JSON of a pytest-benchmark results file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------- targets
_NAME = r"(?P<base>(?:<backend>-)?[A-Za-z][\w.+-]*?)"  # "<backend>-layers": each backend's own baseline
# Each pattern is one clause of a target; all are read as "time / time of base <= limit".
_CLAUSES = (
    (re.compile(rf"^<=\s*(?P<ratio>[\d.]+)x\s+(?:the time of\s+)?{_NAME}(?:'s time)?$"), lambda r: r),
    (re.compile(rf"^(?:in\s+)?<=\s*(?P<num>\d+)/(?P<den>\d+)\s+of\s+{_NAME}(?:'s time)?$"), None),
    (re.compile(rf"^>=\s*(?P<ratio>[\d.]+)x\s+faster than\s+{_NAME}$"), lambda r: 1.0 / r),
    (re.compile(rf"^(?:never|no)\s+slower than\s+{_NAME}$"), None),
)
_ACCURACY = re.compile(r"^>=\s*(?P<value>[\d.]+)\s+(?P<metric>test accuracy)(?:\s+(?P<rest>in\s.*))?$")


def parse_target(text):
    """The clauses of a target sentence, as dicts.

    Timing clause: {"kind": "time", "base": name, "limit": L, "text": ...}: met when this entry's
    median / the median of the group's entry `name` <= L (in a name, "<backend>" stands for the
    entry's own backend: ">= 3x faster than <backend>-layers") (">= 1.5x faster than sklearn" is L = 1/1.5,
    "no slower than torch" L = 1, "in <= 1/3 of torch's time" L = 1/3).
    Accuracy clause: {"kind": "accuracy", "key": "test_accuracy", "minimum": value, "text": ...}: met
    when extra_info[key] >= value. A clause read as neither is {"kind": "unknown", "text": ...}.
    Text in parentheses is a comment and ignored.
    """
    clauses = []
    for part in re.split(r"\s+and\s+", re.sub(r"\([^)]*\)", "", text or "").strip()):
        part = part.strip()
        if not part:
            continue
        accuracy = _ACCURACY.match(part)
        if accuracy:
            clauses.append({"kind": "accuracy", "key": "test_accuracy", "minimum": float(accuracy["value"]),
                            "text": f">= {accuracy['value']} test accuracy"})
            if accuracy["rest"]:
                clauses.extend(parse_target(accuracy["rest"]))
            continue
        clauses.append(_timing_clause(part))
    return clauses


def _timing_clause(part):
    for pattern, limit_of in _CLAUSES:
        match = pattern.match(part)
        if not match:
            continue
        groups = match.groupdict()
        if "num" in groups:
            limit = int(groups["num"]) / int(groups["den"])
        elif "ratio" in groups:
            limit = limit_of(float(groups["ratio"]))
        else:
            limit = 1.0
        style = "time of" if pattern is _CLAUSES[0][0] else "faster than"
        return {"kind": "time", "base": groups["base"], "limit": limit, "style": style, "text": part}
    return {"kind": "unknown", "text": part}


def check_target(entry, entries, clauses):
    """(status, details) of one entry against a group's parsed target clauses.

    status: 'met' (every clause checked and met), 'missed' (a clause missed), 'unchecked' (no
    clause could be checked: its baseline did not run, or it was not understood), 'met, partly
    checked' (the checked clauses met, others not checkable). details: one short text per clause.
    """
    by_impl = {e["impl"]: e for e in entries}
    outcomes, details = [], []
    for clause in clauses:
        if clause["kind"] == "accuracy":
            value = (entry.get("extra") or {}).get(clause["key"])
            if value is None:
                outcomes.append(None)
                details.append(f"no {clause['key']} recorded")
            else:
                outcomes.append(value >= clause["minimum"])
                details.append(f"test accuracy {value:.4f} (>= {clause['minimum']:g})")
        elif clause["kind"] == "time":
            base_name = clause["base"].replace("<backend>", entry["impl"])
            base = by_impl.get(base_name)
            if base is None:
                outcomes.append(None)
                details.append(f"no {base_name} entry")
                continue
            ratio = entry["median"] / base["median"]
            outcomes.append(ratio <= clause["limit"] * (1 + 1e-9))
            details.append(_describe_ratio(ratio, {**clause, "base": base_name}))
        else:
            outcomes.append(None)
            details.append(f"not understood: {clause['text']!r}")
    checked = [o for o in outcomes if o is not None]
    if not checked:
        status = "unchecked"
    elif not all(checked):
        status = "missed"
    else:
        status = "met" if len(checked) == len(outcomes) else "met, partly checked"
    return status, details


def _describe_ratio(ratio, clause):
    """'2.31x faster than numpy (>= 1.2x)' or '1.07x the time of copy (<= 1.2x)'."""
    if clause.get("style") != "time of":
        wanted = 1.0 / clause["limit"]
        return f"{1.0 / ratio:.2f}x faster than {clause['base']} (>= {wanted:.3g}x)"
    return f"{ratio:.2f}x the time of {clause['base']} (<= {clause['limit']:.3g}x)"


# ---------------------------------------------------------------------------- rows
def _entry(bench):
    info = bench.get("extra_info") or {}
    impl = info.get("impl") or bench.get("param") or bench["name"]
    stats = bench["stats"]
    median = stats["median"]
    iqr = stats.get("iqr")
    return {
        "group": bench.get("group") or bench["name"],
        "impl": impl,
        "role": info.get("role", "backend"),
        "target": info.get("target"),
        "median": median,
        "min": stats.get("min", median),
        "rounds": stats.get("rounds"),
        "spread": iqr / median if iqr is not None and median > 0 else None,
        "extra": {key: value for key, value in info.items()
                  if key not in ("kernel", "shape", "dtype", "impl", "role", "target")},
    }


def build_rows(data):
    """Rows (dicts) grouped by benchmark group, groups in the order they ran.

    Each row: group, impl, role, target, median and min (seconds), rounds, spread (interquartile
    range / median, None if not recorded), noisy (spread > NOISE_THRESHOLD), speedup (numpy median /
    this median, None when the group has no 'numpy' entry), baseline (the name of the group's baseline
    or None), vs_baseline (this median / the baseline's median, or None), and status and details of
    the group's target (see check_target) for the compiled backends (role 'backend', not 'numpy');
    None for the other rows and for groups without a target.
    Within a group: the 'numpy' reference first, then the other backends, external libraries
    and baselines.
    """
    groups = {}
    for bench in data["benchmarks"]:
        entry = _entry(bench)
        groups.setdefault(entry["group"], []).append(entry)
    rows = []
    for entries in groups.values():
        entries.sort(key=lambda e: (_ROLE_ORDER.get(e["role"], 1), e["impl"] != REFERENCE))
        reference = next((e for e in entries if e["impl"] == REFERENCE and e["role"] == "backend"), None)
        baseline = next((e for e in entries if e["role"] == "baseline"), None)
        target = next((e["target"] for e in entries if e["target"]), None)
        clauses = parse_target(target) if target else []
        for e in entries:
            status, details = None, []
            if clauses and e["role"] == "backend" and e["impl"] != REFERENCE:
                status, details = check_target(e, entries, clauses)
            rows.append(dict(
                e,
                target=target,
                noisy=e["spread"] is not None and e["spread"] > NOISE_THRESHOLD,
                speedup=reference["median"] / e["median"] if reference else None,
                baseline=baseline["impl"] if baseline else None,
                vs_baseline=e["median"] / baseline["median"] if baseline else None,
                status=status,
                details=details,
            ))
    return rows


def format_time(seconds):
    """3 significant digits in ns, us, ms or s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _name(row):
    return row["impl"] if row["role"] == "backend" else f"{row['impl']} ({row['role']})"


def _spread(row):
    return "-" if row["spread"] is None else f"{100 * row['spread']:.0f}%" + (" !" if row["noisy"] else "")


def _grouped(rows):
    groups = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    return groups


def noisy_groups(rows):
    """{group: largest spread} of the groups with an entry whose spread exceeds NOISE_THRESHOLD."""
    return {group: max(r["spread"] for r in members if r["noisy"])
            for group, members in _grouped(rows).items() if any(r["noisy"] for r in members)}


def target_summary(rows):
    """(n_met, n_missed, n_unchecked) over the rows that have a target status."""
    statuses = [r["status"] for r in rows if r["status"]]
    met = sum(s.startswith("met") for s in statuses)
    missed = statuses.count("missed")
    return met, missed, len(statuses) - met - missed


def markdown_table(rows):
    """A Markdown table of the rows (group named on its first row), the targets met or missed, and
    a warning about noisy groups."""
    lines = [
        "| group | implementation | median | min | IQR / median | speed-up vs numpy | time / baseline | target |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    previous = None
    for row in rows:
        group = row["group"]
        speedup = "-" if row["speedup"] is None else f"{row['speedup']:.2f}x"
        vs_baseline = "-" if row["vs_baseline"] is None else f"{row['vs_baseline']:.2f}x {row['baseline']}"
        lines.append(f"| {group if group != previous else ''} | {_name(row)} | {format_time(row['median'])} "
                     f"| {format_time(row['min'])} | {_spread(row)} | {speedup} | {vs_baseline} "
                     f"| {row['status'] or ''} |")
        previous = group
    targets = [(group, members) for group, members in _grouped(rows).items() if members[0]["target"]]
    if targets:
        met, missed, unchecked = target_summary(rows)
        lines += ["", f"Targets (median times; {met} met, {missed} missed, {unchecked} not checked):", ""]
        for group, members in targets:
            lines.append(f"- {group}: {members[0]['target']}")
            for row in members:
                if row["status"]:
                    lines.append(f"  - {row['impl']}: **{row['status']}**: {'; '.join(row['details'])}")
    noisy = noisy_groups(rows)
    if noisy:
        lines += ["", f"Noisy (an entry's interquartile range above {100 * NOISE_THRESHOLD:.0f}% of its median; "
                      "ratios there are uncertain, rerun on a quieter machine):", ""]
        lines += [f"- {group}: up to {100 * spread:.0f}%" for group, spread in noisy.items()]
    return "\n".join(lines) + "\n"


def markdown_document(rows, header):
    """The whole benchmarks.md: a title, the header (machine, run), how to read it, the table."""
    return (f"# fastnn benchmarks\n\n{header}\n\n"
            "Median and minimum time per call; IQR / median is the spread of the timed rounds (a '!' marks "
            f"more than {100 * NOISE_THRESHOLD:.0f}%); speed-up is the numpy reference's median over the "
            "entry's; targets are checked on median times for the compiled backends.\n\n"
            f"{markdown_table(rows)}")


def text_table(rows, width=100):
    """The rows for a terminal: a header line per group (with its target), one line per entry."""
    lines = []
    for group, members in _grouped(rows).items():
        header = group + (f"  [target: {members[0]['target']}]" if members[0]["target"] else "")
        lines.append(header if len(header) <= width else header[:width - 3] + "...")
        for row in members:
            speedup = "" if row["speedup"] is None else f"{row['speedup']:.2f}x vs numpy"
            status = f"  {row['status']}" if row["status"] else ""
            if row["status"] == "unchecked":
                status += f" ({'; '.join(row['details'])})"
            lines.append(f"  {_name(row):24s} {format_time(row['median']):>9s}  min {format_time(row['min']):>9s}  "
                         f"IQR {_spread(row):>6s}  {speedup:>15s}{status}")
    return "\n".join(lines + summary_lines(rows)) + "\n"


def summary_lines(rows):
    """The noisy groups (a warning) and the count of targets met and missed, as lines of text."""
    lines = []
    noisy = noisy_groups(rows)
    if noisy:
        lines.append(f"warning: {len(noisy)} noisy group(s), ratios uncertain (an entry's IQR > "
                     f"{100 * NOISE_THRESHOLD:.0f}% of its median, marked !):")
        lines += [f"  {group}: up to {100 * spread:.0f}%" for group, spread in noisy.items()]
    met, missed, unchecked = target_summary(rows)
    if met or missed or unchecked:
        lines.append(f"targets: {met} met, {missed} missed, {unchecked} not checked (details in the Markdown report)")
    return lines


_MARKERS = {"numba": "o", "cython": "s", "torch": "^", "sklearn": "v"}
_STATUS_COLORS = {"met": "tab:green", "missed": "tab:red"}


def bar_chart(rows, path):
    """Save a dot chart: one line per group, one marker per entry at its speed-up over numpy (log scale).

    Group labels are green when every compiled backend met the group's target, red when one missed
    it. At most 16 x 10 inches at 100 dpi (1600 x 1000 pixels). Needs matplotlib
    (`pip install fastnn[plot]`); uses the non-interactive Agg backend. Returns `path`.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("bar_chart needs matplotlib: pip install fastnn[plot]") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(g, [r for r in members if r["speedup"] is not None and r["impl"] != REFERENCE])
              for g, members in _grouped(rows).items()]
    groups = [(g, members) for g, members in groups if members]
    impls = list(dict.fromkeys(r["impl"] for _, members in groups for r in members))
    colors = {impl: plt.get_cmap("tab10")(i % 10) for i, impl in enumerate(impls)}
    fig, ax = plt.subplots(figsize=(13, min(10.0, 1.4 + 0.24 * len(groups))))
    fontsize = 8 if len(groups) <= 40 else 6
    for y, (group, members) in enumerate(groups):
        ax.axhline(y, color="0.9", linewidth=0.6, zorder=0)
        for row in members:
            marker = _MARKERS.get(row["impl"], "D" if row["role"] == "baseline" else "P")
            ax.scatter(row["speedup"], y, color=colors[row["impl"]], marker=marker, s=30, zorder=2,
                       edgecolors="black" if row["noisy"] else "none", linewidths=0.8)
    ax.set_yticks(range(len(groups)), [_short(g) for g, _ in groups], fontsize=fontsize)
    for label, (group, members) in zip(ax.get_yticklabels(), groups):
        statuses = {r["status"] for r in members if r["status"]}
        if statuses:
            label.set_color(_STATUS_COLORS["missed"] if "missed" in statuses else
                            _STATUS_COLORS["met"] if all(s.startswith("met") for s in statuses) else "black")
    ax.set_ylim(len(groups) - 0.5, -0.5)  # first group at the top
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speed-up over the numpy reference (median time, log scale; > 1 is faster). "
                  "Label green: target met, red: missed; black edge: noisy (IQR > 20% of median)", fontsize=8)
    handles = [plt.Line2D([], [], linestyle="", marker=_MARKERS.get(i, "D" if _role(groups, i) == "baseline" else "P"),
                          color=colors[i], label=i) for i in impls]
    ax.legend(handles=handles, fontsize=8, loc="lower right", framealpha=0.9)
    ax.grid(axis="x", which="both", color="0.85", linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _role(groups, impl):
    return next(r["role"] for _, members in groups for r in members if r["impl"] == impl)


def _short(group, width=48):
    """The group's name in at most `width` characters, its end (the dtype) kept."""
    return group if len(group) <= width else group[:width - 17] + "…" + group[-16:]


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
