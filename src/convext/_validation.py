"""Argument checks shared by the functional API, and the one output-size formula.

Every check raises ValueError or TypeError with a message that names the argument and, where
shapes are involved, the shapes. Nothing here touches array elements.
"""
import numbers
import operator

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_DTYPE_NAMES = "float32, float64"


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Length of a convolution or pooling output along one axis.

    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``

    Each argument may be an int or a pair (height, width); with pairs the result is a pair.
    ``padding`` may also be ``'valid'`` (0) or ``'same'`` (the output keeps ``size``; stride
    must be 1). A result below 1 means the kernel does not fit; it is returned as is.
    """
    if any(isinstance(v, (tuple, list)) for v in (size, kernel_size, stride, padding, dilation)):
        size, kernel_size, stride, dilation = (
            as_pair(v, n) for v, n in ((size, "size"), (kernel_size, "kernel_size"),
                                       (stride, "stride"), (dilation, "dilation")))
        if isinstance(padding, str):
            padding = (padding, padding)
        else:
            padding = as_pair(padding, "padding", allow_zero=True)
        return tuple(conv_output_size(*args) for args in zip(size, kernel_size, stride,
                                                               padding, dilation))
    size = _as_int(size, "size")
    kernel_size = _as_int(kernel_size, "kernel_size")
    stride = _as_int(stride, "stride")
    dilation = _as_int(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if stride != 1:
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            return size
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = _as_int(padding, "padding")
    return _out_size(size, kernel_size, stride, padding, padding, dilation)


def _out_size(size, k, s, pad_lo, pad_hi, d, ceil_mode=False):
    """The output-size formula with possibly asymmetric padding, and PyTorch's ceil_mode rule
    (round the span up, but the last window must start inside the input or the left padding).
    Floor division rounds a negative span down, as PyTorch's div_rtn does; a result below 1
    means the kernel does not fit."""
    span = size + pad_lo + pad_hi - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and out >= 1 and (out - 1) * s >= size + pad_lo:
        out -= 1
    return out


def _as_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        try:
            if isinstance(value, (bool, np.bool_)):
                raise TypeError
            return operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None
    return int(value)


def as_pair(value, name, allow_zero=False, minimum=None):
    """Normalise an int or a length-2 sequence of ints to a tuple (a, b).

    By default each entry must be >= 1; ``allow_zero`` permits 0 (and still rejects negatives).
    """
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = (_as_int(value[0], name), _as_int(value[-1], name))
    else:
        v = _as_int(value, name)
        pair = (v, v)
    lo = (0 if allow_zero else 1) if minimum is None else minimum
    if min(pair) < lo:
        what = "non-negative" if lo == 0 else f">= {lo}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return pair


def check_array(x, name, ndims):
    """np.asarray(x) with a supported floating dtype and an allowed number of dimensions."""
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = np.asarray(x)
    if arr.dtype.byteorder == (">" if np.little_endian else "<"):
        arr = arr.astype(arr.dtype.newbyteorder("="))  # same values in native byte order
    if arr.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must have dtype {_DTYPE_NAMES}, got {arr.dtype}")
    if arr.ndim not in ndims:
        want = (f"at least {min(ndims)}" if isinstance(ndims, range)
                else " or ".join(str(n) for n in ndims))
        raise ValueError(f"{name} must be {want}-dimensional, got shape {arr.shape}")
    return arr


def check_same_dtype(**arrays):
    """All non-None arrays share one dtype; return it."""
    items = [(k, a) for k, a in arrays.items() if a is not None]
    dtype = items[0][1].dtype
    for k, a in items[1:]:
        if a.dtype != dtype:
            desc = ", ".join(f"{n} {b.dtype}" for n, b in items)
            raise TypeError(f"{k} must have the same dtype as {items[0][0]}; got {desc}")
    return dtype


def check_positive_int(value, name):
    v = _as_int(value, name)
    if v < 1:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return v


def check_out(out, shape, dtype, name="out"):
    """A caller-supplied output array must have exactly this shape and dtype and be writable."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writable")
    return out


def contiguous(a):
    """A C-contiguous, aligned, native-byte-order array with the same values (no copy if it is)."""
    return np.require(a, requirements=("C", "A"))
