"""Conv2D, MaxPool2D, LeakyReLU and Tanh layers: backprop through a small image CNN agrees with finite
differences, every backend trains the same network, and geometry that does not fit is refused when the
network is built."""
import pickle

import numpy as np
import pytest

from fastnn import nn
from fastnn.nn.losses import SoftmaxCrossEntropy

from test_gradients import numerical_gradient

# (2, 8, 8) -> conv 3x3 pad 1 -> (3, 8, 8) -> pool 2 -> (3, 4, 4) -> conv (2, 3) stride (1, 2) -> (4, 3, 1) -> 3 classes
INPUT_SHAPE = (2, 8, 8)


def small_cnn(backend="numpy", dtype=np.float64, random_state=0):
    layers = [nn.Conv2D(2, 3, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2D(2),
              nn.Conv2D(3, 4, (2, 3), stride=(1, 2)), nn.Tanh(), nn.Flatten(), nn.Linear(12, 3, init="pytorch")]
    return nn.Sequential(layers, input_shape=INPUT_SHAPE, dtype=dtype, random_state=random_state, backend=backend)


def _data(n=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + INPUT_SHAPE), rng.integers(0, 3, n)


def _gradients(model, X, y):
    model.grads[...] = 0
    loss, dlogits = SoftmaxCrossEntropy()(model.forward(X, training=True), y, model.backend)
    model.backward(dlogits)
    return loss, model.grads.copy()


def test_backprop_through_an_image_cnn_matches_finite_differences():
    model = small_cnn()
    X, y = _data()
    _, grads = _gradients(model, X, y)

    def loss():
        return SoftmaxCrossEntropy()(model.forward(X), y, "numpy")[0]

    np.testing.assert_allclose(grads, numerical_gradient(loss, model.params), rtol=1e-5, atol=1e-8)


def test_every_backend_computes_the_layers_gradients(backend, dtype):
    X, y = _data(n=7, seed=2)
    reference = _gradients(small_cnn("numpy", dtype), X.astype(dtype), y)
    actual = _gradients(small_cnn(backend, dtype), X.astype(dtype), y)
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    assert actual[0] == pytest.approx(reference[0], rel=tol)
    np.testing.assert_allclose(actual[1], reference[1], rtol=tol, atol=tol * np.abs(reference[1]).max())


def test_an_image_cnn_trains(backend):
    X, y = _data(n=30, seed=3)
    model = small_cnn(backend, np.float32)
    history = nn.Trainer(model, nn.Adam(0.01), batch_size=6, epochs=15, random_state=0).fit(X.astype(np.float32), y)
    assert history.loss[-1] < 0.5 * history.loss[0]


def test_layer_geometry_and_parameters():
    conv = nn.Conv2D(3, 6, 5)
    assert conv.kernel_size == (5, 5) and conv.stride == (1, 1) and conv.padding == (0, 0)
    assert conv.param_shapes() == {"w": (6, 3, 5, 5), "b": (6,)}
    assert conv.output_shape((3, 32, 32)) == (6, 28, 28)
    assert nn.Conv2D(3, 12, 3, padding=1).output_shape((3, 32, 32)) == (12, 32, 32)
    assert nn.MaxPool2D(2).output_shape((6, 28, 28)) == (6, 14, 14)
    assert nn.MaxPool2D((3, 2), stride=(2, 1)).output_shape((1, 7, 5)) == (1, 3, 4)
    # the seed's 2-layer Fashion-MNIST CNN: 64 kernels of 7x7, 2x2 pooling, a linear head: 80,650 parameters
    seed = nn.Sequential([nn.Conv2D(1, 64, 7), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(64 * 11 * 11, 10)],
                         input_shape=(1, 28, 28))
    assert seed.n_parameters == 80650


@pytest.mark.parametrize("make, words", [
    (lambda: nn.Conv2D(1, 2, (3, 0)), ["kernel_size[1]"]),
    (lambda: nn.Conv2D(1, 2, 3, stride=0), ["stride"]),
    (lambda: nn.Conv2D(1, 2, 3, padding=-1), ["padding"]),
    (lambda: nn.MaxPool2D(2, stride=(1, 2, 3)), ["stride", "pair"]),
    (lambda: nn.LeakyReLU(float("nan")), ["negative_slope"]),
    (lambda: nn.Sequential([nn.Conv2D(1, 2, 9), nn.Flatten(), nn.Linear(2, 2)], input_shape=(1, 8, 8)),
     ["Conv2D", "does not fit", "(1, 8, 8)"]),
    (lambda: nn.Sequential([nn.Conv2D(2, 2, 3), nn.Flatten(), nn.Linear(2, 2)], input_shape=(1, 8, 8)),
     ["(2, H, W)"]),
    (lambda: nn.Sequential([nn.MaxPool2D(3), nn.Flatten(), nn.Linear(2, 2)], input_shape=(1, 2, 8)),
     ["MaxPool2D", "does not fit"]),
])
def test_bad_layer_arguments_are_refused(make, words):
    with pytest.raises(ValueError) as excinfo:
        make()
    for word in words:
        assert word in str(excinfo.value)


def test_pickled_model_predicts_the_same():
    model = small_cnn()
    X, _ = _data()
    logits = model.forward(X)
    model.forward(X, training=True)  # cached activations must not travel
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.forward(X), logits)
    assert repr(clone.layers[1]) == "LeakyReLU(negative_slope=0.1)"
