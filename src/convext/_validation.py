"""Argument checks shared by the functional API, and the one output-size formula.

Every check raises ValueError or TypeError with a message that names the argument and, where
shapes are involved, the shapes. Nothing here touches array elements.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator

import numpy as np

from ._typing import IntPair, Padding

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_DTYPE_NAMES = "float32, float64"

# The geometry bound. The compiled kernels index with Py_ssize_t (int64, at most 2**63 - 1) and
# trust their arguments, so every size is checked here, in Python integers, before any C
# arithmetic. Each geometry argument (kernel size, stride, padding, dilation, divisor_override)
# and each extent derived from them along one axis (the padded input H + pad_top + pad_bottom,
# the dilated kernel d*(k-1) + 1, the output length), and each product of two such extents that
# a kernel forms (the output plane OH*OW, the pooling window kH*kW, the elements of a scratch or
# output array) must be at most MAX_EXTENT = 2**40. The kernels' index expressions are sums of
# a few such terms (a loop counter times a stride stays below the padded extent it walks), so
# they stay below 2**44 and their byte offsets (times 8) below 2**47: a margin of 2**16 below
# 2**63. 2**40 elements are 4 TiB of float32, more than any machine convext runs on can
# allocate, so the bound refuses no computation that could have run; what exceeds it is a
# ValueError naming the argument (values >= 2**63 included, which would otherwise be an
# OverflowError at the C boundary).
MAX_EXTENT = 2**40
_MAX_TEXT = "2**40"

# the string paddings of convolution and the reductions of the losses
PADDING_MODES = ("valid", "same")
REDUCTIONS = ("mean", "sum", "none")


def conv_output_size(
    size: IntPair,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
) -> int | tuple[int, ...]:
    """Length of a convolution or pooling output along one axis.

    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``

    Each argument may be an int or a pair (height, width); with pairs the result is a pair.
    ``padding`` may also be ``'valid'`` (0) or ``'same'`` (the output keeps ``size``; stride
    must be 1), or a 4-tuple (top, bottom, left, right) (the result is then a pair). A result
    below 1 means the kernel does not fit; it is returned as is.
    """
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        size, kernel_size, stride, dilation = (
            as_pair(v, n)
            for v, n in (
                (size, "size"),
                (kernel_size, "kernel_size"),
                (stride, "stride"),
                (dilation, "dilation"),
            )
        )
        return tuple(
            _out_size(*args)
            for args in zip(
                size,
                kernel_size,
                stride,
                *zip(*side_pads(as_padding(padding)), strict=True),
                dilation,
                strict=True,
            )
        )
    if any(isinstance(v, (tuple, list)) for v in (size, kernel_size, stride, padding, dilation)):
        size, kernel_size, stride, dilation = (
            as_pair(v, n)
            for v, n in (
                (size, "size"),
                (kernel_size, "kernel_size"),
                (stride, "stride"),
                (dilation, "dilation"),
            )
        )
        if isinstance(padding, str):
            padding = (padding, padding)
        else:
            padding = as_pair(padding, "padding", allow_zero=True)
        return tuple(
            conv_output_size(*args)
            for args in zip(size, kernel_size, stride, padding, dilation, strict=True)
        )
    # one axis: the pair rules on (v, v) (sizes, kernel, stride and dilation >= 1, padding
    # >= 0, each within the geometry bound), as on the pair path
    size, kernel_size, stride, dilation = (
        as_pair(v, n)[0]
        for v, n in (
            (size, "size"),
            (kernel_size, "kernel_size"),
            (stride, "stride"),
            (dilation, "dilation"),
        )
    )
    if isinstance(padding, str):
        if check_padding(padding, (stride, stride)) == "same":
            return size
        padding = 0
    padding = as_pair(padding, "padding", allow_zero=True)[0]
    return _out_size(size, kernel_size, stride, padding, padding, dilation)


def as_padding(value, name="padding"):
    """The one numeric padding rule of convolution and pooling: an int (every side), a pair
    (height, width) (top and bottom, left and right) or a 4-sequence (top, bottom, left, right)
    of ints >= 0, each at most MAX_EXTENT. Returns a pair or a 4-tuple (the caller's form, for
    configurations); ``side_pads`` turns it into ((top, bottom), (left, right))."""
    if isinstance(value, (tuple, list)) and len(value) == 4:
        sides = tuple(_as_int(v, name) for v in value)
        if min(sides) < 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")
        check_extent(max(sides), name)
        return sides
    if isinstance(value, (tuple, list)) and len(value) not in (1, 2):
        raise ValueError(
            f"{name} must be an int, a pair (height, width) or a 4-tuple (top, "
            f"bottom, left, right) of ints, got {value!r}"
        )
    return as_pair(value, name, allow_zero=True)


def side_pads(padding):
    """((top, bottom), (left, right)) of a padding normalised by ``as_padding``."""
    if len(padding) == 4:
        return (padding[0], padding[1]), (padding[2], padding[3])
    return (padding[0], padding[0]), (padding[1], padding[1])


def check_padding(padding, stride, fn=None):
    """The one padding check of convolution: an int, pair or 4-tuple (top, bottom, left, right)
    of ints >= 0 (returned normalised by ``as_padding``), or the string ``'valid'`` or
    ``'same'`` (returned as is); ``'same'`` needs ``stride`` (a pair) to be (1, 1). ``fn``
    prefixes the message."""
    pre = f"{fn}: " if fn else ""
    if not isinstance(padding, str):
        return as_padding(padding)
    if padding not in PADDING_MODES:
        raise ValueError(
            f"{pre}padding must be an int, a pair of ints, a 4-tuple (top, "
            f"bottom, left, right), 'valid' or 'same', got {padding!r}"
        )
    if padding == "same" and tuple(stride) != (1, 1):
        raise ValueError(
            f"{pre}padding='same' is not supported with stride {tuple(stride)}; "
            f"use stride=1 or explicit padding"
        )
    return padding


def check_reduction(reduction, fn=None):
    """The one reduction check of the losses: 'mean', 'sum' or 'none'."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        pre = f"{fn}: " if fn else ""
        raise ValueError(f"{pre}reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")
    return reduction


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


