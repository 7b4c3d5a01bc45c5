"""Every backend computes what the NumPy reference computes: every kernel x dtype x shape x memory layout."""
import zlib

import numpy as np
import pytest

import fastnn
from fastnn.backends import BACKEND_MODULES, KERNELS

from kernel_cases import BACKENDS, CASES, assert_matches_reference, call

LAYOUTS = ["contiguous", "fortran", "strided", "readonly"]


def _relayout(array, layout):
    """The same values in another memory layout (never touching the original)."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fu" or layout == "contiguous":
        return array  # float inputs and uint8 masks are relaid; labels and parameters pass through
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype=array.dtype)
        wide[..., ::2] = array
        return wide[..., ::2]
    readonly = array.copy()
    readonly.flags.writeable = False
    return readonly


def test_every_kernel_has_a_conformance_case():
    assert sorted(CASES) == sorted(KERNELS)


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_implements_every_kernel(name):
    module = fastnn._config.resolve(name)
    for kernel in KERNELS:
        assert callable(getattr(module, kernel)), f"{name} lacks {kernel}"


def _conformance_params():
    for kernel, case in CASES.items():
        for shape in case["shapes"]:
            yield pytest.param(kernel, shape, id=f"{kernel}-{'x'.join(map(str, shape))}")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kernel, shape", list(_conformance_params()))
def test_backend_matches_reference(kernel, shape, layout, backend, dtype):
    case = CASES[kernel]
    rng = np.random.default_rng(zlib.crc32(f"{kernel}{shape}".encode()))
    inputs = case["make"](rng, dtype, shape)
    expected = call(kernel, inputs, "numpy")

    laid_out = {name: _relayout(value, layout) for name, value in inputs.items()}
    before = {name: np.array(value, copy=True) for name, value in laid_out.items() if value is not None}
    actual = call(kernel, laid_out, backend)

    assert_matches_reference(actual, expected, dtype, case["exact"])
    for name, value in before.items():  # the caller's arrays are never modified
        np.testing.assert_array_equal(laid_out[name], value, err_msg=f"{kernel} modified {name}")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", CASES["linear_backward"]["shapes"])
def test_linear_backward_variants_match_reference(shape, layout, backend, dtype):
    """Without a mask, and without dX (need_dX=False), every backend still matches the reference."""
    inputs = CASES["linear_backward"]["make"](np.random.default_rng(1), dtype, shape)
    inputs = {name: _relayout(value, layout) for name, value in inputs.items()}
    for kwargs in ({"mask": None}, {"need_dX": False}, {"mask": None, "need_dX": False}):
        args = {**inputs, **kwargs}
        expected = call("linear_backward", args, "numpy")
        actual = call("linear_backward", args, backend)
        assert_matches_reference(actual, expected, dtype, exact=False)
        if kwargs.get("need_dX") is False:
            assert actual[0] is None


def test_linear_forward_without_bias(backend, dtype):
    inputs = CASES["linear_forward"]["make"](np.random.default_rng(2), dtype, (6, 9, 10))
    inputs["b"] = None
    assert_matches_reference(call("linear_forward", inputs, backend),
                             call("linear_forward", inputs, "numpy"), dtype, exact=False)


def test_relu_mask_is_packbits_little(backend, dtype):
    X = np.random.default_rng(3).standard_normal((4, 19)).astype(dtype)
    Y, mask = fastnn.relu_forward(X, backend=backend)
    np.testing.assert_array_equal(mask, np.packbits(X > 0, axis=-1, bitorder="little"))
    np.testing.assert_array_equal(Y, np.maximum(X, 0))
    assert mask.dtype == np.uint8 and mask.shape == (4, 3)


def test_backend_table_names_every_backend():
    assert set(BACKEND_MODULES) == {"numpy", "numba", "cython"}


def _cython_builds():
    if "cython" not in BACKENDS:
        return []
    from fastnn.backends import cython_kernels

    builds = []
    for name in cython_kernels.PACKAGES:
        try:
            builds.append(cython_kernels.load_build(name))
        except ImportError:  # e.g. the AVX2 build on a CPU without AVX2: nothing to check
            pass
    return builds


@pytest.mark.skipif("cython" not in BACKENDS, reason="Cython backend not built")
@pytest.mark.parametrize("kernel, shape", list(_conformance_params()))
def test_every_cython_build_matches_reference(kernel, shape, dtype):
    """The backend runs one build (AVX2 where the CPU has it); the other must be right too."""
    builds = _cython_builds()
    assert any(build.name == "portable" for build in builds), "the portable build must always load"
    case = CASES[kernel]
    inputs = case["make"](np.random.default_rng(zlib.crc32(f"{kernel}{shape}".encode())), dtype, shape)
    expected = call(kernel, inputs, "numpy")
    for build in builds:
        actual = _call_build(build, kernel, inputs)
        assert_matches_reference(actual, expected, dtype, case["exact"])


def _call_build(build, kernel, inputs):
    """Call `kernel` of a specific Cython build through the public API by swapping it in."""
    module = fastnn._config.resolve("cython")
    original = getattr(module, kernel)
    setattr(module, kernel, getattr(build, kernel))
    try:
        return call(kernel, inputs, "cython")
    finally:
        setattr(module, kernel, original)


@pytest.mark.parametrize("shape", CASES["conv1d_backward"]["shapes"])
def test_conv_variants_match_reference(shape, backend, dtype):
    """conv1d_forward without a bias and conv1d_backward without dx (need_dx=False) match too."""
    rng = np.random.default_rng(4)
    inputs = CASES["conv1d_forward"]["make"](rng, dtype, shape)
    inputs["b"] = None
    assert_matches_reference(call("conv1d_forward", inputs, backend), call("conv1d_forward", inputs, "numpy"),
                             dtype, exact=False)
    inputs = {**CASES["conv1d_backward"]["make"](rng, dtype, shape), "need_dx": False}
    actual = call("conv1d_backward", inputs, backend)
    assert actual[0] is None
    assert_matches_reference(actual, call("conv1d_backward", inputs, "numpy"), dtype, exact=False)


@pytest.mark.parametrize("shape", CASES["conv2d_backward"]["shapes"])
def test_conv2d_variants_match_reference(shape, backend, dtype):
    """conv2d_forward without a bias and conv2d_backward without dx (need_dx=False) match too."""
    rng = np.random.default_rng(5)
    inputs = CASES["conv2d_forward"]["make"](rng, dtype, shape)
    inputs["b"] = None
    assert_matches_reference(call("conv2d_forward", inputs, backend), call("conv2d_forward", inputs, "numpy"),
                             dtype, exact=False)
    inputs = {**CASES["conv2d_backward"]["make"](rng, dtype, shape), "need_dx": False}
    actual = call("conv2d_backward", inputs, backend)
    assert actual[0] is None
    assert_matches_reference(actual, call("conv2d_backward", inputs, "numpy"), dtype, exact=False)
