"""The benchmark report (fastnn._bench_report) on a small hand-written pytest-benchmark JSON, and the CLI."""
import ast
import json
import re
import struct
from pathlib import Path

import pytest

import fastnn
from fastnn import _bench_report as report
from fastnn.__main__ import main

GROUP_RELU = "relu_forward 4096x4096 float32"
GROUP_SIG = "sigmoid_forward 1000x1000 float32"


def _bench(group, impl, median, role="backend", target=None):
    kernel, shape, dtype = group.split(" ")
    extra = {"kernel": kernel, "shape": shape, "dtype": dtype, "impl": impl, "role": role}
    if target:
        extra["target"] = target
    stats = {"min": median * 0.9, "max": median * 1.5, "mean": median * 1.1, "median": median,
             "stddev": median / 10, "iqr": median / 10, "rounds": 5, "iterations": 1}
    return {"group": group, "name": f"bench_x[{impl}]", "fullname": f"bench/bench_kernels.py::bench_x[{impl}]",
            "param": impl, "extra_info": extra, "stats": stats, "options": {}}


@pytest.fixture
def results_json(tmp_path):
    data = {
        "machine_info": {"node": "test", "fastnn": {
            "cpu": "Test CPU", "cpu_count": 2, "python": "3.11.0", "numpy": "2.0", "numba": "0.60",
            "fastnn": "0.1.0", "backends": ["cython", "numba", "numpy"]}},
        "benchmarks": [
            # deliberately not in display order: numpy is listed after the others
            _bench(GROUP_RELU, "copy", 0.010, role="baseline", target="<= 1.2x copy"),
            _bench(GROUP_RELU, "cython", 0.011),
            _bench(GROUP_RELU, "numpy", 0.040),
            _bench(GROUP_RELU, "numba", 0.020),
            _bench(GROUP_SIG, "numpy", 0.004),
            _bench(GROUP_SIG, "numba", 0.001),
        ],
    }
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(data))
    return path


def test_rows_speedups_and_baseline_ratios(results_json):
    rows = report.build_rows(report.load(results_json))
    assert [(r["group"], r["impl"]) for r in rows] == [
        (GROUP_RELU, "numpy"), (GROUP_RELU, "cython"), (GROUP_RELU, "numba"), (GROUP_RELU, "copy"),
        (GROUP_SIG, "numpy"), (GROUP_SIG, "numba"),
    ]
    by_impl = {(r["group"], r["impl"]): r for r in rows}
    assert by_impl[GROUP_RELU, "numpy"]["speedup"] == pytest.approx(1.0)
    assert by_impl[GROUP_RELU, "cython"]["speedup"] == pytest.approx(0.040 / 0.011)
    assert by_impl[GROUP_RELU, "numba"]["speedup"] == pytest.approx(2.0)
    assert by_impl[GROUP_RELU, "copy"]["speedup"] == pytest.approx(4.0)
    assert by_impl[GROUP_RELU, "cython"]["vs_baseline"] == pytest.approx(1.1)
    assert by_impl[GROUP_RELU, "numpy"]["vs_baseline"] == pytest.approx(4.0)
    assert by_impl[GROUP_RELU, "copy"]["baseline"] == "copy"
    assert by_impl[GROUP_SIG, "numba"]["speedup"] == pytest.approx(4.0)
    assert by_impl[GROUP_SIG, "numba"]["vs_baseline"] is None
    assert by_impl[GROUP_RELU, "numba"]["target"] == "<= 1.2x copy"


def test_group_without_numpy_entry_has_no_speedup():
    data = {"benchmarks": [_bench(GROUP_SIG, "numba", 0.001)]}
    (row,) = report.build_rows(data)
    assert row["speedup"] is None
    assert "| - |" in report.markdown_table([row])


def test_entries_without_extra_info_use_the_param():
    bench = _bench(GROUP_SIG, "numba", 0.001)
    del bench["extra_info"]
    (row,) = report.build_rows({"benchmarks": [bench]})
    assert (row["group"], row["impl"], row["role"]) == (GROUP_SIG, "numba", "backend")


