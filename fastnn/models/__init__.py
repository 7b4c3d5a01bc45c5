"""scikit-learn compatible estimators built on fastnn's kernels (they need scikit-learn)."""
from .perceptron import KernelPerceptron, Perceptron

__all__ = ["Perceptron", "KernelPerceptron"]
