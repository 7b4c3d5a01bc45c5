"""Bad input gets a ValueError or TypeError that names the argument, before any compiled code runs."""
import numpy as np
import pytest

import fastnn

f32, f64 = np.float32, np.float64


def arr(*shape, dtype=f64):
    return np.ones(shape, dtype=dtype)


_, MASK_5x11 = fastnn.relu_forward(arr(5, 11), backend="numpy")
EPOCH = dict(X=arr(3, 4), y=np.array([0, 1, 1]), order=np.array([2, 0, 1]), params=arr(23), state=np.zeros((2, 23)),
             sizes=[4, 3, 2], batch_size=2)

# A conv stack 1x6 -> 2 channels (K 3) -> 4 positions -> 2 classes: 2*1*3 + 2 + 8*2 + 2 = 26 parameters.
CNN_EPOCH = dict(X=arr(3, 1, 6), y=np.array([0, 1, 1]), order=np.array([2, 0, 1]), params=arr(26),
                 state=np.zeros((2, 26)), channels=(2,), kernel_sizes=(3,), strides=(1,), paddings=(0,),
                 n_classes=2, batch_size=2)
_, ARGMAX_2x3x4 = fastnn.maxpool1d_forward(arr(2, 3, 8), kernel_size=2, backend="numpy")

