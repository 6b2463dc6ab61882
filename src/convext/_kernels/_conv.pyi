# Type stubs for convext._kernels._conv, compiled from _conv.pyx.
# Checked against the built extension by `python -m mypy.stubtest` in .github/scripts/lint_check.sh:
# update this file with every change of a def signature in the .pyx.
import numpy as np
from numpy.typing import NDArray
from typing_extensions import disjoint_base

# a C-contiguous float32 or float64 array (every array argument of one call shares the dtype)
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

def tile_pixels(K: int, P: int, itemsize: int) -> int: ...
def unfolded_tile_columns(K: int, P: int, N: int, itemsize: int) -> int: ...
def conv2d_epilogue(
    y: _FloatArray,
    residual: _FloatArray | None,
    act: int,
    a0: float,
    a1: float,
    n_threads: int,
) -> None: ...
def conv2d_forward_depthwise(
    x: _FloatArray,
    w: _FloatArray,
    b: _FloatArray,
    y: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    residual: _FloatArray | None = None,
    act: int = 0,
    a0: float = 0,
    a1: float = 0,
    _blocks: int = -1,
    _bands: int = -1,
) -> None: ...
def depthwise_forward_kernel(
    x_shape: tuple[int, int, int, int],
    w_shape: tuple[int, int, int, int],
    y_shape: tuple[int, int, int, int],
    groups: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    itemsize: int,
    residual: bool = False,
    _blocks: int = -1,
) -> str: ...
def conv2d_forward_direct(
    x: _FloatArray,
    w: _FloatArray,
    b: _FloatArray,
    y: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    residual: _FloatArray | None = None,
    act: int = 0,
    a0: float = 0,
    a1: float = 0,
    packed: _FloatArray | None = None,
) -> None: ...
def pack_direct_weight(w: _FloatArray, groups: int, n_threads: int = 1) -> _FloatArray: ...
def empty_aligned(n: int, dtype: object, align: int = 64) -> np.ndarray: ...
def only_in_list(items: list[object], i: int) -> bool: ...
def valid_taps_band_elems() -> int: ...
def valid_taps_packed_elems(F: int, K: int, groups: int, is_double: bool) -> int: ...
def pack_valid_taps_weight(
    w: _FloatArray, groups: int, n_threads: int = 1, rotated: bool = False
) -> _FloatArray | None: ...
def conv2d_forward_valid_taps(
    x: _FloatArray,
    w: _FloatArray,
    b: _FloatArray,
    y: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    residual: _FloatArray | None = None,
    act: int = 0,
    a0: float = 0,
    a1: float = 0,
    packed: _FloatArray | None = None,
) -> None: ...
def gemm_packed_weight_elems(F: int, K: int, groups: int, is_double: bool) -> int: ...
def conv2d_pack_weight_gemm(w: _FloatArray, packed: _FloatArray, groups: int) -> None: ...
def conv2d_forward_gemm(
    x: _FloatArray,
    w: _FloatArray,
    b: _FloatArray,
    y: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    residual: _FloatArray | None = None,
    act: int = 0,
    a0: float = 0,
    a1: float = 0,
    packed: _FloatArray | None = None,
) -> None: ...

@disjoint_base
class ForwardCall:
    @property
    def scratch_bytes(self) -> int: ...
    @property
    def n_threads(self) -> int: ...
    def __call__(
        self, x: _FloatArray, y: _FloatArray, residual: _FloatArray | None = None
    ) -> None: ...
    def use_scratch(self, buf: NDArray[np.uint8]) -> None: ...

@disjoint_base
class ForwardChain:
    def __init__(
        self,
        calls: list[ForwardCall],
        xs: list[_FloatArray],
        ys: list[_FloatArray],
        residuals: list[_FloatArray | None],
    ) -> None: ...
    def __len__(self) -> int: ...
    def run(self) -> None: ...

def prepare_forward(
    route: str,
    x_shape: tuple[int, ...],
    w: _FloatArray,
    b: _FloatArray | None,
    y_shape: tuple[int, ...],
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    residual: bool = False,
    act: int = 0,
    a0: float = 0,
    a1: float = 0,
    packed: _FloatArray | None = None,
) -> ForwardCall: ...
def conv2d_grad_input_depthwise(
    gy: _FloatArray,
    w: _FloatArray,
    gx: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    _blocks: int = -1,
) -> None: ...
def conv2d_grad_input_gemm(
    gy: _FloatArray,
    w: _FloatArray,
    gx: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
) -> None: ...
def conv2d_grad_input_direct(
    gy: _FloatArray,
    w: _FloatArray,
    gx: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
) -> None: ...
def conv2d_grad_input_valid_taps(
    gy: _FloatArray,
    w: _FloatArray,
    gx: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
) -> None: ...
def conv2d_grad_weight_depthwise(
    gy: _FloatArray,
    x: _FloatArray,
    gw: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    _blocks: int = -1,
) -> None: ...
def conv2d_grad_depthwise(
    gy: _FloatArray,
    x: _FloatArray,
    w: _FloatArray,
    gx: _FloatArray,
    gw: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
) -> bool: ...
def conv2d_grad_weight_direct(
    gy: _FloatArray,
    x: _FloatArray,
    gw: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
) -> None: ...
def grad_weight_gemm_transposed(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    gy_shape: tuple[int, ...],
    groups: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    itemsize: int,
) -> bool: ...
def conv2d_grad_weight_gemm(
    gy: _FloatArray,
    x: _FloatArray,
    gw: _FloatArray,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_left: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    n_threads: int,
    transposed: bool | None = None,
) -> None: ...
def conv2d_grad_bias(gy: _FloatArray, gb: _FloatArray, n_threads: int) -> None: ...
