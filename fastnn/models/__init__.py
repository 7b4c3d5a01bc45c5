"""scikit-learn compatible estimators built on fastnn's kernels (they need scikit-learn)."""
from .cnn import CNN1DClassifier
from .cnn2d import CNN2DClassifier
from .mlp import MLPClassifier
from .perceptron import KernelPerceptron, Perceptron

__all__ = ["MLPClassifier", "CNN1DClassifier", "CNN2DClassifier", "Perceptron", "KernelPerceptron"]
