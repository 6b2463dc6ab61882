# Type stubs for convext._kernels._activations, compiled from _activations.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.
import numpy as np
from numpy.typing import NDArray

# a C-contiguous float32 or float64 array (every array argument of one call shares the dtype)
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

def relu_forward(x: _FloatArray, y: _FloatArray, n_threads: int) -> None: ...
def relu_backward(g: _FloatArray, x: _FloatArray, gx: _FloatArray, n_threads: int) -> None: ...
def select(
    c: _FloatArray,
    t: float,
    le: bool,
    a: _FloatArray,
    b: _FloatArray,
    out: _FloatArray,
    n_threads: int,
) -> None: ...
