"""Repository-wide pytest setup.

`pytest` runs the test suite and every benchmark once, untimed, as a smoke test (they check their
results against the reference); `pytest --benchmark-only` times the benchmarks.
"""


def pytest_configure(config):
    option = config.option
    if hasattr(option, "benchmark_disable") and not option.benchmark_only and not option.benchmark_enable:
        option.benchmark_disable = True