def check_extent(value, name, what=None):
    """``value`` (a Python int) must be at most MAX_EXTENT; ``what`` says which extent of
    ``name`` it is, when it is derived rather than given."""
    if value > MAX_EXTENT:
        desc = f"{name}={value}" if what is None else f"{what} ({value}, from {name})"
        raise ValueError(
            f"{desc} is too large: convext accepts geometry values and extents "
            f"(along an axis or over a plane) of at most {_MAX_TEXT} "
            f"({MAX_EXTENT})"
        )
    return value


def window_geometry(
    fn,
    size,
    kernel,
    stride,
    pads,
    dilation,
    ceil_mode=False,
    names=("kernel_size", "stride", "padding", "dilation"),
    what="input",
    detail="",
):
    """The one geometry check shared by convolution and pooling; returns (OH, OW).

    ``size``, ``kernel``, ``stride``, ``dilation`` are (height, width) pairs of ints already
    normalised (>= 1, padding >= 0); ``pads`` is ((top, bottom), (left, right)). Every argument,
    the padded input, the dilated kernel, the output length and the output plane must be at most
    MAX_EXTENT (ValueError naming the argument), and the padded input must hold the dilated
    kernel (with ceil_mode, as in PyTorch's pooling, only one window must exist). ``names`` are
    the caller's argument names (kernel, stride, padding, dilation);
    ``detail`` ends the kernel-too-large message (the caller's shapes): a string, or a
    function returning it (built only for the message).
    """
    kname, sname, pname, dname = names
    for v, n in ((kernel, kname), (stride, sname), (dilation, dname)):
        check_extent(max(v), n)
    check_extent(max(max(p) for p in pads), pname)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, pads, strict=True))
    dilated = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    for v, n, w in ((dilated, dname, "the dilated kernel"), (padded, pname, "the padded input")):
        for a in v:
            check_extent(a, n, w)
    out = tuple(
        _out_size(s, k, st, lo, hi, d, ceil_mode)
        for s, k, st, (lo, hi), d in zip(size, kernel, stride, pads, dilation, strict=True)
    )
    # convolution: the kernel must fit; pooling (PyTorch's rule): one window must exist, which
    # ceil_mode allows for a dilated kernel hanging over the padding
    if min(out) < 1 or (not ceil_mode and (padded[0] < dilated[0] or padded[1] < dilated[1])):
        raise ValueError(
            f"{fn}: the kernel ({dilated[0]} x {dilated[1]} with dilation) is "
            f"larger than the padded {what} ({padded[0]} x {padded[1]})"
            f"{detail() if callable(detail) else detail}"
        )
    check_extent(out[0] * out[1], f"{sname}/{pname}", f"the output plane {out[0]} x {out[1]}")
    return out


