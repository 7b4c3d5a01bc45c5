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


# Gram matrices ------------------------------------------------------------------------------------
KERNEL_CODES = {"linear": 0, "poly": 1, "rbf": 2}
# Elements of K per row block: a block is produced by one GEMM and transformed by the epilogue
# while it is still in cache, and the GEMM stays large enough to run at full speed.
GRAM_BLOCK_ELEMENTS = 1 << 18


def make_gram_kernel(epilogue, mirror_upper):
    """Build a backend's gram(X, Y, kernel, gamma, degree, coef0, K) from its compiled pieces.

    epilogue(K, x_sq, y_sq, row_start, row_stop, col_start, code, gamma, degree, coef0, symmetric)
        turns K[row_start:row_stop, col_start:], which holds X @ Y.T, into kernel values in place
        (code from KERNEL_CODES; x_sq, y_sq squared row norms for 'rbf'; scalars in K's dtype).
    mirror_upper(K)
        K[j, i] = K[i, j] for j > i.

    K is filled one block of rows at a time. With Y None only blocks on or right of the diagonal are
    computed (half the GEMM work, like BLAS syrk), then mirrored, so K is exactly symmetric.
    """

    def gram(X, Y, kernel, gamma, degree, coef0, K):
        symmetric = Y is None
        Y = X if symmetric else Y
        code = KERNEL_CODES[kernel]
        dtype = K.dtype.type
        if kernel == "rbf":
            x_sq = np.einsum("ij,ij->i", X, X)
            y_sq = x_sq if symmetric else np.einsum("ij,ij->i", Y, Y)
        else:
            x_sq = y_sq = np.zeros(1, dtype=K.dtype)
        n_x, n_y = K.shape
        rows = max(8, min(n_x, GRAM_BLOCK_ELEMENTS // n_y))
        for start in range(0, n_x, rows):
            stop = min(start + rows, n_x)
            first_col = start if symmetric else 0
            np.matmul(X[start:stop], Y[first_col:].T, out=K[start:stop, first_col:])
            if code:
                epilogue(K, x_sq, y_sq, start, stop, first_col, code, dtype(gamma), degree, dtype(coef0), symmetric)
        if symmetric:
            mirror_upper(K)

    return gram
