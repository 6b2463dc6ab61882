# Type stubs for convext._kernels._pointwise, compiled from _pointwise.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.
import numpy as np
from numpy.typing import NDArray

# a C-contiguous float32 or float64 array (every array argument of one call shares the dtype)
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

HARDTANH: int
HARDSWISH: int
HARDSIGMOID: int
SILU: int
GELU: int
GELU_TANH: int

def forward(
    op: int,
    x: _FloatArray,
    y: _FloatArray,
    lo: float,
    hi: float,
    n_threads: int,
) -> None: ...
def backward(
    op: int,
    g: _FloatArray,
    x: _FloatArray,
    gx: _FloatArray,
    lo: float,
    hi: float,
    n_threads: int,
) -> None: ...
