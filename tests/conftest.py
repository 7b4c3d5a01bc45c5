import os

import pytest

import fastnn
from kernel_cases import BACKENDS

try:
    from hypothesis import settings as hypothesis_settings
except ImportError:  # the property tests skip themselves
    hypothesis_settings = None

if hypothesis_settings is not None:
    # CI draws the same examples every run, so a submission never fails on an example no earlier run met;
    # elsewhere each run explores new ones (and hypothesis keeps the failures it finds in .hypothesis/).
    hypothesis_settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        hypothesis_settings.load_profile("ci")


def pytest_report_header(config):
    missing = fastnn.unavailable_backends()
    lines = [f"fastnn backends: {', '.join(BACKENDS)}"]
    lines += [f"fastnn backend {name} UNAVAILABLE: {reason}" for name, reason in missing.items()]
    return lines


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def required_backends():
    """Backends this run must have (FASTNN_REQUIRE_BACKENDS, comma separated; CI sets all three)."""
    names = os.environ.get("FASTNN_REQUIRE_BACKENDS", "")
    return [name.strip() for name in names.split(",") if name.strip()]
