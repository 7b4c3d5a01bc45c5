"""The reference backend's gradients agree with central finite differences (float64)."""
import numpy as np
import pytest

import fastnn

EPS = 1e-6


def numerical_gradient(f, x):
    """Central differences of scalar f with respect to every entry of x (x is perturbed and restored)."""
    grad = np.zeros_like(x)
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + EPS
        plus = f()
        flat[i] = saved - EPS
        minus = f()
        flat[i] = saved
        grad_flat[i] = (plus - minus) / (2 * EPS)
    return grad


def assert_gradient(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(1, 3, 2), (4, 5, 3), (6, 9, 17)])
def test_linear_relu_gradients(shape):
    """Objective sum(G * relu(X @ W + b)): linear_backward with the fused mask gives dX, dW, db."""
    n, d_in, d_out = shape
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((n, d_in)), rng.standard_normal((d_in, d_out)), rng.standard_normal(d_out)
    G = rng.standard_normal((n, d_out))

    def objective():
        Y, _ = fastnn.relu_forward(fastnn.linear_forward(X, W, b, backend="numpy"), backend="numpy")
        return float(np.sum(G * Y))

    _, mask = fastnn.relu_forward(fastnn.linear_forward(X, W, b, backend="numpy"), backend="numpy")
    dX, dW, db = fastnn.linear_backward(X, W, G, mask=mask, backend="numpy")
    assert_gradient(dX, numerical_gradient(objective, X))
    assert_gradient(dW, numerical_gradient(objective, W))
    assert_gradient(db, numerical_gradient(objective, b))


def test_linear_gradients_without_mask():
    rng = np.random.default_rng(1)
    X, W, b, G = (rng.standard_normal(s) for s in [(5, 7), (7, 4), (4,), (5, 4)])

    def objective():
        return float(np.sum(G * fastnn.linear_forward(X, W, b, backend="numpy")))

    dX, dW, db = fastnn.linear_backward(X, W, G, backend="numpy")
    assert_gradient(dX, numerical_gradient(objective, X))
    assert_gradient(dW, numerical_gradient(objective, W))
    assert_gradient(db, numerical_gradient(objective, b))


def test_relu_backward_gradient():
    rng = np.random.default_rng(2)
    X, G = rng.standard_normal((3, 11)), rng.standard_normal((3, 11))

    def objective():
        return float(np.sum(G * fastnn.relu_forward(X, backend="numpy")[0]))

    _, mask = fastnn.relu_forward(X, backend="numpy")
    assert_gradient(fastnn.relu_backward(G, mask, backend="numpy"), numerical_gradient(objective, X))


def test_sigmoid_backward_gradient():
    rng = np.random.default_rng(3)
    X, G = 3 * rng.standard_normal((4, 6)), rng.standard_normal((4, 6))

    def objective():
        return float(np.sum(G * fastnn.sigmoid_forward(X, backend="numpy")))

    Y = fastnn.sigmoid_forward(X, backend="numpy")
    assert_gradient(fastnn.sigmoid_backward(G, Y, backend="numpy"), numerical_gradient(objective, X))


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (6, 5)])
def test_softmax_cross_entropy_gradient(shape):
    rng = np.random.default_rng(4)
    logits, y = 2 * rng.standard_normal(shape), rng.integers(0, shape[1], shape[0])

    def objective():
        return fastnn.softmax_cross_entropy(logits, y, backend="numpy")[0]

    _, dlogits = fastnn.softmax_cross_entropy(logits, y, backend="numpy")
    assert_gradient(dlogits, numerical_gradient(objective, logits))


def test_logistic_loss_gradient():
    rng = np.random.default_rng(5)
    scores, y = 3 * rng.standard_normal(9), rng.choice([-1, 1], 9)

    def objective():
        return fastnn.logistic_loss(scores, y, backend="numpy")[0]

    _, dscores = fastnn.logistic_loss(scores, y, backend="numpy")
    assert_gradient(dscores, numerical_gradient(objective, scores))


def test_softmax_cross_entropy_known_value():
    """Uniform logits over C classes cost exactly log(C); the gradient is (1/C - onehot) / N."""
    logits, y = np.zeros((2, 4)), np.array([1, 3])
    loss, dlogits = fastnn.softmax_cross_entropy(logits, y, backend="numpy")
    assert loss == pytest.approx(np.log(4))
    expected = np.full((2, 4), 0.25)
    expected[[0, 1], y] -= 1
    np.testing.assert_allclose(dlogits, expected / 2)


def test_logistic_loss_matches_seed_closed_form():
    """Seed's mini CNN: dl/dyhat = (sigmoid(y yhat) - 1) y for a single example."""
    scores, y = np.array([0.7]), np.array([-1])
    loss, dscores = fastnn.logistic_loss(scores, y, backend="numpy")
    assert loss == pytest.approx(np.log1p(np.exp(0.7)))
    assert dscores[0] == pytest.approx((1 / (1 + np.exp(0.7)) - 1) * -1)
