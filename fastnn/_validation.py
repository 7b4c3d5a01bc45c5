"""Checks run at the public boundary, before any compiled code sees an array.

Every failure names the argument and the shapes involved. The helpers return arrays that are
safe to hand to compiled kernels: floating (float32/float64), native byte order, C-contiguous.
They copy only when the input is not already in that form, and never write to the caller's data.
"""
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Largest size-like integer (stride, padding, kernel size, channels, batch size, degree, epochs...)
# accepted. Any geometry built from a few such numbers stays far below 2**63, so no size
# computation in compiled code can overflow; integers of 2**63 and more fail here too.
MAX_INT = 2**40
# Largest number of elements fastnn allocates for something sized by user integers rather than by
# the arrays given (a network's parameters, a fused epoch's work buffers, a pooled gradient): 2**31 - 1
# elements are 8 GiB of float32. Beyond that a typo (a padding of 10**9) would exhaust memory.
MAX_ELEMENTS = 2**31 - 1


def all_finite(array):
    """Whether every element of the float array is finite, in one read of the data when it is.

    A sum is finite only if every term is (NaN and infinities propagate; +inf and -inf make NaN), so
    a finite sum proves the array finite without the array-sized temporary of np.isfinite(array).all().
    A sum that overflows on finite data falls back to the element-wise test.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(array)):
            return True
    return bool(np.isfinite(array).all())


def finite(name, array):
    """ValueError naming `name` if the float array contains NaN or infinity."""
    if not all_finite(array):
        raise ValueError(f"{name} contains NaN or infinity")


def integer(name, value, low, high=MAX_INT):
    """`value` as a Python int in [low, high]; ValueError naming `name` for anything else.

    Accepts Python and NumPy integers (not bools, not floats, even integral ones), so that a
    value such as numpy.uint64(2**64 - 1) gives the same clear error as any other out-of-range one.
    """
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    number = int(value)
    if number < low:
        raise ValueError(f"{name} must be {kind}, got {number}")
    if number > high:
        raise ValueError(f"{name} = {number} is too large: fastnn accepts at most {high} ({_power(high)})")
    return number


def _power(value):
    exponent = value.bit_length() - 1
    if value == 2**exponent:
        return f"2**{exponent}"
    if value == 2**(exponent + 1) - 1:
        return f"2**{exponent + 1} - 1"
    return str(value)


def element_count(what, count, arguments, limit=MAX_ELEMENTS):
    """Refuse an allocation of `count` elements (a Python int) above `limit`, naming the arguments that
    size it; returns count."""
    if count > limit:
        raise ValueError(f"{arguments} would make {what} of {count} elements, more than fastnn's limit of "
                         f"{limit} ({_power(limit)}); use smaller values")
    return count


def float_array(name, value, *, ndim=None, min_ndim=None, dtype=None):
    """Return `value` as a non-empty C-contiguous float32/float64 array.

    dtype: when given (the dtype of the leading argument), `value` must already have it;
    fastnn never upcasts or downcasts silently.
    """
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array; fastnn would ignore its mask: pass value.filled(...) instead")
    array = np.asarray(value)
    if array.dtype not in FLOAT_DTYPES:
        if array.dtype.kind == "f" and array.dtype.newbyteorder("=") in FLOAT_DTYPES:
            array = array.astype(array.dtype.newbyteorder("="))  # same precision, native byte order
        else:
            raise TypeError(f"{name} must be a float32 or float64 array, got dtype {array.dtype}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype} but the other inputs are {np.dtype(dtype)}; "
                        f"cast explicitly (fastnn never converts dtypes silently)")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if min_ndim is not None and array.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    return np.ascontiguousarray(array)


def same_shape(name, array, other_name, shape):
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {shape} (the shape of {other_name})")


def relu_mask(mask, activations_shape, name="mask"):
    """Validate a bit-packed ReLU mask for activations of `activations_shape`."""
    mask = np.asarray(mask)
    if mask.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 bit-packed mask (from relu_forward), got dtype {mask.dtype}")
    expected = tuple(activations_shape[:-1]) + ((activations_shape[-1] + 7) // 8,)
    if mask.shape != expected:
        raise ValueError(f"{name} has shape {mask.shape}, expected {expected} for activations of shape "
                         f"{tuple(activations_shape)} (one bit per activation along the last axis)")
    return np.ascontiguousarray(mask)


def indices(name, values, upper, what, noun="index", shape=None):
    """Integers in [0, upper) (class labels, example indices), returned as a C-contiguous int64 array.

    what, noun: for the messages: what the values index ('classes', 'training examples') and what
    one value is called ('label', 'index').
    shape: the required shape, or None for any 1-D array (possibly empty).
    """
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        kind = "class labels" if noun == "label" else f"indices into {what}"
        raise TypeError(f"{name} must hold integer {kind}, got dtype {array.dtype}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if shape is None and array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size:
        low, high = array.min(), array.max()
        if low < 0 or high >= upper:
            bad = low if low < 0 else high
            raise ValueError(f"{name} holds {noun} {bad}, outside [0, {upper}) for {upper} {what}")
    return np.ascontiguousarray(array, dtype=np.int64)


def class_labels(name, y, n_samples, n_classes):
    """Integer class labels of shape (n_samples,) with 0 <= y < n_classes, returned as int64."""
    return indices(name, y, n_classes, "classes", noun="label", shape=(n_samples,))


def signed_labels(name, y, n_samples, dtype):
    """Labels in {-1, +1} of shape (n_samples,), returned in `dtype`."""
    labels = np.asarray(y)
    if labels.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric labels in {{-1, +1}}, got dtype {labels.dtype}")
    if labels.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},) to match scores, got {labels.shape}")
    if not np.all((labels == 1) | (labels == -1)):
        bad = labels[(labels != 1) & (labels != -1)][0]
        raise ValueError(f"{name} must contain only -1 and +1, found {bad}")
    return np.ascontiguousarray(labels, dtype=dtype)
