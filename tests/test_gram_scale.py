"""gram_matvec and gram_rows: the Gram matrix's products and rows without the matrix, in bounded memory."""
import tracemalloc

import numpy as np
import pytest

import fastnn
from fastnn.gram import _tile_bytes, tile_shape

from test_gram import exact_rbf


def _offset_data(dtype, n_x=300, n_y=200, seed=0):
    """Rows of 500 + noise with exact duplicates planted across tiles: the cases the RBF expansion cancels."""
    rng = np.random.default_rng(seed)
    X = (500 + rng.random((n_x, 24))).astype(dtype)
    Y = (500 + rng.random((n_y, 24))).astype(dtype)
    for i, j in [(0, 0), (63, 64), (64, 63), (n_x - 1, n_y - 1), (130, 5)]:
        Y[j] = X[i]
    return X, Y


@pytest.mark.parametrize("with_y", [False, True])
def test_matvec_of_the_identity_is_the_gram_matrix_to_its_accuracy(with_y, backend, dtype):
    """gram_matvec(X, Y, I) = K, so every value of every tile meets gram's accuracy guarantee
    (float32 within 1e-6 of exact, float64 within 1e-12), also at tile edges (a 0.5 MiB budget)."""
    X, Y = _offset_data(dtype)
    Y = Y if with_y else None
    n_y = (X if Y is None else Y).shape[0]
    K = fastnn.gram_matvec(X, Y, np.eye(n_y, dtype=dtype), gamma=1.0, working_memory=0.5, backend=backend)
    exact = exact_rbf(X, X if Y is None else Y, 1.0)
    np.testing.assert_allclose(K, exact, rtol=0, atol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("kernel", ["rbf", "poly", "linear"])
@pytest.mark.parametrize("with_y", [False, True])
def test_matvec_equals_gram_times_v(kernel, with_y, backend, dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((700, 11)).astype(dtype)
    Y = rng.standard_normal((333, 11)).astype(dtype) if with_y else None
    V = rng.standard_normal(((X if Y is None else Y).shape[0], 4)).astype(dtype)
    params = dict(kernel=kernel, gamma=0.05, degree=2, coef0=0.5)
    expected = fastnn.gram(X, Y, backend=backend, **params).astype(np.float64) @ V.astype(np.float64)
    for working_memory in (None, 0.3):
        got = fastnn.gram_matvec(X, Y, V, working_memory=working_memory, backend=backend, **params)
        assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
        scale = np.abs(fastnn.gram(X, Y, backend="numpy", **params)).astype(np.float64) @ np.abs(V)
        tolerance = (2e-6 if dtype == "float32" else 1e-13) * scale  # rounding relative to sum |K V|
        assert np.all(np.abs(got - expected) <= tolerance)
        got_1d = fastnn.gram_matvec(X, Y, V[:, 0], working_memory=working_memory, backend=backend, **params)
        assert got_1d.shape == (X.shape[0],)
        assert np.all(np.abs(got_1d - expected[:, 0]) <= tolerance[:, 0])


def test_matvec_work_memory_stays_within_working_memory(backend):
    """Traced allocations during the call stay within working_memory plus the output and O(n) vectors,
    while the Gram matrix itself would need 32 MiB."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2048, 30))
    V = rng.standard_normal((2048, 2))
    fastnn.gram_matvec(X[:300], None, V[:300], working_memory=1, backend=backend)  # JIT, imports
    tracemalloc.start()
    try:
        out = fastnn.gram_matvec(X, None, V, working_memory=1, backend=backend)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    vectors = 16 * X.shape[0] * 8  # output, norms, and a few temporaries of n values
    # The NumPy reference's tile takes a few float64 temporaries the size of the tile (distances, masks).
    allowed = (1 if backend != "numpy" else 4) * (1 << 20) + vectors
    assert peak < allowed, f"peak {peak / 2**20:.2f} MiB"
    np.testing.assert_allclose(out, fastnn.gram(X, backend=backend) @ V, rtol=1e-10, atol=1e-10)


def test_tile_shape_follows_working_memory():
    assert tile_shape(20000, 20000, 784, 1, 8, None) == (512, 4096)
    rows, cols = tile_shape(20000, 20000, 784, 1, 8, 8)
    assert 64 <= rows <= 512 and 64 <= cols < 4096 and _tile_bytes(rows, cols, 784, 1, 8) <= 8 << 20
    assert tile_shape(20000, 20000, 784, 1, 8, 2)[0] == 64  # a 512-row band no longer fits
    assert tile_shape(3, 5, 2, 1, 4, None) == (3, 5)
    with pytest.raises(ValueError, match="working_memory=0.5 MiB is too small: one 64 x 64 tile of 784"):
        tile_shape(20000, 20000, 784, 1, 8, 0.5)


@pytest.mark.parametrize("with_y", [False, True])
def test_rows_are_the_gram_matrix_rows(with_y, backend, dtype):
    X, Y = _offset_data(dtype, seed=3)
    Y = Y if with_y else None
    rows = np.array([299, 0, 64, 64, 130])
    K = fastnn.gram_rows(X, rows, Y=Y, gamma=1.0, working_memory=0.1, backend=backend)
    target = X if Y is None else Y
    assert K.dtype == np.dtype(dtype) and K.shape == (5, target.shape[0])
    np.testing.assert_allclose(K, exact_rbf(X[rows], target, 1.0), rtol=0, atol=1e-6 if dtype == "float32" else 1e-12)
    if Y is None:
        np.testing.assert_array_equal(K[np.arange(5), rows], 1)  # as gram(X)'s diagonal
    np.testing.assert_allclose(K, fastnn.gram(X, Y, gamma=1.0, backend=backend)[rows], rtol=0, atol=2e-6)
    assert fastnn.gram_rows(X, np.array([], dtype=int), backend=backend).shape == (0, X.shape[0])


def test_gamma_default_is_global_not_per_rows(backend):
    X = np.random.default_rng(4).random((50, 8))
    np.testing.assert_allclose(fastnn.gram_rows(X, [3, 7], backend=backend),
                               fastnn.gram(X, gamma=1 / 8, backend=backend)[[3, 7]], rtol=1e-12)


X_OK = np.ones((6, 3))


@pytest.mark.parametrize("call, error, message", [
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(5), backend=b), ValueError, "V has 5 rows"),
    (lambda b: fastnn.gram_matvec(X_OK, np.ones((4, 3)), np.ones(6), backend=b), ValueError, "V has 6 rows"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(6, np.float32), backend=b), TypeError, "V has dtype float32"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones((6, 1, 1)), backend=b), ValueError, "V must be 1-D"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.full(6, np.nan), backend=b), ValueError, "V contains NaN"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(6), working_memory=0, backend=b), ValueError,
     "working_memory must be a positive"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(6), working_memory=-1, backend=b), ValueError, "positive"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(6), working_memory=float("nan"), backend=b), ValueError,
     "positive"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(6), working_memory=True, backend=b), ValueError, "positive"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(6), working_memory="1", backend=b), ValueError, "positive"),
    (lambda b: fastnn.gram_matvec(np.ones((100, 784)), None, np.ones(100), working_memory=1e-3, backend=b),
     ValueError, "too small"),
    (lambda b: fastnn.gram_matvec(X_OK, np.ones((4, 2)), np.ones(4), backend=b), ValueError, "same number of features"),
    (lambda b: fastnn.gram_matvec(X_OK, None, np.ones(6), gamma=-1, backend=b), ValueError, "gamma"),
    (lambda b: fastnn.gram_rows(X_OK, [6], backend=b), ValueError, r"rows holds index 6, outside \[0, 6\)"),
    (lambda b: fastnn.gram_rows(X_OK, [-1], backend=b), ValueError, "rows holds index -1"),
    (lambda b: fastnn.gram_rows(X_OK, [0.5], backend=b), TypeError, "rows must hold integer"),
    (lambda b: fastnn.gram_rows(X_OK, [[0]], backend=b), ValueError, "rows must be 1-D"),
    (lambda b: fastnn.gram_rows(X_OK, [0], working_memory=1e-9, backend=b), ValueError, "too small"),
    (lambda b: fastnn.gram_rows(X_OK, [0], Y=np.ones((2, 3), np.float32), backend=b), TypeError, "Y has dtype"),
])
def test_bad_input_is_refused_before_any_work(call, error, message, backend):
    with pytest.raises(error, match=message):
        call(backend)


@pytest.mark.parametrize("with_y", [False, True])
def test_matvec_tiles_on_threads_give_gram_times_v(with_y, backend, dtype, monkeypatch):
    """The compiled backends' RBF matvec runs tiles on two threads, each adding into its own sum (with
    Y None, the mirror of every tile past its band too); many small tiles, every band and chunk edge."""
    from fastnn.backends import _compiled

    if backend == "numpy":
        pytest.skip("the reference computes one tile at a time")
    monkeypatch.setattr(fastnn._threads, "limit", 2)
    threaded = []
    monkeypatch.setattr(_compiled, "rbf_matvec", lambda *a: pytest.fail("the one-tile-at-a-time path ran"))
    original = _compiled.rbf_matvec_tiles
    monkeypatch.setattr(_compiled, "rbf_matvec_tiles", lambda *a: threaded.append(a[-1]) or original(*a))
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1300, 40)).astype(dtype)
    Y = rng.standard_normal((900, 40)).astype(dtype) if with_y else None
    V = rng.standard_normal(((X if Y is None else Y).shape[0], 3)).astype(dtype)
    got = fastnn.gram_matvec(X, Y, V, gamma=0.02, working_memory=1.5, backend=backend)
    expected = fastnn.gram(X, Y, gamma=0.02, backend="numpy").astype(np.float64) @ V.astype(np.float64)
    assert threaded == [2]
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == "float32" else 1e-11,
                               atol=1e-4 if dtype == "float32" else 1e-10)
