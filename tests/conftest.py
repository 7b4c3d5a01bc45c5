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


@pytest.fixture
def no_network(monkeypatch):
    """Every URL a test opens must be a file:// URL, and no environment variable may redirect a download
    or the data directory (the data sets' tests use it: tests never touch the network)."""
    import urllib.request

    from fastnn import datasets, images

    real_urlopen = urllib.request.urlopen

    def file_only(url, *args, **kwargs):
        assert str(url).startswith("file://"), f"a test tried to open {url}"
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", file_only)
    for variable in (datasets.FASHION_MNIST_URL_ENV, images.CIFAR10_URL_ENV, datasets.DATA_DIR_ENV):
        monkeypatch.delenv(variable, raising=False)
