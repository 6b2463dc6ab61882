# Type stubs for convext._kernels._resample, compiled from _resample.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.

import numpy as np
from numpy.typing import NDArray

# a C-contiguous float32 or float64 array (every array argument of one call shares the dtype)
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

def adaptive_avg_forward(
    x: _FloatArray,
    y: _FloatArray,
    hs: NDArray[np.int64],
    he: NDArray[np.int64],
    ws: NDArray[np.int64],
    we: NDArray[np.int64],
    n_threads: int,
) -> None: ...
def adaptive_avg_backward(
    gy: _FloatArray,
    gx: _FloatArray,
    hs: NDArray[np.int64],
    he: NDArray[np.int64],
    ws: NDArray[np.int64],
    we: NDArray[np.int64],
    n_threads: int,
) -> None: ...
def adaptive_max_forward(
    x: _FloatArray,
    y: _FloatArray,
    indices: NDArray[np.int64],
    hs: NDArray[np.int64],
    he: NDArray[np.int64],
    ws: NDArray[np.int64],
    we: NDArray[np.int64],
    n_threads: int,
) -> None: ...
def nearest_forward(
    x: _FloatArray,
    y: _FloatArray,
    hi: NDArray[np.int64],
    wi: NDArray[np.int64],
    n_threads: int,
) -> None: ...
def nearest_backward(
    gy: _FloatArray,
    gx: _FloatArray,
    hi: NDArray[np.int64],
    wi: NDArray[np.int64],
    n_threads: int,
) -> None: ...
def bilinear_forward(
    x: _FloatArray,
    y: _FloatArray,
    h0: NDArray[np.int64],
    h1: NDArray[np.int64],
    lh0: _FloatArray,
    lh1: _FloatArray,
    w0: NDArray[np.int64],
    w1: NDArray[np.int64],
    lw0: _FloatArray,
    lw1: _FloatArray,
    n_threads: int,
) -> None: ...
def bilinear_backward(
    gy: _FloatArray,
    gx: _FloatArray,
    h0: NDArray[np.int64],
    h1: NDArray[np.int64],
    lh0: _FloatArray,
    lh1: _FloatArray,
    w0: NDArray[np.int64],
    w1: NDArray[np.int64],
    lw0: _FloatArray,
    lw1: _FloatArray,
    n_threads: int,
) -> None: ...
def max_unpool_forward(
    x: _FloatArray,
    indices: NDArray[np.int64],
    y: _FloatArray,
    n_threads: int,
) -> int: ...
def max_unpool_backward(
    gy: _FloatArray,
    indices: NDArray[np.int64],
    gx: _FloatArray,
    n_threads: int,
) -> int: ...
