"""Which kernel computes a convolution: the GEMM, direct, depthwise or valid-taps route of
``convext._kernels._conv`` (their designs are at the top of ``_conv.pyx``; the valid-taps
forward's above ``conv2d_forward_valid_taps``).

``choose_route`` is the one place that decides; the kernels only run the route they are given.
Every limit below is decided on the per-image geometry (and, for the weight gradient, on the
number of (image, group) pairs it can spread over threads), never on the thread count, so a
result is bitwise the same for every thread count, and the forward pass of one image is the
same whatever batch it comes in.

A route *accepts* a geometry when it can compute it in bounded memory (``accepts``); among the
accepted routes, the measured limits choose the fastest (``choose_route``). Tests force any
accepted route through the private ``_route`` argument of ``conv2d`` / ``conv2d_backward``.
"""

import functools
import math
from typing import NamedTuple

from .._kernels import _conv, _isa
from ._common import Window

ROUTES = ("gemm", "direct", "depthwise", "valid_taps")
PASSES = ("forward", "grad_input", "grad_weight")
# the routes each pass has a kernel for (the input gradient's direct route is the direct
# forward kernel run on grad_out with the weight rotated by 180 degrees, stride 1 only)
PASS_ROUTES = {
    "forward": ("gemm", "direct", "depthwise", "valid_taps"),
    "grad_input": ("gemm", "direct", "depthwise", "valid_taps"),
    "grad_weight": ("gemm", "direct", "depthwise"),
}

# Depthwise route (one input channel per group): its per-thread scratch (about a
# zero-padded plane and an output plane, depthwise_scratch) may be at most
# DW_SLACK * (H*W + OH*OW) + DW_MIN_SCRATCH elements; a stride, padding or dilation far beyond
# the image sends it to the GEMM route, whose scratch depends only on the weight. A memory bound,
# not a measured speed.
DW_SLACK = 4
DW_MIN_SCRATCH = 65536
# With one input channel per group and several filters on it (a channel multiplier; the first
# layer of a network on grey images is one group of this kind) the depthwise kernels accept the
# geometry, but they are chosen only for the input gradient and up to this many filters per
# group: there they beat the GEMM route (the direct route has no input gradient), while the
# direct route's forward and weight gradient beat them from 2 filters on grey images. Measured
# with forced routes (1 channel at 28x28 and 32 channels at 56x56, 2 to 32 filters per channel,
# 3x3 and 5x5): from 32 filters on the GEMM route's input gradient was faster.
DW_MAX_MULTIPLIER = 8

# Direct route limits: channels per group (Cg), filters per group (Fg) and elements of the
# row-unfolded image U = Cg * stride_h * kW * Hq * OW (Hq = OH + dil_h*(kH-1) // stride_h).
# Re-measured with
#     python -m convext bench routes --threads 2 --repeats 7
# which times every route that accepts each benchmark shape and a sweep of 16-512 channels per
# group at 28x28 and 56x56, next to the route this module picks. The channel limits depend on
# the instruction set the kernels run (chosen once, at import: convext._kernels._isa), since
# the direct route's register tile does: 8 filters x 48 pixels on AVX-512 (NEON: 8 x 12, the
# same shape of tile), 4 x 24 on AVX2, 4 x 12 at the generic level; a narrow tile reads its
# unfolded rows for fewer products, and the GEMM route overtakes it at fewer channels.
# - AVX-512 (a Zen 5 core): the direct forward beat the GEMM route up to 256 channels per group;
#   the direct weight gradient only up to 64, so it has tighter limits (the figures:
#   docs/benchmarks.md, "Figures measured once"). NEON takes these limits unmeasured.
# - AVX2 (a Zen 3 core, 2 threads, ms GEMM / direct): the forward wins up to 32 channels
#   (32x56x56 3x3 batch 4 4.3 / 3.5, 3 -> 32 3x3 stride 2 at 224x224 batch 16 7.2 / 5.8), is
#   even to 7-40% slower at 64 (resnet18's 64x56x56 3x3 batch 16 35.6 / 37.2, batch 1 2.2 /
#   3.1; its 64 -> 128 stride 2 batch 16 16.6 / 36.9) and loses beyond (96 channels at 28x28
#   6.0 / 6.9, 128 at 56x56 48.7 / 101, 144x56x56 -> 24 1x1 1.85 / 2.39); the input
#   gradient's forward (channels = the filters of the convolution) wins up to 32 (128 -> 32 at
#   28x28 4.3 / 2.9) and loses at 64 (16 -> 64 0.97 / 1.12, resnet18's layer at batch 16 33.8 /
#   48.5); the weight gradient wins up to 32 channels and filters (32x56x56 4.9 / 4.4) and
#   loses with 64 filters (32x32x32 -> 64 batch 64 39.2 / 60.3, 3 -> 64 7x7 stride 2 at
#   224x224 34.5 / 45.8).
# - generic (SSE2 on the same core): the forward and the input gradient as on AVX2 (64x56x56
#   3x3 batch 4 36.6 / 43.5); the weight gradient's direct route won up to 64 channels and
#   filters as on AVX-512 (32 -> 64 at 32x32, batch 64: 78.0 / 64.4).
# The U limits also bound the direct route's scratch (U elements per thread): a forced direct
# route must respect them.


