"""Reference epochs of the multiclass perceptron (Algorithm 1) and kernel perceptron (Algorithm 2).

Plain NumPy, one example at a time, written to be read: these are the oracle the compiled epochs
must match update for update. Like every backend function they receive validated C-contiguous
inputs and fill the state arrays they are given in place; they return the number of mistakes.

Predictions are np.argmax, so ties go to the lowest class index (every backend does the same).
"""
import numpy as np


def perceptron_epoch(X, y, order, W):
    """One pass of Algorithm 1 over the examples X[order].

    X (N, D) float, y (N,) int64 in [0, C), order (M,) int64 indices into X, W (C, D) of X's dtype,
    updated in place: on a mistake w_yhat -= x_i and w_{y_i} += x_i. Returns the number of mistakes.
    """
    mistakes = 0
    for i in order:
        yhat = np.argmax(W @ X[i])
        if yhat != y[i]:
            W[yhat] -= X[i]
            W[y[i]] += X[i]
            mistakes += 1
    return mistakes


def kernel_perceptron_epoch(K, y, order, alpha, scores):
    """One pass of Algorithm 2 over the examples in `order`.

    K (N, N) float, the Gram matrix of the training set (K[m, i] = k(x_m, x_i)); y (N,) int64 in
    [0, C); order (M,) int64 indices; alpha (C, N) of K's dtype, updated in place: on a mistake on
    example i, alpha[yhat, i] -= 1 and alpha[y_i, i] += 1. The prediction is recomputed from alpha
    every time: yhat = argmax_c sum_m alpha[c, m] K[m, i].

    scores (C, N) is the compiled backends' running copy of alpha @ K; here it is only brought up
    to date at the end. Returns the number of mistakes.
    """
    mistakes = 0
    for i in order:
        yhat = np.argmax(alpha @ K[:, i])
        if yhat != y[i]:
            alpha[yhat, i] -= 1
            alpha[y[i], i] += 1
            mistakes += 1
    np.matmul(alpha, K, out=scores)
    return mistakes
