"""Layers of the training system, built on the backend kernels, and the Sequential container.

A layer's forward(X) caches what its backward(dY) needs and returns a new array; backward returns
the gradient with respect to the layer's input and writes the gradients of its parameters into
views of the model's flat gradient vector. Sequential owns two flat vectors, params and grads,
and hands each layer views of them: optimizers then update every parameter in one pass, and a
dense stack's parameters have exactly the layout of the fused epoch kernel (fastnn.mlp_train_epoch).

Layers call the backend functions directly with preallocated outputs: Sequential.forward validates
the input once, and everything after it is an array this module made (C-contiguous, right dtype).
"""
import contextlib
import copy
import math
import threading

import numpy as np

from .. import _threads
from .. import _validation as v
from .._config import resolve
from ..activations import _slope
from ..inference import conv_logits, dense_logits

INITIALIZERS = ("normal", "he", "glorot", "pytorch")

# Chunks of layer-by-layer inference: at most MAX_INFERENCE_ROWS rows (a dense network's BLAS products
# want many), and at most INFERENCE_CHUNK_ELEMENTS elements in any one layer's activations. The seed's
# 2-layer CNN (64 x 22 x 22 activations per image) gets 270 rows, and predicted 2,048 images 1.7x
# (numba) and 2.5x (cython) faster than in one chunk of 2,048 rows (shared 2-core machine, medians of
# 3); dense networks up to 2,048 wide keep 4,096 rows.
MAX_INFERENCE_ROWS = 4096
INFERENCE_CHUNK_ELEMENTS = 1 << 23


class Layer:
    """A stage of a network. Subclasses with parameters describe them in param_shapes()."""

    def param_shapes(self):
        """{name: shape} of this layer's parameters, in their order in the flat vector."""
        return {}

    def bind(self, params, grads):
        """Receive {name: view} of the model's parameter and gradient vectors."""
        self.params, self.grads = params, grads

    def init_params(self, rng):
        """Fill self.params from the random Generator rng."""

    def output_shape(self, input_shape):
        """Shape of one example's output for one example's input shape."""
        return input_shape

    def forward(self, X, kernels, training):
        raise NotImplementedError

    def backward(self, dY, kernels):
        raise NotImplementedError

    def _empty(self, name, shape, dtype, reuse=True):
        """An uninitialised array of shape and dtype for this layer to fill.

        Inside Sequential.reusing_buffers() and with reuse True, it is a view of the first rows of an
        array kept under `name` and reused by the next call (grown when too small); else a new array.
        """
        buffers = self.__dict__.get("_buffers")
        if buffers is None or not reuse:
            return np.empty(shape, dtype=dtype)
        buffer = buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.shape[1:] != shape[1:] or buffer.shape[0] < shape[0]:
            buffer = buffers[name] = np.empty(shape, dtype=dtype)
        return buffer[:shape[0]]


def check_init(init):
    if init not in INITIALIZERS:
        raise ValueError(f"init must be one of {INITIALIZERS}, got {init!r}")
    return init


def positive_int(name, value):
    """value as a Python int in [1, 2**40]; ValueError naming `name` otherwise (fastnn._validation.integer)."""
    return v.integer(name, value, 1)


def init_weights(rng, init, scale, weight, bias, fan_in, fan_out):
    """Fill weight (and bias, unless None) in place by scheme `init` (see Linear)."""
    if init == "normal":
        weight[...] = rng.normal(0.0, scale, weight.shape)
        if bias is not None:
            bias[...] = rng.normal(0.0, scale, bias.shape)
        return
    if init == "pytorch":  # torch.nn.Linear / Conv1d defaults: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both
        limit = 1.0 / math.sqrt(fan_in)
        weight[...] = rng.uniform(-limit, limit, weight.shape)
        if bias is not None:
            bias[...] = rng.uniform(-limit, limit, bias.shape)
        return
    if init == "he":
        weight[...] = rng.normal(0.0, math.sqrt(2.0 / fan_in), weight.shape)
    else:
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        weight[...] = rng.uniform(-limit, limit, weight.shape)
    if bias is not None:
        bias[...] = 0.0


