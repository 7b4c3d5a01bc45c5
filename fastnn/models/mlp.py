"""MLPClassifier: the seed's multilayer perceptron as a scikit-learn estimator on fastnn's training system.

fit builds fastnn.nn.mlp([n_features, *hidden_layer_sizes, n_classes]) and trains it with
fastnn.nn.Trainer: at small batches each epoch runs inside the backend (fastnn.mlp_train_epoch),
at large ones layer by layer on BLAS. save() and load() use a .npz file without pickle.
"""
from sklearn.utils.validation import check_is_fitted, validate_data

from ..nn import mlp
from ..nn.layers import ACTIVATION_LAYERS, Linear
from ._network import NetworkClassifier, int_tuple

FILE_FORMAT = "fastnn.MLPClassifier/1"


class MLPClassifier(NetworkClassifier):
    """Multilayer perceptron classifier: Linear, activation, ..., Linear, softmax cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (128,)
    activation : 'relu' (default), 'sigmoid', 'leaky_relu' (slope 0.01) or 'tanh', after every hidden
        layer. 'relu' and 'sigmoid' train in fused epochs at small batches and predict through the
        compiled inference; 'leaky_relu' and 'tanh' train and predict layer by layer
    optimizer : 'sgd' (with momentum) or 'adam'
    learning_rate : float, default 0.01
    momentum : float in [0, 1), default 0 (SGD only: v = momentum v + g; w -= learning_rate v)
    weight_decay : float >= 0, default 0: the L2 term weight_decay * sum ||W||^2 (biases excluded)
    batch_size : int, default 5 (the seed's); the last batch of an epoch may be smaller
    epochs : int, default 30: the maximum number of epochs
    patience : None (default) or int: stop after this many epochs without a better validation
        accuracy and keep the best weights
    validation_fraction : float in (0, 1), default 0.1: held out of the training data for early
        stopping when patience is set and fit gets no X_val
    shuffle : bool, default True: a new example order every epoch
    random_state : None, int or RandomState: initialisation (N(0, 0.1^2)), orders and the split
    dtype : 'float32' (default) or 'float64': of the parameters and the arithmetic
    backend : None (the current fastnn backend), 'numpy', 'numba' or 'cython'
    verbose : bool: progress bar and metrics per epoch on stderr
    train_metrics : 'running' (default) or 'exact': history_'s training loss and accuracy are the
        means over each epoch's mini-batches, measured during training at no cost ('running', as
        Keras reports them), or those of the model at the end of each epoch on the whole training
        set ('exact', one more inference pass over the training data per epoch: about a third of
        an epoch's arithmetic at large batches); see fastnn.nn.Trainer

    Attributes
    ----------
    classes_ : (n_classes,) labels, sorted
    coefs_, intercepts_ : lists of (n_in, n_out) weights and (n_out,) biases, layer by layer
    history_ : dict of per-epoch lists (loss, train_accuracy, val_loss, val_accuracy, time, wall_time,
        n_updates; see fastnn.nn.History): time is the training alone, wall_time everything fit did
    n_iter_ : epochs run;  n_updates_ : optimizer updates made;  best_epoch_ : the epoch kept
    n_features_in_ : number of features
    """

    def __init__(self, hidden_layer_sizes=(128,), *, activation="relu", optimizer="sgd", learning_rate=0.01,
                 momentum=0.0, weight_decay=0.0, batch_size=5, epochs=30, patience=None, validation_fraction=0.1,
                 shuffle=True, random_state=None, dtype="float32", backend=None, verbose=False,
                 train_metrics="running"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
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

    FILE_FORMAT = FILE_FORMAT
    TUPLE_PARAMS = ("hidden_layer_sizes",)

    def _architecture(self):
        if self.activation not in ACTIVATION_LAYERS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATION_LAYERS)}, got {self.activation!r}")
        try:
            return int_tuple("hidden_layer_sizes", self.hidden_layer_sizes)
        except ValueError:
            raise ValueError(f"hidden_layer_sizes must be a tuple of positive integers, "
                             f"got {self.hidden_layer_sizes!r}") from None

    def _input(self, X, dtype, *, reset, y="no_validation"):
        """X (n_samples, n_features) as a C-contiguous array of dtype; (X, y) when y is given (fit)."""
        return validate_data(self, X, y, dtype=dtype, order="C", reset=reset)

    def _build(self, input_shape, n_classes, hidden, dtype, random_state):
        return mlp([input_shape[0], *hidden, n_classes], activation=self.activation, dtype=dtype,
                   random_state=random_state, backend=self.backend)

    def _n_parameters(self, input_shape, n_classes, hidden):
        if len(input_shape) != 1:
            raise ValueError(f"input_shape {input_shape} is not (n_features,)")
        sizes = [input_shape[0], *hidden, n_classes]
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

    @property
    def coefs_(self):
        check_is_fitted(self, "model_")
        return [layer.params["W"] for layer in self.model_.layers if isinstance(layer, Linear)]

    @property
    def intercepts_(self):
        check_is_fitted(self, "model_")
        return [layer.params["b"] for layer in self.model_.layers if isinstance(layer, Linear)]
