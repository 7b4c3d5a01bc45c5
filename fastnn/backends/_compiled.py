"""Kernels the compiled backends share, written once around their compiled pieces: the linear layer
(around the fused mask pass and the small-batch products) and the Gram matrix (around its epilogues).

Up to SMALL_BATCH rows the products run in the backend's own small-matrix kernels: BLAS packing
and thread dispatch cost more than the arithmetic there. Beyond it the work is two GEMMs, given to
np.matmul: NumPy's bundled OpenBLAS is the fastest BLAS reachable here (measured faster than the
one scipy.linalg.cython_blas exposes, at every size we benchmark), so compiled code only does what
BLAS cannot: the single fused pass that applies the ReLU mask and reduces the bias gradient.
"""
import contextlib
import threading

import numpy as np

from .._threads import get_num_threads, single_threaded_blas
from .rbf_numerics import RBF_TOLERANCE, expansion_error_per_norm

# Largest batch the small-matrix kernels take: measured crossover with BLAS at 784 -> 128 (N=6 to 7).
SMALL_BATCH = 6


def masked_gradient(dY, mask, db, relu_grad_and_bias, column_sums):
    """dZ (dY masked by the ReLU bits, or dY itself without a mask), filling db = dZ.sum(0) on the way."""
    if mask is None:
        column_sums(dY, db)
        return dY
    dZ = np.empty_like(dY)
    relu_grad_and_bias(dY, mask, dZ, db)
    return dZ


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
        dZ = masked_gradient(dY, mask, db, relu_grad_and_bias, column_sums)
        np.matmul(X.T, dZ, out=dW)
        if dX is not None:
            np.matmul(dZ, W.T, out=dX)

    return linear_forward, linear_backward


# Gram matrices ------------------------------------------------------------------------------------
KERNEL_CODES = {"linear": 0, "poly": 1}
# Rows per band of a symmetric K (a multiple of the epilogues' 64-row tiles): large enough that the
# band's GEMM runs at full speed, small enough that the band is still in cache for its epilogue.
SYMMETRIC_BAND_ROWS = 512
EPILOGUE_TILE = 64