class Linear(Layer):
    """Y = X W + b with X (N, in_features), W (in_features, out_features), b (out_features,).

    init: 'normal' draws W and b from N(0, scale^2) (the seed's N(0, 0.1^2)); 'he' draws W from
    N(0, 2 / in_features) and 'glorot' from U(-a, a) with a = sqrt(6 / (in + out)), biases 0;
    'pytorch' draws W and b from U(-a, a) with a = 1 / sqrt(in_features), as torch.nn.Linear does.
    bias: False for Y = X W (no b parameter).
    """

    def __init__(self, in_features, out_features, *, init="normal", scale=0.1, bias=True):
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.init, self.scale, self.bias = check_init(init), scale, bool(bias)
        self.need_dX = True  # Sequential turns it off for the first layer

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}{'' if self.bias else ', bias=False'})"

    def param_shapes(self):
        shapes = {"W": (self.in_features, self.out_features)}
        if self.bias:
            shapes["b"] = (self.out_features,)
        return shapes

    def init_params(self, rng):
        init_weights(rng, self.init, self.scale, self.params["W"], self.params.get("b"), self.in_features,
                     self.out_features)

    def output_shape(self, input_shape):
        if input_shape != (self.in_features,):
            raise ValueError(f"{self!r} takes inputs of shape ({self.in_features},), got {input_shape}")
        return (self.out_features,)

    def forward(self, X, kernels, training):
        Y = self._empty("Y", (X.shape[0], self.out_features), X.dtype, reuse=training)
        kernels.linear_forward(X, self.params["W"], self.params.get("b"), Y)
        self.X = X if training else None
        return Y

    def backward(self, dY, kernels, mask=None):
        """dX (None for the first layer); dW, db into the gradient views. mask: a following ReLU's bits."""
        dX = self._empty("dX", self.X.shape, self.X.dtype) if self.need_dX else None
        db = self.grads["b"] if self.bias else np.empty(self.out_features, dtype=dY.dtype)  # discarded
        kernels.linear_backward(self.X, self.params["W"], dY, mask, dX, self.grads["W"], db)
        return dX


# Elements per call of an activation kernel in the layers: under the compiled kernels' OpenMP threshold
# (1 << 17 elements), so each call runs on one thread, and Python threads share a large array instead.
# Layers alternate these passes with BLAS products: OpenMP workers keep spinning after their region
# (GNU OpenMP's default waiting, which fastnn leaves to the user and to PyTorch, who share the runtime)
# and take the cores the next GEMM needs (a batch-5000 epoch measured 1.25x slower), while idle Python
# threads block.
SERIAL_BLOCK_ELEMENTS = 1 << 16