# Valid-taps route (the forward pass, and the stride-1 input gradient as a forward
# convolution): filters in the vector lanes, only the taps inside the input (the padding
# skipped). It accepts kernels of at most VT_MAX_KERNEL rows and columns (its tap lists live on
# the C stack), output rows of at most VT_MAX_OW pixels (a row of sums for a block of filters,
# at most VT_MAX_BLOCK of them, must fit its band: _conv.valid_taps_band_elems), more than one
# channel per group (one channel per group is the depthwise route's), and a packed weight (its
# filters rounded up to whole blocks of at most VT_MAX_BLOCK) of at most VT_PACK_SLACK times
# the weight's size, or VT_PACK_MIN_ELEMS elements. (Its offsets stay within the padded input
# plane, at most 2**40 elements by convext._validation.window_geometry.) A weight with an inf
# or a NaN runs the GEMM route (_conv.pack_valid_taps_weight).
VT_MAX_KERNEL = 16
VT_MAX_BLOCK = 64  # the widest block of filters over the instruction sets (AVX-512 float)
VT_MAX_OW = _conv.valid_taps_band_elems() // VT_MAX_BLOCK
VT_PACK_SLACK = 4
VT_PACK_MIN_ELEMS = 1 << 20
# It is chosen for the forward pass of a 3x3 (or larger) kernel with padding, on output planes
# of at least VT_MIN_PLANE pixels, with at least VT_MIN_TAPS taps per output (Cg*kH*kW: 576 is
# 64 channels of a 3x3 kernel) and VT_MIN_FG filters per group (on AVX-512 whole blocks of 64
# filters: with 32, half of every vector is idle; AVX2 below). Measured against
# the routes before it (float32, a Zen 4 with AVX-512, 2 threads, bias and ReLU, each weight
# packed once as convext.inference does, medians of alternated calls, ms GEMM / direct / valid
# taps): batch 1: 64x56x56 -> 64 3x3 1.38 / 1.13 / 1.12 (1 thread 2.58 / 2.24 / 2.15), 64 ->
# 128 stride 2 0.69 / 0.60 / 0.53, 128x28x28 -> 128 1.27 / 1.15 / 1.08, 128 -> 256 stride 2
# 0.65 / 0.66 / 0.54, 256x14x14 -> 256 1.24 / 1.21 / 1.10, 512x14x14 -> 512 4.70 / 4.91 / 4.50,
# 512x28x28 -> 512 18.9 / 17.3 / 16.5, 256x56x56 -> 256 18.4 / - / 17.0, 64x112x112 -> 128
# 10.0 / - / 9.2; batch 16: 64x56x56 -> 64 20.9 / 17.9 / 17.6, 256x14x14 -> 256 18.8 / 17.7 /
# 16.4, 128x28x28 -> 128 19.1 / 17.2 / 17.0. With the weight packed on every call (conv2d) the
# packing, a transpose of the weight, costs about what the GEMM route's own packing does (0.85
# ms on one thread for 512x512x3x3). On planes of 25 to 99 pixels (5x5 to 9x9) one image's
# pixels fall into tiles of 5 and corners of 1, each of which reads the block's weights again;
# with the weights coming from memory (as in a network, whose weights do not all stay in the
# last-level cache) that was slower than the GEMM route at batch 1 until the tile prefetched
# them (CVX_VT_PF, isa/simd_avx512.h). 512x7x7 -> 512 at batch 1, the weights evicted before
# each call, ms GEMM / valid taps, alternated calls in three processes each: 1 thread 2.97 /
# 3.13, 2.51 / 2.81, 2.67 / 2.78 before; 2.64 / 2.56, 2.74 / 2.71, 2.84 / 2.81 with it; 2
# threads 1.78 / 1.64, 1.51 / 1.52 before, 1.45 / 1.44, 1.70 / 1.47 with it. 512x5x5 -> 512
# with it: 1 thread 2.17 / 1.89, 2 threads 1.26 / 1.05 and 1.19 / 1.13. At batch 8 (tiles
# across the images) 512x7x7 took 21.7 / 16.7 and 21.9 / 15.6 on one thread. Below 25 pixels
# it still lost at batch 1 (1 thread, with it: 512x4x4 1.53 / 1.63, 512x2x2 1.08 / 1.32), hence
# VT_MIN_PLANE. Nor with 32 channels (32x56x56 -> 32 batch 4: - / 1.15 / 2.10).
# The input gradient (stride 1) runs on it where its forward convolution (grad_input_as_forward)
# would: measured with forced routes (float32, batch 16, one thread, another process busy on the
# second core, ms GEMM / direct / valid taps): 256x14x14 -> 256 3x3 88.4 / 56.1 / 44.5, 128x28x28 ->
# 128 79.7 / 73.7 / 62.4, 512x14x14 -> 512 157.1 / 145.2 / 140.0, 64x56x56 -> 64 71.4 / 73.2 / 73.4;
# batch 4, 512x28x28 -> 512 161.2 / 144.3 / 149.2. Smaller planes took the GEMM route until the
# rotated weight was packed straight from w (pack_valid_taps_weight's rotated) rather than rotated
# by NumPy first (1.8 ms for 512x512x3x3); since then, on the planes the forward takes it on (Zen 5,
# float32, input gradient alone, medians of alternated calls, ms GEMM / valid taps): two threads,
# batch 16, 512x7x7 -> 512 11.47 / 8.99 (torch 8.8), 256x7x7 -> 256 3.21 / 2.30, 128x7x7 -> 128 0.96
# / 0.60, 64x7x7 -> 64 0.37 / 0.19, 512x5x5 -> 512 6.47 / 5.59, 256x9x9 -> 256 5.03 / 4.56; batch 4
# 3.52 / 2.91, 1.01 / 0.74, 0.28 / 0.22, 0.12 / 0.10, 2.52 / 2.22, 1.60 / 1.45; batch 2 2.28 / 2.05,
# 0.63 / 0.51, 0.17 / 0.16, 0.08 / 0.08, 1.55 / 1.73, 0.88 / 0.83; one thread, batch 16, 24.1 /
# 18.1, 6.55 / 4.60, 1.85 / 1.12, 0.64 / 0.30, 12.9 / 10.6, 9.78 / 8.50. At batch 1, where a
# gradient is rare, it lost 3-13% (two threads 1.46 / 1.52, 0.38 / 0.41, 0.11 / 0.11, 0.06 / 0.07,
# 1.23 / 1.37, 0.54 / 0.56); the route cannot depend on the batch (an image's gradient would then
# depend on it), so the input gradient has the forward's VT_MIN_PLANE (512x4x4: batch 16 4.81 /
# 4.37, batch 1 1.06 / 1.38).
# On AVX2 a block holds 16 filters, not 64, and the forward took the route from 16 channels and
# 16 filters on (a Zen 3, float32, 3x3 padding 1, bias and ReLU, weights packed once, medians of
# 31 calls alternated with onnxruntime's, time / onnxruntime's, valid taps / direct): batch 1,
# one thread, 32x56x56 -> 32 1.23 / 1.34, 32x112x112 -> 32 1.31 / 1.67, 16x56x56 -> 32 1.14 /
# 1.52, 32x28x28 -> 64 1.23 / 1.41, 48x28x28 -> 48 1.18 / 1.33, 32x56x56 -> 64 stride 2 1.37 /
# 1.60, 32x56x56 -> 16 0.73 / 1.23; two threads 0.71 / 2.37, 1.41 / 1.71, 0.74 / 0.78, 0.68 /
# 0.75, 0.72 / 0.91, 0.56 / 0.70; batch 16, two threads, 32x56x56 -> 32 1.16 / 1.31, 48x28x28
# -> 48 1.06 / 1.18, 32x28x28 -> 64 1.16 / 1.31 (16x56x56 -> 32 1.20 / 1.12). With 8 channels
# or 8 filters the direct route was even or faster (8x56x56 -> 32 1.02 / 0.98, 8x112x112 -> 8
# 0.95 / 0.61). The limit counts taps, not channels: a tile's setup is amortised over the taps
# of each of its outputs, and with wider kernels few channels suffice (the same Zen 3, conv2d
# with forced routes, no bias, ms direct / valid taps, one thread and two): 3x224x224 -> 64 7x7
# stride 2 (147 taps, ResNet's stem) batch 1 3.24 / 3.03 and 1.82 / 1.67, batch 8 28.1 / 25.3
# and 13.7 / 13.1; 8x56x56 -> 32 7x7 1.25 / 0.90 and 0.72 / 0.52, 5x5 0.64 / 0.50 and 0.37 /
# 0.28; 12x56x56 -> 64 5x5 1.96 / 1.33 and 1.02 / 0.75; 8x112x112 -> 16 5x5 stride 2 0.41 / 0.29
# and 0.23 / 0.18; but 3x224x224 -> 32 3x3 stride 2 (27 taps, MobileNetV2's stem) 0.37 / 0.46
# and 0.23 / 0.32, and 5x5 (75 taps) 0.93 / 0.93 and 0.71 / 0.63. Elsewhere the limit was
# measured on 3x3 kernels only. The input gradient keeps GI_VT_MIN_TAPS and GI_VT_MIN_FG
# (measured on AVX-512 only).
VT_MIN_PLANE = 25
VT_MIN_TAPS, VT_MIN_FG = {"avx2": (144, 16)}.get(_isa.active(), (576, 64))
GI_VT_MIN_TAPS, GI_VT_MIN_FG = 576, 64


