"""Kernel Gram matrices for kernel methods: linear, polynomial and RBF."""
import math
import numbers

import numpy as np

from . import _validation as v
from ._config import resolve

KERNEL_FUNCTIONS = ("linear", "poly", "rbf")


def _check_magnitude(name, array):
    """ValueError for NaN, infinity, or values whose inner products could overflow the dtype."""
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if array.size == 0:
        return
    largest = float(np.abs(array).max())
    # Centered rows (RBF) are within 2 * largest per coordinate; a product of two rows sums n_features terms.
    limit = math.sqrt(np.finfo(array.dtype).max / (16 * array.shape[1]))
    if largest > limit:
        raise ValueError(f"{name} has values up to {largest:.3g}: inner products of rows of {array.shape[1]} "
                         f"features could overflow {array.dtype} (largest allowed magnitude {limit:.3g}); "
                         f"scale the data")


def gram(X, Y=None, *, kernel="rbf", gamma=None, degree=3, coef0=1.0, backend=None):
    """The Gram matrix K[i, j] = k(X[i], Y[j]) (Y defaults to X), equal to scikit-learn's pairwise kernels.

    kernel:
        'linear'  k(x, y) = x . y
        'poly'    k(x, y) = (gamma x . y + coef0) ** degree
        'rbf'     k(x, y) = exp(-gamma ||x - y||^2)

    Parameters
    ----------
    X : (n_x, n_features) float32 or float64, finite, with values small enough that inner products of
        rows cannot overflow the dtype (|x| * |y| * n_features below a quarter of its largest value)
    Y : (n_y, n_features) of the same dtype, or None for Y = X. With Y None the result is exactly
        symmetric (each pair is computed once) and the RBF diagonal is exactly 1.
    gamma : positive float, default 1 / n_features (ignored by 'linear')
    degree : integer in [0, 2**40], for 'poly'
    coef0 : finite float, for 'poly'

    Returns
    -------
    K : (n_x, n_y), dtype of X.

    Accuracy: RBF values in either dtype are within 1e-12 of exp(-gamma ||x - y||^2) computed exactly
    from the given inputs, plus the rounding of K's dtype (float32: ~6e-8), on any CPU and BLAS: the
    squared distances come from float64 inner products of centered rows, and the pairs where
    ||x||^2 + ||y||^2 - 2 x.y could cancel (near-duplicates far from the origin) are recomputed as
    sum((x - y)^2) (fastnn.backends.rbf_numerics). The linear and poly kernels are one GEMM in the
    input dtype, as in scikit-learn.

    Work memory beyond K: for 'rbf', float64 copies of X and Y and a 16 MiB tile; otherwise none.
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
    degree = v.integer("degree", degree, 0)
    if isinstance(coef0, bool) or not isinstance(coef0, numbers.Real) or not math.isfinite(coef0):
        raise ValueError(f"coef0 must be a finite number, got {coef0!r}")
    for name, array in (("X", X), ("Y", Y)):
        if array is not None:
            _check_magnitude(name, array)
    K = np.empty((X.shape[0], X.shape[0] if Y is None else Y.shape[0]), dtype=X.dtype)
    resolve(backend).gram(X, Y, kernel, float(gamma), int(degree), float(coef0), K)
    return K
