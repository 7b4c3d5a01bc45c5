"""CNN2DClassifier: a small image CNN (the seed's 2-layer CNN by default) as a scikit-learn estimator.

fit builds fastnn.nn.conv2d_net (Conv2D, activation[, MaxPool2D], ..., Flatten, [Linear, activation]*,
Linear) and trains it with fastnn.nn.Trainer, layer by layer. save() and load() use a .npz file
without pickle.

Images come as (n, H, W) (one channel), (n, C, H, W), or flat (n, C*H*W) with image_shape. Flat X
without image_shape is taken as images of one row, (1, 1, n_features): so every 2-D X that scikit-learn
hands an estimator is a valid input, and a network whose kernels or pooling are taller than one row
says so and asks for image_shape.
"""
import math
import numbers

import numpy as np
from sklearn.utils.validation import check_array, check_X_y, validate_data

from ..nn import Conv2D, MaxPool2D, conv2d_net
from ..nn.layers import ACTIVATION_LAYERS
from ._network import NetworkClassifier, int_tuple, is_int

FILE_FORMAT = "fastnn.CNN2DClassifier/1"


def _pair(value, low):
    """An int or a pair of ints in [low, 2**40] as a pair, or None when it is neither."""
    if is_int(value, low):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(item, low) for item in value):
        return int(value[0]), int(value[1])
    return None


def pair_tuple(name, value, low):
    """value (one entry or a sequence of entries, each an int or an (h, w) pair of ints in [low, 2**40]) as a
    tuple of pairs; ValueError naming `name` otherwise."""
    entries = (value,) if isinstance(value, numbers.Integral) else value
    try:
        pairs = tuple(_pair(entry, low) for entry in entries)
    except TypeError:
        pairs = (None,)
    if any(pair is None for pair in pairs):
        raise ValueError(f"{name} must be a tuple with one entry per conv layer, each an integer or a pair "
                         f"(height, width) of integers in [{low}, 2**40], got {value!r}")
    return pairs


def image_shape_param(value):
    """image_shape (None, (H, W) or (C, H, W)) as None or (C, H, W); ValueError naming it otherwise."""
    if value is None:
        return None
    try:
        dims = tuple(value)
    except TypeError:
        dims = ()
    if len(dims) not in (2, 3) or not all(is_int(d, 1) for d in dims):
        raise ValueError(f"image_shape must be None, (H, W) or (C, H, W) with positive integers, got {value!r}")
    dims = tuple(int(d) for d in dims)
    return dims if len(dims) == 3 else (1,) + dims


