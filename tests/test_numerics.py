"""Extreme but finite inputs give finite, correct results on every backend.

The errstate/warnings fixture makes the NumPy reference itself prove it never overflows; compiled
backends do not report floating-point flags, so for them the asserted values are the check.
"""
import warnings

import numpy as np
import pytest

import fastnn


@pytest.fixture(autouse=True)
def no_floating_point_warnings():
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        warnings.simplefilter("error")
        yield


def test_softmax_cross_entropy_huge_logits(backend, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 3e4]], dtype=dtype)
    loss, dlogits = fastnn.softmax_cross_entropy(logits, np.array([0, 2]), backend=backend)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    assert loss == pytest.approx(np.log(2) / 2, rel=1e-5)  # row 0 is certain, row 1 a coin toss


def test_logistic_loss_huge_scores(backend, dtype):
    scores = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    loss, dscores = fastnn.logistic_loss(scores, np.array([1, -1, -1, 1]), backend=backend)
    # two confident right answers cost 0; two confident wrong ones cost 1e4 each
    assert loss == pytest.approx(5e3, rel=1e-6)
    np.testing.assert_allclose(dscores, np.array([0, 0, 0.25, -0.25]), atol=1e-7)


def test_sigmoid_saturates_without_overflow(backend, dtype):
    X = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype)
    Y = fastnn.sigmoid_forward(X, backend=backend)
    assert Y[2] == 0.5 and Y[-1] == 1.0 and Y[0] == 0.0
    assert np.all((Y >= 0) & (Y <= 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finiteness_check_is_exact_when_the_sum_overflows_or_cancels(dtype):
    """fastnn's finiteness check sums first; a sum that overflows on finite data, or +inf and -inf that
    cancel into NaN, must still give the element-wise answer."""
    from fastnn._validation import all_finite

    huge = np.full((3, 5), np.finfo(dtype).max / 2, dtype=dtype)  # finite, but its sum overflows
    assert all_finite(huge)
    assert all_finite(np.empty((0, 4), dtype=dtype))
    for bad in (np.nan, np.inf, -np.inf):
        data = huge.copy()
        data[1, 2] = bad
        assert not all_finite(data)
    both = np.zeros(6, dtype=dtype)
    both[[1, 4]] = np.inf, -np.inf
    assert not all_finite(both)
    strided = np.zeros((4, 6), dtype=dtype)[:, ::2]
    strided[3, 1] = np.nan
    assert not all_finite(strided)