# (kernel, keyword arguments, expected exception, words the message must contain)
BAD_INPUTS = [
    # linear_forward
    ("linear_forward", dict(X=arr(5), W=arr(5, 3)), ValueError, ["X", "2-D", "(5,)"]),
    ("linear_forward", dict(X=arr(2, 5), W=arr(4, 3)), ValueError, ["W", "(4, 3)", "(2, 5)"]),
    ("linear_forward", dict(X=arr(2, 5), W=arr(5, 3), b=arr(4)), ValueError, ["b", "(4,)"]),
    ("linear_forward", dict(X=arr(2, 5), W=arr(5, 3), b=arr(1, 3)), ValueError, ["b", "1-D"]),
    ("linear_forward", dict(X=np.ones((2, 5), dtype=int), W=arr(5, 3)), TypeError, ["X", "int64"]),
    ("linear_forward", dict(X=arr(2, 5, dtype=f32), W=arr(5, 3)), TypeError, ["W", "float64", "float32"]),
    ("linear_forward", dict(X=arr(2, 5, dtype=np.float16), W=arr(5, 3)), TypeError, ["X", "float16"]),
    ("linear_forward", dict(X=arr(2, 5, dtype=np.complex128), W=arr(5, 3)), TypeError, ["X", "complex128"]),
    ("linear_forward", dict(X=arr(0, 5), W=arr(5, 3)), ValueError, ["X", "empty"]),
    ("linear_forward", dict(X=arr(2, 0), W=arr(0, 3)), ValueError, ["X", "empty"]),
    ("linear_forward", dict(X=np.array([["a", "b"]]), W=arr(2, 3)), TypeError, ["X"]),
    # linear_backward
    ("linear_backward", dict(X=arr(5, 7), W=arr(7, 11), dY=arr(4, 11)), ValueError, ["dY", "(4, 11)", "(5, 11)"]),
    ("linear_backward", dict(X=arr(5, 7), W=arr(7, 11), dY=arr(5, 11, dtype=f32)), TypeError, ["dY", "float32"]),
    ("linear_backward", dict(X=arr(5, 7), W=arr(6, 11), dY=arr(5, 11)), ValueError, ["W", "(6, 11)"]),
    ("linear_backward", dict(X=arr(5, 7), W=arr(7, 11), dY=arr(5, 11), mask=MASK_5x11[:, :1]),
     ValueError, ["mask", "(5, 1)", "(5, 2)"]),
    ("linear_backward", dict(X=arr(5, 7), W=arr(7, 11), dY=arr(5, 11), mask=MASK_5x11.astype(np.int32)),
     TypeError, ["mask", "uint8", "int32"]),
    ("linear_backward", dict(X=arr(5, 7), W=arr(7, 11), dY=arr(5, 11), mask=np.packbits(arr(5, 11) > 0)),
     ValueError, ["mask"]),
    # relu
    ("relu_forward", dict(X=arr()), ValueError, ["X", "at least 1"]),
    ("relu_forward", dict(X=arr(3, 0)), ValueError, ["X", "empty"]),
    ("relu_forward", dict(X=np.ones(4, dtype=bool)), TypeError, ["X", "bool"]),
    ("relu_backward", dict(dY=arr(5, 11), mask=MASK_5x11[:4]), ValueError, ["mask", "(4, 2)", "(5, 2)"]),
    ("relu_backward", dict(dY=arr(5, 17), mask=MASK_5x11), ValueError, ["mask", "(5, 3)"]),
    ("relu_backward", dict(dY=arr(5, 11), mask=MASK_5x11.view(np.int8)), TypeError, ["mask", "int8"]),
    ("relu_backward", dict(dY=np.ones((5, 11), dtype=np.int64), mask=MASK_5x11), TypeError, ["dY", "int64"]),
    # sigmoid
    ("sigmoid_forward", dict(X=np.arange(4)), TypeError, ["X", "int64"]),
    ("sigmoid_backward", dict(dY=arr(3, 4), Y=arr(4, 3)), ValueError, ["Y", "(4, 3)", "(3, 4)"]),
    ("sigmoid_backward", dict(dY=arr(3, 4), Y=arr(3, 4, dtype=f32)), TypeError, ["Y", "float32"]),
    # softmax cross-entropy
    ("softmax_cross_entropy", dict(logits=arr(4, 3), y=np.array([0, 1, 2, 3])), ValueError, ["y", "3", "[0, 3)"]),
    ("softmax_cross_entropy", dict(logits=arr(4, 3), y=np.array([0, -1, 2, 1])), ValueError, ["y", "-1"]),
    ("softmax_cross_entropy", dict(logits=arr(4, 3), y=np.array([0, 1, 2])), ValueError, ["y", "(4,)", "(3,)"]),
    ("softmax_cross_entropy", dict(logits=arr(4, 3), y=np.array([0.0, 1, 2, 1])), TypeError, ["y", "integer"]),
    ("softmax_cross_entropy", dict(logits=arr(4, 3), y=np.array([[0, 1, 2, 1]])), ValueError, ["y", "(1, 4)"]),
    ("softmax_cross_entropy", dict(logits=arr(4), y=np.array([0])), ValueError, ["logits", "2-D"]),
    ("softmax_cross_entropy", dict(logits=arr(0, 3), y=np.array([], dtype=int)), ValueError, ["logits", "empty"]),
    # logistic loss
    ("logistic_loss", dict(scores=arr(3), y=np.array([1, 0, -1])), ValueError, ["y", "-1", "+1", "0"]),
    ("logistic_loss", dict(scores=arr(3), y=np.array([1, -1])), ValueError, ["y", "(3,)", "(2,)"]),
    ("logistic_loss", dict(scores=arr(3, 1), y=np.array([1, -1, 1])), ValueError, ["scores", "1-D"]),
    ("logistic_loss", dict(scores=arr(3), y=np.array(["a", "b", "c"])), TypeError, ["y"]),
    # gram
    ("gram", dict(X=arr(4, 3), Y=arr(5, 2)), ValueError, ["X", "3 features", "Y", "(5, 2)"]),
    ("gram", dict(X=arr(4, 3), Y=arr(5, 3, dtype=f32)), TypeError, ["Y", "float32"]),
    ("gram", dict(X=arr(4, 3), kernel="sigmoid"), ValueError, ["kernel", "'sigmoid'", "rbf"]),
    ("gram", dict(X=arr(4, 3), gamma=0.0), ValueError, ["gamma", "0.0"]),
    ("gram", dict(X=arr(4, 3), gamma=float("nan")), ValueError, ["gamma"]),
    ("gram", dict(X=arr(4, 3), gamma="auto"), ValueError, ["gamma", "auto"]),
    ("gram", dict(X=arr(4, 3), kernel="poly", degree=2.5), ValueError, ["degree", "2.5"]),
    ("gram", dict(X=arr(4, 3), kernel="poly", degree=-1), ValueError, ["degree", "-1"]),
    ("gram", dict(X=arr(4, 3), kernel="poly", coef0=float("inf")), ValueError, ["coef0"]),
    ("gram", dict(X=np.array([[1.0, np.nan]])), ValueError, ["X", "NaN"]),
    ("gram", dict(X=arr(2, 2), Y=np.array([[np.inf, 1.0]])), ValueError, ["Y", "infinity"]),
    ("gram", dict(X=arr(0, 3)), ValueError, ["X", "empty"]),
    ("gram", dict(X=arr(3)), ValueError, ["X", "2-D"]),
    # mlp_train_epoch: a network 4 -> 3 -> 2 has 23 parameters
    ("mlp_train_epoch", dict(EPOCH, sizes=[5, 3, 2]), ValueError, ["sizes[0] = 5", "4 features"]),
    ("mlp_train_epoch", dict(EPOCH, sizes=[4, 0, 2]), ValueError, ["sizes", "positive"]),
    ("mlp_train_epoch", dict(EPOCH, sizes=[4]), ValueError, ["sizes", "at least two"]),
    ("mlp_train_epoch", dict(EPOCH, y=np.array([0, 1, 2])), ValueError, ["y", "label 2", "[0, 2)"]),
    ("mlp_train_epoch", dict(EPOCH, order=np.array([0, 3])), ValueError, ["order", "3", "[0, 3)"]),
    ("mlp_train_epoch", dict(EPOCH, order=np.array([], dtype=int)), ValueError, ["order", "empty"]),
    ("mlp_train_epoch", dict(EPOCH, params=arr(22)), ValueError, ["params", "(22,)", "(23,)"]),
    ("mlp_train_epoch", dict(EPOCH, params=arr(23, dtype=f32)), TypeError, ["params", "float32"]),
    ("mlp_train_epoch", dict(EPOCH, state=arr(23)), ValueError, ["state", "2-D"]),
    ("mlp_train_epoch", dict(EPOCH, state=np.full((2, 23), np.nan)), ValueError, ["state", "NaN"]),
    ("mlp_train_epoch", dict(EPOCH, X=np.full((3, 4), np.inf)), ValueError, ["X", "infinity"]),
    ("mlp_train_epoch", dict(EPOCH, batch_size=0), ValueError, ["batch_size", "0"]),
    ("mlp_train_epoch", dict(EPOCH, batch_size=2.0), ValueError, ["batch_size", "2.0"]),
    ("mlp_train_epoch", dict(EPOCH, activation="tanh"), ValueError, ["activation", "tanh"]),
    ("mlp_train_epoch", dict(EPOCH, optimizer="rmsprop"), ValueError, ["optimizer", "rmsprop"]),
    ("mlp_train_epoch", dict(EPOCH, learning_rate=0.0), ValueError, ["learning_rate"]),
    ("mlp_train_epoch", dict(EPOCH, momentum=1.0), ValueError, ["momentum"]),
    ("mlp_train_epoch", dict(EPOCH, weight_decay=-1e-3), ValueError, ["weight_decay"]),
    ("mlp_train_epoch", dict(EPOCH, betas=(0.9, 1.0)), ValueError, ["betas[1]"]),
    ("mlp_train_epoch", dict(EPOCH, step=-1), ValueError, ["step", "-1"]),
    # conv1d_forward / conv1d_backward
    ("conv1d_forward", dict(x=arr(2, 6), w=arr(4, 1, 3)), ValueError, ["x", "3-D", "(2, 6)"]),
    ("conv1d_forward", dict(x=arr(2, 3, 6), w=arr(4, 2, 3)), ValueError, ["w", "(4, 2, 3)", "(2, 3, 6)", "C_in"]),
    ("conv1d_forward", dict(x=arr(2, 3, 6), w=arr(4, 3, 7)), ValueError, ["kernel size 7", "length 6", "L_out"]),
    ("conv1d_forward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3), stride=0), ValueError, ["stride", "0"]),
    ("conv1d_forward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3), stride=1.5), ValueError, ["stride", "1.5"]),
    ("conv1d_forward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3), padding=-1), ValueError, ["padding", "-1"]),
    ("conv1d_forward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3), b=arr(3)), ValueError, ["b", "(3,)", "(4,)"]),
    ("conv1d_forward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3, dtype=f32)), TypeError, ["w", "float32"]),
    ("conv1d_forward", dict(x=arr(0, 3, 6), w=arr(4, 3, 3)), ValueError, ["x", "empty"]),
    ("conv1d_forward", dict(x=np.ones((2, 3, 6), dtype=int), w=arr(4, 3, 3)), TypeError, ["x", "int64"]),
    ("conv1d_backward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3), dy=arr(2, 4, 5)), ValueError, ["dy", "(2, 4, 5)", "(2, 4, 4)"]),
    ("conv1d_backward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3), dy=arr(2, 4, 4), stride=2), ValueError, ["dy", "(2, 4, 2)"]),
    ("conv1d_backward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3), dy=arr(2, 4, 4, dtype=f32)), TypeError, ["dy", "float32"]),
    ("conv1d_backward", dict(x=arr(2, 3, 2), w=arr(4, 3, 5), dy=arr(2, 4, 1)), ValueError, ["kernel size 5"]),
    # max pooling
    ("maxpool1d_forward", dict(x=arr(2, 3, 4), kernel_size=5), ValueError, ["kernel size 5", "length 4"]),
    ("maxpool1d_forward", dict(x=arr(2, 3, 4), kernel_size=0), ValueError, ["kernel_size", "0"]),
    ("maxpool1d_forward", dict(x=arr(2, 3, 4), kernel_size=2, stride=0), ValueError, ["stride", "0"]),
    ("maxpool1d_forward", dict(x=arr(3, 4), kernel_size=2), ValueError, ["x", "3-D"]),
    ("maxpool1d_backward", dict(dy=arr(2, 3, 4), argmax=ARGMAX_2x3x4, length=6), ValueError,
     ["argmax", "position 6", "[0, 6)"]),
    ("maxpool1d_backward", dict(dy=arr(2, 3, 4), argmax=-ARGMAX_2x3x4 - 1, length=8), ValueError, ["argmax", "-"]),
    ("maxpool1d_backward", dict(dy=arr(2, 3, 4), argmax=ARGMAX_2x3x4[:, :2], length=8), ValueError,
     ["argmax", "(2, 2, 4)", "(2, 3, 4)"]),
    ("maxpool1d_backward", dict(dy=arr(2, 3, 4), argmax=ARGMAX_2x3x4.astype(f64), length=8), TypeError,
     ["argmax", "integer"]),
    # cnn1d_train_epoch
    ("cnn1d_train_epoch", dict(CNN_EPOCH, X=arr(3, 6)), ValueError, ["X", "3-D"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, kernel_sizes=(7,)), ValueError, ["kernel size 7", "conv layer 0", "length 6"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, channels=(2, 2), kernel_sizes=(3, 5), strides=(1, 1), paddings=(0, 0)),
     ValueError, ["kernel size 5", "conv layer 1", "length 4"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, strides=(1, 1)), ValueError, ["strides", "one entry per conv layer"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, channels=()), ValueError, ["channels", "at least one"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, channels=(0,)), ValueError, ["channels[0]", "positive"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, paddings=(-1,)), ValueError, ["padding", "-1"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, n_classes=0), ValueError, ["n_classes"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, y=np.array([0, 1, 2])), ValueError, ["y", "label 2", "[0, 2)"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, order=np.array([3])), ValueError, ["order", "3"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, params=arr(25)), ValueError, ["params", "(25,)", "(26,)"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, state=np.zeros((2, 25))), ValueError, ["state", "(2, 26)"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, X=np.full((3, 1, 6), np.nan)), ValueError, ["X", "NaN"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, optimizer="rmsprop"), ValueError, ["optimizer", "rmsprop"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, batch_size=0), ValueError, ["batch_size", "0"]),
    # Geometry that would overflow compiled size arithmetic (issue 14 part 2): refused before any backend runs.
    ("conv1d_forward", dict(x=arr(1, 1, 4), w=arr(1, 1, 1), stride=2**63 - 1, padding=3), ValueError,
     ["stride", "too large", "2**40"]),
    ("conv1d_backward", dict(x=arr(1, 1, 4), w=arr(1, 1, 1), dy=arr(1, 1, 1), stride=2**63 - 1, padding=3),
     ValueError, ["stride", "too large"]),
    ("conv1d_forward", dict(x=arr(1, 1, 4), w=arr(1, 1, 1), stride=np.uint64(2**64 - 1)), ValueError, ["stride"]),
    ("conv1d_forward", dict(x=arr(1, 1, 4), w=arr(1, 1, 1), padding=2**64), ValueError, ["padding", "too large"]),
    ("conv1d_forward", dict(x=arr(1, 1, 4), w=arr(1, 1, 3), padding=5), ValueError,
     ["padding = 5", "max(kernel_size - 1, length) = 4"]),
    ("conv1d_forward", dict(x=arr(1, 1, 4), w=arr(1, 1, 1), stride=True), ValueError, ["stride", "bool"]),
    ("maxpool1d_forward", dict(x=arr(2, 3, 4), kernel_size=2**63), ValueError, ["kernel_size", "too large"]),
    ("maxpool1d_forward", dict(x=arr(2, 3, 4), kernel_size=2, stride=2**62), ValueError, ["stride", "too large"]),
    ("maxpool1d_backward", dict(dy=arr(2, 3, 4), argmax=ARGMAX_2x3x4, length=2**31), ValueError,
     ["length=2147483648", "dx", "limit"]),
    ("maxpool1d_backward", dict(dy=arr(2, 3, 4), argmax=ARGMAX_2x3x4, length=2**63), ValueError, ["length"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, strides=(2**62 + 1,), paddings=(2**62,)), ValueError,
     ["strides[0]", "too large"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, paddings=(2**60,)), ValueError, ["paddings[0]", "too large"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, paddings=(2**39,)), ValueError, ["paddings[0]", "conv layer 0"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, channels=(2**31,)), ValueError, ["network", "2**31 - 1"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, batch_size=2**63), ValueError, ["batch_size", "too large"]),
    ("cnn1d_train_epoch", dict(CNN_EPOCH, step=2**63), ValueError, ["step", "too large"]),
    ("mlp_train_epoch", dict(EPOCH, sizes=[4, 2**40, 2]), ValueError, ["sizes", "network", "limit"]),
    ("mlp_train_epoch", dict(EPOCH, sizes=[4, 2**64, 2]), ValueError, ["sizes[1]", "too large"]),
    ("mlp_train_epoch", dict(EPOCH, sizes=np.array([4, 2**63, 2], dtype=np.uint64)), ValueError, ["sizes[1]"]),
    ("mlp_train_epoch", dict(EPOCH, batch_size=np.uint64(2**64 - 1)), ValueError, ["batch_size", "too large"]),
    ("gram", dict(X=arr(2, 3), kernel="poly", degree=2**63), ValueError, ["degree", "too large"]),
    ("gram", dict(X=arr(2, 3), kernel="poly", degree=np.uint64(2**64 - 1)), ValueError, ["degree"]),
]


@pytest.mark.parametrize("kernel, kwargs, error, words", BAD_INPUTS,
                         ids=[f"{k}-{i}" for i, (k, *_rest) in enumerate(BAD_INPUTS)])
def test_bad_input_is_rejected_with_a_clear_message(kernel, kwargs, error, words, backend):
    with pytest.raises(error) as excinfo:
        getattr(fastnn, kernel)(**kwargs, backend=backend)
    message = str(excinfo.value)
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


def test_unknown_backend_keyword_is_a_value_error():
    with pytest.raises(ValueError, match="unknown backend 'fortran'"):
        fastnn.linear_forward(arr(2, 3), arr(3, 4), backend="fortran")


def test_non_native_byte_order_is_accepted(backend):
    X = np.arange(12.0).reshape(3, 4).astype(">f8")
    Y, mask = fastnn.relu_forward(X - 5, backend=backend)
    assert Y.dtype == np.float64
    np.testing.assert_array_equal(Y, np.maximum(np.arange(12.0).reshape(3, 4) - 5, 0))


def test_masked_arrays_are_refused_rather_than_unmasked(backend):
    X = np.ma.masked_array(arr(2, 3), mask=[[True, False, False], [False, False, False]])
    with pytest.raises(TypeError, match="X is a masked array"):
        fastnn.relu_forward(X, backend=backend)


def test_lists_are_accepted_as_float64(backend):
    Y = fastnn.linear_forward([[1.0, 2.0]], [[1.0], [1.0]], [0.5], backend=backend)
    np.testing.assert_array_equal(Y, [[3.5]])
    assert Y.dtype == np.float64
