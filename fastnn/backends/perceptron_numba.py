"""Numba epochs of the multiclass perceptron (Algorithm 1) and kernel perceptron (Algorithm 2).

A whole epoch runs in one compiled call without the GIL. The kernel perceptron keeps
scores = alpha @ K up to date instead of recomputing a prediction from alpha: a mistake on
example i adds row i of K to the true class's scores and subtracts it from the predicted
class's (O(N) per mistake), so a prediction is an argmax over C numbers (O(C)).

Ties in the argmax go to the lowest class index, as np.argmax in the reference.
"""
from numba import njit

# Reassociation lets LLVM vectorize the dot products (and contract them into FMAs); every update
# is a plain add or subtract, and with exactly representable data (integers, or pixels / 16) the
# result is the same bit for bit as the reference's.
DOT_MATH = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=DOT_MATH, inline="always")
def _dot(w, x, n):
    """w . x accumulated in the arrays' dtype (n >= 1)."""
    s = w[0] * x[0]
    for d in range(1, n):
        s += w[d] * x[d]
    return s


@njit(cache=True, nogil=True, fastmath=DOT_MATH)
def perceptron_epoch(X, y, order, W):
    """One pass of Algorithm 1 over X[order]; W (C, D) updated in place; returns the mistakes."""
    n_classes, n_features = W.shape
    mistakes = 0
    for t in range(order.shape[0]):
        i = order[t]
        x = X[i]
        yhat = 0
        best = _dot(W[0], x, n_features)
        for c in range(1, n_classes):
            s = _dot(W[c], x, n_features)
            if s > best:
                best = s
                yhat = c
        label = y[i]
        if yhat != label:
            w_wrong = W[yhat]
            w_true = W[label]
            for d in range(n_features):
                w_wrong[d] -= x[d]
                w_true[d] += x[d]
            mistakes += 1
    return mistakes


@njit(cache=True, nogil=True)
def kernel_perceptron_epoch(K, y, order, alpha, scores):
    """One pass of Algorithm 2 over `order`; alpha (C, N) and scores (C, N) = alpha @ K updated in
    place; returns the mistakes."""
    n_classes, n = scores.shape
    mistakes = 0
    for t in range(order.shape[0]):
        i = order[t]
        yhat = 0
        best = scores[0, i]
        for c in range(1, n_classes):
            if scores[c, i] > best:
                best = scores[c, i]
                yhat = c
        label = y[i]
        if yhat != label:
            alpha[yhat, i] -= 1
            alpha[label, i] += 1
            row = K[i]
            s_wrong = scores[yhat]
            s_true = scores[label]
            for m in range(n):
                s_wrong[m] -= row[m]
                s_true[m] += row[m]
            mistakes += 1
    return mistakes