class DirectLimits(NamedTuple):
    """The direct route's channel and filter limits per group for one instruction set: forward
    (also the input gradient's forward convolution, whose channels are the filters), and the
    weight gradient."""

    fwd_cg: int
    fwd_fg: int
    gw_cg: int
    gw_fg: int


DIRECT_LIMITS = {
    "avx512": DirectLimits(256, 512, 64, 64),
    "neon": DirectLimits(256, 512, 64, 64),
    "avx2": DirectLimits(32, 512, 32, 32),
    "generic": DirectLimits(32, 512, 64, 64),
}
_LIMITS = DIRECT_LIMITS[_isa.active()]
FWD_DIRECT_MAX_CG = _LIMITS.fwd_cg
FWD_DIRECT_MAX_FG = _LIMITS.fwd_fg
# The direct forward unfolds U band by band (isa/kernels.inc, cvx_direct_fwd), into a scratch of one
# band (cvx_direct_fwd_u_elems): it accepts an image whose smallest band, one strip of
# _isa.DIRECT_STRIP_MAX pixels (its rows of U: the strip's rows, one more and the kernel's reach),
# is at most FWD_DIRECT_MAX_U elements. An image whose whole U is larger (a large plane) was the
# GEMM route's while the scratch held all of U; it is the direct route's now where the direct
# forward is faster: for kernels larger than 1x1 with at least FWD_DIRECT_MIN_BAND_ROWS output rows
# per band in both dtypes whatever the CPU's band (direct_band_rows: a band holds up to
# _isa.DIRECT_MIN_BAND_ROWS rows within _isa.DIRECT_BAND_MAX; with none, each strip unfolds the rows
# of its whole window again; float64, whose rows fit half as many, was 2.4x slower on the direct
# route than on GEMM there, 1x128x16x400 -> 32 3x3 32.3 / 13.2 ms). Measured on a Zen 4 (AVX-512,
# float32, 512 kB bands, conv2d with forced routes, medians of 18 calls, ms direct / GEMM), one
# thread: 3x448x448 -> 64 7x7 stride 2 9.8 / 14.4, 3x800x800 -> 64 7x7 stride 2 32.3 / 43.7,
# 16x320x320 -> 32 3x3 10.7 / 12.4, 32x320x320 -> 32 20.8 / 24.4, 64x320x320 -> 32 39.0 / 47.8,
# 48x224x224 -> 32 14.5 / 17.4, 8x640x640 -> 16 12.3 / 15.5, 32x256x256 -> 64 stride 2 7.5 / 10.2,
# 64x160x160 -> 32 10.2 / 11.9, 16x320x320 -> 32 5x5 26.0 / 32.0; two threads 4.9 / 7.0 (the 448
# stem), 10.4 / 11.8 (32x320x320 -> 32), 20.8 / 24.1, 13.6 / 16.4 (5x5). Without the rows' floor
# (bands of one output row, or of one strip) 64x320x320 -> 32 took 75.0 ms and 16x320x320 -> 32 5x5
# 47.8. The input gradient (stride 1) follows its forward convolution: 32x320x320 -> 32 3x3 batch 1
# on two threads 11.5 / 14.4 ms, 64 -> 32 20.2 / 29.4. 1x1 kernels (read in place, no unfold) were
# even, one thread: 256x112x112 -> 64 5.1 / 5.7, 128x224x224 -> 64 10.2 / 10.8, but 64x224x224 ->
# 256 20.7 / 18.8, 128x160x160 -> 128 10.3 / 9.5, 32x320x320 -> 64 7.5 / 7.2: they stay on the GEMM
# route beyond FWD_DIRECT_MAX_U.
FWD_DIRECT_MAX_U = 1 << 21
FWD_DIRECT_MIN_BAND_ROWS = 1
# On output planes of at most FWD_DIRECT_SMALL_PLANE pixels (7x7, 8x8: too few for the direct
# forward's 48-pixel tiles) the direct forward is chosen only up to FWD_DIRECT_SMALL_MAX_TAPS
# taps (Cg*kH*kW) and FWD_DIRECT_SMALL_MAX_FG filters per group. Measured with forced routes
# (float32, 2 threads, ms direct / GEMM): 256x14x14 -> 512 3x3 stride 2 batch 1 0.61 / 0.42,
# batch 16 8.05 / 5.72; 256x7x7 -> 256 3x3 0.28 / 0.22; 160x7x7 -> 512 1x1 0.060 / 0.047; but
# 64x7x7 -> 64 3x3 at batch 16 0.31 / 0.96 and 64x16x16 -> 64 3x3 stride 2 0.40 / 0.47.
FWD_DIRECT_SMALL_PLANE = 64
FWD_DIRECT_SMALL_MAX_TAPS = 576
FWD_DIRECT_SMALL_MAX_FG = 256
# A CPU whose L3 is slow per core (_isa.fast_l3: a Sapphire Rapids Xeon or a Zen 3, not a Zen 4
# or a Zen 5). Two limits below depend on it (on AVX2 neither is below the forward's and the
# weight gradient's own).
_CACHE = _isa.cpu_cache()
SLOW_L3 = not _isa.fast_l3(_CACHE["l2_bytes"], _CACHE["amd"])
# A 1x1 kernel on such a CPU goes to the direct forward only up to FWD_DIRECT_1X1_MAX_CG
# channels per group: each of its tiles reads all Cg input rows beyond the L2, where the GEMM
# route's packed panels stay in it. Measured on a Sapphire Rapids Xeon (float32, 2 threads, ms
# direct / GEMM, batch 8 and batch 1): 256x56x56 -> 64 1x1 11.8 / 8.2 and 1.42 / 1.14,
# 256x56x56 -> 128 19.5 / 13.2 and 2.59 / 2.02, 256x56x56 -> 512 stride 2 17.5 / 15.6, but
# 192x28x28 -> 32 at batch 1 0.24 / 0.29 and 64x56x56 -> 256 at batch 8 9.8 / 12.8; 3x3
# kernels kept the direct route up to 256 channels (256x14x14 -> 256 19.3 / 20.5). Elsewhere the
# forward's channel limit applies to every kernel: on a Zen 5, and on a Zen 4, where the direct
# route led at 256 channels too (ms direct / GEMM, batch 1 and 8: 256x56x56 -> 64 1x1 0.49 /
# 0.55 and 4.5 / 4.9, 256x56x56 -> 128 0.97 / 1.01 and 8.5 / 8.7).
FWD_DIRECT_1X1_MAX_CG = min(192, FWD_DIRECT_MAX_CG) if SLOW_L3 else FWD_DIRECT_MAX_CG
# A 1x1 kernel read in place (stride 1, no padding) on an output plane of at most
# FWD_1X1_GEMM_MAX_PLANE pixels (16x16) with more than FWD_1X1_GEMM_MAX_DIRECT_FG filters per
# group goes to the GEMM route, which was the faster there at batch 1 and 16 (the input
# gradient follows its forward convolution, and its GEMM route was 1.04-1.23x faster too).
# Measured with forced routes (float32, 2 threads, ms GEMM / direct, batch 1 and 16): on a
# Sapphire Rapids Xeon 64x14x14 -> 384 0.126 / 0.159 and 1.03 / 1.29, 96x14x14 -> 576 0.190 /
# 0.249 and 2.01 / 2.59, 384x14x14 -> 96 0.171 / 0.189 and 1.78 / 1.93, 96x16x16 -> 576 0.273 /
# 0.333 and 2.99 / 3.64; with AVX2 kernels 32x14x14 -> 192 0.091 / 0.098 and 0.70 / 0.74. With
# few filters the direct route stays ahead at batch 1: 144x14x14 -> 32 0.076 / 0.068, 384x14x14
# -> 64 0.155 / 0.145; and on larger planes (144x20x20 -> 32 0.110 / 0.082, 24x56x56 -> 144
# batch 8 4.20 / 1.82).
FWD_1X1_GEMM_MAX_PLANE = 256
FWD_1X1_GEMM_MAX_DIRECT_FG = 64
# The direct weight gradient on the same CPUs (slow L3 per core) only up to
# GW_DIRECT_SLOW_L3_MAX_CG channels and GW_DIRECT_SLOW_L3_MAX_FG filters per group, or with
# at most GW_DIRECT_SLOW_L3_ANY_FG_CG channels per group (and the instruction set's filter
# limit): elsewhere the GEMM route, which reads the unfolded input in place (cvx_gemm_nt) up to
# 64 filters, was the faster. Measured on a Sapphire Rapids Xeon (float32, 2 threads, ms GEMM
# / direct, medians of alternated runs; 3x3 padding 1 unless named): batch 16, 4x56x56 -> 32
# 0.68 / 0.79, 8 -> 32 1.11 / 1.39, 16 -> 16 1.31 / 1.48, 32 -> 32 3.67 / 4.44, 32x64x64 -> 32
# dilation 2 5.15 / 6.51, 16x56x56 -> 32 5x5 5.27 / 7.88, 3x224x224 -> 64 7x7 stride 2 23.6 /
# 26.9, 32x28x28 -> 64 1x1 0.31 / 0.43; batch 64, 32x32x32 -> 64 9.3 / 12.3. But with few
# filters or channels the direct route led: 6x14x14 -> 16 5x5 batch 64 (lenet-c2) 0.44 / 0.31,
# 6x28x28 -> 16 5x5 1.50 / 1.26, 8x112x112 -> 16 5x5 stride 2 4.02 / 2.12, 1x56x56 -> 32
# 0.36 / 0.25, 2x56x56 -> 16 0.29 / 0.23, 1x28x28 -> 6 5x5 batch 64 (lenet-c1) 0.43 / 0.12.
# The limits miss a few, by up to 1.22x: the GEMM route takes 3x224x224 -> 32 stride 2
# (MobileNetV2's stem) at 3.25 / 2.66, 8x56x56 -> 64 1x1 0.58 / 0.52 and 16x112x112 -> 96 1x1
# 6.9 / 6.6; the direct route 8x56x56 -> 16 7x7 at 3.63 / 3.79. (Before
# cvx_gemm_nt, the GEMM route packed the unfolded input transposed, and the direct route led
# up to 32 channels.) On the Zen 5 the direct route won up to 64 channels against that GEMM
# (0.87x); not measured there since.
GW_DIRECT_SLOW_L3_MAX_CG = 8
GW_DIRECT_SLOW_L3_MAX_FG = 16
GW_DIRECT_SLOW_L3_ANY_FG_CG = 2
GW_DIRECT_MAX_CG = min(GW_DIRECT_SLOW_L3_MAX_CG, _LIMITS.gw_cg) if SLOW_L3 else _LIMITS.gw_cg
GW_DIRECT_MAX_FG = min(GW_DIRECT_SLOW_L3_MAX_FG, _LIMITS.gw_fg) if SLOW_L3 else _LIMITS.gw_fg
GW_DIRECT_ANY_FG_MAX_CG = GW_DIRECT_SLOW_L3_ANY_FG_CG if SLOW_L3 else 0
GW_DIRECT_MAX_U = 1 << 20
# the weight gradient's direct route cannot split an image: it wants this many (image, group)
# pairs to spread over the threads
GW_DIRECT_MIN_PAIRS = 4
# The input gradient's direct route (stride 1: the direct forward kernel on grad_out, see
# grad_input_as_forward) is chosen where its forward convolution would take the direct route.
# Measured against the GEMM route (float32, batch 16, 1 thread, CPU time of the call):
# 64x56x56 3x3 17.8 vs 21.6 ms, 32x64x64 3x3 dilation 2 6.3 vs 9.4, 128x28x28 16.8 vs 19.5,
# 256x14x14 19.3 vs 18.8.
# It also wants at least GI_DIRECT_MIN_CG channels per group in the convolution, which are the
# filters of its forward convolution: with fewer, that forward fills few filter tiles and
# unfolds grad_out (padded to the whole input plane) for few of them, while the GEMM route's
# product (channels*kH*kW rows, filters long) stays efficient. Measured with forced routes on
# AVX2 kernels (a Zen 3, float32, 2 threads, ms GEMM / direct, medians of 7): channels ->
# filters 6 -> 16 5x5 at 14x14 batch 64 (the benchmark's lenet-c2) 1.10 / 1.30, 4 -> 16 0.72 /
# 0.98, 8 -> 16 1.43 / 1.40, 12 -> 16 2.04 / 1.81; 3x3 padding 1 at 56x56 batch 16, 4, 6, 8 and
# 12 -> 32 2.0 / 2.7, 3.0 / 4.4, 3.3 / 3.9 and 5.3 / 6.3, but 32 -> 32 10.5 / 9.2; 3 -> 16 5x5
# at 32x32 batch 64 2.1 / 3.0; 16 -> 16 3x3 and 5x5 at 8x8 to 28x28 0.75-0.82 of the GEMM's
# time. (6 and 8 -> 16 5x5 padding 2 at 28x28 took 0.8 of the GEMM's time; they now take
# the GEMM route too.)
# On AVX-512 (a Sapphire Rapids Xeon, float32, 2 threads, ms GEMM / direct, medians of
# alternated runs) the direct route led from 8 channels (8x56x56 -> 32 3x3 batch 16 1.41 /
# 1.35, 12 -> 32 2.02 / 1.76, 8x28x28 -> 16 0.31 / 0.17), and with at most
# GI_DIRECT_FEW_FG filters (the GEMM's inner products are that short) from
# GI_DIRECT_FEW_FG_MIN_CG channels: 6x14x14 -> 16 5x5 batch 64 (lenet-c2) 0.49 / 0.43, 6x28x28
# -> 16 5x5 2.21 / 1.26, 6x32x32 -> 16 3x3 1.08 / 0.72, 5x56x56 -> 16 5x5 batch 16 1.59 /
# 1.22, 3x32x32 -> 16 5x5 batch 64 1.49 / 1.35; but not with more filters (6x56x56 -> 32
# 1.08 / 1.15, 6x28x28 -> 64 0.47 / 0.54, 4x56x56 -> 32 0.78 / 1.00). Elsewhere these were
# not measured: 16 channels whatever the filters.
GI_DIRECT_MIN_CG = {"avx512": 8}.get(_isa.active(), 16)
GI_DIRECT_FEW_FG = {"avx512": 16}.get(_isa.active(), 0)
GI_DIRECT_FEW_FG_MIN_CG = 3


