"""The linear-layer kernels of the compiled backends, written once around their fused passes.

Up to SMALL_BATCH rows the products run in the backend's own small-matrix kernels: BLAS packing
and thread dispatch cost more than the arithmetic there. Beyond it the work is two GEMMs, given to
np.matmul: NumPy's bundled OpenBLAS is the fastest BLAS reachable here (measured faster than the
one scipy.linalg.cython_blas exposes, at every size we benchmark), so compiled code only does what
BLAS cannot: the single fused pass that applies the ReLU mask and reduces the bias gradient.
"""
import numpy as np

# Largest batch the small-matrix kernels take: measured crossover with BLAS at 784 -> 128 (N=6 to 7).
SMALL_BATCH = 6


def make_linear_kernels(small_forward, small_backward, relu_grad_and_bias, column_sums, small_batch=SMALL_BATCH):
    """Build (linear_forward, linear_backward) for a backend from its compiled pieces.

    small_forward(X, W, b, Y)                  Y = X @ W (+ b), for n <= small_batch
    small_backward(X, W, dY, mask, dX, dW, db) the whole backward (as linear_backward), n <= small_batch
    relu_grad_and_bias(dY, mask, dZ, db)       dZ = dY masked by the ReLU bits, db = dZ.sum(0)
    column_sums(dY, db)                        db = dY.sum(0)
    """

    def linear_forward(X, W, b, Y):
        if X.shape[0] <= small_batch:
            small_forward(X, W, b, Y)
            return
        np.matmul(X, W, out=Y)
        if b is not None:
            Y += b

    def linear_backward(X, W, dY, mask, dX, dW, db):
        if X.shape[0] <= small_batch:
            small_backward(X, W, dY, mask, dX, dW, db)
            return
        if mask is None:
            dZ = dY
            column_sums(dY, db)
        else:
            dZ = np.empty_like(dY)
            relu_grad_and_bias(dY, mask, dZ, db)
        np.matmul(X.T, dZ, out=dW)
        if dX is not None:
            np.matmul(dZ, W.T, out=dX)

    return linear_forward, linear_backward
