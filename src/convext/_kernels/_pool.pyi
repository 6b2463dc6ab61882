# Type stubs for convext._kernels._pool, compiled from _pool.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.

import numpy as np
from numpy.typing import NDArray

# a C-contiguous float32 or float64 array (every array argument of one call shares the dtype)
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

def max_pool2d_forward(
    x: _FloatArray,
    y: _FloatArray,
    indices: NDArray[np.int64] | None,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    dil_h: int,
    dil_w: int,
    n_threads: int,
) -> None: ...
def max_pool2d_backward(
    grad_out: _FloatArray,
    indices: NDArray[np.int64],
    grad_x: _FloatArray,
    n_threads: int,
) -> int: ...
def avg_pool2d_forward(
    x: _FloatArray,
    y: _FloatArray,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    pb: int,
    pr: int,
    count_include_pad: bool,
    divisor_override: int,
    n_threads: int,
) -> None: ...
def avg_pool2d_backward(
    grad_out: _FloatArray,
    grad_x: _FloatArray,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    pb: int,
    pr: int,
    count_include_pad: bool,
    divisor_override: int,
    n_threads: int,
) -> None: ...
def global_avg_forward(x: _FloatArray, y: _FloatArray, n_threads: int) -> None: ...
