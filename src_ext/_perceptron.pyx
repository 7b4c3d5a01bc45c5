# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Epochs of the multiclass perceptron (Algorithm 1) and kernel perceptron (Algorithm 2).

A whole epoch runs in one call without the GIL. The kernel perceptron keeps scores = alpha @ K
up to date: a mistake on example i adds row i of K to the true class's scores and subtracts it
from the predicted class's (O(N) per mistake), so a prediction is an argmax over C numbers.
Ties in the argmax go to the lowest class index, as np.argmax in the reference.
"""
from cython cimport floating
from libc.stdint cimport int64_t

cdef enum:
    LANES = 8  # independent partial sums: the compiler turns them into one vector register


cdef inline floating cpu_dot__d(const floating* w, const floating* x, Py_ssize_t n) noexcept nogil:
    """w . x over n elements, accumulated in the arrays' type in LANES interleaved partial sums."""
    cdef floating acc[LANES]
    cdef floating total
    cdef Py_ssize_t b, d, k, n_blocks = n // LANES, stop = n_blocks * LANES
    for k in range(LANES):
        acc[k] = 0
    for b in range(n_blocks):
        d = b * LANES
        for k in range(LANES):
            acc[k] += w[d + k] * x[d + k]
    total = 0
    for k in range(LANES):
        total += acc[k]
    for d in range(stop, n):
        total += w[d] * x[d]
    return total


cdef inline void cpu_move__d(floating* w_wrong, floating* w_true, const floating* x,
                             Py_ssize_t n) noexcept nogil:
    """w_wrong -= x; w_true += x (two different rows)."""
    cdef Py_ssize_t d
    for d in range(n):
        w_wrong[d] -= x[d]
        w_true[d] += x[d]


def perceptron_epoch(const floating[:, ::1] X, const int64_t[::1] y, const int64_t[::1] order,
                     floating[:, ::1] W):
    """One pass of Algorithm 1 over X[order]; W (C, D) updated in place; returns the mistakes."""
    cdef Py_ssize_t n_classes = W.shape[0], n_features = W.shape[1], n_steps = order.shape[0]
    cdef Py_ssize_t t, i, c, yhat, label
    cdef Py_ssize_t mistakes = 0
    cdef floating s, best
    cdef const floating* x
    with nogil:
        for t in range(n_steps):
            i = order[t]
            x = &X[i, 0]
            yhat = 0
            best = cpu_dot__d(&W[0, 0], x, n_features)
            for c in range(1, n_classes):
                s = cpu_dot__d(&W[c, 0], x, n_features)
                if s > best:
                    best = s
                    yhat = c
            label = y[i]
            if yhat != label:
                cpu_move__d(&W[yhat, 0], &W[label, 0], x, n_features)
                mistakes += 1
    return mistakes


def kernel_perceptron_epoch(const floating[:, ::1] K, const int64_t[::1] y, const int64_t[::1] order,
                            floating[:, ::1] alpha, floating[:, ::1] scores):
    """One pass of Algorithm 2 over `order`; alpha (C, N) and scores (C, N) = alpha @ K updated in
    place; returns the mistakes."""
    cdef Py_ssize_t n_classes = scores.shape[0], n = scores.shape[1], n_steps = order.shape[0]
    cdef Py_ssize_t t, i, c, yhat, label
    cdef Py_ssize_t mistakes = 0
    cdef floating best
    with nogil:
        for t in range(n_steps):
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
                cpu_move__d(&scores[yhat, 0], &scores[label, 0], &K[i, 0], n)
                mistakes += 1
    return mistakes
