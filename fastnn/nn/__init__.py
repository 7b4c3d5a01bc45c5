"""The training system: layers on the backend kernels, optimizers, the trainer and the checkers.

    model = fastnn.nn.mlp([784, 128, 10], random_state=0)
    history = fastnn.nn.Trainer(model, fastnn.nn.SGD(0.01), batch_size=5, epochs=30, patience=5)
                        .fit(X_train, y_train, X_val, y_val)
"""
from .checks import check_gradients, gradient_magnitudes
from .conv_layers import Conv1D, Flatten, MaxPool1D, conv1d_net
from .conv2d_layers import Conv2D, MaxPool2D, conv2d_net
from .layers import Layer, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh, mlp
from .losses import SoftmaxCrossEntropy
from .optim import SGD, Adam, Optimizer
from .trainer import DivergenceError, History, Trainer

__all__ = [
    "Layer", "Linear", "ReLU", "Sigmoid", "Sequential", "mlp", "SoftmaxCrossEntropy",
    "Conv1D", "MaxPool1D", "Flatten", "conv1d_net", "Conv2D", "MaxPool2D", "LeakyReLU", "Tanh",
    "conv2d_net",
    "Optimizer", "SGD", "Adam", "Trainer", "History", "DivergenceError",
    "check_gradients", "gradient_magnitudes",
]
