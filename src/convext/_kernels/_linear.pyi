# Type stubs for convext._kernels._linear, compiled from _linear.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.
import numpy as np
from numpy.typing import NDArray

# a C-contiguous float32 or float64 array (every array argument of one call shares the dtype)
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

def linear_forward(
    x: _FloatArray,
    w: _FloatArray,
    b: _FloatArray,
    y: _FloatArray,
    n_threads: int,
) -> None: ...
def linear_grad_input(gy: _FloatArray, w: _FloatArray, gx: _FloatArray, n_threads: int) -> None: ...
def linear_grad_weight(
    gy: _FloatArray,
    x: _FloatArray,
    gw: _FloatArray,
    n_threads: int,
) -> None: ...
def dense_pack(w: _FloatArray) -> _FloatArray: ...
def dense_forward(
    x: _FloatArray,
    wp: _FloatArray,
    b: _FloatArray | None,
    y: _FloatArray,
    n_threads: int,
) -> None: ...