def test_markdown_table(results_json):
    table = report.markdown_table(report.build_rows(report.load(results_json)))
    lines = table.splitlines()
    assert lines[0].startswith("| group | implementation | median | min | IQR / median | speed-up vs numpy |")
    assert f"| {GROUP_RELU} | numpy | 40 ms | 36 ms | 10% | 1.00x | 4.00x copy |  |" in lines
    assert "|  | cython | 11 ms | 9.9 ms | 10% | 3.64x | 1.10x copy | met |" in lines
    assert "|  | numba | 20 ms | 18 ms | 10% | 2.00x | 2.00x copy | missed |" in lines
    assert "|  | copy (baseline) | 10 ms | 9 ms | 10% | 4.00x | 1.00x copy |  |" in lines
    assert f"| {GROUP_SIG} | numpy | 4 ms | 3.6 ms | 10% | 1.00x | - |  |" in lines
    assert f"- {GROUP_RELU}: <= 1.2x copy" in lines
    assert "  - cython: **met**: 1.10x the time of copy (<= 1.2x)" in lines
    assert "  - numba: **missed**: 2.00x the time of copy (<= 1.2x)" in lines
    assert "Targets (median times; 1 met, 1 missed, 0 not checked):" in lines
    assert "Noisy" not in table


# Every target sentence of bench/*.py, and what it means: (base, limit on time / time of base).
TARGETS = {
    "<= 1.2x the time of copy and >= 1.2x faster than numpy": [("copy", 1.2), ("numpy", 1 / 1.2)],
    "<= 1.08x the time of two-gemms and never slower than numpy": [("two-gemms", 1.08), ("numpy", 1.0)],
    ">= 1.3x faster than numpy": [("numpy", 1 / 1.3)],
    "<= 1.2x the time of gemm and >= 1.5x faster than sklearn": [("gemm", 1.2), ("sklearn", 1 / 1.5)],
    ">= 3x faster than torch": [("torch", 1 / 3)],
    "no slower than torch": [("torch", 1.0)],
    ">= 10x faster than numpy-loop (the straightforward NumPy implementation)": [("numpy-loop", 0.1)],
    ">= 3x faster than numpy-loop and >= 10x faster than torch": [("numpy-loop", 1 / 3), ("torch", 0.1)],
    "no slower than numpy-loop": [("numpy-loop", 1.0)],
}


@pytest.mark.parametrize("text", sorted(TARGETS))
def test_parse_target(text):
    clauses = report.parse_target(text)
    assert [(c["kind"], c["base"]) for c in clauses] == [("time", base) for base, _ in TARGETS[text]]
    assert [c["limit"] for c in clauses] == pytest.approx([limit for _, limit in TARGETS[text]])


def test_parse_accuracy_target_and_unknown_clauses():
    accuracy, time_clause = report.parse_target(">= 0.935 test accuracy in <= 1/3 of torch's time")
    assert (accuracy["kind"], accuracy["key"], accuracy["minimum"]) == ("accuracy", "test_accuracy", 0.935)
    assert (time_clause["base"], time_clause["limit"]) == ("torch", pytest.approx(1 / 3))
    assert [c["kind"] for c in report.parse_target("fast enough and >= 2x faster than numpy")] == ["unknown", "time"]


