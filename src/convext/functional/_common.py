"""Private helpers shared by the modules of ``convext.functional``: the output protocol
(``_buffer``/``_into``), the window geometry type, and the small argument checks that are not
geometry (the geometry and size checks live in ``convext._validation``)."""

import math
from typing import NamedTuple

import numpy as np

from .. import _recycle
from .._validation import (
    MAX_EXTENT,
    _as_int,
    as_finite_float,
    check_alloc,
    check_array,
    check_same_dtype,
    contiguous,
)


class Window(NamedTuple):
    """The geometry of a convolution or pooling window over (H, W) planes, normalised:
    ``kernel``, ``stride``, ``dilation`` are (height, width) pairs, ``padding`` is
    ((top, bottom), (left, right)) (asymmetric for ``padding='same'`` with an even kernel
    and for a per-side padding (top, bottom, left, right)),
    ``out_hw`` the output plane (OH, OW); ``groups`` is 1 for pooling."""

    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_hw: tuple
    groups: int = 1

    @property
    def pad_top_left(self):
        """(top, left): what the kernels take (bottom and right follow from OH and OW)."""
        return self.padding[0][0], self.padding[1][0]


def _shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _into(out, result):
    """Copy a finished result into the caller's ``out`` (if any) and return what to give back."""
    if out is None:
        return result
    if result is not out:
        np.copyto(out, result)
    return out


def _buffer(out, shape, dtype, *inputs):
    """Where a kernel may write directly: ``out`` itself when it is C-contiguous, aligned and
    shares no memory with the inputs; otherwise a new array (copied into ``out`` at the end,
    so a caller's ``out`` is only written once everything succeeded), from the pool of large
    results' memory (convext._recycle) when it is that large."""
    if (
        out is not None
        and out.flags.c_contiguous
        and out.flags.aligned
        and not any(a is not None and np.may_share_memory(out, a) for a in inputs)
    ):
        return out
    return _recycle.empty(shape, dtype)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_grad_flags(needs_input_grad, needs_weight_grad, needs_bias_grad):
    """A backward's three needs_*_grad flags, each a bool (TypeError naming it otherwise: a
    string such as "no" would read as True)."""
    return (
        _check_bool(needs_input_grad, "needs_input_grad"),
        _check_bool(needs_weight_grad, "needs_weight_grad"),
        _check_bool(needs_bias_grad, "needs_bias_grad"),
    )


def _float_array(x, name):
    """A supported float array of any shape, C-contiguous (so that the result of NumPy's
    vectorised loops does not depend on the caller's memory layout, to the last bit)."""
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = np.asarray(x)
    return contiguous(check_array(arr, name, (arr.ndim,)))


def _grad_pair(grad_out, x, xname, fn):
    """grad_out and x (or y): float arrays of one dtype and one shape."""
    gy = _float_array(grad_out, "grad_out")
    x = _float_array(x, xname)
    check_same_dtype(grad_out=gy, **{xname: x})
    if gy.shape != x.shape:
        raise ValueError(
            f"{fn}: grad_out must have the shape of {xname} "
            f"{_shape_str(x.shape)}, got {_shape_str(gy.shape)}"
        )
    return gy, x


def _scalar(value, name, dtype):
    """A finite real number (as_finite_float: TypeError for a bool, a complex number or a
    string, ValueError for NaN and the infinities) as a scalar of ``dtype``, in whose range it
    must be (ValueError: 1e300 would be an infinity in float32, as torch refuses it)."""
    v = as_finite_float(value, name)
    with np.errstate(over="ignore"):
        s = dtype.type(v)
    if not np.isfinite(s):
        raise ValueError(f"{name} must be within the range of {dtype}, got {value!r}")
    return s


def _real(value, name, allow_none=False):
    """A finite real number as a Python float."""
    if value is None and allow_none:
        return None
    return as_finite_float(value, name)


def _check_input_shape(input_shape, fn, itemsize):
    """A tuple of 3 or 4 non-negative ints: the shape of the pooled input, which the backward
    pass allocates (so it must fit the geometry bound and the machine's memory)."""
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{fn}: input_shape must be a tuple of ints, got {input_shape!r}")
    shape = tuple(_as_int(s, "input_shape") for s in input_shape)
    if len(shape) not in (3, 4) or min(shape) < 0:
        raise ValueError(
            f"{fn}: input_shape must be (N, C, H, W) or (C, H, W) with "
            f"non-negative sizes, got {input_shape!r}"
        )
    return check_alloc(shape, f"{fn}: input_shape", itemsize)


def _check_size(shape, name, fn, itemsize):
    """An array of ``shape`` (argument ``name``) with elements of ``itemsize`` bytes within the
    geometry bound MAX_EXTENT of ``convext._validation`` (so every size, extent and index a
    kernel forms from it stays far below 2**63) and within the machine's memory (check_alloc:
    convext allocates it, or an array of its size, for the result)."""
    n = math.prod(shape)
    if n > MAX_EXTENT:
        raise ValueError(
            f"{fn}: {name} of shape {_shape_str(shape)} is too large: {n} "
            f"elements, more than the geometry bound {MAX_EXTENT}"
        )
    check_alloc(shape, f"{fn}: {name} of shape", itemsize)
