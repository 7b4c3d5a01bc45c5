"""Inputs for every kernel in fastnn.backends.KERNELS, shared by the conformance and property tests.

Each entry of CASES maps a kernel name to:
  shapes: the awkward shapes the conformance suite runs (batch 1, odd sizes, widths that are not a
          multiple of 8, and sizes large enough to take the multithreaded paths);
  make(rng, dtype, shape) -> dict of keyword arguments for the public function;
  exact: True when every backend must match the reference bit for bit.
"""
import numpy as np

import fastnn

# What the suites run over: every backend that loads here, and the compiled ones among them.
BACKENDS = fastnn.available_backends()
COMPILED_BACKENDS = [name for name in BACKENDS if name != "numpy"]

# Above the compiled backends' parallel threshold (1 << 17 elements), both with many rows and with
# few long rows (where a single row is split across threads).
LARGE_ELEMENTWISE = [(257, 513), (2, 70001), (140001,)]


def _normal(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _linear_forward(rng, dtype, shape):
    n, d_in, d_out = shape
    return dict(X=_normal(rng, (n, d_in), dtype), W=_normal(rng, (d_in, d_out), dtype),
                b=_normal(rng, d_out, dtype))


def _linear_backward(rng, dtype, shape):
    n, d_in, d_out = shape
    X, W = _normal(rng, (n, d_in), dtype), _normal(rng, (d_in, d_out), dtype)
    _, mask = fastnn.relu_forward(X @ W, backend="numpy")
    return dict(X=X, W=W, dY=_normal(rng, (n, d_out), dtype), mask=mask)


def _relu_forward(rng, dtype, shape):
    X = _normal(rng, shape, dtype)
    X.flat[::7] = 0.0  # exact zeros must map to a 0 bit
    return dict(X=X)


def _relu_backward(rng, dtype, shape):
    _, mask = fastnn.relu_forward(_normal(rng, shape, dtype), backend="numpy")
    return dict(dY=_normal(rng, shape, dtype), mask=mask)


def _sigmoid_forward(rng, dtype, shape):
    return dict(X=_normal(rng, shape, dtype, scale=8.0))


def _sigmoid_backward(rng, dtype, shape):
    return dict(dY=_normal(rng, shape, dtype), Y=rng.uniform(0, 1, shape).astype(dtype))


def _softmax_cross_entropy(rng, dtype, shape):
    n, n_classes = shape
    return dict(logits=_normal(rng, shape, dtype, scale=5.0), y=rng.integers(0, n_classes, n))


def _logistic_loss(rng, dtype, shape):
    (n,) = shape
    return dict(scores=_normal(rng, n, dtype, scale=5.0), y=rng.choice([-1, 1], n))


def _gram(rng, dtype, shape):
    n_x, n_y, n_features, kernel = shape  # n_y == 0: Y is None (the symmetric case)
    X = _normal(rng, (n_x, n_features), dtype)
    Y = _normal(rng, (n_y, n_features), dtype) if n_y else None
    return dict(X=X, Y=Y, kernel=kernel, gamma=0.5 / n_features, degree=3, coef0=1.0)


# (N, D_in, D_out): batch sizes on both sides of the small-batch thresholds (Numba 2, Cython 6) and
# output widths around the micro-kernels' 8/16-column blocks.
LINEAR_SHAPES = [(1, 1, 1), (1, 784, 128), (2, 9, 15), (3, 17, 16), (5, 13, 11), (6, 31, 17), (7, 16, 8),
                 (33, 17, 9), (64, 100, 3), (4, 6, 33)]

# Gram shapes cross the compiled backends' row blocks (2**18 elements of K) and mirror tiles (64).
GRAM_SHAPES = [(1, 0, 1, "rbf"), (1, 1, 3, "linear"), (5, 3, 4, "poly"), (65, 0, 9, "rbf"),
               (37, 0, 13, "linear"), (37, 0, 13, "poly"), (37, 11, 13, "rbf"),
               (600, 0, 7, "rbf"), (600, 0, 7, "poly"), (600, 450, 5, "rbf")]

# (n_x, n_y, n_features, k, kernel, working_memory): n_y 0 is Y None, k 0 a 1-D V; a working_memory in
# MiB small enough for many tiles (band and chunk edges, the symmetric case's mirrored tiles).
GRAM_MATVEC_SHAPES = [(1, 0, 1, 0, "rbf", None), (5, 3, 4, 2, "poly", None), (37, 11, 13, 1, "linear", None),
                      (37, 0, 13, 0, "linear", None), (65, 0, 9, 3, "rbf", None), (600, 0, 7, 3, "rbf", 0.2),
                      (600, 450, 5, 0, "rbf", 0.2), (300, 0, 9, 2, "poly", 0.2), (130, 70, 784, 1, "rbf", 2)]


def _gram_matvec(rng, dtype, shape):
    n_x, n_y, n_features, k, kernel, working_memory = shape
    inputs = _gram(rng, dtype, (n_x, n_y, n_features, kernel))
    n_v = n_y or n_x
    inputs["V"] = _normal(rng, (n_v, k) if k else (n_v,), dtype)
    inputs["working_memory"] = working_memory
    return inputs


# (n_x, n_y, n_features, n_rows, kernel): n_y 0 is Y None; rows with repeats, the first and the last row.
GRAM_ROWS_SHAPES = [(1, 0, 1, 1, "rbf"), (5, 3, 4, 2, "poly"), (37, 11, 13, 5, "linear"), (65, 0, 9, 7, "rbf"),
                    (600, 0, 7, 40, "rbf"), (600, 450, 5, 3, "rbf"), (300, 0, 9, 9, "poly")]


def _gram_rows(rng, dtype, shape):
    n_x, n_y, n_features, n_rows, kernel = shape
    inputs = _gram(rng, dtype, (n_x, n_y, n_features, kernel))
    inputs["rows"] = np.concatenate([[0, n_x - 1], rng.integers(0, n_x, n_rows)])
    return inputs


def _perceptron_epoch(rng, dtype, shape):
    n, n_features, n_classes = shape
    # Small integers: every dot product and update is exact, so all backends match bit for bit.
    return dict(X=rng.integers(-3, 4, (n, n_features)).astype(dtype), y=rng.integers(0, n_classes, n),
                order=np.concatenate([rng.permutation(n), rng.integers(0, n, n)]),
                W=rng.integers(-2, 3, (n_classes, n_features)).astype(dtype))


def _kernel_perceptron_epoch(rng, dtype, shape):
    n, n_classes = shape
    X = rng.integers(-3, 4, (n, 5)).astype(dtype)
    K = (X @ X.T + 1) ** 2  # an integer polynomial Gram matrix: the running scores stay exact
    alpha = rng.integers(-1, 2, (n_classes, n)).astype(dtype)
    return dict(K=K, y=rng.integers(0, n_classes, n), order=np.concatenate([rng.permutation(n), rng.integers(0, n, n)]),
                alpha=alpha, scores=alpha @ K)


# Dense networks and optimizers the fused training epoch is checked on (shape = (n, batch, config)).
MLP_CONFIGS = {
    "relu-sgd": dict(sizes=[13, 7, 5], learning_rate=0.1),
    "relu-momentum-l2": dict(sizes=[13, 7, 5], momentum=0.9, weight_decay=0.01, learning_rate=0.05),
    "sigmoid-sgd": dict(sizes=[13, 7, 5], activation="sigmoid", momentum=0.5, learning_rate=0.5),
    "sigmoid-adam": dict(sizes=[13, 7, 5], activation="sigmoid", optimizer="adam", learning_rate=0.01),
    "deep-adam-step": dict(sizes=[11, 9, 6, 8, 3], optimizer="adam", step=17, weight_decay=1e-3, learning_rate=0.01),
    "no-hidden": dict(sizes=[13, 4], learning_rate=0.1),
    "width-1": dict(sizes=[5, 1, 2], learning_rate=0.1),
    "seed-784-128-10": dict(sizes=[784, 128, 10], learning_rate=0.01),
}
MLP_SHAPES = [(1, 1, "relu-sgd"), (9, 4, "relu-sgd"), (9, 20, "relu-momentum-l2"), (64, 64, "relu-momentum-l2"),
              (40, 7, "sigmoid-sgd"), (17, 6, "sigmoid-adam"), (30, 9, "deep-adam-step"), (12, 5, "no-hidden"),
              (10, 3, "width-1"), (23, 5, "seed-784-128-10"), (15, 1, "seed-784-128-10")]


def _mlp_train_epoch(rng, dtype, shape):
    n, batch_size, name = shape
    config = dict(MLP_CONFIGS[name])
    sizes = config["sizes"]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    state = np.zeros((2, n_params), dtype=dtype)
    if config.get("momentum") or config.get("step"):  # an epoch that continues earlier training
        state[0] = _normal(rng, n_params, dtype, scale=0.01)
        state[1] = rng.uniform(0, 1e-3, n_params).astype(dtype)
    return dict(X=rng.uniform(0, 1, (n, sizes[0])).astype(dtype), y=rng.integers(0, sizes[-1], n),
                order=np.concatenate([rng.permutation(n), rng.integers(0, n, n // 2)]),
                params=_normal(rng, n_params, dtype, scale=0.3), state=state, batch_size=batch_size, **config)



# (N, C_in, C_out, L, K, stride, padding): batch 1, channels that are not a multiple of 8, K = 1,
# stride > K, padding >= K, a single output position, ConvBase's layers, and one large enough
# for the compiled backends' GEMM paths.
CONV_SHAPES = [(1, 1, 1, 1, 1, 1, 0), (1, 1, 1, 5, 5, 1, 0), (2, 3, 5, 11, 3, 2, 1), (3, 2, 7, 9, 1, 3, 0),
               (2, 5, 3, 4, 2, 1, 3), (1, 4, 9, 7, 7, 1, 0), (3, 1, 25, 40, 5, 2, 1), (7, 25, 25, 19, 3, 2, 1),
               (5, 25, 25, 10, 3, 2, 1), (4, 9, 17, 33, 4, 3, 2), (16, 32, 64, 128, 5, 1, 0)]


def _conv_arrays(rng, dtype, shape):
    n, c_in, c_out, length, k, stride, padding = shape
    return (_normal(rng, (n, c_in, length), dtype), _normal(rng, (c_out, c_in, k), dtype), stride, padding)


def _conv1d_forward(rng, dtype, shape):
    x, w, stride, padding = _conv_arrays(rng, dtype, shape)
    return dict(x=x, w=w, b=_normal(rng, w.shape[0], dtype), stride=stride, padding=padding)


def _conv1d_backward(rng, dtype, shape):
    x, w, stride, padding = _conv_arrays(rng, dtype, shape)
    l_out = (x.shape[2] + 2 * padding - w.shape[2]) // stride + 1
    return dict(x=x, w=w, dy=_normal(rng, (x.shape[0], w.shape[0], l_out), dtype), stride=stride, padding=padding)


# (N, C, L, kernel_size, stride): overlapping, touching and gapped windows, a window as long as the row.
POOL_SHAPES = [(1, 1, 1, 1, 1), (2, 3, 10, 2, 2), (3, 5, 11, 3, 2), (2, 4, 9, 3, 1), (1, 2, 13, 2, 5),
               (4, 7, 6, 6, 1), (8, 25, 19, 2, 2)]


def _maxpool_input(rng, dtype, shape):
    n, channels, length, kernel_size, stride = shape
    x = (np.round(2 * rng.standard_normal((n, channels, length))) / 2).astype(dtype)  # many ties
    return x, kernel_size, stride


def _maxpool1d_forward(rng, dtype, shape):
    x, kernel_size, stride = _maxpool_input(rng, dtype, shape)
    return dict(x=x, kernel_size=kernel_size, stride=stride)


def _maxpool1d_backward(rng, dtype, shape):
    x, kernel_size, stride = _maxpool_input(rng, dtype, shape)
    y, argmax = fastnn.maxpool1d_forward(x, kernel_size=kernel_size, stride=stride, backend="numpy")
    return dict(dy=_normal(rng, y.shape, dtype), argmax=argmax, length=x.shape[2])


# Conv stacks and optimizers the fused CNN epoch is checked on (shape = (n, batch, config)).
CNN_CONFIGS = {
    "convbase-adam": dict(input_shape=(1, 40), channels=(25, 25, 25), kernel_sizes=(5, 3, 3), strides=(2, 2, 2),
                          paddings=(1, 1, 1), n_classes=10, optimizer="adam", learning_rate=0.01),
    "convbase-adam-step": dict(input_shape=(1, 40), channels=(25, 25, 25), kernel_sizes=(5, 3, 3),
                               strides=(2, 2, 2), paddings=(1, 1, 1), n_classes=10, optimizer="adam", step=9,
                               weight_decay=1e-3, learning_rate=0.01),
    "one-conv-sgd": dict(input_shape=(3, 9), channels=(5,), kernel_sizes=(2,), strides=(1,), paddings=(0,),
                         n_classes=4, learning_rate=0.1),
    "momentum-l2": dict(input_shape=(2, 13), channels=(7, 3), kernel_sizes=(3, 4), strides=(2, 3), paddings=(2, 4),
                        n_classes=2, momentum=0.9, weight_decay=0.01, learning_rate=0.05),
    "single-output": dict(input_shape=(1, 5), channels=(9,), kernel_sizes=(5,), strides=(2,), paddings=(0,),
                          n_classes=1, learning_rate=0.1),
}
CNN_SHAPES = [(1, 1, "one-conv-sgd"), (9, 4, "one-conv-sgd"), (20, 7, "momentum-l2"), (6, 10, "momentum-l2"),
              (5, 2, "single-output"), (40, 16, "convbase-adam"), (30, 100, "convbase-adam-step"),
              (3, 1, "convbase-adam")]


def _cnn1d_train_epoch(rng, dtype, shape):
    from fastnn.cnn_training import conv_stack_geometry, n_parameters

    n, batch_size, name = shape
    config = dict(CNN_CONFIGS[name])
    input_shape = config.pop("input_shape")
    conv = conv_stack_geometry(input_shape, config["channels"], config["kernel_sizes"], config["strides"],
                               config["paddings"])
    n_params = n_parameters(conv, config["n_classes"])
    state = np.zeros((2, n_params), dtype=dtype)
    if config.get("momentum") or config.get("step"):  # an epoch that continues earlier training
        state[0] = _normal(rng, n_params, dtype, scale=0.01)
        state[1] = rng.uniform(0, 1e-3, n_params).astype(dtype)
    return dict(X=_normal(rng, (n, *input_shape), dtype), y=rng.integers(0, config["n_classes"], n),
                order=np.concatenate([rng.permutation(n), rng.integers(0, n, n // 2)]),
                params=_normal(rng, n_params, dtype, scale=0.3), state=state, batch_size=batch_size, **config)


# Networks the compiled inference is checked on (shape = (n, config)): batch 1, widths that are not a
# multiple of 8 or of the vector lanes, chunks that do not divide n, and sizes large enough to run on
# several threads (784-128-10 at 300 rows, ConvBase at 130 examples).
FORWARD_MLP_CONFIGS = {
    "relu": dict(sizes=[13, 7, 5]),
    "sigmoid": dict(sizes=[13, 7, 5], activation="sigmoid"),
    "deep": dict(sizes=[11, 9, 6, 8, 3]),
    "no-hidden": dict(sizes=[13, 4]),
    "width-1": dict(sizes=[5, 1, 2]),
    "digits": dict(sizes=[64, 128, 10]),
    "seed-784-128-10": dict(sizes=[784, 128, 10]),
    "wide-sigmoid": dict(sizes=[300, 90, 70, 4], activation="sigmoid"),
}
# Wide networks (>= 2**14 multiply-adds per row) run on BLAS; 2,100 rows of them are split between two
# threads and end in a partial chunk (fastnn.backends._compiled.dense_forward).
FORWARD_MLP_SHAPES = [(1, "relu"), (1, "seed-784-128-10"), (7, "sigmoid"), (50, "deep"), (3, "no-hidden"),
                      (10, "width-1"), (97, "digits"), (300, "seed-784-128-10"), (301, "sigmoid"),
                      (2100, "seed-784-128-10"), (2100, "wide-sigmoid")]


def _mlp_forward(rng, dtype, shape):
    n, name = shape
    config = dict(FORWARD_MLP_CONFIGS[name])
    sizes = config["sizes"]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return dict(X=rng.uniform(-1, 1, (n, sizes[0])).astype(dtype), params=_normal(rng, n_params, dtype, scale=0.3),
                **config)


FORWARD_CNN_SHAPES = [(1, "one-conv-sgd"), (9, "momentum-l2"), (5, "single-output"), (3, "convbase-adam"),
                      (65, "momentum-l2"), (130, "convbase-adam")]


def _cnn1d_forward(rng, dtype, shape):
    from fastnn.cnn_training import conv_stack_geometry, n_parameters

    n, name = shape
    config = CNN_CONFIGS[name]
    geometry = {key: config[key] for key in ("channels", "kernel_sizes", "strides", "paddings", "n_classes")}
    conv = conv_stack_geometry(config["input_shape"], *(geometry[key] for key in
                                                        ("channels", "kernel_sizes", "strides", "paddings")))
    return dict(X=_normal(rng, (n, *config["input_shape"]), dtype),
                params=_normal(rng, n_parameters(conv, config["n_classes"]), dtype, scale=0.3), **geometry)
# (N, C_in, C_out, H, W, KH, KW, stride, padding): batch 1, a 1x1 image, non-square kernels, strides and
# paddings given as pairs, stride > K, padding >= K, a single output, the seed's first layer (1 -> 64,
# 7x7 on 28x28: the compiled backends' GEMM and threaded paths), the tutorial CNN's layers and the
# doubled CNN's padded 3x3 layer.
CONV2D_SHAPES = [(1, 1, 1, 1, 1, 1, 1, 1, 0), (2, 3, 5, 7, 6, 3, 2, (2, 1), (1, 2)),
                 (3, 2, 7, 9, 11, 5, 3, (1, 3), (2, 0)), (1, 4, 9, 5, 5, 5, 5, 1, 0), (2, 1, 6, 8, 8, 1, 1, 3, 0),
                 (2, 3, 4, 4, 5, 2, 2, 1, (3, 4)), (4, 3, 6, 32, 32, 5, 5, 1, 0), (4, 6, 16, 14, 14, 5, 5, 1, 0),
                 (3, 3, 12, 32, 32, 3, 3, 1, 1), (8, 1, 64, 28, 28, 7, 7, 1, 0), (5, 17, 9, 10, 7, 2, 3, 2, 1)]


def _conv2d_arrays(rng, dtype, shape):
    n, c_in, c_out, height, width, kh, kw, stride, padding = shape
    return (_normal(rng, (n, c_in, height, width), dtype), _normal(rng, (c_out, c_in, kh, kw), dtype), stride,
            padding)


def _conv2d_forward(rng, dtype, shape):
    x, w, stride, padding = _conv2d_arrays(rng, dtype, shape)
    return dict(x=x, w=w, b=_normal(rng, w.shape[0], dtype), stride=stride, padding=padding)


def _conv2d_backward(rng, dtype, shape):
    from fastnn.conv2d import conv2d_geometry

    x, w, stride, padding = _conv2d_arrays(rng, dtype, shape)
    _, _, out = conv2d_geometry(x.shape[2:], w.shape[2:], stride, padding)
    return dict(x=x, w=w, dy=_normal(rng, (x.shape[0], w.shape[0]) + out, dtype), stride=stride, padding=padding)


# (N, C, H, W, kernel_size, stride): non-overlapping (stride None), overlapping, gapped, non-square windows
# and strides, a window as large as the image, and one large enough for the Cython backend's threads.
POOL2D_SHAPES = [(1, 1, 1, 1, 1, None), (2, 3, 8, 8, 2, None), (3, 5, 7, 9, (3, 2), (2, 3)), (2, 4, 6, 6, 3, 1),
                 (1, 2, 5, 13, (1, 2), (4, 5)), (4, 7, 6, 5, (6, 5), 1), (16, 64, 22, 22, 2, 2)]


def _maxpool2d_input(rng, dtype, shape):
    n, channels, height, width, kernel_size, stride = shape
    x = (np.round(2 * rng.standard_normal((n, channels, height, width))) / 2).astype(dtype)  # many ties
    return x, kernel_size, stride


def _maxpool2d_forward(rng, dtype, shape):
    x, kernel_size, stride = _maxpool2d_input(rng, dtype, shape)
    return dict(x=x, kernel_size=kernel_size, stride=stride)


def _maxpool2d_backward(rng, dtype, shape):
    x, kernel_size, stride = _maxpool2d_input(rng, dtype, shape)
    y, argmax = fastnn.maxpool2d_forward(x, kernel_size=kernel_size, stride=stride, backend="numpy")
    return dict(dy=_normal(rng, y.shape, dtype), argmax=argmax, input_shape=x.shape)


ACTIVATION_SHAPES = [(1,), (5, 13), (2, 3, 17)] + LARGE_ELEMENTWISE
# PyTorch's default slope, a wider one, and a negative one (allowed, as in PyTorch).
SLOPES = [0.01, 0.2, -0.5]


def _leaky_relu_forward(rng, dtype, shape):
    X = _normal(rng, shape, dtype)
    X.flat[::7] = 0.0  # exact zeros take the slope's branch
    return dict(X=X, negative_slope=SLOPES[int(np.prod(shape)) % 3])


def _leaky_relu_backward(rng, dtype, shape):
    X = _normal(rng, shape, dtype)
    X.flat[::7] = 0.0
    return dict(dY=_normal(rng, shape, dtype), X=X, negative_slope=SLOPES[int(np.prod(shape)) % 3])


def _tanh_forward(rng, dtype, shape):
    return dict(X=_normal(rng, shape, dtype, scale=4.0))


def _tanh_backward(rng, dtype, shape):
    return dict(dY=_normal(rng, shape, dtype), Y=rng.uniform(-1, 1, shape).astype(dtype))


CASES = {
    "linear_forward": dict(make=_linear_forward, exact=False, shapes=LINEAR_SHAPES),
    "linear_backward": dict(make=_linear_backward, exact=False, shapes=LINEAR_SHAPES),
    "relu_forward": dict(make=_relu_forward, exact=True,
                         shapes=[(1,), (1, 1), (5, 13), (3, 8), (2, 3, 17), (4, 1000)] + LARGE_ELEMENTWISE),
    "relu_backward": dict(make=_relu_backward, exact=True,
                          shapes=[(1,), (1, 1), (5, 13), (3, 8), (2, 3, 17), (4, 1000)] + LARGE_ELEMENTWISE),
    "sigmoid_forward": dict(make=_sigmoid_forward, exact=False,
                            shapes=[(1,), (5, 13), (2, 3, 17)] + LARGE_ELEMENTWISE),
    "sigmoid_backward": dict(make=_sigmoid_backward, exact=False,
                             shapes=[(1,), (5, 13), (2, 3, 17)] + LARGE_ELEMENTWISE),
    "softmax_cross_entropy": dict(make=_softmax_cross_entropy, exact=False,
                                  shapes=[(1, 1), (1, 10), (5, 10), (33, 7), (500, 3)]),
    "logistic_loss": dict(make=_logistic_loss, exact=False, shapes=[(1,), (5,), (33,), (1001,)]),
    "gram": dict(make=_gram, exact=False, shapes=GRAM_SHAPES),
    "gram_matvec": dict(make=_gram_matvec, exact=False, shapes=GRAM_MATVEC_SHAPES),
    "gram_rows": dict(make=_gram_rows, exact=False, shapes=GRAM_ROWS_SHAPES),
    "perceptron_epoch": dict(make=_perceptron_epoch, exact=True,
                             shapes=[(1, 1, 2), (5, 13, 3), (33, 17, 10), (200, 64, 10)]),
    "kernel_perceptron_epoch": dict(make=_kernel_perceptron_epoch, exact=True,
                                    shapes=[(1, 2), (7, 3), (50, 10), (300, 4)]),
    "mlp_train_epoch": dict(make=_mlp_train_epoch, exact=False, shapes=MLP_SHAPES),
    "conv1d_forward": dict(make=_conv1d_forward, exact=False, shapes=CONV_SHAPES),
    "conv1d_backward": dict(make=_conv1d_backward, exact=False, shapes=CONV_SHAPES),
    "maxpool1d_forward": dict(make=_maxpool1d_forward, exact=True, shapes=POOL_SHAPES),
    "maxpool1d_backward": dict(make=_maxpool1d_backward, exact=False, shapes=POOL_SHAPES),
    "cnn1d_train_epoch": dict(make=_cnn1d_train_epoch, exact=False, shapes=CNN_SHAPES),
    "mlp_forward": dict(make=_mlp_forward, exact=False, shapes=FORWARD_MLP_SHAPES),
    "cnn1d_forward": dict(make=_cnn1d_forward, exact=False, shapes=FORWARD_CNN_SHAPES),
    "conv2d_forward": dict(make=_conv2d_forward, exact=False, shapes=CONV2D_SHAPES),
    "conv2d_backward": dict(make=_conv2d_backward, exact=False, shapes=CONV2D_SHAPES),
    "maxpool2d_forward": dict(make=_maxpool2d_forward, exact=True, shapes=POOL2D_SHAPES),
    "maxpool2d_backward": dict(make=_maxpool2d_backward, exact=False, shapes=POOL2D_SHAPES),
    "leaky_relu_forward": dict(make=_leaky_relu_forward, exact=True, shapes=ACTIVATION_SHAPES),
    "leaky_relu_backward": dict(make=_leaky_relu_backward, exact=True, shapes=ACTIVATION_SHAPES),
    "tanh_forward": dict(make=_tanh_forward, exact=False, shapes=ACTIVATION_SHAPES),
    "tanh_backward": dict(make=_tanh_backward, exact=False, shapes=ACTIVATION_SHAPES),
}


def call(kernel, inputs, backend):
    """Run public kernel `kernel` on `inputs`; always return a tuple of outputs."""
    out = getattr(fastnn, kernel)(**inputs, backend=backend)
    return out if isinstance(out, tuple) else (out,)


def tolerance(dtype):
    """Relative tolerance (to the largest magnitude in the expected output) for inexact kernels."""
    return 2e-5 if np.dtype(dtype) == np.float32 else 1e-12


def assert_matches_reference(actual, expected, dtype, exact):
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        if want is None:
            assert got is None
            continue
        if isinstance(want, int):  # a count, e.g. the mistakes of an epoch
            assert isinstance(got, int) and got == want
            continue
        if isinstance(want, float):
            assert isinstance(got, float)
            np.testing.assert_allclose(got, want, rtol=tolerance(dtype) * 10, atol=tolerance(dtype))
            continue
        assert got.dtype == want.dtype and got.shape == want.shape
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            scale = max(1.0, float(np.max(np.abs(want))))
            np.testing.assert_allclose(got, want, rtol=tolerance(dtype), atol=tolerance(dtype) * scale)
