"""Accurate squared distances for the RBF kernel in any dtype, shared by every backend.

The fast way to all pairwise squared distances is the expansion ||x||^2 + ||y||^2 - 2 x.y, one GEMM
for the inner products. It cancels: the error grows with the norms, not with the distance, so
near-duplicate rows far from the origin get distances that are pure rounding. In float32 that
moved RBF values by up to 1.0 (rows of 1000 + noise) and by 0.03 for exact duplicates. The
backends therefore
- compute the inner products and norms in float64 whatever the input dtype (as scikit-learn does for
  float32),
- of centered rows (the kernel depends only on x - y), so offset data keeps its digits,
- and recompute as sum((x - y)^2) the few pairs whose rigorous error bound could still move the
  kernel value by more than RBF_TOLERANCE (in practice: near-duplicates at large scale).
"""
import numpy as np

# Absolute error allowed in an RBF value from the expansion of the squared distance; pairs that
# could exceed it are recomputed directly (float32 rounding of the result itself is ~6e-8).
RBF_TOLERANCE = 1e-12


def centered_float64(X, Y):
    """(Xc, Yc): X and Y (or None) in float64, both minus X's column means.

    The RBF kernel depends only on x - y, so a common shift changes nothing but the cancellation in
    ||x||^2 + ||y||^2 - 2 x.y, which grows with the norms: data offset from the origin (pixel
    intensities, sensor readings around 1000) loses every digit there in float32 otherwise.
    """
    mean = X.mean(axis=0, dtype=np.float64)
    Xc = np.subtract(X, mean, dtype=np.float64)
    return Xc, None if Y is None else np.subtract(Y, mean, dtype=np.float64)


def expansion_error_per_norm(n_features):
    """c such that |computed - exact| <= c (||x||^2 + ||y||^2) for the squared distance computed as
    ||x||^2 + ||y||^2 - 2 x.y in float64, whatever the order of the sums (any BLAS kernel).

    Each inner product of n terms is within gamma_n sum |x_k y_k| <= gamma_n (||x||^2 + ||y||^2) / 2
    of the exact one (Higham, Accuracy and Stability, 3.1), with gamma_n = n u / (1 - n u), u = 2^-53;
    the two norms add gamma_n each; the final two additions and the rounding of the centered rows
    (each coordinate within u of its exact value, relatively) add a few u.
    """
    unit = 2.0 ** -53
    n = n_features + 1
    return (2 * n * unit / (1 - n * unit)) + 16 * unit


def needs_direct_distance(d, x_sq, y_sq, gamma, error_per_norm, tolerance=RBF_TOLERANCE):
    """Boolean mask of the pairs whose expanded squared distance d (x_sq[:, None] + y_sq - 2 x.y,
    float64) may be wrong by enough to move exp(-gamma d) by more than tolerance.

    The error of d is at most bound = error_per_norm * (x_sq + y_sq); the kernel value then moves by
    at most gamma * bound * exp(-gamma * max(d - bound, 0)).
    """
    bound = error_per_norm * (x_sq[:, None] + y_sq[None, :])
    with np.errstate(divide="ignore"):
        slack = np.log(gamma * bound / tolerance)
    return (gamma * bound > tolerance) & (gamma * (d - bound) < slack)
