"""CNN1DClassifier: a small 1-D convolutional network (MNIST-1D's ConvBase by default) as a scikit-learn estimator.

fit builds fastnn.nn.conv1d_net (Conv1D, ReLU[, MaxPool1D], ..., Flatten, Linear) and trains it with
fastnn.nn.Trainer. Without pooling, every epoch runs inside the backend (fastnn.cnn1d_train_epoch);
with pooling, layer by layer. save() and load() use a .npz file without pickle.
"""
from sklearn.utils.validation import validate_data

from ..nn import Conv1D, MaxPool1D, conv1d_net
from ._network import NetworkClassifier, int_tuple, is_int

FILE_FORMAT = "fastnn.CNN1DClassifier/1"


class CNN1DClassifier(NetworkClassifier):
    """1-D CNN classifier: (Conv1D, ReLU[, MaxPool1D]) per entry of `channels`, Flatten, Linear, softmax.

    X is (n_samples, L) (one input channel) or (n_samples, C, L).

    Parameters
    ----------
    channels : tuple of int, default (25, 25, 25): output channels of each conv layer
    kernel_sizes, strides, paddings : tuples of int, one per conv layer, default (5, 3, 3), (2, 2, 2),
        (1, 1, 1): zero padding at both ends; the defaults are MNIST-1D's ConvBase. Integers in [1, 2**40]
        (paddings in [0, max(K - 1, L_in)], as fastnn.conv1d_forward); the network may have at most
        2**31 - 1 parameters
    pool : None (default) or int: max-pooling window (and stride) after every ReLU
    optimizer : 'adam' (default) or 'sgd' (with momentum)
    learning_rate : float, default 0.01
    momentum, weight_decay, batch_size (default 100), epochs (default 200), patience,
    validation_fraction, shuffle, random_state, dtype, backend, verbose, train_metrics : as for MLPClassifier
    (fastnn.models.MLPClassifier); initialisation as PyTorch's Conv1d and Linear:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.

    Attributes
    ----------
    classes_, history_, n_iter_, n_updates_, best_epoch_, n_features_in_ : as for MLPClassifier
    (n_features_in_ is X.shape[1]: L for 2-D input, C for 3-D input)
    model_ : the fitted fastnn.nn.Sequential
    """

    FILE_FORMAT = FILE_FORMAT
    TUPLE_PARAMS = ("channels", "kernel_sizes", "strides", "paddings")

    def __init__(self, channels=(25, 25, 25), kernel_sizes=(5, 3, 3), strides=(2, 2, 2), paddings=(1, 1, 1), *,
                 pool=None, optimizer="adam", learning_rate=0.01, momentum=0.0, weight_decay=0.0, batch_size=100,
                 epochs=200, patience=None, validation_fraction=0.1, shuffle=True, random_state=None,
                 dtype="float32", backend=None, verbose=False,
                 train_metrics="running"):
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.strides = strides
        self.paddings = paddings
        self.pool = pool
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

    def _architecture(self):
        channels = int_tuple("channels", self.channels)
        kernel_sizes = int_tuple("kernel_sizes", self.kernel_sizes)
        strides = int_tuple("strides", self.strides)
        paddings = int_tuple("paddings", self.paddings, low=0)
        if not channels:
            raise ValueError("channels must name at least one conv layer")
        for name, values in (("kernel_sizes", kernel_sizes), ("strides", strides), ("paddings", paddings)):
            if len(values) != len(channels):
                raise ValueError(f"{name} must have one entry per conv layer ({len(channels)} channels), got {values!r}")
        if self.pool is not None and not is_int(self.pool, 1):
            raise ValueError(f"pool must be None or a positive integer (at most 2**40), got {self.pool!r}")
        return dict(channels=channels, kernel_sizes=kernel_sizes, strides=strides, paddings=paddings, pool=self.pool)

    def _input(self, X, dtype, *, reset, y="no_validation"):
        """X as a C-contiguous (n, C, L) array of dtype ((n, L) gets C = 1); (X, y) when y is given."""
        checked = validate_data(self, X, y, dtype=dtype, order="C", reset=reset, allow_nd=True)
        X = checked[0] if isinstance(checked, tuple) else checked
        if X.ndim == 2:
            X = X.reshape(X.shape[0], 1, X.shape[1])
        elif X.ndim != 3:
            raise ValueError(f"X must be (n_samples, L) or (n_samples, C, L), got shape {X.shape}")
        if not reset and hasattr(self, "model_") and X.shape[1:] != self.model_.input_shape:
            raise ValueError(f"X has examples of shape {X.shape[1:]} (as (C, L)); this model was fitted on "
                             f"{self.model_.input_shape}")
        return (X, checked[1]) if isinstance(checked, tuple) else X

    def _n_parameters(self, input_shape, n_classes, architecture):
        if len(input_shape) != 2:
            raise ValueError(f"input_shape {input_shape} is not (C, L)")
        (c_in, length), count = input_shape, 0
        for c_out, k, stride, padding in zip(architecture["channels"], architecture["kernel_sizes"],
                                             architecture["strides"], architecture["paddings"]):
            count += c_out * c_in * k + c_out
            c_in, length = Conv1D(c_in, c_out, k, stride=stride, padding=padding).output_shape((c_in, length))
            if architecture["pool"] is not None:
                c_in, length = MaxPool1D(architecture["pool"]).output_shape((c_in, length))
        return count + c_in * length * n_classes + n_classes

    def _build(self, input_shape, n_classes, architecture, dtype, random_state):
        try:
            return conv1d_net(input_shape, n_classes, **architecture, dtype=dtype, random_state=random_state,
                              backend=self.backend)
        except ValueError as exc:
            raise ValueError(f"inputs of length n_features = {input_shape[-1]} do not fit this network: {exc}") from exc
