# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Losses returning (mean loss, gradient): softmax cross-entropy and the logistic loss.

Sums are accumulated in double whatever the input dtype.
"""
from cython cimport floating
from libc.math cimport exp, expf, fabs, log, log1p
from libc.stdint cimport int64_t


cdef inline double cpu_exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


def softmax_cross_entropy(const floating[:, ::1] logits, const int64_t[::1] y, floating[:, ::1] dlogits):
    cdef Py_ssize_t n = logits.shape[0], n_classes = logits.shape[1], i, c
    cdef floating row_max
    cdef double e, sum_exp, scale, total = 0
    with nogil:
        for i in range(n):
            row_max = logits[i, 0]
            for c in range(1, n_classes):
                if logits[i, c] > row_max:
                    row_max = logits[i, c]
            sum_exp = 0
            for c in range(n_classes):
                e = cpu_exp(<floating>(logits[i, c] - row_max))
                dlogits[i, c] = <floating>e
                sum_exp += e
            total += log(sum_exp) - (logits[i, y[i]] - row_max)
            scale = 1.0 / (sum_exp * n)
            for c in range(n_classes):
                dlogits[i, c] = <floating>(dlogits[i, c] * scale)
            dlogits[i, y[i]] -= <floating>(1.0 / n)
    return total / n


def logistic_loss(const floating[::1] scores, const floating[::1] y, floating[::1] dscores):
    cdef Py_ssize_t n = scores.shape[0], i
    cdef double z, e, sig, total = 0
    with nogil:
        for i in range(n):
            z = -y[i] * scores[i]
            e = exp(-fabs(z))
            total += (z if z > 0 else 0) + log1p(e)
            sig = 1 / (1 + e) if z >= 0 else e / (1 + e)
            dscores[i] = <floating>(-y[i] * sig / n)
    return total / n
