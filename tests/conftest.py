import os

import pytest

import fastnn
from kernel_cases import BACKENDS


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
