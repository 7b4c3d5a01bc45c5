"""Numba conv-1D and max-pooling kernels (fastnn.backends.conv_ref's arithmetic), and the @njit
building blocks that cnn_training_numba's fused epoch reuses.

The convolution is lowered to matrix products on im2col chunks. A chunk of nb samples has
M = nb * L_out columns j = i * L_out + t (sample i of the chunk, output position t), so the
products keep long contiguous inner loops even when L_out is short:

    cols (CK, M)     cols[c K + k, j] = xpad[i, c, t stride + k]      (_im2col, CK = C_in K)
    Y    (C_out, M)  = W (C_out, CK) @ cols + b                      (_forward_product)
    dW  (C_out, CK) += dY (C_out, M) @ cols.T,  db += dY 1           (_weight_grads)
    dx              += col2im(W.T @ dY)                              (_input_grads, row by row)

The building blocks read activations as xv[c, i, l] (channel, sample, position). The fused epoch
keeps its activations in that (C, N, L) layout, where Y (C_out, M) is the next activation as it
is; the (N, C, L) kernels below pass x.transpose(1, 0, 2) and copy Y out to y.
The products run over column blocks of whole samples sized for L1, with four terms per update
of the destination (unrolled over CK or C_out). Large shapes (see BLAS_MIN_MACS) are given to
np.matmul on the same im2col chunks instead, from plain Python (as _compiled does for linear layers).
"""
import numpy as np
from numba import njit

# Reassociation (vectorized sums) and FMA contraction only: NaN and inf keep their meaning.
SMALL_MATH = {"reassoc", "contract"}
# Bytes of the cols rows one column block spans (all CK of them): about half of L1.
BLOCK_BYTES = 16 * 1024
# Bytes of a chunk's cols in the compiled-loop kernels (the chunk's dY fits next to it in L2).
CHUNK_BYTES = 256 * 1024
# Multiply-adds (N C_out CK L_out) from which the (N, C, L) kernels hand the products to BLAS.
BLAS_MIN_MACS = 1 << 23
# Bytes of cols per chunk on the BLAS path: large enough for full-speed GEMMs.
BLAS_CHUNK_BYTES = 2 << 20


@njit(cache=True, nogil=True)
def output_length(length, kernel_size, stride, padding):
    """L_out of a window sliding over `length` (+ padding on both sides)."""
    return (length + 2 * padding - kernel_size) // stride + 1


@njit(cache=True, nogil=True)
def tap_range(length, l_out, k, stride, padding):
    """(lo, hi): the outputs t in [0, l_out) whose tap k reads inside x, 0 <= t stride + k - padding < length.

    A contiguous range (empty, lo == hi, when the tap only ever reads padding).
    """
    first = padding - k
    last = length - 1 + padding - k
    lo = (first + stride - 1) // stride if first > 0 else 0
    hi = last // stride + 1 if last >= 0 else 0
    hi = min(hi, l_out)
    lo = min(lo, hi)
    return lo, hi