class CNN2DClassifier(NetworkClassifier):
    """Image CNN classifier: (Conv2D, activation[, MaxPool2D]) per entry of `channels`, Flatten,
    (Linear, activation) per entry of `hidden_layer_sizes`, Linear, softmax.

    X is (n_samples, H, W) (one channel), (n_samples, C, H, W), or flat (n_samples, C*H*W) with
    image_shape. A flat X without image_shape is a one-row image (1, 1, n_features) (this keeps any 2-D
    data valid, as scikit-learn's estimator checks need; kernels of height 1 and pool=None train on it).
    At prediction, a flat X is read as images of the fitted shape.

    Parameters
    ----------
    channels : tuple of int, default (64,): output channels of each conv layer
    kernel_sizes, strides, paddings : one entry per conv layer, each an int or a pair (height, width);
        default (7,), (1,), (0,): zero padding on each side, PyTorch's Conv2d geometry. The defaults
        are the seed's 2-layer CNN (80,650 parameters on 28x28 images with 10 classes); channels=(64, 128),
        kernel_sizes=(7, 2), strides=(1, 1), paddings=(0, 0) is its 3-layer CNN (68,106), and
        channels=(6, 16), kernel_sizes=(5, 5), strides=(1, 1), paddings=(0, 0),
        hidden_layer_sizes=(120, 84) the CIFAR-10 tutorial CNN (62,006 on 3x32x32).
    pool : None, int or pair (default 2): max-pooling window (and stride) after every conv activation
    hidden_layer_sizes : tuple of int, default (): linear layers between the conv stack and the output
    activation : 'relu' (default), 'leaky_relu' (slope 0.01), 'tanh' or 'sigmoid', after every conv and
        hidden linear layer
    image_shape : None (default), (H, W) or (C, H, W): the shape of each row of a flat X
    optimizer : 'sgd' (default, with momentum) or 'adam'
    learning_rate : float, default 0.01
    momentum, weight_decay, batch_size (default 64), epochs (default 10), patience, validation_fraction,
    shuffle, random_state, dtype, backend, verbose, train_metrics : as for MLPClassifier
    (fastnn.models.MLPClassifier); initialisation as PyTorch's Conv2d and Linear:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.

    Attributes
    ----------
    classes_, history_, n_iter_, n_updates_, best_epoch_ : as for MLPClassifier
    n_features_in_ : values per example, C*H*W (whatever the layout of X)
    model_ : the fitted fastnn.nn.Sequential (model_.input_shape is (C, H, W))
    """

    FILE_FORMAT = FILE_FORMAT
    TUPLE_PARAMS = ("channels", "kernel_sizes", "strides", "paddings", "pool", "hidden_layer_sizes", "image_shape")

    def __init__(self, channels=(64,), kernel_sizes=(7,), strides=(1,), paddings=(0,), *, pool=2,
                 hidden_layer_sizes=(), activation="relu", image_shape=None, optimizer="sgd", learning_rate=0.01,
                 momentum=0.0, weight_decay=0.0, batch_size=64, epochs=10, patience=None, validation_fraction=0.1,
                 shuffle=True, random_state=None, dtype="float32", backend=None, verbose=False,
                 train_metrics="running"):
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.strides = strides
        self.paddings = paddings
        self.pool = pool
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.image_shape = image_shape
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.backend = backend
        self.verbose = verbose
        self.train_metrics = train_metrics

    # ------------------------------------------------------------------ checks
    def _architecture(self):
        channels = int_tuple("channels", self.channels)
        if not channels:
            raise ValueError("channels must name at least one conv layer")
        geometry = {"kernel_sizes": pair_tuple("kernel_sizes", self.kernel_sizes, 1),
                    "strides": pair_tuple("strides", self.strides, 1),
                    "paddings": pair_tuple("paddings", self.paddings, 0)}
        for name, values in geometry.items():
            if len(values) != len(channels):
                raise ValueError(f"{name} must have one entry per conv layer ({len(channels)} channels), "
                                 f"got {getattr(self, name)!r}")
        pool = None if self.pool is None else _pair(self.pool, 1)
        if self.pool is not None and pool is None:
            raise ValueError(f"pool must be None, a positive integer or a pair of them (at most 2**40), "
                             f"got {self.pool!r}")
        if self.activation not in ACTIVATION_LAYERS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATION_LAYERS)}, got {self.activation!r}")
        image_shape_param(self.image_shape)
        return dict(channels=channels, **geometry, pool=pool,
                    hidden_layer_sizes=int_tuple("hidden_layer_sizes", self.hidden_layer_sizes),
                    activation=self.activation)

    # ------------------------------------------------------------------ input
    def _input(self, X, dtype, *, reset, y="no_validation"):
        """X as a C-contiguous (n, C, H, W) array of dtype (see the class docstring); (X, y) when y is given."""
        image_shape = image_shape_param(self.image_shape)
        if not hasattr(X, "ndim"):  # lists, array-likes: converted once here (DataFrames and arrays have ndim)
            X = np.asarray(X)
        if X.ndim <= 2:  # flat rows (and anything scikit-learn's checks must reject): its validation
            checked = validate_data(self, X, y, dtype=dtype, order="C", reset=reset)
            X = checked[0] if isinstance(checked, tuple) else checked
            images = self._flat_image_shape(X.shape[1], image_shape, reset)
        else:
            checked = self._nd_input(X, y, dtype, reset)
            X = checked[0] if isinstance(checked, tuple) else checked
            if X.ndim not in (3, 4):
                raise ValueError(f"X must be (n_samples, H, W), (n_samples, C, H, W) or (n_samples, C*H*W), "
                                 f"got shape {X.shape}")
            images = X.shape[1:] if X.ndim == 4 else (1,) + X.shape[1:]
            if image_shape is not None and images != image_shape:
                raise ValueError(f"X has images of shape {images} (as (C, H, W)) but image_shape is "
                                 f"{self.image_shape!r}")
        if reset:
            self._images_in = images  # X_val, predict: images of this shape (model_ is still the old one in fit)
        elif images != self._images_in:
            raise ValueError(f"X has images of shape {images} (as (C, H, W)); this model was fitted on "
                             f"{self._images_in}")
        X = X.reshape((X.shape[0],) + tuple(images))
        return (X, checked[1]) if isinstance(checked, tuple) else X

    def _flat_image_shape(self, n_features, image_shape, reset):
        """The (C, H, W) of rows of n_features values: image_shape, the fitted shape at prediction, or (1, 1, n)."""
        if image_shape is not None:
            if math.prod(image_shape) != n_features:
                raise ValueError(f"image_shape {self.image_shape!r} holds {math.prod(image_shape)} values but X "
                                 f"has {n_features} features per row")
            return image_shape
        if not reset:
            return self._images_in  # validate_data has checked n_features against n_features_in_
        return (1, 1, n_features)

    def _nd_input(self, X, y, dtype, reset):
        """check_array / check_X_y of images (3-D or more); n_features_in_ = values per example."""
        if isinstance(y, str) and y == "no_validation":
            X = check_array(X, dtype=dtype, order="C", allow_nd=True)
            checked = X
        else:
            X, y = check_X_y(X, y, dtype=dtype, order="C", allow_nd=True)
            checked = (X, y)
        n_values = math.prod(X.shape[1:])
        if reset:
            self.n_features_in_ = n_values
            self.__dict__.pop("feature_names_in_", None)
        elif hasattr(self, "n_features_in_") and n_values != self.n_features_in_:
            raise ValueError(f"X has {n_values} values per example (shape {X.shape}), but {type(self).__name__} "
                             f"was fitted on {self.n_features_in_}")
        return checked

    @staticmethod
    def _n_features_fit(n_features_in, input_shape):
        return n_features_in == math.prod(input_shape)

    @classmethod
    def _from_config(cls, config, arrays):
        estimator, model = super()._from_config(config, arrays)
        image_shape = image_shape_param(estimator.image_shape)
        if image_shape is not None and image_shape != model.input_shape:
            raise ValueError(f"its image_shape {estimator.image_shape!r} is not the network's input shape "
                             f"{model.input_shape}")
        estimator._images_in = model.input_shape
        return estimator, model

    # ------------------------------------------------------------------ the network
    def _n_parameters(self, input_shape, n_classes, architecture):
        if len(input_shape) != 3:
            raise ValueError(f"input_shape {input_shape} is not (C, H, W)")
        shape, count = tuple(input_shape), 0
        for c_out, k, stride, padding in zip(architecture["channels"], architecture["kernel_sizes"],
                                             architecture["strides"], architecture["paddings"]):
            count += c_out * shape[0] * k[0] * k[1] + c_out
            shape = Conv2D(shape[0], c_out, k, stride=stride, padding=padding).output_shape(shape)
            if architecture["pool"] is not None:
                shape = MaxPool2D(architecture["pool"]).output_shape(shape)
        width = math.prod(shape)
        for size in architecture["hidden_layer_sizes"] + (n_classes,):
            count += width * size + size
            width = size
        return count

    def _build(self, input_shape, n_classes, architecture, dtype, random_state):
        try:
            return conv2d_net(input_shape, n_classes, **architecture, dtype=dtype, random_state=random_state,
                              backend=self.backend)
        except ValueError as exc:
            hint = (" (a flat X without image_shape is read as images of one row: pass image_shape=(C, H, W))"
                    if self.image_shape is None and input_shape[1] == 1 else "")
            raise ValueError(f"images of shape {tuple(input_shape)} (C, H, W) do not fit this network{hint}: "
                             f"{exc}") from exc
