"""Hypothesis-generated shapes and values: every compiled backend agrees with the reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastnn

from kernel_cases import COMPILED_BACKENDS, assert_matches_reference

pytestmark = pytest.mark.skipif(not COMPILED_BACKENDS, reason="no compiled backend to compare")

dtypes = st.sampled_from([np.float32, np.float64])
dims = st.integers(1, 40)
finite = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)
SETTINGS = settings(max_examples=40, deadline=None)


def float_arrays(dtype, shape, bound=1e3):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return hnp.arrays(dtype, shape, elements=st.floats(-bound, bound, width=width, **finite))


@SETTINGS
@given(data=st.data(), dtype=dtypes, n=dims, d_in=dims, d_out=dims)
def test_linear_layer(data, dtype, n, d_in, d_out):
    X = data.draw(float_arrays(dtype, (n, d_in), bound=10))
    W = data.draw(float_arrays(dtype, (d_in, d_out), bound=10))
    b = data.draw(float_arrays(dtype, (d_out,), bound=10))
    dY = data.draw(float_arrays(dtype, (n, d_out), bound=10))
    _, mask = fastnn.relu_forward(X @ W, backend="numpy")
    for backend in COMPILED_BACKENDS:
        assert_matches_reference(fastnn.linear_forward(X, W, b, backend=backend),
                                 fastnn.linear_forward(X, W, b, backend="numpy"), dtype, exact=False)
        assert_matches_reference(fastnn.linear_backward(X, W, dY, mask=mask, backend=backend),
                                 fastnn.linear_backward(X, W, dY, mask=mask, backend="numpy"), dtype, exact=False)


@SETTINGS
@given(data=st.data(), dtype=dtypes, shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=37))
def test_relu_round_trip(data, dtype, shape):
    X = data.draw(float_arrays(dtype, shape))
    dY = data.draw(float_arrays(dtype, shape))
    Y_ref, mask_ref = fastnn.relu_forward(X, backend="numpy")
    dX_ref = fastnn.relu_backward(dY, mask_ref, backend="numpy")
    for backend in COMPILED_BACKENDS:
        Y, mask = fastnn.relu_forward(X, backend=backend)
        np.testing.assert_array_equal(Y, Y_ref)
        np.testing.assert_array_equal(mask, mask_ref)
        np.testing.assert_array_equal(fastnn.relu_backward(dY, mask, backend=backend), dX_ref)


@SETTINGS
@given(data=st.data(), dtype=dtypes, n=dims, n_classes=st.integers(1, 12))
def test_softmax_cross_entropy(data, dtype, n, n_classes):
    logits = data.draw(float_arrays(dtype, (n, n_classes), bound=1e4))
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, n_classes - 1)))
    expected = fastnn.softmax_cross_entropy(logits, y, backend="numpy")
    assert np.isfinite(expected[0])
    for backend in COMPILED_BACKENDS:
        loss, dlogits = fastnn.softmax_cross_entropy(logits, y, backend=backend)
        np.testing.assert_allclose(loss, expected[0], rtol=1e-4 if dtype == np.float32 else 1e-10,
                                   atol=1e-3 if dtype == np.float32 else 1e-9)
        assert_matches_reference((dlogits,), expected[1:], dtype, exact=False)


@SETTINGS
@given(data=st.data(), dtype=dtypes, n=st.integers(1, 200))
def test_logistic_loss_and_sigmoid(data, dtype, n):
    scores = data.draw(float_arrays(dtype, (n,), bound=1e4))
    y = data.draw(hnp.arrays(np.int8, n, elements=st.sampled_from([-1, 1])))
    expected = fastnn.logistic_loss(scores, y, backend="numpy")
    sig = fastnn.sigmoid_forward(scores, backend="numpy")
    for backend in COMPILED_BACKENDS:
        loss, dscores = fastnn.logistic_loss(scores, y, backend=backend)
        # A mean loss below the smallest normal number (e.g. one score of -96 with y = -1: exp(-96) ~ 2e-42
        # in float32) is subnormal, where the dtype keeps no relative precision: atol covers that range.
        np.testing.assert_allclose(loss, expected[0], rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=np.finfo(dtype).tiny)
        assert_matches_reference((dscores,), expected[1:], dtype, exact=False)
        assert_matches_reference((fastnn.sigmoid_forward(scores, backend=backend),), (sig,), dtype, exact=False)
