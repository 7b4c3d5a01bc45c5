"""Dask arrays in, Dask arrays out: fastnn.gram, fastnn.gram_matvec and the estimators' predict on a cluster.

Each task is one tile computed by fastnn's own kernels (fastnn.gram of a row block of X and one of
Y) on whichever worker runs it; nothing here imports dask until a Dask array is passed (dask is the
optional extra fastnn[dask]). Rows are split as the caller chunked them; the features are gathered
into one chunk per row block. Parameters are global, not per tile: gamma's default is 1 / n_features
of the whole array, as in scikit-learn. With Y None each off-diagonal tile pair is computed once:
gram's mirror tile is a transposed copy of it, and gram_matvec's pair task returns both products.
Point the same code at a cluster with dask.distributed.Client("scheduler-address").
"""
import operator
import sys
from functools import partial

import numpy as np


def is_dask_array(value):
    """True for a dask.array.Array (without importing dask when the caller has not)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(value, module.Array)


def _as_row_blocks(name, value, dtype=None):
    """A 2-D float Dask array chunked by rows only (all features in each chunk)."""
    import dask.array as da

    array = value if is_dask_array(value) else da.from_array(np.asarray(value), chunks=(-1, -1))
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {array.dtype}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype} but the other inputs are {np.dtype(dtype)}; "
                        f"cast explicitly (fastnn never converts dtypes silently)")
    if any(np.isnan(size) for size in array.shape):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    return array.rechunk({1: -1})


def _check(X, Y, kernel, gamma, degree, coef0):
    """Validate the global parameters on the driver (one tile's worth, on an empty stand-in)."""
    from .gram import _check_kernel_inputs

    X = _as_row_blocks("X", X)
    Y = None if Y is None else _as_row_blocks("Y", Y, X.dtype)
    if Y is not None and Y.shape[1] != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features (shape {X.shape}) but Y has {Y.shape[1]} "
                         f"(shape {Y.shape}); they must have the same number of features")
    probe = np.zeros((1, X.shape[1]), dtype=X.dtype)
    _, _, gamma, degree, coef0 = _check_kernel_inputs(probe, None, kernel, gamma, degree, coef0)
    return X, Y, dict(kernel=kernel, gamma=gamma, degree=degree, coef0=coef0)


def _gram_tile(X_block, Y_block, params, backend):
    from .gram import gram

    return gram(X_block, Y_block, backend=backend, **params)


def _transposed(tile):
    return np.ascontiguousarray(tile.T)


def dask_gram(X, Y, kernel, gamma, degree, coef0, backend):
    """fastnn.gram on Dask arrays: a (n_x, n_y) Dask array, one task per (row block, row block) tile."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    X, Y, params = _check(X, Y, kernel, gamma, degree, coef0)
    symmetric = Y is None
    target = X if symmetric else Y
    name = "fastnn-gram-" + tokenize(X, None if symmetric else Y, params, backend)
    tile = partial(_gram_tile, params=params, backend=backend)
    graph = {}
    for i in range(X.numblocks[0]):
        for j in range(target.numblocks[0]):
            if symmetric and i > j:
                graph[(name, i, j)] = (_transposed, (name, j, i))  # the pair is computed once, at (j, i)
            elif symmetric and i == j:
                graph[(name, i, j)] = (tile, (X.name, i, 0), None)  # exactly symmetric, unit RBF diagonal
            else:
                graph[(name, i, j)] = (tile, (X.name, i, 0), (target.name, j, 0))
    dependencies = [X] if symmetric else [X, Y]
    layer = HighLevelGraph.from_collections(name, graph, dependencies=dependencies)
    return da.Array(layer, name, chunks=(X.chunks[0], target.chunks[0]), dtype=X.dtype)


def _pair_products(X_block, Y_block, V_rows, V_columns, params, backend):
    """(K @ V_columns, K.T @ V_rows) for the tile K = gram(X_block, Y_block): both rows it serves."""
    K = _gram_tile(X_block, Y_block, params, backend)
    return K @ V_columns, K.T @ V_rows


def _tile_product(X_block, Y_block, V_block, params, backend):
    return _gram_tile(X_block, Y_block, params, backend) @ V_block


def _sum(*parts):
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def dask_gram_matvec(X, Y, V, kernel, gamma, degree, coef0, backend):
    """fastnn.gram_matvec on Dask arrays: (n_x, k) (or (n_x,) for a 1-D V), chunked as X's rows.

    Each task computes one kernel tile with fastnn.gram, multiplies it and drops it; with Y None a
    pair task serves both of its row blocks. Memory per task: one tile of the caller's row chunks.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    X, Y, params = _check(X, Y, kernel, gamma, degree, coef0)
    symmetric = Y is None
    target = X if symmetric else Y
    V = V if is_dask_array(V) else da.from_array(np.asarray(V), chunks=-1)
    if V.ndim not in (1, 2) or V.shape[0] != target.shape[0]:
        raise ValueError(f"V must have shape ({target.shape[0]},) or ({target.shape[0]}, k) to match the Gram "
                         f"matrix's columns, got {V.shape}")
    if V.dtype != X.dtype:
        raise TypeError(f"V has dtype {V.dtype} but the other inputs are {X.dtype}; cast explicitly")
    one_dimensional = V.ndim == 1
    V = (V[:, None] if one_dimensional else V).rechunk((target.chunks[0], -1))
    k = V.shape[1]
    token = tokenize(X, None if symmetric else Y, V, params, backend)
    name, pairs, tiles = (f"fastnn-gram-matvec-{token}", f"fastnn-gram-matvec-pair-{token}",
                          f"fastnn-gram-matvec-tile-{token}")
    graph = {}
    parts = {i: [] for i in range(X.numblocks[0])}
    for i in range(X.numblocks[0]):
        for j in range(target.numblocks[0]):
            if symmetric and i < j:
                graph[(pairs, i, j)] = (partial(_pair_products, params=params, backend=backend), (X.name, i, 0),
                                        (X.name, j, 0), (V.name, i, 0), (V.name, j, 0))
                parts[i].append((operator.getitem, (pairs, i, j), 0))
                parts[j].append((operator.getitem, (pairs, i, j), 1))
            elif not symmetric or i == j:
                graph[(tiles, i, j)] = (partial(_tile_product, params=params, backend=backend), (X.name, i, 0),
                                        (target.name, j, 0), (V.name, j, 0))
                parts[i].append((tiles, i, j))
    for i, keys in parts.items():
        graph[(name, i, 0)] = (_sum, *keys)
    dependencies = [X, V] if symmetric else [X, Y, V]
    layer = HighLevelGraph.from_collections(name, graph, dependencies=dependencies)
    out = da.Array(layer, name, chunks=(X.chunks[0], (k,)), dtype=X.dtype)
    return out[:, 0] if one_dimensional else out


def map_rows(function, X, n_features, *, dtype, columns=None):
    """function (NumPy rows -> (rows,) or (rows, columns)) applied to every row block of Dask X."""
    X = X.rechunk({1: -1})
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X has shape {X.shape}; expected (n_samples, {n_features})")
    if columns is None:
        return X.map_blocks(function, drop_axis=1, dtype=dtype, chunks=(X.chunks[0],))
    return X.map_blocks(function, dtype=dtype, chunks=(X.chunks[0], (columns,)))
