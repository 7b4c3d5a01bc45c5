"""scikit-learn compatible estimators built on fastnn's kernels (they need scikit-learn)."""
from .mlp import MLPClassifier
from .perceptron import KernelPerceptron, Perceptron

__all__ = ["MLPClassifier", "Perceptron", "KernelPerceptron"]
