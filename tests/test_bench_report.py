"""The benchmark report (fastnn._bench_report) on a small hand-written pytest-benchmark JSON, and the CLI."""
import json

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
             "stddev": median / 10, "rounds": 5, "iterations": 1}
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
    assert lines[0].startswith("| group | implementation | median |")
    assert f"| {GROUP_RELU} | numpy | 40 ms | 1.00x | 4.00x copy |" in lines
    assert "|  | cython | 11 ms | 3.64x | 1.10x copy |" in lines
    assert "|  | copy (baseline) | 10 ms | 4.00x | 1.00x copy |" in lines
    assert f"| {GROUP_SIG} | numpy | 4 ms | 1.00x | - |" in lines
    assert "|  | numba | 1 ms | 4.00x | - |" in lines
    assert f"- {GROUP_RELU}: <= 1.2x copy" in lines


@pytest.mark.parametrize("seconds, text", [(2.5, "2.5 s"), (0.0123, "12.3 ms"), (4.56e-6, "4.56 us"),
                                           (7e-8, "70 ns")])
def test_format_time(seconds, text):
    assert report.format_time(seconds) == text


def test_bar_chart(results_json, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "chart.png"
    assert report.bar_chart(report.build_rows(report.load(results_json)), path) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_report_command(results_json, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["bench-report", str(results_json), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Test CPU, 2 logical CPUs" in printed
    assert f"| {GROUP_RELU} | numpy |" in printed
    assert "| group |" in (out / "benchmarks.md").read_text()


def test_bench_command_without_bench_dir(tmp_path, capsys):
    assert main(["bench", "--bench-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "source checkout" in capsys.readouterr().err


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