def run_in_row_blocks(kernel, *arrays):
    """kernel(*blocks) over blocks of the same rows of every array, without an OpenMP region.

    arrays: C-contiguous, with the same first dimension (rows). Blocks of rows hold at most
    SERIAL_BLOCK_ELEMENTS elements of arrays[0] (at least one row); they are shared among up to
    fastnn.get_num_threads() Python threads (each kernel call releases the GIL). Exceptions propagate.
    """
    n_rows = arrays[0].shape[0]
    row_size = math.prod(arrays[0].shape[1:])
    if n_rows * row_size <= SERIAL_BLOCK_ELEMENTS:
        kernel(*arrays)
        return
    rows_per_block = max(1, SERIAL_BLOCK_ELEMENTS // max(1, row_size))
    blocks = [(start, min(n_rows, start + rows_per_block)) for start in range(0, n_rows, rows_per_block)]
    workers = min(_threads.get_num_threads(), len(blocks))
    errors = []

    def work(part):
        try:
            for start, stop in part:
                kernel(*(array[start:stop] for array in arrays))
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(blocks[i::workers],)) for i in range(1, workers)]
    for thread in threads:
        thread.start()
    work(blocks[0::workers])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class ReLU(Layer):
    """max(X, 0) elementwise, remembering one bit per activation for the backward pass."""

    def __repr__(self):
        return "ReLU()"

    def forward(self, X, kernels, training, in_place=False):
        """max(X, 0); in_place: write it over X (which the caller owns and no longer needs)."""
        rows = X.reshape(-1, X.shape[-1])
        Y = rows if in_place else self._empty("Y", rows.shape, rows.dtype, reuse=training)
        mask = self._empty("mask", (rows.shape[0], (rows.shape[1] + 7) // 8), np.uint8, reuse=training)
        run_in_row_blocks(kernels.relu_forward, rows, Y, mask)
        self.mask = mask if training else None
        return Y.reshape(X.shape)

    def backward(self, dY, kernels):
        rows = dY.reshape(-1, dY.shape[-1])
        dX = self._empty("dX", rows.shape, rows.dtype)
        run_in_row_blocks(kernels.relu_backward, rows, self.mask, dX)
        return dX.reshape(dY.shape)


class Sigmoid(Layer):
    """1 / (1 + exp(-X)) elementwise, remembering its output for the backward pass."""

    def __repr__(self):
        return "Sigmoid()"

    def forward(self, X, kernels, training):
        Y = self._empty("Y", X.shape, X.dtype, reuse=training)
        run_in_row_blocks(kernels.sigmoid_forward, X.reshape(-1), Y.reshape(-1))
        self.Y = Y if training else None
        return Y

    def backward(self, dY, kernels):
        dX = self._empty("dX", dY.shape, dY.dtype)
        run_in_row_blocks(kernels.sigmoid_backward, dY.reshape(-1), self.Y.reshape(-1), dX.reshape(-1))
        return dX


class LeakyReLU(Layer):
    """X where X > 0, else negative_slope X, elementwise (PyTorch's default slope 0.01); remembers X."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = _slope(negative_slope)

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def forward(self, X, kernels, training):
        Y = self._empty("Y", X.shape, X.dtype, reuse=training)
        slope = self.negative_slope
        run_in_row_blocks(lambda x, y: kernels.leaky_relu_forward(x, slope, y), X.reshape(-1), Y.reshape(-1))
        self.X = X if training else None
        return Y

    def backward(self, dY, kernels):
        dX = self._empty("dX", dY.shape, dY.dtype)
        slope = self.negative_slope
        run_in_row_blocks(lambda dy, x, dx: kernels.leaky_relu_backward(dy, x, slope, dx),
                          np.ascontiguousarray(dY).reshape(-1), self.X.reshape(-1), dX.reshape(-1))
        return dX


class Tanh(Layer):
    """tanh(X) elementwise, remembering its output for the backward pass."""

    def __repr__(self):
        return "Tanh()"

    def forward(self, X, kernels, training):
        Y = self._empty("Y", X.shape, X.dtype, reuse=training)
        run_in_row_blocks(kernels.tanh_forward, X.reshape(-1), Y.reshape(-1))
        self.Y = Y if training else None
        return Y

    def backward(self, dY, kernels):
        dX = self._empty("dX", dY.shape, dY.dtype)
        run_in_row_blocks(kernels.tanh_backward, np.ascontiguousarray(dY).reshape(-1), self.Y.reshape(-1),
                          dX.reshape(-1))
        return dX


# The activations a network's hidden layers may use, by name (MLPClassifier, CNN2DClassifier, mlp, conv2d_net).
ACTIVATION_LAYERS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
# Those the fused dense epochs and the compiled dense inference (fastnn.training.ACTIVATIONS) implement;
# a dense stack with another activation trains and predicts layer by layer.
FUSED_ACTIVATION_LAYERS = {"relu": ReLU, "sigmoid": Sigmoid}


def _example_shape(input_shape):
    """The shape of one example as a tuple of ints in [1, 2**40] with at most 2**31 - 1 elements."""
    try:
        dims = tuple(input_shape)
    except TypeError:
        raise ValueError(f"input_shape must be a tuple of positive integers, got {input_shape!r}") from None
    shape = tuple(v.integer(f"input_shape[{i}]", d, 1) for i, d in enumerate(dims))
    v.element_count("examples", math.prod(shape), f"input_shape={shape}")
    return shape


class Sequential:
    """Layers applied in order, with all parameters in one flat vector.

    Parameters
    ----------
    layers : Layer instances; the last one outputs the logits (N, n_classes)
    input_shape : shape of one example, e.g. (784,); inferred from a leading Linear layer when None
    dtype : float32 (default) or float64, the dtype of parameters, activations and inputs
    random_state : seed or numpy Generator for the initialisation
    backend : backend the layers run on (None: the current backend at each call)

    Attributes
    ----------
    params, grads : (P,) arrays of `dtype`; each layer's parameters are views into them
    """

    def __init__(self, layers, *, input_shape=None, dtype=np.float32, random_state=None, backend=None):
        self.layers = list(layers)
        if not self.layers or not all(isinstance(layer, Layer) for layer in self.layers):
            raise TypeError("Sequential needs a non-empty sequence of fastnn.nn Layer instances")
        self.dtype = np.dtype(dtype)
        if self.dtype not in v.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        if input_shape is None:
            if not isinstance(self.layers[0], Linear):
                raise ValueError("input_shape (the shape of one example) is needed when the first layer is not Linear")
            input_shape = (self.layers[0].in_features,)
        self.input_shape = _example_shape(input_shape)
        shape = self.input_shape
        self.max_activation = math.prod(shape)  # elements per example of the largest array a forward pass holds
        for layer in self.layers:
            shape = layer.output_shape(shape)
            v.element_count("activations", math.prod(shape), f"{layer!r} on examples of shape {self.input_shape}")
            self.max_activation = max(self.max_activation, math.prod(shape))
        if len(shape) != 1:
            raise ValueError(f"the last layer must output (n_classes,) per example, got {shape}")
        self.n_outputs = shape[0]
        self.backend = backend
        self._allocate()
        self.initialize(random_state)

    def __repr__(self):
        return f"Sequential([{', '.join(map(repr, self.layers))}], dtype={self.dtype.name})"

    def _allocate(self):
        sizes = [math.prod(shape) for layer in self.layers for shape in layer.param_shapes().values()]
        v.element_count("a network", sum(sizes), f"the layers {self.layers!r}")
        self.params = np.zeros(sum(sizes), dtype=self.dtype)
        self.grads = np.zeros_like(self.params)
        self._bind_views()

    def _bind_views(self):
        """Give every layer views of its parameters and gradients in the flat vectors."""
        self.param_slices = []  # (layer index, name, start, stop)
        start = 0
        for i, layer in enumerate(self.layers):
            params, grads = {}, {}
            for name, shape in layer.param_shapes().items():
                stop = start + math.prod(shape)
                params[name] = self.params[start:stop].reshape(shape)
                grads[name] = self.grads[start:stop].reshape(shape)
                self.param_slices.append((i, name, start, stop))
                start = stop
            layer.bind(params, grads)
            if hasattr(layer, "need_dX"):  # Linear, Conv1D: the first layer needs no input gradient
                layer.need_dX = i > 0

    def __getstate__(self):
        # Views would be pickled as copies that no longer share memory with params: drop them (and
        # the activations cached for backward) and bind fresh views when unpickled.
        state = dict(self.__dict__)
        state["layers"] = [copy.copy(layer) for layer in self.layers]
        for layer in state["layers"]:
            for attribute in ("params", "grads", "X", "Y", "mask", "argmax", "_buffers"):
                layer.__dict__.pop(attribute, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind_views()

    def copy(self, dtype=None):
        """An independent model with the same layers and parameters (converted to dtype if given)."""
        clone = copy.copy(self)
        clone.layers = [copy.copy(layer) for layer in self.layers]
        clone.dtype = self.dtype if dtype is None else np.dtype(dtype)
        clone._allocate()
        clone.params[...] = self.params
        return clone

    def replica(self):
        """A model sharing this one's parameter array, with its own gradient array and layer state.

        For computing the gradients of different rows of a batch on different threads: each replica's
        forward and backward keep their activations in their own layers and write their own grads,
        while an update of the shared params is seen by all. Make replicas outside reusing_buffers().
        """
        clone = copy.copy(self)
        clone.layers = [copy.copy(layer) for layer in self.layers]
        for layer in clone.layers:
            for attribute in ("X", "Y", "mask", "argmax", "_buffers"):
                layer.__dict__.pop(attribute, None)
        clone.grads = np.zeros_like(self.grads)
        clone._bind_views()
        return clone

    @property
    def n_parameters(self):
        return self.params.size

    @property
    def weight_slices(self):
        """(start, stop) of every weight matrix in params: what L2 weight decay applies to (not biases)."""
        return [(start, stop) for _, name, start, stop in self.param_slices if name in ("W", "w")]

    def initialize(self, random_state=None):
        """Draw every parameter again, layer by layer, from np.random.default_rng(random_state)."""
        rng = np.random.default_rng(random_state)
        for layer in self.layers:
            layer.init_params(rng)

    def dense_spec(self):
        """(sizes, activation) when this is Linear, act, Linear, ..., Linear with one activation kind among
        FUSED_ACTIVATION_LAYERS (the stacks fastnn.mlp_train_epoch trains in one call), else None."""
        linears, activations = self.layers[0::2], self.layers[1::2]
        if not all(type(layer) is Linear and layer.bias for layer in linears):
            return None
        kinds = {type(layer) for layer in activations}
        if len(kinds) > 1 or not kinds <= set(FUSED_ACTIVATION_LAYERS.values()) or len(self.layers) % 2 == 0:
            return None
        activation = next((name for name, cls in FUSED_ACTIVATION_LAYERS.items() if {cls} == kinds), "relu")
        return [linears[0].in_features] + [layer.out_features for layer in linears], activation

    def check_input(self, X, name="X"):
        """X as a C-contiguous array of this model's dtype with examples of shape input_shape."""
        X = v.float_array(name, X, dtype=self.dtype)
        if X.shape[1:] != self.input_shape:
            raise ValueError(f"{name} has shape {X.shape}; this model takes (n, {', '.join(map(str, self.input_shape))})")
        return X

    def forward(self, X, *, training=False):
        """Logits (N, n_outputs) for X (N, *input_shape). training=True keeps what backward needs.

        A ReLU that follows a Linear layer works in place on that layer's output (its own array).
        """
        X = self.check_input(X)
        kernels = resolve(self.backend)
        previous = None
        for layer in self.layers:
            if isinstance(layer, ReLU) and isinstance(previous, Linear):
                X = layer.forward(X, kernels, training, in_place=True)
            else:
                X = layer.forward(X, kernels, training)
            previous = layer
        return X

    @contextlib.contextmanager
    def reusing_buffers(self):
        """Inside this block, training forward and backward passes reuse their arrays from one call to the next.

        For a training loop: it saves allocating (and the OS zeroing) every activation and gradient
        array per batch. The logits forward(training=True) returns then live in a reused array too,
        valid until the next training forward. The arrays are released when the block ends.
        """
        for layer in self.layers:
            layer._buffers = {}
        try:
            yield self
        finally:
            for layer in self.layers:
                layer.__dict__.pop("_buffers", None)

    def backward(self, dlogits):
        """Fill self.grads from the gradient of the loss w.r.t. the logits of the last forward(training=True).

        A ReLU that follows a Linear layer is folded into that layer's backward (one fused pass).
        """
        kernels = resolve(self.backend)
        d = dlogits
        i = len(self.layers) - 1
        while i >= 0:
            layer = self.layers[i]
            if isinstance(layer, ReLU) and i > 0 and isinstance(self.layers[i - 1], Linear):
                d = self.layers[i - 1].backward(d, kernels, mask=layer.mask)
                i -= 2
            else:
                d = layer.backward(d, kernels)
                i -= 1

    def predict_logits(self, X, *, chunk_rows=None):
        """Logits (N, n_outputs) for X (N, *input_shape), keeping nothing for backward.

        A dense stack (dense_spec) or a conv stack (fastnn.nn.conv_layers.conv_stack_spec) runs as one
        compiled call of its backend (fastnn.mlp_forward, fastnn.cnn1d_forward: every layer over
        cache-sized chunks of rows, no Python between layers); other models run layer_logits.
        X is not scanned for NaN or infinity (they propagate, as in forward).
        """
        X = self.check_input(X)
        logits = self.compiled_logits(X)
        return logits if logits is not None else self.layer_logits(X, chunk_rows=chunk_rows)

    def inference_chunk_rows(self):
        """Rows per chunk of layer_logits: up to MAX_INFERENCE_ROWS, fewer when one layer's activations
        for that many rows would pass INFERENCE_CHUNK_ELEMENTS (wide conv layers)."""
        widest = self.__dict__.get("max_activation", 1)  # models pickled before it existed: MAX_INFERENCE_ROWS
        return max(1, min(MAX_INFERENCE_ROWS, INFERENCE_CHUNK_ELEMENTS // widest))

    def compiled_logits(self, X):
        """The logits of X (already checked by check_input) in one compiled call, or None when this model
        is not a stack the compiled inference supports."""
        from .conv_layers import conv_stack_spec

        dense = self.dense_spec()
        if dense is not None:
            return dense_logits(X, self.params, dense[0], dense[1], backend=self.backend)
        conv = conv_stack_spec(self)
        if conv is not None:
            return conv_logits(X, self.params, backend=self.backend, **conv)
        return None

    def layer_logits(self, X, *, chunk_rows=None):
        """forward(X) layer by layer, in chunks of chunk_rows rows (None: inference_chunk_rows()) so memory
        for activations stays bounded, with BLAS single-threaded (as Trainer's layer epochs: on the shared
        2-core machine it predicted 2,048 28x28 images with the seed's CNN 3.3x (numba) and 1.2x (cython)
        faster, 10,000 rows of a tanh 784-128-10 MLP 1.15-1.25x)."""
        from ..backends._compiled import _one_blas_thread

        X = self.check_input(X)
        chunk_rows = self.inference_chunk_rows() if chunk_rows is None else chunk_rows
        with _one_blas_thread():
            return np.concatenate([self.forward(X[start:start + chunk_rows])
                                   for start in range(0, len(X), chunk_rows)])


def mlp(sizes, *, activation="relu", init="normal", scale=0.1, dtype=np.float32, random_state=None, backend=None):
    """Sequential Linear(sizes[0], sizes[1]), act, ..., Linear(sizes[-2], sizes[-1]): an MLP."""
    if activation not in ACTIVATION_LAYERS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_LAYERS)}, got {activation!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes!r}")
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(d_in, d_out, init=init, scale=scale), ACTIVATION_LAYERS[activation]()]
    return Sequential(layers[:-1], dtype=dtype, random_state=random_state, backend=backend)