def as_finite_float(value, name):
    """A finite real number (not a bool) as a Python float: TypeError for anything else,
    ValueError naming ``name`` for NaN, an infinity or an int too large for a float (whose
    float() is an OverflowError)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r:.80}")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must be finite, got an int of {value.bit_length()} bits"
        ) from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_real(name, value, low=None, high=None, low_open=False, high_open=True):
    """The one rule for a float hyper-parameter (a layer's slope, eps, momentum or
    probability; an optimizer's or scheduler's setting): a finite real number (not a bool,
    not a string; TypeError otherwise, ValueError for NaN and the infinities, see
    ``as_finite_float``) within [low, high) by default (``low_open``: low excluded,
    ``high_open=False``: high included) -> float. ``name`` may carry the caller as a prefix
    (``"Dropout: p"``); the range message names the argument itself."""
    value = as_finite_float(value, name)
    if (low is not None and (value <= low if low_open else value < low)) or (
        high is not None and (value >= high if high_open else value > high)
    ):
        short = name.rsplit(": ", 1)[-1]  # "param_groups[1]: lr" -> "lr"
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must satisfy {lo}{short}{hi}, got {value}")
    return value


def _as_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        try:
            if isinstance(value, (bool, np.bool_)):
                raise TypeError
            return operator.index(value)
        except TypeError:
            raise TypeError(
                f"{name} must be an int, got {type(value).__name__} {value!r}"
            ) from None
    return int(value)


def as_pair(value, name, allow_zero=False, minimum=None):
    """Normalise an int or a length-2 sequence of ints to a tuple (a, b).

    By default each entry must be >= 1; ``allow_zero`` permits 0 (and still rejects negatives).
    Each entry must be at most MAX_EXTENT (the geometry bound).
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
    check_extent(max(pair), name)
    return pair


def check_array(x, name, ndims):
    """np.asarray(x) with a supported floating dtype and an allowed number of dimensions. An
    array the kernels will read through a copy (not C-contiguous, or in the other byte order)
    must fit that copy in memory (check_alloc): a broadcast view of 4 bytes can stand for
    terabytes."""
    if (
        type(x) is np.ndarray
        and x.dtype in SUPPORTED_DTYPES
        and x.ndim in ndims
        and x.flags.c_contiguous
        and x.dtype.isnative
    ):
        return x  # the usual case, nothing to convert: the checks below, in fewer steps
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = np.asarray(x)
    if arr.dtype not in SUPPORTED_DTYPES and arr.dtype.newbyteorder("=") not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must have dtype {_DTYPE_NAMES}, got {arr.dtype}")
    if arr.ndim not in ndims:
        want = (
            f"at least {min(ndims)}"
            if isinstance(ndims, range)
            else " or ".join(str(n) for n in ndims)
        )
        raise ValueError(f"{name} must be {want}-dimensional, got shape {arr.shape}")
    swapped = arr.dtype.byteorder == (">" if np.little_endian else "<")
    if swapped or not arr.flags.c_contiguous:
        check_alloc(
            arr.shape, lambda: f"{name}, copied to a contiguous array, of shape", arr.itemsize
        )
    if swapped:
        arr = arr.astype(arr.dtype.newbyteorder("="))  # same values in native byte order
    return arr


def check_same_dtype(**arrays):
    """All non-None arrays share one dtype; return it."""
    items = [(k, a) for k, a in arrays.items() if a is not None]
    dtype = items[0][1].dtype
    if all(a.dtype is dtype for _, a in items):  # the usual case, one dtype object
        return dtype
    for k, a in items[1:]:
        if a.dtype != dtype:
            desc = ", ".join(f"{n} {b.dtype}" for n, b in items)
            raise TypeError(f"{k} must have the same dtype as {items[0][0]}; got {desc}")
    return dtype


def check_positive_int(value, name):
    """An int >= 1 and at most MAX_EXTENT (the geometry bound)."""
    v = _as_int(value, name)
    if v < 1:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return check_extent(v, name)


def check_alloc(shape, name, itemsize=8):
    """An array of ``shape`` (given by the caller as argument ``name``) that convext is asked to
    allocate: at most MAX_EXTENT elements and no more bytes than the machine's physical memory
    (ValueError naming ``name``, instead of a MemoryError or a machine brought to swap).
    ``name`` may be a function returning the text, called only to raise (a name built from
    shapes costs more than the check on a small call)."""
    n = _elements(shape)
    if n > MAX_EXTENT:
        raise ValueError(
            f"{_text(name)} {_shape_text(shape)} has {n} elements, more than the "
            f"{_MAX_TEXT} convext's kernels accept"
        )
    total = _physical_memory()
    if total and n * itemsize > total:
        raise ValueError(
            f"{_text(name)} {_shape_text(shape)} asks for {n * itemsize} bytes, more "
            f"than this machine's {total} bytes of memory"
        )
    return shape