def _bench_targets():
    """The target sentences written in bench/*.py (module-level names starting with TARGET)."""
    bench_dir = Path(__file__).resolve().parent.parent / "bench"
    found = []
    for path in sorted(bench_dir.glob("bench_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "").startswith("TARGET") for t in node.targets):
                values = node.value.values if isinstance(node.value, ast.Dict) else [node.value]
                found += [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return found


def test_every_target_in_bench_is_understood():
    targets = _bench_targets()
    assert len(targets) >= 8  # the scan found them
    for text in targets:
        assert all(c["kind"] != "unknown" for c in report.parse_target(text)), text


def _group(entries, target):
    data = {"benchmarks": [_bench(GROUP_RELU, impl, median, role=role, target=target)
                           for impl, median, role in entries]}
    for bench, (impl, _, _) in zip(data["benchmarks"], entries):
        if impl == "numba":
            bench["extra_info"]["test_accuracy"] = 0.95
    return {r["impl"]: r for r in report.build_rows(data)}


def test_target_statuses():
    entries = [("numpy", 0.030, "backend"), ("numba", 0.011, "backend"), ("cython", 0.013, "backend"),
               ("copy", 0.010, "baseline")]
    rows = _group(entries, "<= 1.2x the time of copy and >= 2x faster than numpy")
    assert rows["numba"]["status"] == "met"
    assert rows["numba"]["details"] == ["1.10x the time of copy (<= 1.2x)", "2.73x faster than numpy (>= 2x)"]
    assert rows["cython"]["status"] == "missed"  # 1.3x the time of copy
    assert rows["numpy"]["status"] is None and rows["copy"]["status"] is None  # the reference, a baseline
    rows = _group(entries, ">= 2x faster than numpy and >= 3x faster than torch")
    assert rows["numba"]["status"] == "met, partly checked" and rows["numba"]["details"][1] == "no torch entry"
    assert _group(entries, ">= 3x faster than torch")["numba"]["status"] == "unchecked"
    rows = _group(entries, ">= 0.935 test accuracy in <= 1/2 of numpy's time")
    assert rows["numba"]["status"] == "met" and rows["numba"]["details"][0] == "test accuracy 0.9500 (>= 0.935)"
    assert rows["cython"]["status"] == "met, partly checked"  # no accuracy recorded
    met, missed, unchecked = report.target_summary(list(_group(entries, ">= 2.5x faster than numpy").values()))
    assert (met, missed, unchecked) == (1, 1, 0)


def test_noisy_groups_are_flagged():
    quiet = _bench(GROUP_SIG, "numpy", 0.004)
    noisy = _bench(GROUP_RELU, "numpy", 0.010)
    quiet["stats"]["iqr"], noisy["stats"]["iqr"] = 0.0004, 0.004  # 10% and 40% of the median
    rows = report.build_rows({"benchmarks": [quiet, noisy]})
    assert [r["noisy"] for r in rows] == [False, True]
    assert report.noisy_groups(rows) == {GROUP_RELU: pytest.approx(0.4)}
    table = report.markdown_table(rows)
    assert "| 40% ! |" in table and f"- {GROUP_RELU}: up to 40%" in table
    text = report.text_table(rows)
    assert "warning: 1 noisy group(s)" in text and max(len(line) for line in text.splitlines()) <= 100


@pytest.mark.parametrize("seconds, text", [(2.5, "2.5 s"), (0.0123, "12.3 ms"), (4.56e-6, "4.56 us"),
                                           (7e-8, "70 ns")])
def test_format_time(seconds, text):
    assert report.format_time(seconds) == text


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # width, height from the IHDR chunk


def test_bar_chart(results_json, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "chart.png"
    assert report.bar_chart(report.build_rows(report.load(results_json)), path) == path
    width, height = _png_size(path)
    assert width <= 1600 and height <= 1000


def test_bar_chart_of_many_groups_fits_one_screen(tmp_path):
    pytest.importorskip("matplotlib")
    benchmarks = [_bench(f"kernel{i} {i}x{i} float32", impl, median)
                  for i in range(80) for impl, median in (("numpy", 0.01), ("numba", 0.002), ("cython", 0.004))]
    path = report.bar_chart(report.build_rows({"benchmarks": benchmarks}), tmp_path / "chart.png")
    width, height = _png_size(path)
    assert width <= 1600 and height <= 1000


def test_bench_report_command(results_json, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["bench-report", str(results_json), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Test CPU, 2 logical CPUs" in printed
    assert f"{GROUP_RELU}  [target: <= 1.2x copy]" in printed
    assert "  cython" in printed and "3.64x vs numpy  met" in printed
    assert "targets: 1 met, 1 missed, 0 not checked" in printed
    assert "| group |" in (out / "benchmarks.md").read_text()
    assert (out / "benchmarks.png").exists() or "no chart" in capsys.readouterr().err


def test_bench_command_without_bench_dir(tmp_path, capsys):
    assert main(["bench", "--bench-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "no benchmarks in" in capsys.readouterr().err


def test_bench_command_names_the_missing_extra(tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytest_benchmark"
                        else find_spec(name, *a))
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    (bench_dir / "conftest.py").write_text("")
    assert main(["bench", "--bench-dir", str(bench_dir), "--out", str(tmp_path / "out")]) == 2
    assert "needs pytest_benchmark: pip install 'fastnn[bench]'" in capsys.readouterr().err


def test_info_command(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert f"fastnn {fastnn.__version__}" in printed
    assert ", ".join(fastnn.available_backends()) in printed
    for name, reason in fastnn.unavailable_backends().items():
        assert f"unavailable backend {name}: {reason}" in printed
    if not fastnn.unavailable_backends():
        assert "unavailable backends: none" in printed


def test_machine_summary_line():
    line = report.format_machine(report.machine_summary())
    assert "logical CPUs" in line and "numpy" in line


BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.skipif(not (BENCH_DIR / "conftest.py").exists(), reason="no bench/ beside tests/")
def test_bench_command_runs_writes_and_deselects(tmp_path, monkeypatch, capfd):
    """`fastnn bench -k maxpool1d` (3 small benchmarks, ~15 s): time announced, results written as they come,
    a compact report, and a non-benchmark test given to the same pytest run deselected, not skipped."""
    pytest.importorskip("pytest_benchmark")
    import fastnn.__main__ as cli

    plain = tmp_path / "bench_plain.py"  # collected like the benchmarks, but without the benchmark fixture
    plain.write_text("def bench_plain():\n    pass\n")
    command = cli.bench_command
    monkeypatch.setattr(cli, "bench_command", lambda *args: command(*args) + [str(plain)])
    out_dir = tmp_path / "out"
    assert main(["bench", "-k", "maxpool1d or plain", "--bench-dir", str(BENCH_DIR), "--out", str(out_dir)]) == 0
    printed = capfd.readouterr().out
    assert "the default suite" in printed and "about 5 minutes" in printed
    n_backends = len(fastnn.available_backends())
    assert f"bench_conv.py done ({n_backends} benchmarks timed of " in printed  # printed as the file finished
    assert "Skipping non-benchmark" not in printed
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|skipped|deselected)", printed)}
    assert counts["passed"] + counts.get("skipped", 0) == n_backends + 1  # and torch's
    assert counts["deselected"] >= 1  # bench_plain among them: deselected, neither run nor skipped
    summary = printed.split("fastnn benchmarks: median time")[1].split("\n", 1)[1].split("(pytest-benchmark's")[0]
    assert "maxpool1d fwd+bwd" in summary and "1.00x vs numpy" in summary
    assert max(len(line) for line in summary.splitlines()) <= 100
    data = report.load(out_dir / "benchmarks.json")
    assert "partial" not in data and len(data["benchmarks"]) == n_backends  # pytest-benchmark's final file
    assert {b["extra_info"]["impl"] for b in data["benchmarks"]} == set(fastnn.available_backends())
    assert "maxpool1d fwd+bwd" in (out_dir / "benchmarks.md").read_text()


def test_a_target_against_each_backends_own_baseline():
    entries = [("cython", 0.010, "backend"), ("cython-layers", 0.040, "baseline"),
               ("numba", 0.030, "backend"), ("numba-layers", 0.045, "baseline")]
    rows = _group(entries, ">= 3x faster than <backend>-layers")
    assert rows["cython"]["status"] == "met" and rows["numba"]["status"] == "missed"
    assert rows["cython"]["details"] == ["4.00x faster than cython-layers (>= 3x)"]
