# Type stubs for convext._kernels._batchnorm, compiled from _batchnorm.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.
import numpy as np
from numpy.typing import NDArray

# a C-contiguous float32 or float64 array (every array argument of one call shares the dtype)
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

def batch_stats(
    x: _FloatArray,
    mean: NDArray[np.float64],
    var: NDArray[np.float64],
    n_threads: int,
) -> None: ...
def affine(
    x: _FloatArray,
    y: _FloatArray,
    scale: _FloatArray,
    shift: _FloatArray,
    n_threads: int,
) -> None: ...
def scale_only(x: _FloatArray, y: _FloatArray, scale: _FloatArray, n_threads: int) -> None: ...
def backward_reduce(
    g: _FloatArray,
    x: _FloatArray,
    mean: NDArray[np.float64],
    sum_g: NDArray[np.float64],
    sum_gxc: NDArray[np.float64],
    n_threads: int,
) -> None: ...
def backward_input_train(
    g: _FloatArray,
    x: _FloatArray,
    gx: _FloatArray,
    mean: _FloatArray,
    grad_mean: _FloatArray,
    k: _FloatArray,
    scale: _FloatArray,
    n_threads: int,
) -> None: ...