class ConvShape(NamedTuple):
    """What the route choice looks at besides the window: the batch, the channels and filters
    per group and the input plane (Python ints), and the convolution's ``Window``."""

    batch: int
    channels_per_group: int
    filters_per_group: int
    in_hw: tuple
    window: Window


def conv_shape(x_shape, w_shape, window):
    """The ConvShape of x (N, C, H, W) and weight (F, C/G, kH, kW) under a ``Window``."""
    return ConvShape(
        x_shape[0], w_shape[1], w_shape[0] // window.groups, tuple(x_shape[2:]), window
    )


def _is_depthwise(s):
    return s.channels_per_group == 1 and s.filters_per_group == 1


def _depthwise_kernel_fits(s):
    """One input channel per group: the depthwise kernels compute any channel multiplier."""
    return s.channels_per_group == 1


def _phases(k, dil, stride):
    """How many distinct values i*dil % stride takes for taps i < k: they repeat with period
    stride // gcd(dil, stride) and are distinct within one (a closed form, not a set of k
    elements: a kernel of 2**24 rows took a second and half a gigabyte)."""
    return min(k, stride // math.gcd(dil, stride))


def depthwise_scratch(s):
    """Elements of the depthwise route's scratch per thread: the largest over its three passes
    of the polyphase padded plane and the grids beside it (the formulas are above the depthwise
    kernels in ``_conv.pyx``, ``_dw_scratch_elems``)."""
    g = s.window
    (OH, OW), (kh, kw), (sh, sw), (dil_h, dil_w) = g.out_hw, g.kernel, g.stride, g.dilation
    hp = (OH - 1) * sh + dil_h * (kh - 1) + 1
    wp = (OW - 1) * sw + dil_w * (kw - 1) + 1
    hq, wq = -(-hp // sh), -(-wp // sw)
    di, dj = dil_h * (kh - 1) // sh, dil_w * (kw - 1) // sw
    wg = wq + dj
    # the sub-planes: the distinct row phases times the distinct column phases of the taps
    nsub = _phases(kh, dil_h, sh) * _phases(kw, dil_w, sw)
    slack, kk = 16, kh * kw
    forward = max(
        nsub * hq * wq + OH * wq + 2 * slack,
        depthwise_blocks_scratch(s),
        depthwise_ring_scratch(s),
        depthwise_rows_scratch(s),
    )
    grad_input = max(
        nsub * (hq * wg + slack) + (hq + di) * wg + slack + kk,
        hp * wp,
        depthwise_blocks_scratch(s, "grad_input"),
    )
    grad_weight = max(
        nsub * hq * wq + OH * wq + 2 * slack + 16 * kk, depthwise_blocks_scratch(s, "grad_weight")
    )
    return max(forward, grad_input, grad_weight)


# The depthwise passes on channel blocks (_conv.pyx, "channel blocks"): DW_CB channels per
# work item, possible when their scratch is at most DW_CB_MAX_ELEMS elements (the kernels decide
# from the same geometry; these mirror their constants). Their scratch is never added to the
# per-plane kernels': a pass takes the larger.
DW_CB = 16
DW_CB_MAX_ELEMS = 65536


def depthwise_blocks_scratch(s, pass_="forward"):
    """Elements of scratch per thread of the depthwise channel blocks for ``pass_`` ("forward",
    "grad_input" or "grad_weight"), or 0 when they cannot take it (more than one filter per
    channel, or a block larger than DW_CB_MAX_ELEMS):
        forward      DW_CB * (Hp*Wp + H*W + OH*OW + kH*kW + 1 + max(H*W, OH*OW))
        grad_input   DW_CB * ((Hq + DI)*Wg + H*W + OH*OW + kH*kW + 10 + max(H*W, OH*OW))
        grad_weight  DW_CB * (Hp*Wp + H*W + OH*OW + 32*kH*kW + 1 + max(H*W, OH*OW))"""
    g = s.window
    (H, W), (OH, OW), (kh, kw) = s.in_hw, g.out_hw, g.kernel
    (sh, sw), (dil_h, dil_w) = g.stride, g.dilation
    hp = (OH - 1) * sh + dil_h * (kh - 1) + 1
    wp = (OW - 1) * sw + dil_w * (kw - 1) + 1
    if pass_ == "forward":
        plane, extra = hp * wp, 1
    elif pass_ == "grad_weight":
        plane, extra = hp * wp, 1 + 31 * kh * kw
    else:
        hq, wq = -(-hp // sh), -(-wp // sw)
        di, dj = dil_h * (kh - 1) // sh, dil_w * (kw - 1) // sw
        plane, extra = (hq + di) * (wq + dj), 10
    elems = DW_CB * (plane + H * W + OH * OW + kh * kw + extra + max(H * W, OH * OW))
    return elems if s.filters_per_group == 1 and elems <= DW_CB_MAX_ELEMS else 0


# The depthwise forward pass on row rings (_conv.pyx, "row rings"; these mirror its constants):
# DW_CB channels over a ring of dil_h*(kH-1) + 1 padded rows, output rows written about
# DW_CBR_PIXELS pixels at a time, possible when its scratch is at most DW_CB_MAX_ELEMS elements.
DW_CBR_PIXELS = 128


def depthwise_ring_scratch(s):
    """Elements of scratch per thread of the depthwise forward pass on row rings, or 0 when they
    cannot take it (more than one filter per channel, or beyond DW_CB_MAX_ELEMS):
        DW_CB * ((dil_h*(kH-1) + 1)*Wp + 2*G*OW + kH*kW + 1), G = max(1, min(OH, 128 // OW))"""
    g = s.window
    (OH, OW), (kh, kw), (sw, dil_h, dil_w) = g.out_hw, g.kernel, (g.stride[1], *g.dilation)
    wp = (OW - 1) * sw + dil_w * (kw - 1) + 1
    group = max(1, min(OH, DW_CBR_PIXELS // max(OW, 1)))
    elems = DW_CB * ((dil_h * (kh - 1) + 1) * wp + 2 * group * OW + kh * kw + 1)
    return elems if s.filters_per_group == 1 and elems <= DW_CB_MAX_ELEMS else 0


def depthwise_rows_scratch(s):
    """Elements of scratch per thread of the depthwise forward pass on stride-2 or stride-1
    rows, or 0 when they cannot take it (not a 3x3 window at stride 2 or 1 without dilation, or
    more than one filter per channel): at stride 2 the ring of three split rows
    (cvx_dw_s2_ring: 6 * OW + 1 rounded up to 16), at stride 1 a zero row of W elements
    rounded up to 16, with 16 more zeros on either side."""
    g = s.window
    OW, W = g.out_hw[1], s.in_hw[1]
    takes = (
        g.kernel == (3, 3) and g.stride in ((1, 1), (2, 2)) and g.dilation == (1, 1)
        and s.filters_per_group == 1
    )  # fmt: skip
    if not takes:
        return 0
    if g.stride == (2, 2):
        return 6 * (-(-(OW + 1) // 16) * 16)
    return -(-W // 16) * 16 + 32


def _unfolded_rows(s):
    """The direct route's row-unfolded image U = Cg * sh * kW * Hq * OW as (elements of a row of
    U (Cg * sh * kW * OW), Hq, the kernel's reach below an output row Hq - OH)."""
    g = s.window
    (OH, OW), (kh, kw), (sh, _), (dil_h, _) = g.out_hw, g.kernel, g.stride, g.dilation
    hq = OH + (dil_h * (kh - 1)) // sh
    return s.channels_per_group * sh * kw * OW, hq, hq - OH


def direct_unfolded(s):
    """Elements of the direct route's row-unfolded image U = Cg * sh * kW * Hq * OW."""
    row, hq, _ = _unfolded_rows(s)
    return row * hq


def direct_strip_unfolded(s):
    """Elements of U the direct forward unfolds for its smallest band, one strip of
    _isa.DIRECT_STRIP_MAX pixels (cvx_direct_fwd_u_elems in isa/cvx_isa.h)."""
    row, hq, reach = _unfolded_rows(s)
    return row * min(hq, (_isa.DIRECT_STRIP_MAX - 1) // s.window.out_hw[1] + 2 + reach)


def direct_band_rows(s):
    """Output rows of the direct forward's largest band (_isa.DIRECT_BAND_MAX) in float64
    (_isa.direct_band_rows): every band, of any CPU and either dtype, holds at least this many
    or _isa.DIRECT_MIN_BAND_ROWS, so the rule that reads it depends on the geometry alone. For
    a geometry the route accepts (a row of U of at most FWD_DIRECT_MAX_U elements)."""
    row, _, reach = _unfolded_rows(s)
    return _isa.direct_band_rows(row, reach, _isa.DIRECT_BAND_MAX, 8)


def grad_input_as_forward(s):
    """The input gradient as a forward convolution, for the direct route, or None: with
    stride 1, grad_x = conv2d(grad_out, w') with w'[c, f] = w[f, c] rotated by 180 degrees,
    padding d*(k-1) - p at the top and left (the kernels take no other sides) and the same
    dilation and groups. Needs p <= d*(k-1) at the top and left. Returns the ConvShape of that
    convolution and its (top, left) padding."""
    g = s.window
    (kh, kw), (dil_h, dil_w), (top, left) = g.kernel, g.dilation, g.pad_top_left
    if g.stride != (1, 1) or top > dil_h * (kh - 1) or left > dil_w * (kw - 1):
        return None
    pads = (dil_h * (kh - 1) - top, dil_w * (kw - 1) - left)
    H, W = s.in_hw
    window = g._replace(padding=((pads[0], 0), (pads[1], 0)), out_hw=(H, W))
    shape = ConvShape(s.batch, s.filters_per_group, s.channels_per_group, g.out_hw, window)
    return shape, pads


# accepts and choose_route depend only on their arguments (a ConvShape is a tuple of ints) and
# this module's constants, so their answers are cached: a network calls them with the same few
# geometries on every step, and working them out took about 15 us a call.
@functools.lru_cache(maxsize=4096)
def accepts(route, pass_, s):
    """Whether ``route`` can compute ``pass_`` for this geometry (in bounded memory)."""
    if route not in PASS_ROUTES[pass_]:
        return False
    if route == "gemm":
        return True
    if route == "depthwise":
        H, W = s.in_hw
        OH, OW = s.window.out_hw
        return (
            _depthwise_kernel_fits(s)
            and depthwise_scratch(s) <= DW_SLACK * (H * W + OH * OW) + DW_MIN_SCRATCH
        )
    if route == "valid_taps" and pass_ == "grad_input":
        as_forward = grad_input_as_forward(s)
        return as_forward is not None and accepts("valid_taps", "forward", as_forward[0])
    if route == "valid_taps":
        (kh, kw), (_, OW) = s.window.kernel, s.window.out_hw
        fg, ck = s.filters_per_group, s.channels_per_group * kh * kw
        packed = s.window.groups * -(-fg // VT_MAX_BLOCK) * VT_MAX_BLOCK * ck
        return (
            s.channels_per_group >= 2
            and kh <= VT_MAX_KERNEL
            and kw <= VT_MAX_KERNEL
            and OW <= VT_MAX_OW
            and packed <= max(VT_PACK_SLACK * s.window.groups * fg * ck, VT_PACK_MIN_ELEMS)
        )
    if pass_ == "grad_input":
        as_forward = grad_input_as_forward(s)
        return as_forward is not None and accepts("direct", "forward", as_forward[0])
    if pass_ == "grad_weight":
        return s.channels_per_group >= 1 and direct_unfolded(s) <= GW_DIRECT_MAX_U
    return s.channels_per_group >= 1 and direct_strip_unfolded(s) <= FWD_DIRECT_MAX_U


@functools.lru_cache(maxsize=4096)
def choose_route(pass_, s):
    """The route that computes ``pass_`` ("forward", "grad_input" or "grad_weight") for this
    geometry: depthwise when it accepts it with one filter per group (with a channel multiplier
    of at most DW_MAX_MULTIPLIER, for the input gradient only); else, for the forward pass,
    valid taps within its measured limits (VT_MIN_PLANE ...; the input gradient where its
    forward convolution, grad_input_as_forward, would take it with GI_VT_MIN_TAPS and
    GI_VT_MIN_FG); else direct within its measured
    limits for the active instruction set (never for a depthwise geometry; the input gradient
    within the forward's limits of its forward convolution, grad_input_as_forward, and from
    GI_DIRECT_MIN_CG channels per group on, GI_DIRECT_FEW_FG_MIN_CG with at most
    GI_DIRECT_FEW_FG filters); else GEMM."""
    if accepts("depthwise", pass_, s) and (
        _is_depthwise(s) or (pass_ == "grad_input" and s.filters_per_group <= DW_MAX_MULTIPLIER)
    ):
        return "depthwise"
    if _is_depthwise(s):
        return "gemm"
    if pass_ == "grad_input":
        as_forward = grad_input_as_forward(s)
        few = s.filters_per_group <= GI_DIRECT_FEW_FG
        if as_forward is None or s.channels_per_group < (
            GI_DIRECT_FEW_FG_MIN_CG if few else GI_DIRECT_MIN_CG
        ):
            return "gemm"
        route = _forward_route(as_forward[0], GI_VT_MIN_TAPS, GI_VT_MIN_FG)
        return route if route in ("direct", "valid_taps") else "gemm"
    if pass_ == "forward":
        return _forward_route(s, VT_MIN_TAPS, VT_MIN_FG)
    if s.batch * s.window.groups < GW_DIRECT_MIN_PAIRS:
        return "gemm"
    if s.channels_per_group <= GW_DIRECT_ANY_FG_MAX_CG:
        return _direct_or_gemm("grad_weight", s, GW_DIRECT_ANY_FG_MAX_CG, _LIMITS.gw_fg)
    return _direct_or_gemm("grad_weight", s, GW_DIRECT_MAX_CG, GW_DIRECT_MAX_FG)


def _forward_route(s, vt_min_taps, vt_min_fg):
    """choose_route's forward pass, with valid taps on output planes of at least VT_MIN_PLANE
    pixels with at least ``vt_min_taps`` taps per output (channels per group times the
    kernel's taps) and ``vt_min_fg`` filters per group (VT_MIN_TAPS ...; GI_VT_MIN_TAPS ... for
    an input gradient's forward convolution)."""
    max_cg, max_fg = FWD_DIRECT_MAX_CG, FWD_DIRECT_MAX_FG
    OH, OW = s.window.out_hw
    kh, kw = s.window.kernel
    if (
        kh * kw >= 9
        and s.window.padding != ((0, 0), (0, 0))
        and OH * OW >= VT_MIN_PLANE
        and s.channels_per_group * kh * kw >= vt_min_taps
        and s.filters_per_group >= vt_min_fg
        and accepts("valid_taps", "forward", s)
    ):
        return "valid_taps"
    if OH * OW <= FWD_DIRECT_SMALL_PLANE and (
        s.channels_per_group * kh * kw > FWD_DIRECT_SMALL_MAX_TAPS
        or s.filters_per_group > FWD_DIRECT_SMALL_MAX_FG
    ):
        return "gemm"
    if kh * kw == 1:
        if (
            OH * OW <= FWD_1X1_GEMM_MAX_PLANE
            and s.filters_per_group > FWD_1X1_GEMM_MAX_DIRECT_FG
            and s.window.stride == (1, 1)
            and s.window.padding == ((0, 0), (0, 0))
        ):
            return "gemm"
        max_cg = FWD_DIRECT_1X1_MAX_CG
    if not _direct_forward_beyond_whole_u(s):
        return "gemm"
    return _direct_or_gemm("forward", s, max_cg, max_fg)


def _direct_forward_beyond_whole_u(s):
    """Whether the direct forward is chosen for this image as far as its U goes: always when
    all of U is at most FWD_DIRECT_MAX_U elements, else only for a kernel larger than 1x1 with
    at least FWD_DIRECT_MIN_BAND_ROWS output rows per band (direct_band_rows needs a geometry
    the route accepts)."""
    if direct_unfolded(s) <= FWD_DIRECT_MAX_U:
        return True
    kh, kw = s.window.kernel
    return (
        kh * kw > 1
        and accepts("direct", "forward", s)
        and direct_band_rows(s) >= FWD_DIRECT_MIN_BAND_ROWS
    )


def _direct_or_gemm(pass_, s, max_cg, max_fg):
    """The direct route within these channel and filter limits per group, else GEMM."""
    if (
        s.channels_per_group <= max_cg
        and s.filters_per_group <= max_fg
        and accepts("direct", pass_, s)
    ):
        return "direct"
    return "gemm"


def resolve_route(forced, pass_, s, fn):
    """``forced`` (None, or a route name for tests) checked against the geometry, or the
    chosen route. A forced route that cannot compute this pass and geometry is a ValueError."""
    if forced is None:
        return choose_route(pass_, s)
    if forced not in ROUTES:
        raise ValueError(
            f"{fn}: _route must be one of {', '.join(map(repr, ROUTES))} or None, got {forced!r}"
        )
    if not accepts(forced, pass_, s):
        raise ValueError(
            f"{fn}: the {forced} route cannot compute the {pass_} pass for this geometry ({s})"
        )
    return forced