def copies_that_fit(shape, itemsize, most):
    """How many arrays of ``shape`` check_alloc would accept together (as one array of
    ``(k,) + shape``): ``most``, or fewer where that many exceed its limits (at least 1: one
    copy that does not fit is check_alloc's to refuse). For per-thread buffers, so that a call
    that one thread can run is not refused on many."""
    n = _elements(shape)
    if n == 0:
        return most
    return max(1, min(most, _most_elements(itemsize) // n))


def _elements(shape):
    """The number of elements of ``shape`` (a Python int: never overflows)."""
    n = 1
    for s in shape:
        n *= s
    return n


def _most_elements(itemsize):
    """check_alloc's limits as a number of elements: MAX_EXTENT, and the machine's memory."""
    total = _physical_memory()
    return min(MAX_EXTENT, total // itemsize) if total else MAX_EXTENT


def _text(name):
    """check_alloc's name: the text, or what the function returns."""
    return name() if callable(name) else name


def _shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


@functools.lru_cache(maxsize=1)
def _physical_memory():
    """Bytes of physical memory (0 if unknown), read once: two system calls on every
    allocation check cost more than a small convolution's validation."""
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


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


_PLAIN_TYPES = frozenset((int, bool, str, type(None)))


def _type_key(value):
    """The types of a plain argument (an int, bool, str or None, or a flat tuple of them), which
    tell equal values of different types apart (True == 1 == 1.0 hash alike but are validated
    differently), or None for any other argument."""
    t = type(value)
    if t in _PLAIN_TYPES:
        return t
    if t is tuple:
        types = tuple(map(type, value))
        if _PLAIN_TYPES.issuperset(types):
            return types
    return None


def keep_plain_results(fn=None, *, maxsize=1024, shapes=0):
    """``fn`` (a pure geometry check of shapes and window arguments) with its results kept for
    plain arguments (``_type_key``): a network calls it with the same few geometries on every
    step, and one check takes tens of microseconds of Python, as long as a small layer's
    kernel. Any other argument (a list, a numpy int, a float), and any call with keyword
    arguments, is checked on every call, and an error is raised again on every call (nothing
    is kept for it). The first ``shapes`` arguments are numpy shapes (tuples of Python ints,
    or None), plain by construction: their types are not looked at."""
    if fn is None:
        return functools.partial(keep_plain_results, maxsize=maxsize, shapes=shapes)

    @functools.lru_cache(maxsize=maxsize)
    def kept(key, args):
        return fn(*args)

    @functools.wraps(fn)
    def check(*args, **kwargs):
        key = tuple(map(type, args[shapes:]))
        if not _PLAIN_TYPES.issuperset(key):  # a tuple (its items' types) or another argument
            key = tuple(map(_type_key, args[shapes:]))
        return fn(*args, **kwargs) if kwargs or None in key else kept(key, args)

    return check


def contiguous(a):
    """A C-contiguous, aligned array with the same values (no copy if it is; check_array has
    made the byte order native)."""
    if type(a) is np.ndarray and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.require(a, requirements=("C", "A"))


def transpose_geometry(fn, size, kernel, stride, padding, output_padding, dilation, detail=""):
    """The geometry of a transposed convolution, from shapes alone; returns (out_hw, conv_hw).

    All arguments are (height, width) pairs of ints already normalised (stride, dilation,
    kernel >= 1; padding, output_padding >= 0). ``out_hw`` is PyTorch's output size
    ``(H - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1``; ``conv_hw`` is the
    output size of the convolution (same kernel, stride, padding, dilation) over an input of
    ``out_hw``, which is ``size`` except when output_padding >= stride (allowed when it is below
    the dilation), then ``size + output_padding // stride``. output_padding must be smaller than
    the stride or the dilation (PyTorch's rule); every extent is bounded by ``window_geometry``
    (ValueError naming the argument).
    """
    for op, s, d in zip(output_padding, stride, dilation, strict=True):
        if op >= s and op >= d:
            raise ValueError(
                f"{fn}: output_padding {tuple(output_padding)} must be smaller "
                f"than either the stride {tuple(stride)} or the dilation "
                f"{tuple(dilation)}"
            )
    check_extent(max(output_padding), "output_padding")
    out_hw = tuple(
        (h - 1) * s - 2 * p + d * (k - 1) + op + 1
        for h, k, s, p, op, d in zip(
            size, kernel, stride, padding, output_padding, dilation, strict=True
        )
    )
    for o in out_hw:
        check_extent(o, "stride/dilation", "the output length")
    if min(out_hw) < 1:
        raise ValueError(
            f"{fn}: the output size {out_hw[0]} x {out_hw[1]} (from stride, "
            f"padding, dilation and output_padding) must be positive{detail}"
        )
    conv_hw = window_geometry(
        fn,
        out_hw,
        kernel,
        stride,
        tuple((p, p) for p in padding),
        dilation,
        names=("weight", "stride", "padding", "dilation"),
        what="output",
        detail=detail,
    )
    return out_hw, conv_hw