@njit(cache=True, nogil=True)
def block_samples(width, l_out, itemsize):
    """Samples per column block: the block's `width` (= CK) rows within BLOCK_BYTES, at least one sample."""
    return max(1, BLOCK_BYTES // (width * l_out * itemsize))


@njit(cache=True, nogil=True)
def im2col(xv, i0, nb, kernel_size, stride, padding, cols):
    """cols[c K + k, i L_out + t] = xpad[c, i0 + i, t stride + k] for i < nb; cols (CK, nb L_out).

    xv is indexed xv[c, sample, position] (any strides); padding positions give 0.
    """
    channels = xv.shape[0]
    length = xv.shape[2]
    l_out = cols.shape[1] // nb
    u_stride = np.uint64(stride)
    for c in range(channels):
        for k in range(kernel_size):
            row = c * kernel_size + k
            lo, hi = tap_range(length, l_out, k, stride, padding)
            # unsigned indices: no negative-index wraparound code in the inner loops (see forward_product)
            u_lo = np.uint64(lo)
            u_hi = np.uint64(hi)
            first = np.uint64(lo * stride + k - padding)  # >= 0 when lo < hi
            for i in range(nb):
                base = np.uint64(i * l_out)
                sample = i0 + i
                for t in range(lo):
                    cols[row, i * l_out + t] = 0
                position = first
                for t in range(u_lo, u_hi):
                    cols[row, base + t] = xv[c, sample, position]
                    position += u_stride
                for t in range(hi, l_out):
                    cols[row, i * l_out + t] = 0


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def forward_product(w2, b, cols, l_out, Y):
    """Y (C_out, M) = w2 (C_out, CK) @ cols (CK, M) + b[:, None], over column blocks of whole samples.

    Two rows of Y at a time share each load of four cols rows.
    """
    c_out, width = w2.shape
    m = cols.shape[1]
    w4 = width - width % 4
    o2 = c_out - c_out % 2
    step = block_samples(width, l_out, cols.itemsize) * l_out
    for block in range(0, m, step):
        # unsigned bounds: a signed loop index not known to start >= 0 gets negative-index
        # wraparound code, which stops LLVM from vectorizing (uint64 and int64 must not meet in
        # arithmetic: Numba would make it float64)
        j0 = np.uint64(block)
        j1 = np.uint64(min(m, block + step))
        for o in range(0, o2, 2):
            bo = b[o]
            bp = b[o + 1]
            for j in range(j0, j1):
                Y[o, j] = bo
                Y[o + 1, j] = bp
            for q in range(0, w4, 4):
                a0 = w2[o, q]
                a1 = w2[o, q + 1]
                a2 = w2[o, q + 2]
                a3 = w2[o, q + 3]
                e0 = w2[o + 1, q]
                e1 = w2[o + 1, q + 1]
                e2 = w2[o + 1, q + 2]
                e3 = w2[o + 1, q + 3]
                for j in range(j0, j1):
                    c0 = cols[q, j]
                    c1 = cols[q + 1, j]
                    c2 = cols[q + 2, j]
                    c3 = cols[q + 3, j]
                    Y[o, j] += (a0 * c0 + a1 * c1) + (a2 * c2 + a3 * c3)
                    Y[o + 1, j] += (e0 * c0 + e1 * c1) + (e2 * c2 + e3 * c3)
            for q in range(w4, width):
                a0 = w2[o, q]
                e0 = w2[o + 1, q]
                for j in range(j0, j1):
                    Y[o, j] += a0 * cols[q, j]
                    Y[o + 1, j] += e0 * cols[q, j]
        for o in range(o2, c_out):
            bo = b[o]
            for j in range(j0, j1):
                Y[o, j] = bo
            for q in range(width):
                a0 = w2[o, q]
                for j in range(j0, j1):
                    Y[o, j] += a0 * cols[q, j]


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def weight_grads(dY, cols, l_out, dw2, db, accumulate):
    """dw2 (C_out, CK) (+)= dY (C_out, M) @ cols.T and db (+)= dY.sum(1); `accumulate` False: overwrite.

    Over column blocks of whole samples; two rows of dY by four rows of cols per pass (8 sums in
    registers, 6 loads per 8 multiply-adds).
    """
    c_out, width = dw2.shape
    m = cols.shape[1]
    w4 = width - width % 4
    o2 = c_out - c_out % 2
    if not accumulate:
        for o in range(c_out):
            db[o] = 0
            for q in range(width):
                dw2[o, q] = 0
    step = block_samples(width, l_out, cols.itemsize) * l_out
    for block in range(0, m, step):
        j0 = np.uint64(block)  # unsigned: see forward_product
        j1 = np.uint64(min(m, block + step))
        after = j0 + np.uint64(1)  # the sums start from column j0's terms (no zero of the dtype at hand)
        for o in range(c_out):
            s0 = dY[o, j0]
            for j in range(after, j1):
                s0 += dY[o, j]
            db[o] += s0
        for o in range(0, o2, 2):
            for q in range(0, w4, 4):
                d = dY[o, j0]
                e = dY[o + 1, j0]
                s0 = d * cols[q, j0]
                s1 = d * cols[q + 1, j0]
                s2 = d * cols[q + 2, j0]
                s3 = d * cols[q + 3, j0]
                r0 = e * cols[q, j0]
                r1 = e * cols[q + 1, j0]
                r2 = e * cols[q + 2, j0]
                r3 = e * cols[q + 3, j0]
                for j in range(after, j1):
                    d = dY[o, j]
                    e = dY[o + 1, j]
                    c0 = cols[q, j]
                    c1 = cols[q + 1, j]
                    c2 = cols[q + 2, j]
                    c3 = cols[q + 3, j]
                    s0 += d * c0
                    s1 += d * c1
                    s2 += d * c2
                    s3 += d * c3
                    r0 += e * c0
                    r1 += e * c1
                    r2 += e * c2
                    r3 += e * c3
                dw2[o, q] += s0
                dw2[o, q + 1] += s1
                dw2[o, q + 2] += s2
                dw2[o, q + 3] += s3
                dw2[o + 1, q] += r0
                dw2[o + 1, q + 1] += r1
                dw2[o + 1, q + 2] += r2
                dw2[o + 1, q + 3] += r3
        for o in range(c_out):
            for q in range(w4 if o < o2 else 0, width):
                s0 = dY[o, j0] * cols[q, j0]
                for j in range(after, j1):
                    s0 += dY[o, j] * cols[q, j]
                dw2[o, q] += s0


@njit(cache=True, nogil=True)
def scatter_row(row, j0, nb, l_out, c, k, stride, padding, i0, dxv):
    """dxv[c, i0 + i, t stride + k - padding] += row[j0 + i L_out + t] for i < nb, t where that lies inside x."""
    length = dxv.shape[2]
    lo, hi = tap_range(length, l_out, k, stride, padding)
    if lo == hi:
        return
    # unsigned indices: no negative-index wraparound code in the inner loop (see forward_product)
    u_lo = np.uint64(lo)
    u_hi = np.uint64(hi)
    u_stride = np.uint64(stride)
    first = np.uint64(lo * stride + k - padding)
    for i in range(nb):
        base = np.uint64(j0 + i * l_out)
        sample = i0 + i
        position = first
        for t in range(u_lo, u_hi):
            dxv[c, sample, position] += row[base + t]
            position += u_stride


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def input_grads(w2, dY, l_out, kernel_size, stride, padding, i0, dxv, rows):
    """dxv += col2im(w2.T @ dY): the chunk's samples i0.. get dxpad[c, t stride + k] += (w2.T dY)[c K + k, (i, t)].

    w2 (C_out, CK), dY (C_out, M), rows (2, M) scratch; dxv is indexed [c, sample, position] (any
    strides) and holds zeros (or earlier sums) where the windows land. Two rows of w2.T @ dY at a
    time are built over a column block (four terms per update) and scattered while in L1.
    """
    c_out, width = w2.shape
    m = dY.shape[1]
    o4 = 1 + (c_out - 1) // 4 * 4  # rows 1..o4-1 in fours, after row 0
    step = block_samples(c_out, l_out, dY.itemsize) * l_out
    first_row = rows[0]
    second_row = rows[1]
    for block in range(0, m, step):
        j0 = np.uint64(block)  # unsigned: see forward_product
        j1 = np.uint64(min(m, block + step))
        samples = (min(m, block + step) - block) // l_out
        for q in range(0, width, 2):
            p = min(q + 1, width - 1)  # an odd last row is computed twice, scattered once
            a0 = w2[0, q]
            e0 = w2[0, p]
            for j in range(j0, j1):
                first_row[j] = a0 * dY[0, j]
                second_row[j] = e0 * dY[0, j]
            for o in range(1, o4, 4):
                a0 = w2[o, q]
                a1 = w2[o + 1, q]
                a2 = w2[o + 2, q]
                a3 = w2[o + 3, q]
                e0 = w2[o, p]
                e1 = w2[o + 1, p]
                e2 = w2[o + 2, p]
                e3 = w2[o + 3, p]
                for j in range(j0, j1):
                    d0 = dY[o, j]
                    d1 = dY[o + 1, j]
                    d2 = dY[o + 2, j]
                    d3 = dY[o + 3, j]
                    first_row[j] += (a0 * d0 + a1 * d1) + (a2 * d2 + a3 * d3)
                    second_row[j] += (e0 * d0 + e1 * d1) + (e2 * d2 + e3 * d3)
            for o in range(o4, c_out):
                a0 = w2[o, q]
                e0 = w2[o, p]
                for j in range(j0, j1):
                    first_row[j] += a0 * dY[o, j]
                    second_row[j] += e0 * dY[o, j]
            c = q // kernel_size
            scatter_row(first_row, block, samples, l_out, c, q - c * kernel_size, stride, padding,
                        i0 + block // l_out, dxv)
            if p > q:
                c = p // kernel_size
                scatter_row(second_row, block, samples, l_out, c, p - c * kernel_size, stride, padding,
                            i0 + block // l_out, dxv)


@njit(cache=True, nogil=True)
def col2im(dcols, l_out, kernel_size, stride, padding, i0, dxv):
    """dxv[c, i0 + i, t stride + k - padding] += dcols[c K + k, i L_out + t] inside x (dcols (CK, M))."""
    width, m = dcols.shape
    for q in range(width):
        c = q // kernel_size
        scatter_row(dcols[q], 0, m // l_out, l_out, c, q - c * kernel_size, stride, padding, i0, dxv)


# ---------------------------------------------------------------------------- (N, C, L) <-> (C, M) copies
@njit(cache=True, nogil=True)
def _chunk_to_ncl(Y, l_out, i0, y):
    """y[i0 + i, o, t] = Y[o, i L_out + t] for the chunk's samples."""
    c_out, m = Y.shape
    for i in range(m // l_out):
        for o in range(c_out):
            for t in range(l_out):
                y[i0 + i, o, t] = Y[o, i * l_out + t]


@njit(cache=True, nogil=True)
def _ncl_to_chunk(dy, i0, dY):
    """dY[o, i L_out + t] = dy[i0 + i, o, t] for the chunk's samples."""
    c_out, m = dY.shape
    l_out = dy.shape[2]
    for i in range(m // l_out):
        for o in range(c_out):
            for t in range(l_out):
                dY[o, i * l_out + t] = dy[i0 + i, o, t]


@njit(cache=True, nogil=True)
def _chunk_samples(n, per_sample_elements, itemsize, budget):
    return max(1, min(n, budget // (per_sample_elements * itemsize)))


# ---------------------------------------------------------------------------- conv-1D, compiled loops
@njit(cache=True, nogil=True, error_model="numpy")
def _conv_forward_loops(x, w2, b, kernel_size, stride, padding, y):
    n = x.shape[0]
    c_out, width = w2.shape
    l_out = y.shape[2]
    xv = x.transpose(1, 0, 2)
    chunk = _chunk_samples(n, width * l_out, x.itemsize, CHUNK_BYTES)
    cols_buf = np.empty(width * chunk * l_out, x.dtype)
    y_buf = np.empty(c_out * chunk * l_out, x.dtype)
    for i0 in range(0, n, chunk):
        m = min(chunk, n - i0) * l_out
        cols = cols_buf[:width * m].reshape((width, m))
        Y = y_buf[:c_out * m].reshape((c_out, m))
        im2col(xv, i0, m // l_out, kernel_size, stride, padding, cols)
        forward_product(w2, b, cols, l_out, Y)
        _chunk_to_ncl(Y, l_out, i0, y)


@njit(cache=True, nogil=True, error_model="numpy")
def _conv_backward_loops(x, w2, dy, kernel_size, stride, padding, need_dx, dx, dw2, db):
    n = x.shape[0]
    c_out, width = w2.shape
    l_out = dy.shape[2]
    xv = x.transpose(1, 0, 2)
    dxv = dx.transpose(1, 0, 2)
    if need_dx:
        dx[...] = 0
    chunk = _chunk_samples(n, width * l_out, x.itemsize, CHUNK_BYTES)
    cols_buf = np.empty(width * chunk * l_out, x.dtype)
    dy_buf = np.empty(c_out * chunk * l_out, x.dtype)
    rows = np.empty((2, chunk * l_out), x.dtype)
    for i0 in range(0, n, chunk):
        m = min(chunk, n - i0) * l_out
        cols = cols_buf[:width * m].reshape((width, m))
        dY = dy_buf[:c_out * m].reshape((c_out, m))
        im2col(xv, i0, m // l_out, kernel_size, stride, padding, cols)
        _ncl_to_chunk(dy, i0, dY)
        weight_grads(dY, cols, l_out, dw2, db, i0 > 0)
        if need_dx:
            input_grads(w2, dY, l_out, kernel_size, stride, padding, i0, dxv, rows)


# ---------------------------------------------------------------------------- conv-1D, BLAS products
def _blas_chunk(n, width, l_out, itemsize):
    return max(1, min(n, BLAS_CHUNK_BYTES // (width * l_out * itemsize)))


def _conv_forward_blas(x, w2, b, kernel_size, stride, padding, y):
    n = x.shape[0]
    c_out, width = w2.shape
    l_out = y.shape[2]
    xv = x.transpose(1, 0, 2)
    chunk = _blas_chunk(n, width, l_out, x.itemsize)
    cols_buf = np.empty(width * chunk * l_out, x.dtype)
    y_buf = np.empty(c_out * chunk * l_out, x.dtype)
    for i0 in range(0, n, chunk):
        m = min(chunk, n - i0) * l_out
        cols = cols_buf[:width * m].reshape(width, m)
        Y = y_buf[:c_out * m].reshape(c_out, m)
        im2col(xv, i0, m // l_out, kernel_size, stride, padding, cols)
        np.matmul(w2, cols, out=Y)
        Y += b[:, None]
        _chunk_to_ncl(Y, l_out, i0, y)


def _conv_backward_blas(x, w2, dy, kernel_size, stride, padding, dx, dw2, db):
    n = x.shape[0]
    c_out, width = w2.shape
    l_out = dy.shape[2]
    xv = x.transpose(1, 0, 2)
    chunk = _blas_chunk(n, width, l_out, x.itemsize)
    cols_buf = np.empty(width * chunk * l_out, x.dtype)
    dy_buf = np.empty(c_out * chunk * l_out, x.dtype)
    partial = np.empty_like(dw2)
    if dx is not None:
        dx[...] = 0
        dxv = dx.transpose(1, 0, 2)
        dcols_buf = np.empty_like(cols_buf)
    for i0 in range(0, n, chunk):
        m = min(chunk, n - i0) * l_out
        cols = cols_buf[:width * m].reshape(width, m)
        dY = dy_buf[:c_out * m].reshape(c_out, m)
        im2col(xv, i0, m // l_out, kernel_size, stride, padding, cols)
        _ncl_to_chunk(dy, i0, dY)
        if i0 == 0:
            np.matmul(dY, cols.T, out=dw2)
            np.sum(dY, axis=1, out=db)
        else:
            np.matmul(dY, cols.T, out=partial)
            dw2 += partial
            db += dY.sum(axis=1)
        if dx is not None:
            dcols = dcols_buf[:width * m].reshape(width, m)
            np.matmul(w2.T, dY, out=dcols)
            col2im(dcols, l_out, kernel_size, stride, padding, i0, dxv)


def _uses_blas(x, w, l_out):
    return x.shape[0] * w.size * l_out >= BLAS_MIN_MACS


def conv1d_forward(x, w, b, stride, padding, y):
    """y (N, C_out, L_out) = conv(x (N, C_in, L), w (C_out, C_in, K)) + b (C_out,) or no bias (None)."""
    w2 = w.reshape(w.shape[0], -1)
    if b is None:
        b = np.zeros(w.shape[0], dtype=w.dtype)
    kernel = _conv_forward_blas if _uses_blas(x, w, y.shape[2]) else _conv_forward_loops
    kernel(x, w2, b, w.shape[2], stride, padding, y)


def conv1d_backward(x, w, dy, stride, padding, dx, dw, db):
    """dw (C_out, C_in, K), db (C_out,) and dx (N, C_in, L) (None: skipped) of conv1d_forward given dy."""
    w2 = w.reshape(w.shape[0], -1)
    dw2 = dw.reshape(w2.shape)
    if _uses_blas(x, w, dy.shape[2]):
        _conv_backward_blas(x, w2, dy, w.shape[2], stride, padding, dx, dw2, db)
    else:
        # dx=None would be another Numba type: a writable dummy of the right type, never written
        dummy = np.empty((1, 1, 1), dtype=x.dtype) if dx is None else dx
        _conv_backward_loops(x, w2, dy, w.shape[2], stride, padding, dx is not None, dummy, dw2, db)


# ---------------------------------------------------------------------------- max pooling
@njit(cache=True, nogil=True)
def _maxpool_forward(x, kernel_size, stride, y, argmax):
    n, channels, _ = x.shape
    l_out = y.shape[2]
    for i in range(n):
        for c in range(channels):
            for t in range(l_out):
                start = t * stride
                best = x[i, c, start]
                at = 0
                if best == best:  # a NaN wins at once, as in np.argmax
                    for k in range(1, kernel_size):
                        value = x[i, c, start + k]
                        if value != value:
                            at = k
                            break
                        if value > best:
                            best = value
                            at = k
                argmax[i, c, t] = start + at
                y[i, c, t] = x[i, c, start + at]


@njit(cache=True, nogil=True)
def _maxpool_backward(dy, argmax, dx):
    n, channels, l_out = dy.shape
    dx[...] = 0
    for i in range(n):
        for c in range(channels):
            for t in range(l_out):
                dx[i, c, argmax[i, c, t]] += dy[i, c, t]


def maxpool1d_forward(x, kernel_size, stride, y, argmax):
    """y (N, C, L_out): window maxima of x (N, C, L); argmax (int64): position in [0, L) of the first maximum."""
    _maxpool_forward(x, kernel_size, stride, y, argmax)


def maxpool1d_backward(dy, argmax, dx):
    """dx (N, C, L) = 0, then dx[n, c, argmax[n, c, t]] += dy[n, c, t]."""
    _maxpool_backward(dy, argmax, dx)
