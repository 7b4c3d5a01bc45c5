"""Kernel Gram matrices for kernel methods: linear, polynomial and RBF."""
import math
import numbers

import numpy as np

from . import _validation as v
from ._config import resolve

KERNEL_FUNCTIONS = ("linear", "poly", "rbf")


def gram(X, Y=None, *, kernel="rbf", gamma=None, degree=3, coef0=1.0, backend=None):
    """The Gram matrix K[i, j] = k(X[i], Y[j]) (Y defaults to X), equal to scikit-learn's pairwise kernels.

    kernel:
        'linear'  k(x, y) = x . y
        'poly'    k(x, y) = (gamma x . y + coef0) ** degree
        'rbf'     k(x, y) = exp(-gamma ||x - y||^2)

    Parameters
    ----------
    X : (n_x, n_features) float32 or float64, finite
    Y : (n_y, n_features) of the same dtype, or None for Y = X. With Y None the result is exactly
        symmetric (each pair is computed once) and the RBF diagonal is exactly 1.
    gamma : positive float, default 1 / n_features (ignored by 'linear')
    degree : non-negative integer, for 'poly'
    coef0 : finite float, for 'poly'

    Returns
    -------
    K : (n_x, n_y), dtype of X. Work memory beyond K is O(n_x + n_y).
    """
    X = v.float_array("X", X, ndim=2)
    if Y is not None:
        Y = v.float_array("Y", Y, ndim=2, dtype=X.dtype)
        if Y.shape[1] != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features (shape {X.shape}) but Y has {Y.shape[1]} "
                             f"(shape {Y.shape}); they must have the same number of features")
    if kernel not in KERNEL_FUNCTIONS:
        raise ValueError(f"kernel must be one of {KERNEL_FUNCTIONS}, got {kernel!r}")
    gamma = 1.0 / X.shape[1] if gamma is None else gamma
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}")
    if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 0:
        raise ValueError(f"degree must be a non-negative integer, got {degree!r}")
    if isinstance(coef0, bool) or not isinstance(coef0, numbers.Real) or not math.isfinite(coef0):
        raise ValueError(f"coef0 must be a finite number, got {coef0!r}")
    for name, array in (("X", X), ("Y", Y)):
        if array is not None and not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinity")
    K = np.empty((X.shape[0], X.shape[0] if Y is None else Y.shape[0]), dtype=X.dtype)
    resolve(backend).gram(X, Y, kernel, float(gamma), int(degree), float(coef0), K)
    return K