def run_on_threads(function, chunks):
    """Call function(*chunk) for every chunk, on one thread per chunk (the first on this one); callers
    make at most fastnn.get_num_threads() chunks.

    For GIL-free compiled functions that alternate with BLAS calls: idle Python threads block
    instead of spinning, so they leave BLAS the cores. Exceptions propagate.
    """
    errors = []

    def call(chunk):
        try:
            function(*chunk)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(chunk,)) for chunk in chunks[1:]]
    for thread in threads:
        thread.start()
    call(chunks[0])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _split_rows(start, stop, parts, multiple):
    """Split [start, stop) into at most `parts` ranges whose inner bounds are multiples of `multiple`."""
    tiles = -(-(stop - start) // multiple)
    bounds = sorted({start + min(stop - start, multiple * (tiles * k // parts)) for k in range(parts + 1)})
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


# RBF tiles with a multithreaded BLAS (gram_matvec, gram_rows, and gram when BLAS cannot be held to one
# thread): a band of rows times a chunk of columns of float64 inner products (16 MiB). Each tile
# alternates a BLAS call with threaded epilogues, and that switch costs (OpenBLAS workers spin after
# a call): 256 x 1024 tiles measured ~2x slower at 5000 x 784 than these.
RBF_BAND_ROWS = 512
RBF_COLUMN_CHUNK = 4096


class CenteredRows:
    """Rows of A (n, n_features) minus a common mean, in float64, and their squared norms (sq, (n,)).

    precompute=True keeps one float64 copy of all of A and all norms (the full Gram matrix: K dwarfs
    them); otherwise rows(start, stop, out) centers the slice into the caller's buffer and fills
    sq[start:stop] then, so memory stays at one tile's rows (gram_matvec, gram_rows: bounded by
    working_memory) and each slice is centered once per use.
    """

    def __init__(self, A, mean, precompute):
        self.A, self.mean = A, mean
        self.copy = np.subtract(A, mean, dtype=np.float64) if precompute else None
        self.sq = np.einsum("ij,ij->i", self.copy, self.copy) if precompute else np.empty(A.shape[0])

    def subset(self, indices, A):
        """The precomputed CenteredRows of rows `indices` (A: those rows of the original array)."""
        part = CenteredRows.__new__(CenteredRows)
        part.A, part.mean, part.copy, part.sq = A, self.mean, self.copy[indices], self.sq[indices]
        return part

    def rows(self, start, stop, out):
        """(stop - start, n_features) float64, C-contiguous: rows [start, stop) centered (in out when
        not precomputed: a float64 buffer of at least that size)."""
        if self.copy is not None:
            return self.copy[start:stop]
        block = out[:(stop - start) * self.A.shape[1]].reshape(stop - start, self.A.shape[1])
        np.subtract(self.A[start:stop], self.mean, out=block)
        self.sq[start:stop] = np.einsum("ij,ij->i", block, block)
        return block


def rbf_tile_loop(X, Y, band_rows, column_chunk, visit, *, precompute=False, mean=None, y_rows=None):
    """Run visit(G, r0, r1, c0, c1, x, y) on every tile of float64 inner products of centered rows.

    G (r1 - r0, c1 - c0) float64 holds Xc[r0:r1] @ Yc[c0:c1].T, for Xc, Yc the rows of X and Y
    (Y None: X) minus X's column means, or `mean` when given (the RBF kernel depends only on x - y;
    centering keeps the expansion's digits for data offset from the origin); x, y are the CenteredRows
    of X and Y, whose .sq hold the squared norms of (at least) the tile's rows. G lives in one reused
    buffer, valid during the call.

    The loop runs over column chunks of Y (centered once each) and, inside, bands of rows of X.
    With Y None only tiles on or above the diagonal band are visited: for a band [r0, r1) the
    columns start at max(chunk start, r0), so every pair i < j lies in exactly one visited tile
    (and pairs within one band in both orders). For the symmetric epilogue (which mirrors into K)
    band_rows and column_chunk must be multiples of 64, so every tile starts on its 64-grid.
    y_rows: Y's CenteredRows prepared by the caller (precomputed, with the same mean), reused across calls.
    """
    symmetric = Y is None
    mean = X.mean(axis=0, dtype=np.float64) if mean is None else mean
    x = CenteredRows(X, mean, precompute)
    y = x if symmetric else (y_rows if y_rows is not None else CenteredRows(Y, mean, precompute))
    n_x, n_y, n_features = X.shape[0], (X if symmetric else Y).shape[0], X.shape[1]
    buffer = np.empty(min(band_rows, n_x) * min(column_chunk, n_y))
    band_buffer = None if x.copy is not None else np.empty(min(band_rows, n_x) * n_features)
    chunk_buffer = None if y.copy is not None else np.empty(min(column_chunk, n_y) * n_features)
    for c0 in range(0, n_y, column_chunk):
        c1 = min(n_y, c0 + column_chunk)
        chunk = y.rows(c0, c1, chunk_buffer)
        for r0 in range(0, min(n_x, c1) if symmetric else n_x, band_rows):
            r1 = min(n_x, r0 + band_rows)
            start = max(c0, r0) if symmetric else c0
            G = buffer[:(r1 - r0) * (c1 - start)].reshape(r1 - r0, c1 - start)
            inside = symmetric and c0 <= r0 and r1 <= c1  # the band's rows are centered in the chunk already
            band = chunk[r0 - c0:r1 - c0] if inside else x.rows(r0, r1, band_buffer)
            np.matmul(band, chunk[start - c0:].T, out=G)
            visit(G, r0, r1, start, c1, x, y)


def _thread_ranges(rows):
    return _split_rows(0, rows, get_num_threads(), EPILOGUE_TILE)


# Gram tiles when BLAS can be held to one thread (rbf_tiles, symmetric_gram): each worker thread
# computes a tile's products with a single-threaded GEMM (RBF: float64, into its own 2 MiB buffer,
# still in L2 for the epilogue) and writes the tile's kernel values at once. No BLAS call alternates
# with threaded epilogues, and the threads take tiles as they finish, so a core the machine's load
# slows down delays no other. 256 x 1024 measured ~5% faster than 256 x 512, 512 x 512 or 128 x 1024
# at 5000 x 784 (CPU time, 2 threads); multiples of 64, columns >= rows (tile_grid).
GRAM_TILE_ROWS = 256
GRAM_TILE_COLUMNS = 1024


def tile_grid(n_x, n_y, rows, columns, symmetric):
    """(r0, r1, c0, c1) tiles of at most rows x columns covering K (n_x, n_y); symmetric: only pairs
    i <= j, each exactly once (a band's columns start at its first row, so with rows and columns
    multiples of 64 every tile starts on the epilogues' 64-grid)."""
    return [(r0, min(n_x, r0 + rows), c0, min(n_y, c0 + columns))
            for r0 in range(0, n_x, rows) for c0 in range(r0 if symmetric else 0, n_y, columns)]


@contextlib.contextmanager
def tile_workers(n_tiles):
    """Yield how many threads compute n_tiles tiles, each a single-threaded GEMM: min(fastnn's threads,
    BLAS's threads, n_tiles) with BLAS held to one thread meanwhile (single_threaded_blas), or 0 when
    BLAS cannot be controlled (the caller then falls back to threaded BLAS calls). At most one tile:
    1, and BLAS is left alone (a small call pays nothing for the pinning)."""
    if n_tiles <= 1:
        yield 1
        return
    with single_threaded_blas() as blas_threads:
        yield max(1, min(get_num_threads(), blas_threads, n_tiles)) if blas_threads else 0


def run_tiles(tiles, workers, compute_tile, buffer_size=None):
    """compute_tile(r0, r1, c0, c1, buffer) for every tile, on `workers` threads that take the next tile
    as they finish one; each thread has its own float64 buffer of buffer_size elements (default
    GRAM_TILE_ROWS * GRAM_TILE_COLUMNS). The first exception stops every thread before its next tile
    and is raised here."""
    lock = threading.Lock()
    pending = iter(tiles)
    failed = []

    def work():
        buffer = np.empty(GRAM_TILE_ROWS * GRAM_TILE_COLUMNS if buffer_size is None else buffer_size)
        while not failed:
            with lock:
                tile = next(pending, None)
            if tile is None:
                return
            try:
                compute_tile(*tile, buffer)
            except BaseException:
                failed.append(True)
                raise

    run_on_threads(work, [()] * workers)


def rbf_tiles(X, Y, gamma, K, tile_epilogue):
    """Fill K with exp(-gamma ||x - y||^2), accurate to RBF_TOLERANCE plus K's own rounding.

    Whatever K's dtype, the squared distances come from float64 inner products of centered rows
    (scikit-learn also upcasts float32 here), tile by tile; tile_epilogue(G, K, row0, col0,
    row_start, row_stop, x_sq, y_sq, X, Y, gamma, error_per_norm, tolerance, symmetric) writes the
    tile's kernel values, recomputing as sum((x - y)^2) of the original rows (whose differences are
    exact when the rows are close) the pairs whose expansion may have cancelled (near-duplicates far
    from the origin). With Y None only tiles on or above the diagonal are computed, then mirrored.

    With BLAS held to one thread (single_threaded_blas) the tiles are spread over worker threads
    (run_tiles), each GEMM followed by its epilogue; otherwise (a BLAS threadpoolctl cannot control)
    one large tile at a time, a threaded BLAS call then threaded epilogues (rbf_tile_loop).
    Memory beyond K: the float64 copies of X and Y, and a 2 MiB tile per thread (else one of 16 MiB).
    """
    symmetric = Y is None
    constants = (gamma, expansion_error_per_norm(X.shape[1]), RBF_TOLERANCE, symmetric)
    tiles = tile_grid(K.shape[0], K.shape[1], GRAM_TILE_ROWS, GRAM_TILE_COLUMNS, symmetric)
    if not tiles:
        return
    with tile_workers(len(tiles)) as workers:
        if workers:
            mean = X.mean(axis=0, dtype=np.float64)
            x = CenteredRows(X, mean, precompute=True)
            y = x if symmetric else CenteredRows(Y, mean, precompute=True)

            def compute_tile(r0, r1, c0, c1, buffer):
                G = buffer[:(r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
                np.matmul(x.copy[r0:r1], y.copy[c0:c1].T, out=G)
                tile_epilogue(G, K, r0, c0, 0, r1 - r0, x.sq, y.sq, X, y.A, *constants)

            run_tiles(tiles, workers, compute_tile)
            return
    _rbf_tiles_threaded_blas(X, Y, K, tile_epilogue, constants)


def _rbf_tiles_threaded_blas(X, Y, K, tile_epilogue, constants):
    """rbf_tiles with BLAS's own threads: band x chunk tiles of RBF_BAND_ROWS x RBF_COLUMN_CHUNK, each
    a threaded GEMM, then its epilogue on fastnn's threads (run_on_threads)."""
    symmetric = Y is None

    def write_tile(G, r0, r1, c0, c1, x, y):
        run_on_threads(tile_epilogue, [(G, K, r0, c0, a, b, x.sq, y.sq, X, x.A if symmetric else Y, *constants)
                                       for a, b in _thread_ranges(r1 - r0)])

    rbf_tile_loop(X, Y, RBF_BAND_ROWS, RBF_COLUMN_CHUNK, write_tile, precompute=True)


def rbf_matvec_tiles(X, Y, V, gamma, out, band_rows, column_chunk, tile_epilogue, workers):
    """rbf_matvec on `workers` threads with BLAS single-threaded (tile_workers): each thread takes the next
    tile of tile_grid, centers its band and chunk into its own buffers, computes the float64 products
    with one GEMM, writes the kernel values with tile_epilogue and adds T @ V[cols] (and with Y None the
    mirror T.T @ V[rows] for columns past the band) to its own copy of out; the copies are summed at the
    end, so no two threads ever add to the same array. Memory: per thread one tile's buffers (the
    caller sizes the tiles for `workers` of them) and one (n_x, k) sum."""
    symmetric = Y is None
    Y = X if symmetric else Y
    constants = (gamma, expansion_error_per_norm(X.shape[1]), RBF_TOLERANCE, False)
    mean = X.mean(axis=0, dtype=np.float64)
    n_features = X.shape[1]
    rows, cols = min(band_rows, X.shape[0]), min(column_chunk, Y.shape[0])
    local, sums, lock = threading.local(), [], threading.Lock()

    def centered(A, start, stop, buffer):
        block = buffer[:(stop - start) * n_features].reshape(stop - start, n_features)
        np.subtract(A[start:stop], mean, out=block)
        return block, np.einsum("ij,ij->i", block, block)

    def compute_tile(r0, r1, c0, c1, G_buffer):
        if not hasattr(local, "sum"):
            local.sum = np.zeros_like(out)
            local.T = np.empty(rows * cols, dtype=X.dtype)
            local.band, local.chunk = np.empty(rows * n_features), np.empty(cols * n_features)
            with lock:
                sums.append(local.sum)
        band, x_sq = centered(X, r0, r1, local.band)
        chunk, y_sq = centered(Y, c0, c1, local.chunk)
        G = G_buffer[:(r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
        np.matmul(band, chunk.T, out=G)
        T = local.T[:G.size].reshape(G.shape)
        tile_epilogue(G, T, 0, 0, 0, r1 - r0, x_sq, y_sq, X[r0:r1], Y[c0:c1], *constants)
        local.sum[r0:r1] += T @ V[c0:c1]
        mirror_start = max(c0, r1)  # columns past the band: the mirror pairs (j, i) are not computed
        if symmetric and mirror_start < c1:
            local.sum[mirror_start:c1] += T[:, mirror_start - c0:].T @ V[r0:r1]

    run_tiles(tile_grid(X.shape[0], Y.shape[0], rows, cols, symmetric), workers, compute_tile,
              buffer_size=rows * cols)
    if len(sums) == 1:
        np.copyto(out, sums[0])
    else:
        np.sum(sums, axis=0, out=out)


def rbf_matvec(X, Y, V, gamma, out, band_rows, column_chunk, tile_epilogue):
    """out = K @ V for K = exp(-gamma ||x - y||^2) (Y None: Y = X), one kernel tile at a time.

    V (n_y, k) and out (n_x, k) in X's dtype. Each tile's kernel values are written by the same
    epilogue as the full Gram matrix (so the same accuracy) into a small buffer T, and a GEMM adds
    T @ V[cols] to out[rows]. With Y None each pair is computed once: a tile above the band also
    adds T.T @ V[rows] to the rows of its columns. Memory: the tile buffers and the centered rows of
    one band and one chunk (sized by the caller from working_memory).
    """
    symmetric = Y is None
    Y = X if symmetric else Y
    constants = (gamma, expansion_error_per_norm(X.shape[1]), RBF_TOLERANCE, False)
    tile = np.empty(min(band_rows, X.shape[0]) * min(column_chunk, Y.shape[0]), dtype=X.dtype)
    out[...] = 0

    def multiply_tile(G, r0, r1, c0, c1, x, y):
        T = tile[:G.size].reshape(G.shape)
        run_on_threads(tile_epilogue, [(G, T, 0, 0, a, b, x.sq[r0:r1], y.sq[c0:c1], X[r0:r1], Y[c0:c1],
                                        *constants) for a, b in _thread_ranges(r1 - r0)])
        out[r0:r1] += T @ V[c0:c1]
        mirror_start = max(c0, r1)  # columns past the band: the mirror pairs (j, i) are not computed
        if symmetric and mirror_start < c1:
            out[mirror_start:c1] += T[:, mirror_start - c0:].T @ V[r0:r1]

    rbf_tile_loop(X, None if symmetric else Y, band_rows, column_chunk, multiply_tile)


def rbf_rows(X, Y, gamma, K, column_chunk, tile_epilogue, mean, y_rows=None):
    """K = exp(-gamma ||x - y||^2) for the rows of X (few: the selected examples) and all rows of Y,
    both minus `mean`, centered chunk by chunk of Y, so memory beyond K is one chunk's rows and products."""
    constants = (gamma, expansion_error_per_norm(X.shape[1]), RBF_TOLERANCE, False)

    def write_tile(G, r0, r1, c0, c1, x, y):
        run_on_threads(tile_epilogue, [(G, K, r0, c0, a, b, x.sq, y.sq, X, Y, *constants)
                                       for a, b in _thread_ranges(r1 - r0)])

    rbf_tile_loop(X, Y, max(1, X.shape[0]), column_chunk, write_tile, mean=mean, y_rows=y_rows)


def make_gram_kernel(epilogue, symmetric_epilogue, rbf_tile_epilogue):
    """Build a backend's gram(X, Y, kernel, gamma, degree, coef0, K) from its compiled epilogues.

    RBF: rbf_tiles, around rbf_tile_epilogue. Linear and polynomial: with Y given, one BLAS call
    fills K with X @ Y.T and epilogue(K, code, gamma, degree, coef0) turns it into kernel values
    in place. With Y None only the pairs i <= j are computed (each once, like syrk; measured faster
    than NumPy's syrk path, which also copies the triangle): GEMMs write tiles of the upper part of
    K, then symmetric_epilogue(K, row_start, row_stop, col_start, col_stop, code, gamma, degree,
    coef0) transforms each tile and mirrors it while it is in cache, so K is exactly symmetric
    (symmetric_gram). code comes from KERNEL_CODES and the scalars are in K's dtype. No memory
    beyond K.
    """

    def gram(X, Y, kernel, gamma, degree, coef0, K):
        if kernel == "rbf":
            rbf_tiles(X, Y, gamma, K, rbf_tile_epilogue)
            return
        code = KERNEL_CODES[kernel]
        scalars = (code, K.dtype.type(gamma), degree, K.dtype.type(coef0))
        if Y is None:
            symmetric_gram(X, K, symmetric_epilogue, scalars)
        else:
            np.matmul(X, Y.T, out=K)
            if code:
                epilogue(K, *scalars)

    return gram


def symmetric_gram(X, K, symmetric_epilogue, scalars):
    """K = kernel(X @ X.T) for the linear and poly kernels, each pair computed once and mirrored.

    With BLAS held to one thread, tiles of the upper part (as rbf_tiles') are spread over fastnn's
    threads, each a GEMM straight into K followed by its epilogue while in cache; otherwise bands of
    SYMMETRIC_BAND_ROWS rows, a threaded GEMM then the band's epilogue on fastnn's threads.
    """
    n = X.shape[0]
    tiles = tile_grid(n, n, GRAM_TILE_ROWS, GRAM_TILE_COLUMNS, True)
    with tile_workers(len(tiles)) as workers:
        if workers:
            def compute_tile(r0, r1, c0, c1, buffer):
                np.matmul(X[r0:r1], X[c0:c1].T, out=K[r0:r1, c0:c1])
                symmetric_epilogue(K, r0, r1, c0, c1, *scalars)

            run_tiles(tiles, workers, compute_tile, buffer_size=0)
            return
    workers = get_num_threads()
    for start in range(0, n, SYMMETRIC_BAND_ROWS):
        stop = min(n, start + SYMMETRIC_BAND_ROWS)
        np.matmul(X[start:stop], X[start:].T, out=K[start:stop, start:])
        ranges = _split_rows(start, stop, workers, EPILOGUE_TILE)
        run_on_threads(symmetric_epilogue, [(K, a, b, start, n, *scalars) for a, b in ranges])


# Inference -----------------------------------------------------------------------------------------
# The fewest multiply-adds that make a second thread worth starting. Measured on the idle 2-core Xeon
# (AVX-512 dense forward, interleaved): 17 M multiply-adds (64-128-10 x 1,797 rows) took 466 us on one
# thread and 567 us on two; 20 M tied; 95-100 M took 1.3-1.4x less on two.
INFERENCE_PARALLEL_MIN_WORK = 1 << 25


def rows_on_threads(kernel, multiply_adds_per_row):
    """Run an inference kernel(X, *settings, out) on ranges of rows, one per thread, for large inputs.

    kernel: a serial, GIL-free kernel filling out[i] from X[i] alone (mlp_forward, cnn1d_forward);
    multiply_adds_per_row(*settings): its work per row. The ranges run on blocking Python threads
    (run_on_threads), not OpenMP: no OpenMP worker is left spinning against the GEMMs of the layers
    that may run next, and fastnn's thread limit (one thread in a child made by fork) applies.
    """

    def call(X, *arguments):
        *settings, out = arguments
        n = X.shape[0]
        workers = get_num_threads() if n * multiply_adds_per_row(*settings) >= INFERENCE_PARALLEL_MIN_WORK else 1
        workers = max(1, min(workers, n))
        if workers == 1:
            kernel(X, *settings, out)
            return
        bounds = [n * k // workers for k in range(workers + 1)]
        run_on_threads(lambda start, stop: kernel(X[start:stop], *settings, out[start:stop]),
                       [(start, stop) for start, stop in zip(bounds, bounds[1:])])

    return call


# Multiply-adds per row from which a dense network's inference runs on BLAS rather than on the
# backend's compiled forward. Measured on one thread (Intel Xeon, AVX-512; float32, CPU time): from
# 784 -> 32 -> 10 (25k per row) up, OpenBLAS's GEMMs beat both compiled forwards (Cython 1.2-1.6x,
# Numba 2.5-4x slower at 784 -> 128 -> 10); at 5k-10k per row (digits, MNIST-1D widths) they tie
# with Cython's, and the compiled forward keeps them (no thread-count switching for tiny calls).
BLAS_FORWARD_MIN_WORK_PER_ROW = 1 << 14
# Rows per GEMM of the BLAS forward: activations of a chunk stay in L2 for the next layer.
BLAS_FORWARD_CHUNK = 1024


def blas_dense_forward(X, sizes, activation, params, out):
    """out = the logits of the dense network for X, as mlp_forward, with each layer of a chunk of rows
    one BLAS GEMM into a reused buffer followed by the bias and the activation in place."""
    from .training_ref import RELU, _activate, layer_views

    layers = layer_views(params, [int(d) for d in sizes])
    chunk = min(BLAS_FORWARD_CHUNK, X.shape[0])
    hidden = [np.empty((chunk, int(d)), dtype=X.dtype) for d in sizes[1:-1]]
    for start in range(0, X.shape[0], chunk):
        h = X[start:start + chunk]
        n = h.shape[0]
        for l, (W, b) in enumerate(layers):
            z = out[start:start + n] if l == len(layers) - 1 else hidden[l][:n]
            np.matmul(h, W, out=z)
            z += b
            if l < len(layers) - 1:
                if activation == RELU:
                    np.maximum(z, 0, out=z)
                else:
                    z[...] = _activate(z, activation)
            h = z


def _one_blas_thread():
    """A context in which BLAS (NumPy's OpenBLAS, and any other BLAS loaded) runs single-threaded:
    fastnn._threads.single_threaded_blas, which nested and concurrent uses (a Gram computed while a
    layer epoch runs) share, restoring BLAS's threads when the last one leaves."""
    return single_threaded_blas()


def dense_forward(compiled_forward, blas_from=BLAS_FORWARD_MIN_WORK_PER_ROW):
    """A backend's mlp_forward: its compiled forward on row ranges (rows_on_threads) for networks of
    fewer than `blas_from` multiply-adds per row, blas_dense_forward for the others.

    Wide networks on several threads split the rows, one range per thread, each running
    single-threaded GEMMs: no synchronisation inside a GEMM, and no BLAS workers spinning against
    another process's threads on a busy machine (measured 5-10x slower there with BLAS's own threads).
    """
    compiled = rows_on_threads(compiled_forward, dense_multiply_adds)

    def forward(X, sizes, activation, params, out):
        work_per_row = dense_multiply_adds(sizes, activation, params)
        if work_per_row < blas_from:
            compiled(X, sizes, activation, params, out)
            return
        n = X.shape[0]
        workers = get_num_threads() if n * work_per_row >= INFERENCE_PARALLEL_MIN_WORK else 1
        workers = max(1, min(workers, -(-n // BLAS_FORWARD_CHUNK)))
        if workers == 1:
            blas_dense_forward(X, sizes, activation, params, out)
            return
        bounds = [n * k // workers for k in range(workers + 1)]
        with _one_blas_thread():
            run_on_threads(lambda start, stop: blas_dense_forward(X[start:stop], sizes, activation, params,
                                                                  out[start:stop]),
                           [(start, stop) for start, stop in zip(bounds, bounds[1:])])

    return forward


def dense_multiply_adds(sizes, activation, params):
    """Multiply-adds per row of a dense network (mlp_forward's settings)."""
    return int(np.dot(sizes[:-1], sizes[1:]))


def conv_multiply_adds(conv, n_classes, params):
    """Multiply-adds per example of a conv stack (cnn1d_forward's settings): about one per parameter use."""
    work, length = 0, 0
    for c_in, l_in, c_out, k, stride, padding in conv.tolist():
        length = (l_in + 2 * padding - k) // stride + 1
        work += c_out * c_in * k * length
    return work + int(conv[-1][2]) * length * n_classes
def poly_matvec(X, Y, V, scalars, out, band_rows, column_chunk, epilogue):
    """out = K @ V for the polynomial kernel, tile by tile: T = X[rows] @ Y[cols].T in a small buffer,
    epilogue(T, *scalars) makes it kernel values, and out[rows] += T @ V[cols]."""
    Y = X if Y is None else Y
    n_x, n_y = X.shape[0], Y.shape[0]
    tile = np.empty(min(band_rows, n_x) * min(column_chunk, n_y), dtype=X.dtype)
    out[...] = 0
    for c0 in range(0, n_y, column_chunk):
        c1 = min(n_y, c0 + column_chunk)
        for r0 in range(0, n_x, band_rows):
            r1 = min(n_x, r0 + band_rows)
            T = tile[:(r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
            np.matmul(X[r0:r1], Y[c0:c1].T, out=T)
            epilogue(T, *scalars)
            out[r0:r1] += T @ V[c0:c1]


def make_gram_matvec(epilogue, rbf_tile_epilogue):
    """Build a backend's gram_matvec(X, Y, V, kernel, gamma, degree, coef0, out, band_rows, column_chunk,
    threads=1): out (n_x, k) = gram(X, Y) @ V for V (n_y, k), with kernel tiles of at most band_rows x
    column_chunk, up to `threads` of them at once (the caller's memory budget allows that many).

    RBF: rbf_matvec around rbf_tile_epilogue; poly: poly_matvec around epilogue (as in
    make_gram_kernel); linear: X @ (Y.T @ V), which never forms a kernel value at all.
    """

    def gram_matvec(X, Y, V, kernel, gamma, degree, coef0, out, band_rows, column_chunk, threads=1):
        if kernel == "rbf":
            n_y = X.shape[0] if Y is None else Y.shape[0]
            tiles = tile_grid(X.shape[0], n_y, band_rows, column_chunk, Y is None)
            with tile_workers(len(tiles) if threads > 1 else 1) as workers:
                if workers and threads > 1 and len(tiles) > 1:
                    rbf_matvec_tiles(X, Y, V, gamma, out, band_rows, column_chunk, rbf_tile_epilogue,
                                     min(workers, threads))
                    return
            rbf_matvec(X, Y, V, gamma, out, band_rows, column_chunk, rbf_tile_epilogue)
        elif kernel == "linear":
            np.matmul(X, (X if Y is None else Y).T @ V, out=out)
        else:
            scalars = (KERNEL_CODES[kernel], X.dtype.type(gamma), degree, X.dtype.type(coef0))
            poly_matvec(X, Y, V, scalars, out, band_rows, column_chunk, epilogue)

    return gram_matvec


def make_gram_rows(epilogue, rbf_tile_epilogue):
    """Build a backend's gram_rows(X, rows, Y, kernel, gamma, degree, coef0, K, column_chunk, prepared=None,
    columns=None): K (len(rows), n_cols) = the rows `rows` of gram(X, Y) (Y None: of gram(X), whose RBF
    diagonal is exactly 1), restricted to `columns` (sorted int64 indices into Y's rows; None: all), the
    RBF products computed column_chunk columns at a time.

    prepared: None, or a dict the caller keeps between calls on the same X and Y; the first RBF call
    stores X's means and a float64 centered copy of Y (or X) in it (n_y x n_features x 8 bytes), so
    later calls skip centering all of Y again (they only read it).
    """

    def gram_rows(X, rows, Y, kernel, gamma, degree, coef0, K, column_chunk, prepared=None, columns=None):
        selected = X[rows]
        target = X if Y is None else Y
        if columns is not None:
            target = target[columns]
        if kernel == "rbf":
            if prepared is None:
                mean, y_rows = X.mean(axis=0, dtype=np.float64), None
            else:
                if "mean" not in prepared:
                    prepared["mean"] = X.mean(axis=0, dtype=np.float64)
                    prepared["rows"] = CenteredRows(X if Y is None else Y, prepared["mean"], precompute=True)
                mean, y_rows = prepared["mean"], prepared["rows"]
                if columns is not None:
                    y_rows = y_rows.subset(columns, target)
            # Centered as gram(X, Y) centers them (X's means), not by the selected rows' own means.
            rbf_rows(selected, target, gamma, K, column_chunk, rbf_tile_epilogue, mean, y_rows)
            if Y is None:
                set_self_pairs_to_one(K, rows, columns)
            return
        np.matmul(selected, target.T, out=K)
        code = KERNEL_CODES[kernel]
        if code:
            epilogue(K, code, K.dtype.type(gamma), degree, K.dtype.type(coef0))

    return gram_rows


def set_self_pairs_to_one(K, rows, columns):
    """K[r, c] = 1 where example rows[r] is column c (columns: sorted example indices, or None for all):
    an RBF value of an example with itself, exactly 1 as on gram(X)'s diagonal."""
    if columns is None:
        K[np.arange(rows.shape[0]), rows] = 1
        return
    position = np.minimum(np.searchsorted(columns, rows), columns.shape[0] - 1)
    present = columns[position] == rows
    K[np.flatnonzero(present), position[present]] = 1
