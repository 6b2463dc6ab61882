"""2-D convolution kernels: forward, input gradient, weight gradient and bias gradient.

Contract (the functional layer checks it; these kernels trust it): x is (N, C, H, W), the weight
w is (F, C/G, kH, kW), y and grad_out are (N, F, OH, OW); every array is C-contiguous, non-empty
and of one dtype (float32 or float64); no output overlaps an input (a forward's residual is
read while y is written). Padding arrives as (top, left): the bottom and right
padding are implied by OH and OW, which is how 'same' with an even kernel and the per-side
padding (top, bottom, left, right) pad asymmetrically (every route reads a position past the
input, below or right of it, as zero, and sizes its scratch from OH and OW).

Four routes, one entry point per route and pass
-----------------------------------------------
    conv2d_forward_gemm      conv2d_grad_input_gemm      conv2d_grad_weight_gemm
    conv2d_forward_direct    conv2d_grad_input_direct    conv2d_grad_weight_direct
    conv2d_forward_depthwise conv2d_grad_input_depthwise conv2d_grad_weight_depthwise
    conv2d_forward_valid_taps (forward only: the padding skipped; its design is above it)
    conv2d_grad_bias (one route)
Every entry point takes (inputs, output, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w,
groups, n_threads). These kernels decide nothing: Python (convext/functional/_routes.py,
choose_route) picks the route from the geometry with its measured limits, and only sends a
geometry to a route that accepts it (the direct route's U and the depthwise padded plane within
their bounds). n_threads is the caller's (convext._config.threads_for); a kernel uses no more
threads than it has work items, as each thread needs its own scratch.

GEMM route (any geometry). For image n and group g the output is the matrix product
    Y[n, g] (Fg x OH*OW) = W_g (Fg x K) @ cols (K x OH*OW),      K = Cg*kH*kW,
where cols is the unfolded (im2col) input. cols is never built whole: a work item is
(n, g, tile of PT output pixels); its thread unfolds the tile into a private buffer of K*PT
elements, sized to stay in cache, and multiplies it with the cache-blocked GEMM of isa/kernels.inc.
Work items write disjoint parts of y and every output element is one complete dot product, so
the result is the same for every thread count. A 1x1 kernel with stride 1 and no padding needs
no unfolding: the image itself is the cols matrix. Two refinements of the forward work items,
neither of which changes any output's arithmetic (the GEMM's result depends only on K and its
chunking): on small planes (several images' tiles fit in one tile of TILE_BYTES, e.g. 7x7;
for a 1x1 kernel, only from POINTWISE_SIDE_BY_SIDE_MIN_K channels on) a work item unfolds nimg
images side by side into the GEMM's columns (one GEMM nimg*OH*OW
wide instead of nimg narrow ones) and copies its output out through a per-thread buffer; with
fewer work items than twice the threads (batch 1), each is split into blocks of filters (rows
of the GEMM, multiples of 8), so both cores work; those blocks share their item's B: all the
threads first unfold and pack it once, whole, into the GEMM's column strips (gemm_pack_b, a
block of channels at a time), then the blocks multiply it in place (gemm_pb) instead of each
unfolding and packing it again (but a 1x1 kernel reading its images in place, where the thread
count is a multiple of the items: one block per thread, each packing its own strips of the
image inside its GEMM). So y stays the same for every batch size and thread count.
With images side by side and one filter block per item, B is packed straight from x
(gemm_pack_b_gather, through a table of each tap's input offset per column, -1 in the padding:
_gather_table), not unfolded into a buffer first and then packed: one copy of the input instead
of two (on a 7x7 plane the unfolding copied rows of 7 and cost as much as a quarter of a 1x1
layer's time). The values packed are the same, so are the bits. A table over GATHER_MAX entries
(huge kernels) unfolds as before; so do single images (measured slower with the table) and the
shared B (measured 2x slower on 2 threads for 256x14x14 -> 512 1x1 stride 2 at batch 16).
A weight used for many calls (convext.inference) can be packed once, whole, into the GEMM's
strips (conv2d_pack_weight_gemm) and passed to conv2d_forward_gemm, whose GEMMs then
read it in place instead of re-packing their blocks of it on every call (a strided copy of
the whole weight per call, which at batch 1 is not shared by many columns); the values and
their order are the same, and so is every output bit.

Output epilogue (forward, every route; convext.inference uses it): after a work item's block
of y is computed (the depthwise route: each output plane), and while it is in cache,
y = act(y + bias + residual), the residual an array of y's shape or None, act one of the ACT_*
codes below (ReLU, ReLU6, LeakyReLU, Hardtanh, ELU, Sigmoid, Tanh, SiLU, Hardswish,
Hardsigmoid, GELU and its tanh form). conv2d_epilogue applies the same arithmetic to a finished
y in place, so a fused call and an unfused one followed by it give the same bits.

Depthwise route (C/G == 1, any number m = F/G of filters per input channel). There the GEMM
would be m rows, so loops over the kernel taps work on zero-padded polyphase copies of the
planes instead (details above the kernels). Python chooses it with m == 1, and for the input
gradient up to a measured multiplier (functional/_routes.py).

Direct route (forward and grad_weight; grad_input, stride 1 only, is the direct forward of the
output gradient with the rotated weight, conv2d_grad_input_direct). Chosen when it is not depthwise,
Cg, Fg and the row-unfolded image U below stay within limits measured per pass (forward:
Cg <= 256, Fg <= 512, one strip's rows of U <= 2**21 elements; grad_weight: Cg, Fg <= 64,
U <= 2**20 and at least 4 (image, group) pairs; the named constants and the benchmark that
measured them are in functional/_routes.py). It avoids the GEMM route's two copies of every
input element (im2col tile, then the GEMM's packing), which cost most where M = Fg is small and
wastes most of the micro-tile. The direct kernels (isa/kernels.inc) work per (image, group):
they copy the input once into U, one zero-padded plane of Hq x OW per (channel, row phase,
kernel column), in which each tap's inputs for the output
pixels in order are one contiguous run (any stride, dilation, padding). The forward pass is then
register tiles of up to 8 filters x 48 pixels (AVX-512; 4 x 24 AVX2) summed over the taps from
the bias, over bands of pixels whose part of U stays in the core's cache (the weights packed once
per call for every work item); grad_weight keeps 4 filters x 5 taps of per-lane partial sums over
all the images of one of min(16, N) fixed image blocks, reduces the lanes in order, and the
blocks are added in order as below. Work items: (image, group, block of output pixels) for the
forward (one pixel block per image unless there are fewer than two images per thread), (image
block, group) for dW.

grad_input (GEMM route): dcols = W_g^T @ dY tile, folded back (col2im) into the planes of dx
(W_g^T packed once per call). A work item owns a block of dx planes, so the accumulation needs
no atomics and its order is fixed; on small planes it puts several images side by side in the
GEMM's columns (the same bits).
grad_weight: dW_g += dY tile @ cols tile^T, or with few filters and long rows of cols
dW_g^T += cols tile @ dY tile^T (cvx_gemm_nt, cols read in place; _gw_layout), summed into one
of NBLK private partial sums (NBLK depends on the problem, never on the thread count: at most
16 and 8 MB of them) which are then added in a fixed order: dW is bitwise the same for every
thread count. On small planes a block's images go side by side along the GEMM's inner
dimension. With fewer blocks than twice the threads each block's filters or input channels are
split into blocks too.

Index arithmetic: every geometry value and extent that reaches these kernels (stride, padding,
dilation, kernel size, padded input, dilated kernel, OH, OW, OH*OW) is at most 2**40, checked in
Python integers by convext._validation.window_geometry before any call; the products the kernels
form beyond that (the direct route's U, for its forward one strip's rows of U; the depthwise
padded plane) are compared with their limits in Python integers by functional/_routes.py
before a geometry reaches those routes. The forward's whole U is not bounded there, but a row
of it is (at most 2**21 elements) and Hq at most 2**40, so U's size and the tap offsets into
it (_direct_offsets) stay below 2**61.

Scratch memory, allocated in Python before any output is written, for at most as many threads as
there are work items: per thread K*PT elements (the unfolded tile, PT = 192..960 pixels, about
768 kB when K is moderate; on small planes the same budget holds several images, and the
weight gradient's up to 384 pixels of them) plus CVX_GEMM_WORK_ELEMS (~0.8 MB in float32) for
the GEMM's packed panels (the forward with shared B: instead of the tile, a block of its
channels, and the packed B of each of its fewer than 2*threads items, K*PT rounded up to whole
column strips); grad_input adds the packed W^T (about the weight's size), grad_weight up to
min(16, max(1, 8 MB / (F*K*itemsize))) * F*K elements of partial sums; the direct route per
thread its forward's band of U (the rows that fit the CPU's band, or 8 output rows' within
4 MB, at least one strip's: at most 2**21 elements) or its weight gradient's whole U (at most
2**20), the
group's packed weights (Fg*K); the depthwise route (Hp + OH)*Wp elements per thread (its channel
blocks at most 65536), at most 4*(H*W + OH*OW) + 65536 (stride, padding or dilation far beyond
the image go to the GEMM route).
"""
import numpy as np

cimport cython
cimport numpy as cnp
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, erf, exp, expm1, tanh
from libc.string cimport memcpy
from libc.stdint cimport uint64_t
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject

from ._openmp cimport (CVX_SCHED_THREADS, cvx_omp_get_thread_num, cvx_sched, cvx_sched_after,
                       cvx_sched_init, cvx_sched_next)
from ._types cimport floating, idx_t

from ._gemm cimport (
    CVX_GEMM_WORK_ELEMS,
    gemm as _gemm,
    gemm_mr,
    gemm_pa,
    gemm_pack_a,
    gemm_pack_b,
    gemm_pack_b_gather,
    gemm_packed_b_elems,
    gemm_nt,
    gemm_pb,
)
from ._isa cimport (
    CVX_GEMM_KC,
    cvx_dw_s2_ring,
    cvx_gemm_packed_a_elems,
    direct_fwd_scratch,
    isa_table,
)

from ._isa cimport (
    cvx_vt_filter_block,
    cvx_vt_fwd_double,
    cvx_vt_fwd_float,
    cvx_vt_geom,
    cvx_vt_pack_double,
    cvx_vt_pack_float,
    cvx_vt_scratch,
    cvx_bias_out_double,
    cvx_bias_out_float,
    cvx_direct_filter_block,
    cvx_direct_fwd_double,
    cvx_direct_fwd_float,
    cvx_direct_geom,
    cvx_direct_gw_double,
    cvx_direct_gw_finish_double,
    cvx_direct_gw_finish_float,
    cvx_direct_gw_float,
    cvx_direct_pack_double,
    cvx_direct_pack_float,
    cvx_direct_scratch,
    cvx_direct_v_elems,
    cvx_dw_cb_fwd_double,
    cvx_dw_cb_fwd_float,
    cvx_dw_cb_gxw_double,
    cvx_dw_cb_gxw_float,
    cvx_dw_cb_gx_double,
    cvx_dw_cb_gx_float,
    cvx_dw_cbr_fwd_double,
    cvx_dw_cbr_fwd_float,
    cvx_dw_copy_double,
    cvx_dw_copy_float,
    cvx_dw_dots_double,
    cvx_dw_dots_float,
    cvx_dw_finite_double,
    cvx_dw_finite_float,
    cvx_dw_lanes_double,
    cvx_dw_lanes_float,
    cvx_dw_out_double,
    cvx_dw_out_float,
    cvx_dw_pad1_double,
    cvx_dw_pad1_float,
    cvx_dw_place_double,
    cvx_dw_place_float,
    cvx_dw_poly_double,
    cvx_dw_poly_float,
    cvx_dw_flat_masks,
    cvx_dw_s1_flat_double,
    cvx_dw_s1_flat_float,
    cvx_dw_s1_plane_double,
    cvx_dw_s1_plane_float,
    cvx_dw_s2_plane_double,
    cvx_dw_s2_plane_float,
    cvx_dw_taps_double,
    cvx_dw_taps_act_double,
    cvx_dw_taps_act_float,
    cvx_dw_taps_float,
    cvx_dw_unpoly_double,
    cvx_dw_unpoly_float,
)


# Every field is an array dimension (N, C, H, W, F, Cg, kh, kw, OH, OW) or a geometry value
# (sh, sw, ph, pw, dil_h, dil_w, G), each at most 2**40 by convext._validation.window_geometry /
# check_positive_int, which also bound OH*OW, H + 2*padding and dil_h*(kh-1) + 1 by 2**40.
ctypedef struct geom_t:
    idx_t N, C, H, W, F, G, Cg, Fg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, OH, OW


# Bytes of unfolded input a thread keeps per tile (a typical L2 holds it).
DEF TILE_BYTES = 786432
# Rows of the unfolded input one step of the forward's shared B packing unfolds and packs (a
# block of whole channels: about 256 rows, which with its tile's pixels stays in cache; fewer
# where that gives the threads fewer than two steps each, conv2d_forward_gemm).
DEF PACK_ROWS = 256
# How many partial sums grad_weight accumulates into (at most), and the bytes they may take
# (a 512x512x3x3 weight gradient is 9.4 MB: one block; 256x256x3x3, 2.4 MB: 3 blocks).
DEF MAX_BLOCKS = 16
DEF PART_BYTES = 8388608
# The weight gradient's GEMM reads the unfolded input in place (cvx_gemm_nt: dW^T = U gy^T,
# only grad_out's rows transposed into strips) with at most GW_NT_MAX_FG filters per group and
# rows of U (the pixels of a tile, or of the images side by side) of at least GW_NT_MIN_ROW;
# else, and for a 1x1 kernel whose input is read in place, it packs U transposed (cvx_gemm:
# dW = gy U^T, the packing amortised over the filters); _gw_layout decides. The broadcasts of
# cvx_gemm_nt read a tile's rows of U at once (8 on AVX-512): on short rows (many channels:
# U's tile holds TILE_BYTES) they waited on the L2, and on an input read in place on memory.
# Measured (float32, 2 threads, weight gradient ms cvx_gemm / cvx_gemm_nt, medians of
# alternated runs on a Sapphire Rapids Xeon; 3x3 padding 1 unless named; rows of U in
# parentheses): 32x64x64 -> 32 dilation 2 batch 16 6.9 / 5.4 (672), 32x32x32 -> 64 batch 64
# 11.1 / 10.2 (672), 64x56x56 -> 64 batch 16 16.6 / 15.9 (336), 128x28x28 -> 32 batch 16 5.7 /
# 5.2 (192: not taken), 96x28x28 -> 32 1x1 0.48 / 0.38 (not taken: read in place); but
# 128x28x28 -> 64 batch 16 8.9 / 9.3 (192), 256x14x14 -> 64 5.4 / 7.1 (196), 128x28x28 -> 128
# batch 4 4.3 / 7.2 (192), 256x56x56 -> 64 1x1 batch 16 7.4 / 11.2 (read in place, 51 MB),
# 256x14x14 -> 256 batch 4 4.1 / 4.4 and 128x28x28 -> 256 1x1 batch 32 6.6 / 6.8.
DEF GW_NT_MAX_FG = 64
DEF GW_NT_MIN_ROW = 320
# Strips of the GEMM tile's rows a thread packs per work item when a weight is packed per call.
DEF PACK_STRIPS = 32
# The forward GEMM packs its B straight from the input (gemm_pack_b_gather) when the table of
# input offsets it reads (kH*kW x the columns of nimg images, or of one image) has at most this
# many entries; else it unfolds a tile first (_im2col_tile) and packs that.
DEF GATHER_MAX = 1 << 19
# A 1x1 convolution (stride 1, no padding: the image is the GEMM's B) puts images side by side
# only from this many input channels per group on. Below, an output element is at most 384
# multiply-adds, and copying an item's output block out to its images' planes (one more pass
# over the output, whose stores miss the cache) cost more than the wide GEMM saved: at batch 16
# on a Sapphire Rapids Xeon, 96x14x14 -> 576 3.49 -> 2.54 ms and 160x7x7 -> 960 2.12 -> 1.55 ms
# with one image per item; from 512 channels on it was even (512x14x14 -> 512) or better.
DEF POINTWISE_SIDE_BY_SIDE_MIN_K = 385

# Few work items (batch 1) on an output plane of at least this many times as many pixels as
# the group has filters: the forward GEMM splits the plane into more pixel tiles (two per
# thread, _split_pixels) rather than the filters into blocks. Each thread then reads its own
# part of the input, where with filter blocks every thread read (and packed) all of it, which
# is the larger operand here. Measured on a Zen 3 (AVX2; float32, 2 threads, batch 1, 1x1
# convolution + bias + ReLU, medians of alternated calls, ms before / after): 144x28x28 -> 32
# 0.11 / 0.10, 192x28x28 -> 32 0.13 / 0.11, 192x14x14 -> 64 0.070 / 0.062, 384x14x14 -> 64
# 0.11 / 0.10, 576x14x14 -> 96 0.18 / 0.17, 256x28x28 -> 128 0.48 / 0.43, 1024x14x14 -> 96
# 0.39 / 0.33; 512x28x28 -> 128 even (0.79 / 0.80).
DEF SPLIT_PIXELS_MIN_RATIO = 2
# The widest GEMM micro-tile (AVX-512 float32: 3 vectors of 16): pixel tiles are multiples of it.
DEF GEMM_WIDEST_TILE = 48

# The NumPy dtype of a kernel's arrays, _DTYPE[floating is double]: for its scratch buffers,
# without wrapping a memoryview in an array on every call (np.asarray(y).dtype: about 1.5 us).
_DTYPE = (np.dtype(np.float32), np.dtype(np.float64))

cnp.import_array()


ctypedef struct span_t:
    idx_t lo, hi


cdef inline span_t _ow_range(idx_t off, idx_t s, idx_t W, idx_t OW) noexcept nogil:
    """The output columns ow in [lo, hi) whose input column ow*s + off lies inside [0, W).
    (Returned by value: inside prange, results written through pointers would be shared.)"""
    cdef span_t r
    cdef idx_t a = 0, b = 0
    if off < 0:
        a = (-off + s - 1) // s
    if W - 1 - off >= 0:
        b = (W - 1 - off) // s + 1
    if b > OW:
        b = OW
    if a > b:
        a = b
    r.lo = a
    r.hi = b
    return r


cdef inline floating _dot(const floating *a, const floating *b, idx_t n,
                          idx_t sb) noexcept nogil:
    """sum(a[q] * b[q*sb]) with eight fixed partial sums (vectorisable, order fixed)."""
    cdef floating acc[8]
    cdef idx_t q, t, m = n - n % 8
    for t in range(8):
        acc[t] = 0
    if sb == 1:
        for q in range(0, m, 8):
            for t in range(8):
                acc[t] += a[q + t] * b[q + t]
    else:
        for q in range(0, m, 8):
            for t in range(8):
                acc[t] += a[q + t] * b[(q + t) * sb]
    for q in range(m, n):
        acc[q - m] += a[q] * b[q * sb]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline floating _sum(const floating *a, idx_t n) noexcept nogil:
    cdef floating acc[8]
    cdef idx_t q, t, m = n - n % 8
    for t in range(8):
        acc[t] = 0
    for q in range(0, m, 8):
        for t in range(8):
            acc[t] += a[q + t]
    for q in range(m, n):
        acc[q - m] += a[q]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef void _im2col_tile_shifted(const floating *xn, idx_t c0, idx_t nc, idx_t p0, idx_t p1,
                               floating *dst, idx_t ldd, const geom_t *g) noexcept nogil:
    """_im2col_tile when both strides are 1 and OW == W (a "same" padding of the columns: 3x3
    with padding 1, any dilation with its padding). Output pixel p = oh*W + ow then reads, for
    tap (i, j), the input element p + offh*W + offw of its channel's plane (offh = i*dil_h - ph,
    offw = j*dil_w - pw): the plane shifted as one flat run. The run is right wherever the tap
    reads inside the image; elsewhere the output row's input row is outside the image (those
    pixels are not copied) or the element wraps across a row's edge (columns with ow + offw
    outside [0, W), set after the copy): both padding, 0. So one copy per tap and a few zeros
    per row, instead of a copy per output row (28 or 56 elements at a time on ResNet's planes).
    Every product below stays within the tile's rows (at most (OH + 1)*W) or the plane (H*W):
    a padding or dilation of up to 2**40 cannot overflow it."""
    cdef idx_t HW = g.H * g.W, c, i, j, offh, offw, shift, ra, rb, lo, hi, p, oh, ow, ca, cb
    cdef idx_t oh0 = p0 // g.W, oh1 = (p1 - 1) // g.W, r = 0
    cdef const floating *xc
    cdef floating *d
    for c in range(nc):
        xc = xn + (c0 + c) * HW
        for i in range(g.kh):
            offh = i * g.dil_h - g.ph
            # the tile's output rows [ra, rb) whose input row oh + offh lies in the image
            ra = min(max(oh0, -offh), oh1 + 1)
            rb = max(min(oh1 + 1, g.H - offh), ra)
            for j in range(g.kw):
                offw = j * g.dil_w - g.pw
                d = dst + r * ldd  # d[p - p0]: output pixel p of this row of the tile
                r += 1
                lo = p1
                hi = p1
                if ra < rb and -g.W < offw < g.W:
                    lo = max(p0, ra * g.W)
                    hi = min(p1, rb * g.W)
                    # of those, the pixels whose element lies in the plane (the others wrap)
                    shift = offh * g.W + offw
                    lo = max(lo, -shift)
                    hi = min(hi, HW - shift)
                    if hi > lo:
                        memcpy(d + (lo - p0), xc + (lo + shift), (hi - lo) * sizeof(floating))
                    else:
                        lo = p1
                        hi = p1
                for p in range(p0, lo):
                    d[p - p0] = 0
                for p in range(hi, p1):
                    d[p - p0] = 0
                # the copied rows' columns whose element wrapped across a row's edge
                if offw > 0:
                    ca = max(0, g.W - offw)
                    cb = g.W
                else:
                    ca = 0
                    cb = min(g.W, -offw)
                if lo < hi and ca < cb:
                    for oh in range(lo // g.W, (hi - 1) // g.W + 1):
                        # those columns of this row within [lo, hi) (a tile may hold only a
                        # few pixels of a row of up to 2**40 columns)
                        for ow in range(max(ca, lo - oh * g.W), min(cb, hi - oh * g.W)):
                            d[oh * g.W + ow - p0] = 0


cdef void _im2col_tile(const floating *xn, idx_t c0, idx_t nc, idx_t p0, idx_t p1,
                       floating *dst, idx_t ldd, const geom_t *g) noexcept nogil:
    """Unfold output pixels [p0, p1) of channels [c0, c0+nc) of one image:
    dst[r*ldd + p - p0] = x[c, ih, iw] (0 in the padding), r = (c - c0)*kh*kw + i*kw + j."""
    cdef idx_t c, i, j, oh, ih, ow, lo, hi, lo2, hi2, a, b, offh, offw, r = 0
    if g.sh == 1 and g.sw == 1 and g.OW == g.W:
        _im2col_tile_shifted(xn, c0, nc, p0, p1, dst, ldd, g)
        return
    cdef span_t span
    cdef idx_t oh0 = p0 // g.OW, oh1 = (p1 - 1) // g.OW
    cdef const floating *xc
    cdef const floating *xrow
    cdef floating *d
    for c in range(nc):
        xc = xn + (c0 + c) * g.H * g.W
        for i in range(g.kh):
            offh = i * g.dil_h - g.ph
            for j in range(g.kw):
                offw = j * g.dil_w - g.pw
                span = _ow_range(offw, g.sw, g.W, g.OW)
                lo = span.lo
                hi = span.hi
                for oh in range(oh0, oh1 + 1):
                    a = 0
                    b = g.OW
                    if oh == oh0:
                        a = p0 - oh * g.OW
                    if oh == oh1:
                        b = p1 - oh * g.OW
                    # d[ow - a] is the slot of output column ow of this row
                    d = dst + r * ldd + (oh * g.OW + a - p0)
                    ih = oh * g.sh + offh
                    if ih < 0 or ih >= g.H:
                        for ow in range(a, b):
                            d[ow - a] = 0
                        continue
                    xrow = xc + ih * g.W
                    lo2 = lo if lo > a else a
                    hi2 = hi if hi < b else b
                    if hi2 < lo2:
                        hi2 = lo2
                    if lo2 > b:
                        lo2 = b
                        hi2 = b
                    for ow in range(a, lo2):
                        d[ow - a] = 0
                    if g.sw == 1:
                        for ow in range(lo2, hi2):
                            d[ow - a] = xrow[ow + offw]
                    else:
                        for ow in range(lo2, hi2):
                            d[ow - a] = xrow[ow * g.sw + offw]
                    for ow in range(hi2, b):
                        d[ow - a] = 0
                r += 1


cdef void _col2im_tile(floating *dxn, idx_t c0, idx_t nc, idx_t p0, idx_t p1,
                       const floating *src, idx_t lds, const geom_t *g) noexcept nogil:
    """The adjoint of _im2col_tile: dx[c, ih, iw] += src[r*lds + p - p0] inside the image."""
    cdef idx_t c, i, j, oh, ih, ow, lo, hi, a, b, offh, offw, r = 0
    cdef span_t span
    cdef idx_t oh0 = p0 // g.OW, oh1 = (p1 - 1) // g.OW
    cdef floating *xc
    cdef floating *xrow
    cdef const floating *s
    for c in range(nc):
        xc = dxn + (c0 + c) * g.H * g.W
        for i in range(g.kh):
            offh = i * g.dil_h - g.ph
            for j in range(g.kw):
                offw = j * g.dil_w - g.pw
                span = _ow_range(offw, g.sw, g.W, g.OW)
                lo = span.lo
                hi = span.hi
                for oh in range(oh0, oh1 + 1):
                    ih = oh * g.sh + offh
                    if ih < 0 or ih >= g.H:
                        continue
                    a = 0
                    b = g.OW
                    if oh == oh0:
                        a = p0 - oh * g.OW
                    if oh == oh1:
                        b = p1 - oh * g.OW
                    if lo > a:
                        a = lo
                    if hi < b:
                        b = hi
                    if b <= a:
                        continue
                    s = src + r * lds + (oh * g.OW + a - p0)
                    xrow = xc + ih * g.W
                    if g.sw == 1:
                        for ow in range(a, b):
                            xrow[ow + offw] += s[ow - a]
                    else:
                        for ow in range(a, b):
                            xrow[ow * g.sw + offw] += s[ow - a]
                r += 1


cdef inline tuple _s4(Py_ssize_t *s):
    return (s[0], s[1], s[2], s[3])


cdef geom_t _geom(tuple xs, tuple ws, tuple ys, idx_t groups, idx_t sh, idx_t sw, idx_t ph,
                  idx_t pw, idx_t dil_h, idx_t dil_w):
    cdef geom_t g
    g.N, g.C, g.H, g.W = xs
    g.F, g.Cg, g.kh, g.kw = ws
    g.OH, g.OW = ys[2], ys[3]
    g.G = groups
    g.Fg = g.F // groups
    g.sh, g.sw, g.ph, g.pw, g.dil_h, g.dil_w = sh, sw, ph, pw, dil_h, dil_w
    return g


cdef inline bint _pointwise(const geom_t *g) noexcept nogil:
    """True when the image is its own cols matrix (1x1 kernel, stride 1, no padding)."""
    return (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.ph == 0 and g.pw == 0
            and g.OH == g.H and g.OW == g.W)


cdef int _threads_for(idx_t items, int n_threads):
    """No more threads than work items (each needs its own scratch)."""
    return <int>max(1, min(<idx_t>n_threads, items))


# --------------------------------------------------------------------------------------------
# output epilogue (convext.inference): y = act(y + residual), applied to an output block while
# it is in cache. Activation codes (the Python side's copy: convext.inference's ACT_* constants):
DEF ACT_NONE = 0
DEF ACT_RELU = 1
DEF ACT_RELU6 = 2
DEF ACT_LEAKY = 3      # a0: negative slope
DEF ACT_HARDTANH = 4   # a0, a1: min_val, max_val
DEF ACT_ELU = 5        # a0: alpha
DEF ACT_SIGMOID = 6
DEF ACT_TANH = 7
DEF ACT_SILU = 8
DEF ACT_HARDSWISH = 9
DEF ACT_HARDSIGMOID = 10
DEF ACT_GELU = 11
DEF ACT_GELU_TANH = 12

ctypedef struct epi_t:
    int act
    double a0, a1


cdef inline floating _act1(floating v, const epi_t *e) noexcept nogil:
    """One activation; NaN stays NaN (comparisons written so that NaN takes the v branch)."""
    if e.act == ACT_ELU:
        return v if v > 0 else <floating>(e.a0 * expm1(v))
    if e.act == ACT_SIGMOID:
        return <floating>(1.0 / (1.0 + exp(-v)))
    if e.act == ACT_TANH:
        return <floating>tanh(v)
    if e.act == ACT_SILU:
        return <floating>(v / (1.0 + exp(-v)))
    if e.act == ACT_GELU:
        return <floating>(0.5 * v * (1.0 + erf(v * 0.7071067811865476)))
    if e.act == ACT_GELU_TANH:
        return <floating>(0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))))
    return v


cdef void _epilogue(floating *y, idx_t ldy, idx_t rows, idx_t cols, const floating *r,
                    idx_t ldr, const epi_t *e) noexcept nogil:
    """y[i*ldy + q] = act(y[i*ldy + q] + r[i*ldr + q]) (r may be NULL) for rows x cols."""
    cdef idx_t i, q
    cdef floating *yr
    cdef floating v, lo, hi, t
    cdef floating a = <floating>e.a0
    for i in range(rows):
        yr = y + i * ldy
        if r != NULL:
            for q in range(cols):
                yr[q] = yr[q] + r[i * ldr + q]
        if e.act == ACT_NONE:
            pass
        elif e.act == ACT_RELU:
            for q in range(cols):
                v = yr[q]
                yr[q] = 0 if v < 0 else v
        elif e.act == ACT_RELU6 or e.act == ACT_HARDTANH:
            lo = 0
            hi = 6
            if e.act == ACT_HARDTANH:
                lo = <floating>e.a0
                hi = <floating>e.a1
            for q in range(cols):
                v = yr[q]
                v = lo if v < lo else v
                yr[q] = hi if v > hi else v
        elif e.act == ACT_LEAKY:
            for q in range(cols):
                v = yr[q]
                t = v * a  # for every element: a vector blend (setup.py, -fno-trapping-math)
                yr[q] = t if v < 0 else v
        elif e.act == ACT_HARDSWISH or e.act == ACT_HARDSIGMOID:
            for q in range(cols):
                v = yr[q]
                t = v + 3
                t = 0 if t < 0 else t
                t = 6 if t > 6 else t
                if e.act == ACT_HARDSWISH:
                    yr[q] = v * t / 6
                else:
                    yr[q] = t / 6
        else:
            for q in range(cols):
                yr[q] = _act1(yr[q], e)


cdef inline const floating *_at(const floating *r, idx_t off) noexcept nogil:
    """r + off, or NULL when r is NULL (no residual)."""
    if r == NULL:
        return NULL
    return r + off


cdef epi_t _epi(int act, double a0, double a1):
    cdef epi_t e
    e.act = act
    e.a0 = a0
    e.a1 = a1
    return e


def conv2d_epilogue(floating[:, :, :, ::1] y, const floating[:, :, :, ::1] residual,
                    int act, double a0, double a1, int n_threads):
    """y = act(y + residual) in place (residual may be None; y's shape), plane by plane: the
    forward kernels' epilogue as a separate pass, for a y computed without one. act: an ACT_*
    code (0..12)."""
    cdef idx_t NF = y.shape[0] * y.shape[1], P = y.shape[2] * y.shape[3]
    cdef epi_t e = _epi(act, a0, a1)
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef const floating *rp = NULL
    if residual is not None:
        rp = &residual[0, 0, 0, 0]
    n_threads = _threads_for(NF, n_threads)
    with nogil:
        _epilogue_planes(yp, rp, NF, P, &e, n_threads)


cdef void _epilogue_planes(floating *y, const floating *r, idx_t NF, idx_t P, const epi_t *e,
                           int nt) noexcept nogil:
    cdef idx_t it
    for it in prange(NF, schedule='static', num_threads=nt):
        _epilogue(y + it * P, P, 1, P, _at(r, it * P), P, e)


def tile_pixels(Py_ssize_t K, Py_ssize_t P, Py_ssize_t itemsize):
    """Output pixels per work tile: K*PT*itemsize ~ TILE_BYTES, a multiple of 48 (the widest
    GEMM micro-tile) between 192 and 768, at most P; or all of P when that is at most a quarter
    more (196 = 14x14 pixels: one tile, not 192 and a tile of 4). Never depends on the thread
    count."""
    cdef Py_ssize_t pt = TILE_BYTES // max(1, K * itemsize)
    pt = min(768, max(192, (pt // 48) * 48))
    if P <= pt + pt // 4:
        return max(1, P)
    return pt


def unfolded_tile_columns(Py_ssize_t K, Py_ssize_t P, Py_ssize_t N, Py_ssize_t itemsize):
    """Columns of the widest tile of unfolded input (K rows) that a GEMM-route pass allocates
    for N images of P output pixels: one image's tile (tile_pixels), or whole images side by
    side (_images_per_tile; the weight gradient's up to CVX_GEMM_KC pixels of them,
    _gw_layout), rounded up to whole strips of the widest GEMM micro-tile (a packed B strip is
    that wide even for a 3-pixel plane). Never depends on the thread count.
    (functional.conv._unfolded_threads bounds the tiles' memory with it.)"""
    if P < 1 or N < 1:
        return GEMM_WIDEST_TILE
    cdef Py_ssize_t pt = tile_pixels(K, P, itemsize), cols = pt
    cdef Py_ssize_t nimg = _images_per_tile(K, P, N, itemsize)
    if nimg > 1:  # images side by side (else one image, in tiles of pt pixels)
        cols = max(cols, nimg * P)
    if pt >= P:  # the weight gradient's images side by side (_gw_layout)
        cols = max(cols, min(N, CVX_GEMM_KC // P) * P)
    return (cols + GEMM_WIDEST_TILE - 1) // GEMM_WIDEST_TILE * GEMM_WIDEST_TILE


cdef inline idx_t _owned_bands(idx_t planes, int n_threads) noexcept nogil:
    """Bands of output rows per plane when a layer's `planes` (image, group) planes are fewer
    than the threads: n_threads // planes where that divides evenly (batch 1: one band per
    thread), else 1 (no band rule). Item i of planes * bands, in a static schedule, is then
    thread i's, and thread t computes the t-th band of every plane, in every layer that follows
    this rule (the direct route's pixel blocks, the GEMM's pixel tiles): the rows it reads next
    were mostly written by itself, in its own core's cache. Measured on the 2-vCPU machine:
    reading 4 MB written by the other vCPU ran at 9 GB/s, written by itself at 27 GB/s; a
    layer alone, medians of alternated calls with and without the bands, two threads, batch 1,
    ReLU6: 16x112x112 -> 96 (direct) 0.86 of the time, 24x56x56 -> 144 0.82, 144x56x56 -> 24
    (GEMM) 0.87, 96x56x56 -> 24 0.85, 28x28 planes 0.98-0.99. The depthwise kernels keep their
    split by channels: in bands the stride-2 rows took 1.71 and 1.15 of the time (96x112x112,
    32x224x224), the row rings 1.16, the per-plane kernels 1.43 (144x56x56), and MobileNetV2
    gained more without them (7.50 ms against 7.56 with and 7.72 with no bands at all). Only
    which thread computes an element changes: no bits."""
    if n_threads > 1 and planes < n_threads and n_threads % planes == 0:
        return n_threads // planes
    return 1


cdef inline bint _owns_planes(idx_t planes, int n_threads) noexcept nogil:
    """The other side of _owned_bands: whether `planes` (image, group) planes, or blocks of
    images, divide evenly over the threads, so that a static schedule over items ordered plane
    by plane gives each thread whole planes of its own, the same ones in every layer that
    follows this rule (the direct route, the GEMM): a layer then reads the images the same
    thread wrote. Measured on the 2-vCPU machine, optimized models, two threads, against the
    dynamic schedule: in one process, alternated calls, MobileNetV2 batch 8 0.82-0.83 of the
    time, batch 16 0.88, batch 2 0.98, batch 4 1.00, ResNet-18 batch 2 and 8 1.00; in separate
    processes, alternated, MobileNetV2 batch 8 0.90-0.92, 16 0.98, 4 0.98, ResNet-18 batch 8
    0.97, batch 2 0.99. Only which thread computes an element changes: no bits."""
    return n_threads > 1 and planes % n_threads == 0


# _static_items's limit: at most this many work items per thread go in a static schedule. A long
# layer of many items keeps the dynamic one, which moves items off a thread that another
# process holds up (a shared machine); locality matters most in short layers of few items.
DEF STATIC_MAX_ITEMS_PER_THREAD = 16


cdef inline bint _static_items(idx_t nitems, int n_threads) noexcept nogil:
    """Whether the GEMM's shared B, the GEMM's filter blocks of a 1x1 kernel reading its images
    in place (_prep_gemm's own_strips) and the valid-taps forward on more than CVX_SCHED_THREADS
    threads (on fewer it shares its items by cvx_sched) run their nitems work items (of
    about equal cost: the last band, block or tile may be smaller) in a static schedule: where
    they divide evenly over the threads, at most STATIC_MAX_ITEMS_PER_THREAD each. Each thread
    then takes the same items on every call, so the rows it writes are in its own core's cache
    at the next call, and at the next layer where that one splits its items the same way; a
    dynamic schedule hands the items to whichever thread asks first (an atomic on a line the
    threads share for each), and the outputs move between cores from call to call. (The
    direct and GEMM routes' own static schedules, _owned_bands and _owns_planes, have no such
    limit: they were measured at batch 8 and 16 on the Zen 4.) Measured on an Intel Xeon (2
    vCPUs, AVX-512; reading 1 MB another core wrote ran at 27 GB/s, its own writes at 117),
    float32, two threads, medians of alternated processes, dynamic / static:
    1x1 layers alone at batch 1 (then on the GEMM's shared B), us, 64x7x7 -> 384 17.2 / 13.4,
    64x14x14 -> 384 44.6 / 38.6, 160x7x7 -> 960 51.8 / 46.1, 96x14x14 -> 576 77.0 / 71.0; optimized
    models (the shared B and the valid-taps items, before cvx_sched), ms, mobilenet_v2 batch 1
    3.35 / 3.16, batch 8 20.4 / 20.1, resnet18 batch 1 10.75 / 10.45, batch 8 76.9 / 74.2. Only
    which thread computes an element changes: no bits."""
    return (n_threads > 1 and nitems % n_threads == 0
            and nitems <= STATIC_MAX_ITEMS_PER_THREAD * n_threads)


cdef inline idx_t _band_tiles(idx_t P, idx_t nbands, idx_t PT) noexcept nogil:
    """Tiles per band (_band_tile) when P pixels go in nbands bands of whole 48-pixel strips and
    no tile may exceed PT pixels (PT >= 48)."""
    cdef idx_t S = (P + 47) // 48, widest = (S + nbands - 1) // nbands, per = max(1, PT // 48)
    return max(1, (widest + per - 1) // per)


cdef inline span_t _band_tile(idx_t t, idx_t k, idx_t nbands, idx_t P) noexcept nogil:
    """Pixels [lo, hi) of tile t of a plane of P pixels cut into nbands bands of whole 48-pixel
    strips (band b: strips S*b // nbands ..., the rule of _fwd_direct's pixel blocks (k = 1),
    the GEMM's pixel tiles and every layer that follows _owned_bands), each band into k tiles
    of whole strips. (By value, as _ow_range.)"""
    cdef span_t r
    cdef idx_t S = (P + 47) // 48, band = t // k, j = t % k
    cdef idx_t s0 = S * band // nbands, sb = S * (band + 1) // nbands - s0
    r.lo = min(P, 48 * (s0 + sb * j // k))
    r.hi = min(P, 48 * (s0 + sb * (j + 1) // k))
    return r


cdef inline idx_t _split_pixels(idx_t PT, idx_t P, idx_t planes, int n_threads) noexcept:
    """The pixel tile for `planes` (image, group) planes of P pixels over n_threads threads:
    PT (tile_pixels) where that makes at least two tiles per thread, else the largest multiple
    of GEMM_WIDEST_TILE that does (one tile of that size at least). Only the tiling changes:
    the GEMM's result depends only on K, so the bits are the same for every thread count."""
    cdef idx_t want = (2 * <idx_t>n_threads + planes - 1) // planes  # tiles per plane
    if planes * ((P + PT - 1) // PT) >= 2 * <idx_t>n_threads:
        return PT
    return max(GEMM_WIDEST_TILE, P // want // GEMM_WIDEST_TILE * GEMM_WIDEST_TILE)


cdef inline idx_t _gemm_scratch_row(idx_t per_thread) noexcept nogil:
    """Elements of a GEMM route's scratch per thread: per_thread of its own, then the GEMM's
    packed panels (CVX_GEMM_WORK_ELEMS) and slack."""
    return per_thread + CVX_GEMM_WORK_ELEMS + 16


def _scratch(dtype, Py_ssize_t nt, Py_ssize_t per_thread):
    # per_thread = K*PT (or CB*kh*kw*PT): K is the weight's size per filter (an array in memory)
    # and PT <= 960 (tile_pixels), so this never depends on stride, padding or dilation
    return np.empty((nt, _gemm_scratch_row(per_thread)), dtype=dtype)


# --------------------------------------------------------------------------------------------
# depthwise (one input channel per group, C/G == 1, and m = F/G filters on it): isa/depthwise.inc
#
# A thread copies the input plane it works on into a zero-padded, polyphase buffer: the padded
# plane (Hp x Wp, Hp = (OH-1)*sh + dil_h*(kh-1) + 1, likewise Wp: the pixels the windows touch)
# stored as sub-planes of Hq x Wq (Hq = ceil(Hp/sh), Wq = ceil(Wp/sw)), one per row phase a and
# column phase b that the taps read (a = i*dil_h % sh for some tap row i, b likewise: at most
# kh x kw of the sh x sw phases, however large the stride), sub-plane (a, b) holding the padded
# pixels (u*sh + a, v*sw + b). Tap (i, j) of output (oh, ow) reads padded pixel
# (oh*sh + i*dil_h, ow*sw + j*dil_w), which is [oh + di][ow + dj] of sub-plane
# (i*dil_h % sh, j*dil_w % sw), di = i*dil_h // sh, dj = j*dil_w // sw: for any stride and
# dilation, a tap is one contiguous run per output row, and on the grid of pitch Wq (the last
# Wq - OW columns discarded) one contiguous run over the whole plane. No loop needs a bounds
# check, and the padding takes part in the arithmetic exactly as in the GEMM route and in
# PyTorch (a non-finite weight times a padded zero is NaN). A flat run is rounded up to a
# multiple of 16 elements (no scalar tail): the buffers have DW_SLACK zero elements after them.
#
# Forward, per (image, channel): each output element is bias + the kh*kw taps in row-major
# order, added left to right (cvx_dw_taps holds up to 9 taps in registers: one pass over the
# output for a 3x3 kernel), computed flat on the grid of a band of output rows (long vectors
# instead of short rows; see Bands below) and copied out with the epilogue; an element's sum is
# the same whatever the band (and the same as computed row by row, as before bands).
# Bands (forward): the planes of early layers (112 and 56 wide) are larger than L1, and their
# polyphase copy, its zeroing and the epilogue were passes over L2 as long as the taps. So a
# work item (image, channel) goes over its output plane in bands of B rows (B from the geometry:
# the band's sub-planes about DW_BAND_ELEMS elements): cvx_dw_poly makes the polyphase padded
# copy of the padded rows that the band's taps read (B + DI rows of each sub-plane, the same
# pixels as the plane's copy, rows above the plane or below it zero), cvx_dw_taps computes the
# band flat on its grid of pitch Wq, and the band is copied out with the epilogue while it is in
# L1. Each element is the same sum as on the whole plane: the same bits; a plane of at most B
# rows is one band, the whole-plane computation.
# On planes at least DW_ROWS_MIN_OW wide without a residual (the early layers' 112 and 56), the
# band's rows instead go straight to the output (isa/depthwise.inc's cvx_dw_taps_act: the same
# taps, row by row on the band's copy, with the clamp of cvx_dw_out in the same loop): no grid
# written and read again, and the output's cache misses overlap the taps. Each element is the
# same sum (cvx_dw_taps's expressions): the same bits.
# With stride 1 (one sub-plane) the band's copy is cvx_dw_pad1, which writes each element once
# (cvx_dw_poly zeroes the whole band first, then copies the plane over it): the same contents.
# Channel blocks (forward, one filter per channel, output planes at most DW_CB_MAX_OW wide: the
# 7x7 and 14x14 planes of late layers, where a plane's vectors are mostly idle and the per-plane
# copies and calls cost more than the taps): a work item is (image, block of DW_CB = 16
# channels). isa/depthwise.inc's cvx_dw_cb_fwd transposes the block's planes to pixel-major
# order [pixel][lane] (lanes = channels) straight into one zero-padded Hp x Wp plane (rows of at
# least one transpose's width; narrower ones through a staging copy), where tap (i, j) of output
# (oh, ow) is pixel (oh*sh + i*dil_h, ow*sw + j*dil_w) for any stride and dilation (no phases),
# runs the taps over whole vectors of lanes (a 3x3 window over the whole plane in one loop,
# with a clamp alone in it) and transposes the result back. Each lane's arithmetic is exactly
# the per-plane kernels' (bias, then the taps in order, in the same groups of 9, 3 and 1
# written as the same expressions in the same translation unit, so the same FMA
# contractions): the same bits, which the tests check against the per-plane kernels
# (conv2d_forward_depthwise's private _blocks). The choice depends on the geometry only. A
# clamp epilogue (ReLU, ReLU6, Hardtanh) runs in the block on its pixel-major result, a
# residual in its copy out (cvx_dw_out's operations); any other activation runs on each of the
# block's output planes after it.
# Row rings (forward, one filter per channel, strided windows on planes wider than
# DW_CB_MAX_OW, up to DW_CBR_MAX_OW or while the batch's input is cached: the stride-2 layers of
# MobileNetV2 at 56 and, at batch 1, 112, where the per-plane kernels copy each plane into its
# polyphase sub-planes and run the taps over four of them): a work item
# is (image, block of DW_CB channels, segment of output rows). isa/depthwise.inc's
# cvx_dw_cbr_fwd keeps the block's padded input pixel-major ([pixel][lane], lanes = channels)
# in a ring of dil_h*(kh-1) + 1 padded rows: each input row is transposed into it once, when the
# first output row that reads it comes (no software prefetch of the rows ahead: on a Zen 4
# its 80 prefetches per input row of 144x56x56 stride 2 cost more than they saved, without
# them 0.86-0.87 of the time at batch 1 and 8 and 0.98 at batch 8 on two threads), a stride is
# free (a tap reads whole vectors of lanes, pixels sw apart), and about DW_CBR_PIXELS output
# pixels at a time get the epilogue (where cvx_dw_out computes it) and are transposed back
# while in L1. Each lane's arithmetic is the
# channel blocks': the per-plane kernels' bits (the tests compare them). Segments (enough work
# items for the threads, each at least DW_CBR_SEG_ROWS rows) copy the rows their first windows
# read again and change no bit.
# The input gradient likewise (cvx_dw_cb_gx): the block's output gradients transposed onto one
# zero grid of Hq + DI rows of Wg pixels, and each real input pixel (r + ph, c + pw) the sum,
# from 0, over the taps of its phase in row-major order of w * the grid's pixel: the per-plane
# kernels' sums, computed for the pixels that are copied out only. A block with a non-finite
# weight runs the per-plane work items of its channels instead (the exact scatter).
# The weight gradient likewise (cvx_dw_cb_gw, outputs at most DW_CB_GW_MAX_OW wide): a work item
# is a block of channels over all the images; each lane keeps the per-plane kernels' 16 partial
# sums per tap (pixel p of the flat grid of pitch Wq in sum p % 16 when the image's padded plane
# is finite, else column ow in sum ow % 16), each over its pixels in the same order, and adds
# them in cvx_dw_lanes's tree order. Both write each term as an explicit fused multiply-add
# where the instruction set has one (cvx_v_fma / cvx_s_fma: isa/depthwise.inc's one-form rule),
# never a += g*x that the compiler may or may not fuse, so the bits are the same on every build.
# The flat grid's unused columns add products of a zero gradient there, which the blocks skip:
# that changes no sum, only possibly the sign of a zero one (a partial sum that underflowed to
# -0 and then got +0): the one way the weight gradient on blocks can differ in its bits (the
# tests compare the bits on normal data). The images go in chunks (_dw_gw_cb_chunk: their
# transposed planes about DW_CB_GW_PIX pixels): each class's sums stay in vector registers over
# all the chunk's images, every sum's terms in the same order (a chunk where a lane takes the
# rows' order goes image by image).
# Both gradients at once (conv2d_grad_depthwise, cvx_dw_cb_gxw; conv2d_backward asks for it when
# it needs both on this route): where the rule puts both on blocks, the weights are finite and
# there are at least two blocks per thread, a work item is a block over all the images, each
# image's output gradient transposed once for the input gradient's grid and the weight
# gradient's sums: the same bits as the two passes.
# grad_input, per (image, channel): the transposed correlation, gathered: the output gradient
# is placed on a zero grid (pitch Wg = Wq + DJ, DI rows and DJ columns of zeros before it,
# DI = dil_h*(kh-1) // sh, DJ likewise), and each sub-plane of the padded input gradient is the
# sum over the taps that land in it (row-major order) of w * the shifted grid, then the real
# pixels are copied out of the sub-planes. With a non-finite weight the zeros of the grid would
# turn into NaN where torch adds nothing, so such a channel is scattered row by row over the
# real output gradients instead (_gx_depthwise_exact). With m > 1 the m filters add in order.
# grad_weight, per filter: for each image in order, each tap's products with the output
# gradient are added into 16 lane sums (element p of a row, or of the flat grid, goes to lane
# p % 16), reduced in a fixed tree order at the end. Planes narrower than DW_FLAT_OW whose
# padded input is finite go flat over the grid (its unused columns hold zero gradients), the
# others row by row. Every order depends on the geometry only: bitwise the same for every
# thread count, and the forward pass of an image is the same in any batch.
#
# Sizes: Hp <= H + pad_top + pad_bottom and Wp likewise (the last window ends inside the padded
# input), each at most 2**40 by the Python geometry check (_validation.window_geometry), so
# these sums cannot overflow. Their product can grow with the padding, stride and dilation far
# beyond what the input and output need (stride = padding = 10**6 on a small image: 14.6 TiB),
# so Python (functional/_routes.py, depthwise_scratch and DW_SLACK) only sends a geometry here
# when the scratch below stays within a few times the input and output planes; the GEMM route,
# whose scratch depends only on the weight, takes the others. Scratch per thread (elements;
# nsub sub-planes, S = DW_SLACK), the largest of the three passes (mirrored by
# _routes.depthwise_scratch):
#     forward      nsub*Hq*Wq + OH*Wq + 2*S, or with channel blocks (when that is at most
#                  DW_CB_MAX_ELEMS) DW_CB*(Hp*Wp + H*W + OH*OW + kh*kw + 1 + max(H*W, OH*OW)),
#                  or on row rings (_dw_cbr_elems), or on stride-2 rows 6 * (OW + 1 rounded
#                  up to 16) (cvx_dw_s2_ring), or on stride-1 rows W rounded up to 16, + 32
#     grad_input   nsub*(Hq*Wg + S) + (Hq + DI)*Wg + S + kh*kw, and Hp*Wp for a non-finite
#                  weight, or with channel blocks (when that is at most DW_CB_MAX_ELEMS and larger)
#                  DW_CB*((Hq + DI)*Wg + H*W + OH*OW + kh*kw + 10 + max(H*W, OH*OW))
#     grad_weight  nsub*Hq*Wq + OH*Wq + 2*S + 16*kh*kw, or with channel blocks (when that is
#                  at most DW_CB_MAX_ELEMS and larger)
#                  DW_CB*(Hp*Wp + H*W + OH*OW + 32*kh*kw + 1 + max(H*W, OH*OW))
#
# The kernels are isa/depthwise.inc's, through the active instruction-set table (the cvx_dw_*
# wrappers of _isa.pxd, cimported at the top).


cdef inline idx_t _clip(idx_t v, idx_t hi) noexcept nogil:
    if v > hi:
        v = hi
    return v if v > 0 else 0


# Planes narrower than this are computed flat on the grid (see above).
DEF DW_FLAT_OW = 64
# A flat run is rounded up to a multiple of 16 elements (no scalar tail); the buffers it reads
# and writes have this many elements of (zero) slack after them.
DEF DW_SLACK = 16


# Channel blocks (forward, one filter per channel; see above): DW_CB channels per work item
# (CVX_DW_CB of isa/depthwise.inc), on output planes at most DW_CB_MAX_OW wide, when the block's
# scratch is at most DW_CB_MAX_ELEMS elements (mirrored by _routes.depthwise_blocks_scratch).
# DW_CB_MAX_OW measured with forced blocks on MobileNetV2's 3x3 depthwise layers (float32, 1
# thread; time with blocks / per plane at batch 1 and 16): forward 7x7 0.35 and 0.35, 14x14
# stride 2 0.4 and 0.35, 14x14 stride 1 0.6 and 0.6-1.0 (the batch of 16 limited by memory),
# 28x28 stride 2 0.7 and 0.7, 28x28 stride 1 1.0 and 1.4 (since the planes are transposed
# straight into the padded plane, against the rule's row ring or per-plane kernels, float32,
# medians of alternated calls: 192x28x28 batch 1 0.68 on 1 thread and 0.70 on 2, batch 16
# 0.76 and 0.72; 128x28x28 batch 1 0.62 and 0.75; 256x24x24 batch 1 0.82; 96x20x20 batch 8
# on 2 threads 0.66: DW_CB_MAX_OW 32, where the scratch limit ends them at 31 wide
# (3x3, stride 1)); input gradient 7x7 0.4 and 0.4,
# 14x14 stride 2 0.45 and 0.45, 14x14 stride 1 0.8 and 0.8-1.0, 28x28 stride 1 1.3 and 1.4.
# The weight gradient's blocks (their partial sums kept in the per-plane kernels' lane order,
# 16 lists of pixels, in vector registers over chunks of images): forced blocks / per plane
# (CPU time), batch 1 and 16, 7x7 0.45 and 0.5, 14x14 stride 2 0.55 and 0.45, 14x14 stride 1
# 0.8-0.9 and 0.7, 28x28 stride 2 0.9 and 0.55, but 16x16 stride 1 1.4 and 1.1: chosen up to
# DW_CB_GW_MAX_OW.
DEF DW_CB = 16
# Bands (forward; see above): the sub-planes of a band about this many elements.
DEF DW_BAND_ELEMS = 4096
# Bands on planes at least this wide, without a residual, write their rows straight to the
# output (see above). Measured (float32, 3x3, 1 thread, straight / through the grid): inside
# MobileNetV2 at batch 1 (its output buffers cold) 32x112x112 ReLU6 0.84, 144x56x56 0.83; alone
# at batch 16 0.8 and 0.7; alone at batch 1 (all in cache) 0.95-1.05 and 1.0-1.1 (1.1 without
# the clamp); but 192x28x28 1.3-1.6 (a row's short runs and scalar tails): not below 56.
# With cvx_dw_pad1 as well (stride 1), against the code before both: inside MobileNetV2 0.72
# and 0.77, alone at batch 16 0.6 and 0.6, alone at batch 1 0.9 and 1.0 (0.87 and 0.94
# without the clamp); 192x28x28 (the grid, cvx_dw_pad1) 1.0.
DEF DW_ROWS_MIN_OW = 56
DEF DW_CB_MAX_OW = 32
# Stride-2 rows (forward): a 3x3 window at stride 2, one filter per channel, no residual, a
# plane at a time (isa/depthwise.inc's cvx_dw_s2_plane): each padded input row split once into
# its even and odd columns (a ring of three rows, vector loads of every other element), each
# output row the per-plane kernels' 9-tap expression over them, straight to the output; no
# zero-filled polyphase copy, no transposes. On output planes at least DW_S2_MIN_OW wide
# (narrower ones have short rows with scalar ends, where the channel blocks and row rings
# win). Measured on a Zen 3 (AVX2, float32, ReLU6, medians of 200 calls, ms stride-2 rows /
# row rings / per plane): one thread, batch 1, 96x112x112 0.32 / 0.33 / 0.58, 32x224x224 0.39
# / 1.02 / 0.72, 64x96x96 0.18 / 0.32 / 0.30, 24x150x150 0.14 / 0.26 / 0.25, but 48x80x80 (40
# wide) 0.104 / 0.090 and 144x56x56 (28 wide) 0.186 / 0.119; batch 4 96x112x112 1.44 / 1.75,
# 32x224x224 2.0 / 4.2; batch 8 96x112x112 3.4 / 4.5; two threads, 96x112x112 batch 1 0.17 /
# 0.20, batch 8 1.7 / 2.3. The same bits as the other kernels (the same expression). The row
# ring takes some of these layers first (cached float32 inputs whose blocks of planes spread
# over the L1's sets: DW_CBR_MIN_SETS).
DEF DW_S2_MIN_OW = 48
# Where the table has the stride-2 rows in registers for the dtype (dw_s2_lanes_min_ow_f / _d
# >= 0: simd_<isa>.h's CVX_DW_S2_LANES_MIN_OW_F / _D) and the plane one column of padding on
# the left (as a "same" 3x3 window at stride 2 has), each output vector is made in registers
# from two input vectors per row, loaded where they are (cvx_dw_s2_vplane: their even and odd
# elements and the odd ones shifted by one; no split rows, so no row ring before it). Its last
# vector of a row is computed whole, so it is chosen on output rows at least a vector wide
# whose vectors are at least 2/3 filled (DW_S2_VEC_FILL_NUM / DW_S2_VEC_FILL_DEN of the lanes
# computed), and at least the table's width wide (AVX-512 0; AVX2 48 in float32, where the
# row ring and the channel blocks beat it on narrower planes, and none in float64: the
# measurements are in simd_avx2.h).
# Measured on a Zen 4 (ReLU6, one thread, medians of 200 calls, us, these rows against the
# kernel the rule took before): float32 batch 1 96x112x112 175 / 279 (row rings; onnxruntime's
# layer in MobileNetV2 178), 144x56x56 78 / 98, 32x224x224 212 / 280 (the split rows),
# 64x98x98 99 / 128, 64x44x44 28.5 / 31, 96x32x32 17 / 30 (channel blocks); batch 8 144x56x56
# 838 / 1688; two threads 96x112x112 90 / 129, 144x56x56 42 / 54; but 64x34x34 (17 wide) 23.5
# / 18 (blocks) and 64x40x40 (20 wide) 27 / 25 (rings), 192x28x28 (14 wide) 36 / 35 (blocks);
# float64 64x16x16 (8 wide) 8.5 / 10.2, 64x20x20 (10 wide) 14.1 / 11.8, 144x56x56 132 / 159.
DEF DW_S2_VEC_FILL_NUM = 2
DEF DW_S2_VEC_FILL_DEN = 3
# Stride-1 rows (forward): a 3x3 window at stride 1, one filter per channel, no residual, a plane at
# a time (isa/depthwise.inc's cvx_dw_s1_plane): each output row is the per-plane kernels' 9-tap
# expression over three input rows read in place (a row in the padding: a zero row), straight to the
# output; no padded copy of the plane. Where a row's window reaches one column beyond the row, it
# reads the next or previous row's element there (inside the plane), and the first and last pixels
# are computed again from their windows with zeros in the padding (the same expression); on a table
# with the register rows (dw_lane_rows) and at most one column of padding on the left, every row
# goes through the register rows below instead. On output planes at least DW_S1_MIN_OW wide (the
# per-plane bands write such rows straight to the output too; narrower ones go to the channel
# blocks, the row rings or the bands, whose short rows it does not beat at batch 1). Measured on a
# Zen 4 (AVX-512, float32, ReLU6, medians of 200-300 alternated calls, time stride-1 rows /
# per-plane bands): one thread, batch 1, 32x112x112 0.89, 144x56x56 0.94 (1.07 while its first and
# last pixels went through a call of the taps' loop), 96x64x64 0.91, 24x60x60 0.86, but 96x48x48
# 1.05, 64x40x40 1.11 and 192x28x28 1.44 (the channel blocks: 0.64 of the bands); batch 8 or 16,
# 32x112x112 0.71-0.76, 144x56x56 0.78-0.87, 96x48x48 0.80, 64x40x40 0.93; two threads, batch 1,
# 32x112x112 0.87, 144x56x56 0.98-1.02, batch 16 0.73 and 0.83. Inside MobileNetV2 at batch 1 (one
# thread, steps timed one by one) the 112-wide layer took 0.154 ms against 0.190-0.198, the 56-wide
# one the same 0.23.
DEF DW_S1_MIN_OW = 56
# Where the table has the register rows (its dw_lane_rows: AVX-512) and the plane at most one
# column of padding on the left, each input vector is loaded once and shifted to its
# neighbours in registers (cvx_dw_s1_vrow: 3 loads per output vector instead of 9; every row,
# its ends loaded in part with zeros beyond them, so no pixel is computed again and nothing is
# read beyond a row), from DW_S1_SHIFT_MIN_OW wide. Measured on a Zen 4 (float32, ReLU6, one
# thread, medians of 200 calls, us, rows against the kernel the rule took before): batch 1
# 64x32x32 30 / 68 (row rings; per plane 46), 64x36x36 52 / 58, 64x44x44 66 / 82, 96x48x48 83
# / 123, 64x52x52 88 / 99 (per plane), batch 8 96x48x48 869 / 1380, 64x32x32 326 / 530; but
# 64x31x31 32.6 / 29.1, 64x30x30 31.5 / 26.9 and 192x28x28 87 / 69 (the channel blocks, which
# keep planes below 32 wide). The registers against the loads, both on rows: 32x112x112 108 /
# 168, 144x56x56 176 / 248, 16x56x56 21 / 28 us.
DEF DW_S1_SHIFT_MIN_OW = 32
# Flat planes (forward): a 3x3 window at stride 1 with one row and one column of padding on every
# side (the output the input's size), one filter per channel, no residual, on planes narrower than
# DW_S1_SHIFT_MIN_OW of at most DW_FLAT_MAX_PIXELS pixels, where the table has the register rows
# (dw_lane_rows: AVX-512): isa/depthwise.inc's cvx_dw_s1_flat takes the plane as one run of pixels,
# VL output pixels per vector across row ends, one masked load per input row and vector, the side
# columns shifted in registers, every tap's lanes masked (a table of masks per geometry, made when
# the call is prepared), so no vector is wasted on short rows and nothing is copied or transposed.
# Measured on a Zen 5 (AVX-512, ReLU6, batch 1, one thread, medians of 300 calls in thread CPU time,
# us, flat against the channel blocks the rule took before), float32 (two runs): 192x28x28 60-67 /
# 84-92, 256x20x20 38-43 / 54-60, 96x28x28 31-33 / 40-42, 576x14x14 45 / 53-56, 384x14x14 31-34 /
# 36-39, 32x31x31 16-19 / 17-19, 64x16x16 9.3-10 / 10.5-11, 960x7x7 28-29 / 28-29; float64:
# 192x28x28 117-118 / 166, 576x14x14 88 / 126, 384x14x14 57-59 / 79-81, 960x7x7 41-42 / 44-45.
# MobileNetV2 optimized, batch 1 one thread 0.91-0.96 of the time, batch 8 two threads 0.93-0.94
# (alternated processes, a helper's tests running). One masked load per tap instead measured the
# same in the layer, 15% slower alone in a C loop. The cap keeps the mask table at most 9 x 64
# entries.
DEF DW_FLAT_MAX_PIXELS = 1024
# the input gradient's blocks (measured above: 28x28 stride 1 1.3 and 1.4)
DEF DW_CB_GX_MAX_OW = 16
DEF DW_CB_GW_MAX_OW = 14
# Images per chunk of the weight gradient's blocks (see above): their padded planes and output
# gradients about this many pixels (CVX_DW_CB_GW_PIX and CVX_DW_CB_GW_NB of isa/depthwise.inc).
DEF DW_CB_GW_PIX = 1024
DEF DW_CB_GW_NB = 16
DEF DW_CB_MAX_ELEMS = 65536
# The row ring (forward; see above): work items per thread, and the least rows of a segment.
# Measured (float32, ReLU6, 1 thread, user time; row ring / per plane, or new build / old):
# 144x56x56 stride 2 (28 wide) batch 1 0.7-0.8, batch 16 0.8-0.9; 96x112x112 stride 2 (56
# wide) batch 1 0.8-0.9, but batch 16 1.16 (its 77 MB of input from memory, 16 planes at a
# time, where the per-plane kernels read one plane after the other): wider than DW_CBR_MAX_OW
# only while the batch's input is at most DW_CBR_CACHED_BYTES (a few MB: the last-level cache
# of most CPUs). On stride 1 it loses on wide planes (112 wide 1.15, 56 wide 1.2 at batch 1)
# and on large batches (28 wide 1.5 at batch 16), but wins on planes at most DW_CBR_MAX_OW
# wide while the batch's input is at most DW_CBR_S1_CACHED_BYTES. Measured on AVX2 (Zen 3,
# float32, ring / per plane, 1 and 2 threads): 192x28x28 batch 1 0.75 and 0.64, batch 4
# (2.4 MB) 0.77 and 0.59, batch 6 (3.6 MB) 0.98 and 0.66, batch 8 (4.8 MB) 1.38 and 0.87,
# batch 16 1.38 and 1.40; 256x17x17 batch 1 0.54 and 0.44; 64x32x32 batch 1 1.02 and 0.85;
# on AVX-512 28 wide 0.85 at batch 1.
DEF DW_CBR_MAX_OW = 32
DEF DW_CBR_CACHED_BYTES = 8388608
DEF DW_CBR_S1_CACHED_BYTES = 3145728
DEF DW_CBR_ITEMS = 4
DEF DW_CBR_SEG_ROWS = 8
# The row ring before the stride-2 rows (a 3x3 window at stride 2 on planes at least
# DW_S2_MIN_OW wide; not where the table has the stride-2 rows in registers for the dtype and
# the plane one column of padding on the left: those, DW_S2_VEC_FILL_NUM, go first there) while the
# batch's input is at most DW_CBR_CACHED_BYTES, on whole blocks of DW_CB channels, when the
# block's 16 planes start in at least DW_CBR_MIN_SETS of the L1's 64
# sets of 64-byte lines (the ring's transposes read a row of each plane at once; planes whose
# size is a multiple of 4 KB put all 16 rows in one set, more than its ways). Measured on a Zen 4
# (float32, ReLU6, medians of 200 alternated calls, time ring / stride-2 rows, batch 1, one
# thread): 96x112x112 (4 sets) 0.84, 96x104x104 (16) 0.80, 96x120x120 (16) 0.80, 96x114x114
# 0.88, 48x80x80 (4) 0.74, 128x112x112 0.91, 144x112x112 0.92; two threads 96x112x112 0.86,
# 96x120x120 0.82, batch 2 0.94; but one set: 32x224x224 2.24, 96x128x128 2.16, 64x96x96 1.75,
# 96x160x160 2.13, 96x64x64 1.23; 24 channels (a half-empty block) 24x150x150 1.46; batch 8
# of 96x112x112 (38 MB) 1.49; and in float64 (two lines per pixel's lanes) 96x104x104 1.15,
# 48x80x80 1.03.
DEF DW_CBR_MIN_SETS = 4
# The row ring's output rows per write-out: about this many pixels.
DEF DW_CBR_PIXELS = 128


cdef inline idx_t _round16(idx_t n) noexcept nogil:
    return (n + 15) // 16 * 16

# The polyphase geometry of one depthwise problem.
ctypedef struct dw_t:
    idx_t Hp, Wp, Hq, Wq, DI, DJ, Wg, na, nb, nsub, kk


# --------------------------------------------------------------------------------------------
# One forward pass decided before it runs: each route's conv2d_forward_<route> fills a fwd_t
# (_prep_conv, then _prep_<route>: the kernel, its work split and thread count, tables, scratch,
# the packed weight) and runs it (_fwd_run); a ForwardCall (prepare_forward) keeps one to run
# again on new data, as convext.inference's steps do. The kernels a fwd_t runs:
DEF ROUTE_DIRECT = 0  # the routes (_ROUTES)
DEF ROUTE_GEMM = 1
DEF ROUTE_VALID_TAPS = 2
DEF ROUTE_DEPTHWISE = 3
DEF K_DIRECT = 0
DEF K_GEMM = 1
DEF K_GEMM_SHARED_B = 2
DEF K_VALID_TAPS = 3
DEF K_DW_PLANES = 4
DEF K_DW_S2 = 5
DEF K_DW_CB = 6
DEF K_DW_CBR = 7
DEF K_DW_S1 = 8
DEF K_DW_S1F = 9

# Every pointer points into an array of the fwd_t's `keep` list (or the caller's w, b, packed);
# the fields a kernel does not use are unset.
ctypedef struct fwd_t:
    int kernel, nt
    geom_t g
    epi_t e
    dw_t d
    cvx_direct_geom dg
    cvx_vt_geom vg
    const void *w
    const void *wp
    const void *b
    idx_t itemsize
    void *scratch  # nt blocks of ld_s elements (_place_scratch)
    idx_t ld_s
    void *aux  # the GEMM's shared packed B, aux_elems elements (_place_scratch)
    idx_t aux_elems
    const idx_t *tab  # offsets: the direct route's, the GEMM's gather table, the depthwise taps'
    const idx_t *tab2  # the depthwise bands' tap offsets
    size_t *ptrs  # the depthwise per-plane kernels' tap pointers, nptrs per thread (_place_scratch)
    idx_t nptrs
    # the work split (see each _prep_<route>)
    idx_t npb, nfr, PT, nimg, nib, nfb, mr, nbands, cb, ldb, per, Fgp, nseg, B, fb, nblk, rows
    bint owned, image_is_cols, straight


cdef dw_t _dw(const geom_t *g) noexcept nogil:
    cdef dw_t d
    d.Hp = (g.OH - 1) * g.sh + g.dil_h * (g.kh - 1) + 1
    d.Wp = (g.OW - 1) * g.sw + g.dil_w * (g.kw - 1) + 1
    d.Hq = (d.Hp + g.sh - 1) // g.sh
    d.Wq = (d.Wp + g.sw - 1) // g.sw
    d.DI = (g.dil_h * (g.kh - 1)) // g.sh
    d.DJ = (g.dil_w * (g.kw - 1)) // g.sw
    d.Wg = d.Wq + d.DJ
    d.na = d.nb = d.nsub = 0  # filled in by _dw_alloc
    d.kk = g.kh * g.kw
    return d


cdef bint _dw_cb_fits(const dw_t *d, const geom_t *g) noexcept nogil:
    """Whether the channel blocks can compute this forward pass: one filter per channel and
    their scratch, _dw_cb_elems, at most DW_CB_MAX_ELEMS (checked in steps that cannot overflow:
    each extent is at most 2**40, H*W is an array in memory)."""
    return (g.Fg == 1 and d.Hp <= DW_CB_MAX_ELEMS and d.Wp <= DW_CB_MAX_ELEMS
            and d.Hp * d.Wp <= DW_CB_MAX_ELEMS and g.H * g.W <= DW_CB_MAX_ELEMS
            and g.OH * g.OW <= DW_CB_MAX_ELEMS and _dw_cb_elems(d, g) <= DW_CB_MAX_ELEMS)


cdef inline idx_t _dw_cb_elems(const dw_t *d, const geom_t *g) noexcept nogil:
    """Elements of scratch per thread of a channel block (isa/depthwise.inc's cvx_dw_cb_fwd)."""
    return DW_CB * (d.Hp * d.Wp + g.H * g.W + g.OH * g.OW + d.kk + 1
                    + max(g.H * g.W, g.OH * g.OW))


cdef bint _dw_cb_chosen(const dw_t *d, const geom_t *g, int blocks) noexcept nogil:
    """The forward pass's choice, from the geometry only: channel blocks on planes at most
    DW_CB_MAX_OW wide (blocks: -1 that rule, 0 never, 1 whenever they fit; tests force them)."""
    if blocks == 0 or not _dw_cb_fits(d, g):
        return False
    return blocks == 1 or g.OW <= DW_CB_MAX_OW


cdef inline idx_t _dw_cbr_rows(const geom_t *g) noexcept nogil:
    """The row ring's padded rows (isa/depthwise.inc's cvx_dw_cbr_fwd): one window's height."""
    return g.dil_h * (g.kh - 1) + 1


cdef inline idx_t _dw_cbr_group(const geom_t *g) noexcept nogil:
    """Output rows the row ring computes before writing them out: about DW_CBR_PIXELS pixels
    (runs of that many pixels of each output plane), at least one row."""
    return max(1, min(g.OH, DW_CBR_PIXELS // max(g.OW, 1)))


cdef inline idx_t _dw_cbr_elems(const dw_t *d, const geom_t *g) noexcept nogil:
    """Elements of scratch per thread of the row ring (cvx_dw_cbr_fwd)."""
    return DW_CB * (_dw_cbr_rows(g) * d.Wp + 2 * _dw_cbr_group(g) * g.OW + d.kk + 1)


cdef bint _dw_cbr_fits(const dw_t *d, const geom_t *g) noexcept nogil:
    """Whether the row ring can compute this forward pass: one filter per channel and its
    scratch at most DW_CB_MAX_ELEMS (checked in steps that cannot overflow, as _dw_cb_fits)."""
    cdef idx_t R = _dw_cbr_rows(g)
    return (g.Fg == 1 and R <= DW_CB_MAX_ELEMS and d.Wp <= DW_CB_MAX_ELEMS
            and R * d.Wp <= DW_CB_MAX_ELEMS and g.OW <= DW_CB_MAX_ELEMS
            and d.kk <= DW_CB_MAX_ELEMS and _dw_cbr_elems(d, g) <= DW_CB_MAX_ELEMS)


cdef inline bint _dw_input_within(const geom_t *g, idx_t itemsize, idx_t nbytes) noexcept nogil:
    """Whether the batch's input (N*C planes of H*W elements) takes at most nbytes (the row
    ring's cached-input limits; in steps that cannot overflow)."""
    return g.N * g.C <= nbytes // max(1, g.H * g.W * itemsize)


cdef bint _dw_cbr_before_s2(const dw_t *d, const geom_t *g, idx_t itemsize) noexcept nogil:
    """Whether the row ring takes a stride-2 forward pass the stride-2 rows would take (see
    DW_CBR_MIN_SETS): float32, whole blocks of DW_CB channels, the batch's input at most
    DW_CBR_CACHED_BYTES, and the blocks' planes (H*W*itemsize bytes apart) starting in at least
    DW_CBR_MIN_SETS of the L1's 64 sets of 64-byte lines."""
    cdef idx_t k, plane = g.H * g.W * itemsize
    cdef uint64_t sets = 0
    cdef int n = 0
    if (itemsize != 4 or g.C % DW_CB != 0 or not _dw_cbr_fits(d, g)
            or not _dw_input_within(g, itemsize, DW_CBR_CACHED_BYTES)):
        return False
    for k in range(DW_CB):
        sets |= (<uint64_t>1) << (((k * plane) >> 6) & 63)
    while sets:
        n += 1
        sets &= sets - 1
    return n >= DW_CBR_MIN_SETS


cdef idx_t _dw_cbr_segments(const geom_t *g, int n_threads) noexcept nogil:
    """Segments of output rows per plane for the row ring: enough work items for the threads
    (DW_CBR_ITEMS per thread) while a segment keeps at least DW_CBR_SEG_ROWS rows (each
    segment copies the rows its first window reads again). Any split gives the same bits."""
    cdef idx_t items = g.N * ((g.C + DW_CB - 1) // DW_CB)
    cdef idx_t want = (DW_CBR_ITEMS * max(n_threads, 1) + items - 1) // items
    return max(1, min(want, g.OH // DW_CBR_SEG_ROWS))


cdef bint _dw_cbr_chosen(const dw_t *d, const geom_t *g, int blocks,
                         idx_t itemsize) noexcept nogil:
    """The forward pass's choice of the row ring, on planes where the channel blocks are not
    chosen: strided windows at most DW_CBR_MAX_OW wide, or wider when the batch's input is at
    most DW_CBR_CACHED_BYTES; stride 1 at most DW_CBR_MAX_OW wide when the batch's input is at
    most DW_CBR_S1_CACHED_BYTES (blocks: -1 that rule, 0 never, 1 never (the channel blocks
    wherever they fit), 2 whenever it fits; tests force them). Both kernels give the same bits,
    so the batch may take part in this choice: no element's arithmetic depends on it."""
    if blocks == 0 or blocks == 1 or not _dw_cbr_fits(d, g):
        return False
    if blocks == 2:
        return True
    if _dw_cb_chosen(d, g, blocks):
        return False
    if g.sh == 1 and g.sw == 1:
        return g.OW <= DW_CBR_MAX_OW and _dw_input_within(g, itemsize, DW_CBR_S1_CACHED_BYTES)
    return g.OW <= DW_CBR_MAX_OW or _dw_input_within(g, itemsize, DW_CBR_CACHED_BYTES)


cdef idx_t _dw_band_rows(const dw_t *d, const geom_t *g, int bands) noexcept nogil:
    """Output rows per band of the forward pass, from the geometry only (bands: -1 the rule,
    0 one band: the whole plane, 1 one row per band; tests force them): the band's sub-planes,
    nsub*(B + DI)*Wq elements, about DW_BAND_ELEMS, at least one row. d: filled in by
    _dw_alloc. Its scratch, nsub*(B + DI)*Wq + B*Wq + 2*DW_SLACK, is at most the whole
    plane's (B + DI <= OH + DI = Hq)."""
    cdef idx_t B
    if bands == 0:
        return g.OH
    if bands == 1:
        return 1
    B = DW_BAND_ELEMS // (d.nsub * d.Wq) - d.DI
    return min(g.OH, max(1, B))


cdef inline idx_t _dw_gx_cb_elems(const dw_t *d, const geom_t *g) noexcept nogil:
    """Elements of scratch per thread of a channel block's input gradient (cvx_dw_cb_gx)."""
    return DW_CB * (max(g.H * g.W, g.OH * g.OW) + (d.Hq + d.DI) * d.Wg + g.OH * g.OW
                    + g.H * g.W + d.kk + 10)


cdef bint _dw_gx_cb_fits(const dw_t *d, const geom_t *g) noexcept nogil:
    """Whether channel blocks can compute this input gradient (as _dw_cb_fits)."""
    return (g.Fg == 1 and d.Hq + d.DI <= DW_CB_MAX_ELEMS and d.Wg <= DW_CB_MAX_ELEMS
            and (d.Hq + d.DI) * d.Wg <= DW_CB_MAX_ELEMS and g.H * g.W <= DW_CB_MAX_ELEMS
            and g.OH * g.OW <= DW_CB_MAX_ELEMS and _dw_gx_cb_elems(d, g) <= DW_CB_MAX_ELEMS)


cdef bint _dw_gx_cb_chosen(const dw_t *d, const geom_t *g, int blocks) noexcept nogil:
    """The input gradient's choice, as _dw_cb_chosen's with its own width limit."""
    if blocks == 0 or not _dw_gx_cb_fits(d, g):
        return False
    return blocks == 1 or g.OW <= DW_CB_GX_MAX_OW


cdef inline idx_t _dw_gw_cb_elems(const dw_t *d, const geom_t *g) noexcept nogil:
    """Elements of scratch per thread of a channel block's weight gradient (cvx_dw_cb_gw)."""
    return DW_CB * (d.Hp * d.Wp + g.H * g.W + g.OH * g.OW + 32 * d.kk + 1
                    + max(g.H * g.W, g.OH * g.OW))


cdef inline idx_t _dw_gw_cb_chunk(const dw_t *d, const geom_t *g) noexcept nogil:
    """Images per chunk of cvx_dw_cb_gw (its cvx_dw_cb_gw_chunk): as many as
    DW_CB_GW_PIX pixels of padded input and output gradient hold, 1 .. min(N, DW_CB_GW_NB).
    Each adds DW_CB*(Hp*Wp + OH*OW) elements of scratch beyond _dw_gw_cb_elems (at most
    DW_CB*DW_CB_GW_PIX in all); no sum depends on it."""
    cdef idx_t nb = DW_CB_GW_PIX // (d.Hp * d.Wp + g.OH * g.OW)
    return max(1, min(nb, DW_CB_GW_NB, g.N))


cdef bint _dw_gw_cb_fits(const dw_t *d, const geom_t *g) noexcept nogil:
    """Whether channel blocks can compute this weight gradient (as _dw_cb_fits)."""
    return (g.Fg == 1 and d.Hp <= DW_CB_MAX_ELEMS and d.Wp <= DW_CB_MAX_ELEMS
            and d.Hp * d.Wp <= DW_CB_MAX_ELEMS and g.H * g.W <= DW_CB_MAX_ELEMS
            and g.OH * g.OW <= DW_CB_MAX_ELEMS and d.kk <= DW_CB_MAX_ELEMS
            and _dw_gw_cb_elems(d, g) <= DW_CB_MAX_ELEMS)


cdef bint _dw_gw_cb_chosen(const dw_t *d, const geom_t *g, int blocks) noexcept nogil:
    """The weight gradient's choice, as _dw_cb_chosen's with DW_CB_GW_MAX_OW."""
    if blocks == 0 or not _dw_gw_cb_fits(d, g):
        return False
    return blocks == 1 or g.OW <= DW_CB_GW_MAX_OW


cdef inline idx_t _dw_gx_plane_elems(const dw_t *d) noexcept nogil:
    """Elements of scratch per thread of the per-plane input gradient."""
    return max(d.nsub * (d.Hq * d.Wg + DW_SLACK) + (d.Hq + d.DI) * d.Wg + DW_SLACK + d.kk,
               d.Hp * d.Wp)


cdef idx_t _dw_scratch_elems(const dw_t *d, const geom_t *g, int pass_):
    """Elements of scratch per thread for pass_ 0 (forward), 1 (grad_input), 2 (grad_weight),
    16 of slack included."""
    if pass_ == 0:
        return 16 + max(d.nsub * d.Hq * d.Wq + g.OH * d.Wq + 2 * DW_SLACK,
                        _dw_cb_elems(d, g) if _dw_cb_fits(d, g) else 0,
                        _dw_cbr_elems(d, g) if _dw_cbr_fits(d, g) else 0)
    if pass_ == 1:
        return 16 + max(_dw_gx_plane_elems(d),
                        _dw_gx_cb_elems(d, g) if _dw_gx_cb_fits(d, g) else 0)
    return 16 + max(d.nsub * d.Hq * d.Wq + g.OH * d.Wq + 2 * DW_SLACK + 16 * d.kk,
                    _dw_gw_cb_elems(d, g) if _dw_gw_cb_fits(d, g) else 0)


cdef _dw_alloc(dtype, int nt, dw_t *d, const geom_t *g, int pass_):
    """Fills in the sub-planes of d (na row phases times nb column phases: only the phases the
    taps read, at most kh x kw however large the stride) and returns (float scratch (nt,
    elems), pointer scratch (nt, kh*kw), an index table: for each tap its offset, then for each
    tap its sub-plane, then the na row phases and the nb column phases)."""
    pa = list(dict.fromkeys((i * g.dil_h) % g.sh for i in range(g.kh)))
    pb = list(dict.fromkeys((j * g.dil_w) % g.sw for j in range(g.kw)))
    d.na, d.nb = len(pa), len(pb)
    d.nsub = d.na * d.nb
    cdef idx_t[::1] tab = np.empty(2 * d.kk + d.na + d.nb, dtype=np.intp)
    cdef idx_t i, j, sub
    for i in range(d.na):
        tab[2 * d.kk + i] = pa[i]
    for j in range(d.nb):
        tab[2 * d.kk + d.na + j] = pb[j]
    for i in range(g.kh):
        for j in range(g.kw):
            sub = pa.index((i * g.dil_h) % g.sh) * d.nb + pb.index((j * g.dil_w) % g.sw)
            tab[d.kk + i * g.kw + j] = sub
            if pass_ == 1:
                # offset of the shifted output-gradient grid read by tap (i, j)
                tab[i * g.kw + j] = ((d.DI - (i * g.dil_h) // g.sh) * d.Wg
                                     + d.DJ - (j * g.dil_w) // g.sw)
            else:
                tab[i * g.kw + j] = (sub * d.Hq * d.Wq
                                     + ((i * g.dil_h) // g.sh) * d.Wq + (j * g.dil_w) // g.sw)
    return (np.empty((nt, _dw_scratch_elems(d, g, pass_)), dtype=dtype),
            np.empty((nt, d.kk), dtype=np.uintp), tab)


cdef inline void _taps(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out, idx_t ntaps,
                       const floating **base, const floating *w, floating bias, bint accumulate,
                       floating *out) noexcept nogil:
    if floating is float:
        cvx_dw_taps_float(rows, n, ld_in, ld_out, <int>ntaps, base, w, bias, accumulate, out)
    else:
        cvx_dw_taps_double(rows, n, ld_in, ld_out, <int>ntaps, base, w, bias, accumulate, out)


cdef inline void _poly(const floating *src, const geom_t *g, const dw_t *d, const idx_t *tab,
                       floating *dst) noexcept nogil:
    """The polyphase padded copy of plane src (tab: _dw_alloc's table)."""
    cdef const idx_t *pa = tab + 2 * d.kk
    if floating is float:
        cvx_dw_poly_float(src, g.H, g.W, g.ph, g.pw, g.sh, g.sw, d.Hp, d.Wp, d.Hq, d.Wq,
                          d.na, pa, d.nb, pa + d.na, DW_SLACK, dst)
    else:
        cvx_dw_poly_double(src, g.H, g.W, g.ph, g.pw, g.sh, g.sw, d.Hp, d.Wp, d.Hq, d.Wq,
                           d.na, pa, d.nb, pa + d.na, DW_SLACK, dst)


cdef inline void _place(const floating *src, idx_t rows, idx_t cols, idx_t drows, idx_t ld,
                        idx_t r0, idx_t c0, floating *dst) noexcept nogil:
    """dst (drows x ld and DW_SLACK more elements, zeroed) with src (rows x cols) placed at
    row r0, column c0."""
    if floating is float:
        cvx_dw_place_float(src, rows, cols, drows * ld + DW_SLACK, ld, r0, c0, dst)
    else:
        cvx_dw_place_double(src, rows, cols, drows * ld + DW_SLACK, ld, r0, c0, dst)


cdef int _dw_clamp(const epi_t *e, floating *lo, floating *hi) noexcept nogil:
    """How cvx_dw_out computes the epilogue e (with a residual or none): 0 none, 1 a clamp to
    [lo, hi] (ReLU: [0, inf], ReLU6: [0, 6], Hardtanh: [a0, a1], as _epilogue casts them); -1
    it does not (_epilogue does, after a plain copy)."""
    if e.act == ACT_NONE:
        return 0
    if e.act == ACT_RELU:
        lo[0] = 0
        hi[0] = INFINITY
        return 1
    if e.act == ACT_RELU6:
        lo[0] = 0
        hi[0] = 6
        return 1
    if e.act == ACT_HARDTANH:
        lo[0] = <floating>e.a0
        hi[0] = <floating>e.a1
        return 1
    return -1


cdef void _fwd_depthwise(const floating *x, const floating *w, const floating *b, floating *y,
                         const geom_t *g, const dw_t *dp, const floating *res, const epi_t *e,
                         floating *scratch, idx_t ld_s, size_t *ptrs, const idx_t *off,
                         const idx_t *boff, idx_t B, bint rows_out, int nt) noexcept nogil:
    """Work items (image, input channel), in bands of B output rows: the band's polyphase copy,
    then each of its Fg output planes' rows (taps from the bias) with the epilogue (res may be
    NULL) on the rows just written. boff: the taps' offsets in a band's sub-planes (B + DI rows
    of Wq); off: _dw_alloc's table (the phases after 2*kk entries); rows_out: without a
    residual and with an epilogue cvx_dw_out computes, the band's rows go straight to the
    output (cvx_dw_taps_act) instead of through the grid of pitch Wq (the same bits)."""
    cdef dw_t d = dp[0]
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, HqB = B + d.DI
    cdef const idx_t *pa = off + 2 * d.kk
    cdef idx_t it, n, c, k, f, t, oh0, nb_, R0, skip, L
    cdef floating lo = 0, hi = INFINITY
    cdef int clamp = _dw_clamp(e, &lo, &hi)
    cdef const floating *rp
    cdef floating *xs
    cdef floating *z
    cdef floating *yp
    cdef const floating *src
    cdef const floating **base
    cdef floating bv
    with parallel(num_threads=nt):
        for it in prange(g.N * g.C, schedule='static'):
            xs = scratch + cvx_omp_get_thread_num() * ld_s
            z = xs + d.nsub * HqB * d.Wq + DW_SLACK
            base = <const floating **>(ptrs + cvx_omp_get_thread_num() * d.kk)
            n = it // g.C
            c = it % g.C
            for t in range(d.kk):
                base[t] = xs + boff[t]
            oh0 = 0
            while oh0 < g.OH:
                nb_ = min(B, g.OH - oh0)
                # padded rows R0 .. R0 + (nb_ - 1)*sh + dil_h*(kh - 1) of the plane, the input
                # at row ph - R0 of them (skip input rows above them)
                R0 = oh0 * g.sh
                skip = min(g.H, max(0, R0 - g.ph))
                src = x + it * HW + skip * g.W
                # the next band's rows (from memory on large batches: the hardware prefetchers
                # stop between the bands' computations)
                _dw_prefetch_next(x, it, g.N * g.C, HW,
                                  skip + (nb_ - 1) * g.sh + g.dil_h * (g.kh - 1) + 1, g.W,
                                  nb_ * g.sh)
                if g.sh == 1 and g.sw == 1:
                    # one sub-plane: each element written once (cvx_dw_pad1)
                    if floating is float:
                        cvx_dw_pad1_float(src, g.H - skip, g.W, max(0, g.ph - R0), g.pw,
                                          nb_ + g.dil_h * (g.kh - 1), d.Wp, DW_SLACK, xs)
                    else:
                        cvx_dw_pad1_double(src, g.H - skip, g.W, max(0, g.ph - R0), g.pw,
                                           nb_ + g.dil_h * (g.kh - 1), d.Wp, DW_SLACK, xs)
                elif floating is float:
                    cvx_dw_poly_float(src, g.H - skip, g.W, max(0, g.ph - R0), g.pw, g.sh, g.sw,
                                      (nb_ - 1) * g.sh + g.dil_h * (g.kh - 1) + 1, d.Wp, HqB,
                                      d.Wq, d.na, pa, d.nb, pa + d.na, DW_SLACK, xs)
                else:
                    cvx_dw_poly_double(src, g.H - skip, g.W, max(0, g.ph - R0), g.pw, g.sh,
                                       g.sw, (nb_ - 1) * g.sh + g.dil_h * (g.kh - 1) + 1, d.Wp,
                                       HqB, d.Wq, d.na, pa, d.nb, pa + d.na, DW_SLACK, xs)
                L = (nb_ - 1) * d.Wq + g.OW
                for k in range(g.Fg):
                    f = c * g.Fg + k
                    yp = y + (n * g.F + f) * P + oh0 * g.OW
                    bv = 0
                    if b != NULL:
                        bv = b[f]
                    rp = _at(res, (n * g.F + f) * P + oh0 * g.OW)
                    if rows_out and rp == NULL and clamp >= 0:
                        # the band's rows straight to the output, with the clamp (the same sums)
                        if floating is float:
                            cvx_dw_taps_act_float(nb_, g.OW, d.Wq, g.OW, <int>d.kk, base,
                                                  w + f * d.kk, bv, clamp, lo, hi, yp)
                        else:
                            cvx_dw_taps_act_double(nb_, g.OW, d.Wq, g.OW, <int>d.kk, base,
                                                   w + f * d.kk, bv, clamp, lo, hi, yp)
                        continue
                    _taps(1, _round16(L), 0, 0, d.kk, base, w + f * d.kk, bv, False, z)
                    if clamp >= 0:
                        # the epilogue in the copy (_dw_clamp)
                        if floating is float:
                            cvx_dw_out_float(nb_, g.OW, z, d.Wq, rp, g.OW, clamp, lo, hi, yp,
                                             g.OW)
                        else:
                            cvx_dw_out_double(nb_, g.OW, z, d.Wq, rp, g.OW, clamp, lo, hi, yp,
                                              g.OW)
                    else:
                        if floating is float:
                            cvx_dw_copy_float(nb_, g.OW, z, d.Wq, yp, g.OW)
                        else:
                            cvx_dw_copy_double(nb_, g.OW, z, d.Wq, yp, g.OW)
                        _epilogue(yp, nb_ * g.OW, 1, nb_ * g.OW, rp, nb_ * g.OW, e)
                oh0 = oh0 + nb_


cdef extern from "isa/cvx_base.h" nogil:
    void CVX_PREFETCH(const void *p)


def depthwise_forward_kernel(tuple x_shape, tuple w_shape, tuple y_shape, Py_ssize_t groups,
                             Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                             Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                             Py_ssize_t itemsize, bint residual=False, int _blocks=-1):
    """Which kernel conv2d_forward_depthwise runs for this geometry (tests and benchmarks):
    "s2_rows", "s1_rows", "s1_flat", "blocks", "rings" or "planes"."""
    cdef geom_t g = _geom(x_shape, w_shape, y_shape, groups, stride_h, stride_w, pad_top,
                          pad_left, dil_h, dil_w)
    cdef dw_t d = _dw(&g)
    return ("planes", "s2_rows", "blocks", "rings", "s1_rows", "s1_flat")[
        _dw_fwd_kernel(&g, &d, residual, _blocks, itemsize)]


cdef int _dw_fwd_kernel(const geom_t *g, const dw_t *d, bint residual, int blocks,
                        idx_t itemsize) noexcept nogil:
    """The depthwise forward's kernel, in the order the rules are tried: 5 flat planes, 1
    stride-2 rows or 4 stride-1 rows, 2 channel blocks, 3 row rings, 0 the per-plane
    kernels."""
    if _dw_flat_chosen(g, residual, blocks):
        return 5
    if _dw_rows_chosen(d, g, residual, blocks, itemsize):
        return 1 if g.sh == 2 else 4
    if _dw_cb_chosen(d, g, blocks):
        return 2
    if _dw_cbr_chosen(d, g, blocks, itemsize):
        return 3
    return 0


cdef bint _dw_flat_chosen(const geom_t *g, bint residual, int blocks) noexcept nogil:
    """Whether the forward pass runs on flat planes (see above): a 3x3 kernel at stride 1
    without dilation, one row and column of padding on every side, one filter per channel, no
    residual (blocks: -1 the rule, 4 wherever it applies, any other value never; tests force
    it). The rule: the table's register rows (dw_lane_rows), output planes narrower than
    DW_S1_SHIFT_MIN_OW of at most DW_FLAT_MAX_PIXELS pixels."""
    if not (g.kh == 3 and g.kw == 3 and g.sh == 1 and g.sw == 1 and g.dil_h == 1
            and g.dil_w == 1 and g.ph == 1 and g.pw == 1 and g.OH == g.H and g.OW == g.W
            and g.Fg == 1 and not residual):
        return False
    if blocks != -1:
        return blocks == 4
    return (isa_table().dw_lane_rows and g.OW < DW_S1_SHIFT_MIN_OW
            and g.OH * g.OW <= DW_FLAT_MAX_PIXELS)


cdef bint _dw_rows_chosen(const dw_t *d, const geom_t *g, bint residual, int blocks,
                          idx_t itemsize) noexcept nogil:
    """Whether the forward pass runs on the stride-2 or stride-1 rows (see above): a 3x3 kernel
    at stride 2 or 1 without dilation, one filter per channel, no residual (blocks: -1 the
    rule, 3 wherever it applies, any other value never; tests force them). The rule: output
    planes at least DW_S2_MIN_OW or DW_S1_MIN_OW wide, and at stride 2 not where the row ring
    goes first (_dw_cbr_before_s2); where the table has the register rows (dw_lane_rows), at
    stride 1 with at most one column of padding on the left from DW_S1_SHIFT_MIN_OW wide; where
    it has the stride-2 rows in registers for the dtype (dw_s2_lanes_min_ow_f / _d >= 0), at
    stride 2 with one column of padding on the left from a vector and that width, whose
    vectors are filled to DW_S2_VEC_FILL_NUM / DW_S2_VEC_FILL_DEN."""
    if not (g.kh == 3 and g.kw == 3 and g.sh == g.sw and (g.sh == 1 or g.sh == 2)
            and g.dil_h == 1 and g.dil_w == 1 and g.Fg == 1 and not residual):
        return False
    if blocks != -1:
        return blocks == 3
    cdef idx_t lanes, min_ow
    if g.sh == 2:
        if itemsize == 4:
            lanes, min_ow = isa_table().f32_lanes, isa_table().dw_s2_lanes_min_ow_f
        else:
            lanes, min_ow = isa_table().f64_lanes, isa_table().dw_s2_lanes_min_ow_d
        if min_ow >= 0 and g.pw == 1:
            return g.OW >= max(lanes, min_ow) and (
                DW_S2_VEC_FILL_DEN * g.OW
                >= DW_S2_VEC_FILL_NUM * lanes * ((g.OW + lanes - 1) // lanes))
        return g.OW >= DW_S2_MIN_OW and not _dw_cbr_before_s2(d, g, itemsize)
    # the register rows (cvx_dw_s1_vrow) take at most one column of padding on the left
    return g.OW >= (DW_S1_SHIFT_MIN_OW if isa_table().dw_lane_rows and g.pw <= 1
                    else DW_S1_MIN_OW)


cdef void _fwd_depthwise_rows(const floating *x, const floating *w, const floating *b,
                              floating *y, const geom_t *g, const epi_t *e, floating *scratch,
                              idx_t ld_s, const idx_t *mask, int nt) noexcept nogil:
    """Work items (image, channel): isa/depthwise.inc's cvx_dw_s1_flat with mask != NULL (the
    flat planes, their masks; no scratch), else cvx_dw_s2_plane (stride 2; its ring: the
    thread's scratch) or cvx_dw_s1_plane (stride 1; its zero row: the thread's scratch, zeroed
    once with 16 elements on either side), with the clamp where cvx_dw_out computes it
    (_dw_clamp), else _epilogue on the plane after it."""
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, it, c, i
    cdef floating lo = 0, hi = INFINITY
    cdef int clamp = _dw_clamp(e, &lo, &hi)
    cdef floating bv
    cdef floating *buf
    with parallel(num_threads=nt):
        buf = scratch + cvx_omp_get_thread_num() * ld_s
        if g.sh == 1 and mask == NULL:  # the zero row, once per thread
            for i in range(g.W + 32):
                buf[i] = 0
        for it in prange(g.N * g.C, schedule='static'):
            c = it % g.C
            bv = 0
            if b != NULL:
                bv = b[c]
            if mask != NULL:
                if floating is float:
                    cvx_dw_s1_flat_float(x + it * HW, g.H, g.W, mask, w + c * 9, bv,
                                         max(clamp, 0), lo, hi, y + it * P)
                else:
                    cvx_dw_s1_flat_double(x + it * HW, g.H, g.W, mask, w + c * 9, bv,
                                          max(clamp, 0), lo, hi, y + it * P)
            elif g.sh == 1:
                if floating is float:
                    cvx_dw_s1_plane_float(x + it * HW, g.H, g.W, g.ph, g.pw, g.OH, g.OW,
                                          w + c * 9, bv, max(clamp, 0), lo, hi, y + it * P,
                                          buf + 16)
                else:
                    cvx_dw_s1_plane_double(x + it * HW, g.H, g.W, g.ph, g.pw, g.OH, g.OW,
                                           w + c * 9, bv, max(clamp, 0), lo, hi, y + it * P,
                                           buf + 16)
            elif floating is float:
                cvx_dw_s2_plane_float(x + it * HW, g.H, g.W, g.ph, g.pw, g.OH, g.OW, w + c * 9,
                                      bv, max(clamp, 0), lo, hi, y + it * P, buf)
            else:
                cvx_dw_s2_plane_double(x + it * HW, g.H, g.W, g.ph, g.pw, g.OH, g.OW, w + c * 9,
                                       bv, max(clamp, 0), lo, hi, y + it * P, buf)
            if clamp < 0:
                _epilogue(y + it * P, P, 1, P, NULL, P, e)


cdef inline void _dw_prefetch_next(const floating *x, idx_t it, idx_t nplanes, idx_t HW,
                                   idx_t r0, idx_t W, idx_t rows) noexcept nogil:
    """Prefetch the input the next band will read: `rows` rows of plane it from row r0 on, and
    past the plane's end the first rows of the next plane (item it + 1) while there is one."""
    cdef idx_t e0 = it * HW + r0 * W, e1 = e0 + rows * W, e
    cdef idx_t line = 64 // sizeof(floating)
    if e1 > nplanes * HW:
        e1 = nplanes * HW
    e = e0
    while e < e1:
        CVX_PREFETCH(x + e)
        e = e + line


cdef void _fwd_depthwise_cb(const floating *x, const floating *w, const floating *b, floating *y,
                            const geom_t *g, const dw_t *dp, const floating *res,
                            const epi_t *e, floating *scratch, idx_t ld_s, const idx_t *toff,
                            int nt) noexcept nogil:
    """Work items (image, block of DW_CB channels): isa/depthwise.inc's cvx_dw_cb_fwd with the
    epilogue (res may be NULL) where cvx_dw_out computes it (_dw_clamp), else _epilogue on each
    of the block's output planes after it."""
    cdef dw_t d = dp[0]
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, nblk = (g.C + DW_CB - 1) // DW_CB
    cdef idx_t it, n, c0, nl, k
    cdef floating lo = 0, hi = INFINITY
    cdef int clamp = _dw_clamp(e, &lo, &hi)
    cdef floating *xs
    cdef floating *yp
    cdef const floating *bp
    cdef const floating *rp
    with parallel(num_threads=nt):
        for it in prange(g.N * nblk, schedule='static'):
            xs = scratch + cvx_omp_get_thread_num() * ld_s
            n = it // nblk
            c0 = (it % nblk) * DW_CB
            nl = min(DW_CB, g.C - c0)
            bp = NULL
            if b != NULL:
                bp = b + c0
            yp = y + (n * g.F + c0) * P
            rp = NULL
            if clamp >= 0:
                rp = _at(res, (n * g.F + c0) * P)
            if floating is float:
                cvx_dw_cb_fwd_float(nl, x + (n * g.C + c0) * HW, g.H, g.W, g.ph, g.pw, d.Hp,
                                    d.Wp, g.OH, g.OW, g.sh, g.sw, <int>d.kk, toff,
                                    w + c0 * d.kk, bp, rp, max(clamp, 0), lo, hi, xs, yp)
            else:
                cvx_dw_cb_fwd_double(nl, x + (n * g.C + c0) * HW, g.H, g.W, g.ph, g.pw, d.Hp,
                                     d.Wp, g.OH, g.OW, g.sh, g.sw, <int>d.kk, toff,
                                     w + c0 * d.kk, bp, rp, max(clamp, 0), lo, hi, xs, yp)
            if clamp < 0:
                for k in range(nl):
                    _epilogue(yp + k * P, P, 1, P, _at(res, (n * g.F + c0 + k) * P), P, e)


cdef void _fwd_depthwise_cbr(const floating *x, const floating *w, const floating *b,
                             floating *y, const geom_t *g, const dw_t *dp, const floating *res,
                             const epi_t *e, floating *scratch, idx_t ld_s, const idx_t *toff,
                             idx_t nseg, int nt) noexcept nogil:
    """Work items (image, block of DW_CB channels, segment of output rows; nseg segments of a
    plane): isa/depthwise.inc's cvx_dw_cbr_fwd with the epilogue (res may be NULL) where
    cvx_dw_out computes it (_dw_clamp), else _epilogue on the item's rows after it."""
    cdef dw_t d = dp[0]
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, nblk = (g.C + DW_CB - 1) // DW_CB
    cdef idx_t R = _dw_cbr_rows(g), G = _dw_cbr_group(g)
    cdef idx_t it, n, c0, nl, k, blk, seg, oh0, oh1
    cdef floating lo = 0, hi = INFINITY
    cdef int clamp = _dw_clamp(e, &lo, &hi)
    cdef floating *xs
    cdef floating *yp
    cdef const floating *bp
    cdef const floating *rp
    with parallel(num_threads=nt):
        for it in prange(g.N * nblk * nseg, schedule='static'):
            xs = scratch + cvx_omp_get_thread_num() * ld_s
            seg = it % nseg
            blk = (it // nseg) % nblk
            n = it // (nseg * nblk)
            c0 = blk * DW_CB
            nl = min(DW_CB, g.C - c0)
            oh0 = seg * g.OH // nseg
            oh1 = (seg + 1) * g.OH // nseg
            bp = NULL
            if b != NULL:
                bp = b + c0
            yp = y + (n * g.F + c0) * P
            rp = NULL
            if clamp >= 0:
                rp = _at(res, (n * g.F + c0) * P)
            if floating is float:
                cvx_dw_cbr_fwd_float(nl, x + (n * g.C + c0) * HW, g.H, g.W, g.ph, g.pw, d.Hp,
                                     d.Wp, g.OH, g.OW, g.sh, g.sw, R, G, oh0, oh1, <int>d.kk,
                                     toff, w + c0 * d.kk, bp, rp, max(clamp, 0), lo, hi, xs,
                                     yp)
            else:
                cvx_dw_cbr_fwd_double(nl, x + (n * g.C + c0) * HW, g.H, g.W, g.ph, g.pw, d.Hp,
                                      d.Wp, g.OH, g.OW, g.sh, g.sw, R, G, oh0, oh1, <int>d.kk,
                                      toff, w + c0 * d.kk, bp, rp, max(clamp, 0), lo, hi, xs,
                                      yp)
            if clamp < 0:
                for k in range(nl):
                    _epilogue(yp + k * P + oh0 * g.OW, (oh1 - oh0) * g.OW, 1,
                              (oh1 - oh0) * g.OW,
                              _at(res, (n * g.F + c0 + k) * P + oh0 * g.OW),
                              (oh1 - oh0) * g.OW, e)


cdef void _gx_depthwise_exact(const floating *gy, const floating *w, floating *gx,
                              const geom_t *g, idx_t n, idx_t c, floating *dxp) noexcept nogil:
    """One input-gradient plane, scattered row by row over the real output gradients only
    (on a plain zero-padded Hp x Wp plane), for a channel with a non-finite weight."""
    cdef dw_t d = _dw(g)
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W
    cdef idx_t rows = _clip(d.Hp - g.ph, g.H), cols = _clip(d.Wp - g.pw, g.W)
    cdef idx_t k, f, i, j, oh, ow, r, q
    cdef floating *xrow
    cdef const floating *gyrow
    cdef floating wv
    for q in range(d.Hp * d.Wp):
        dxp[q] = 0
    for k in range(g.Fg):
        f = c * g.Fg + k
        for i in range(g.kh):
            for j in range(g.kw):
                wv = w[(f * g.kh + i) * g.kw + j]
                for oh in range(g.OH):
                    xrow = dxp + (oh * g.sh + i * g.dil_h) * d.Wp + j * g.dil_w
                    gyrow = gy + (n * g.F + f) * P + oh * g.OW
                    for ow in range(g.OW):
                        xrow[ow * g.sw] += wv * gyrow[ow]
    gx = gx + (n * g.C + c) * HW
    for q in range(HW):
        gx[q] = 0
    for r in range(rows):
        for q in range(cols):
            gx[r * g.W + q] = dxp[(r + g.ph) * d.Wp + g.pw + q]


cdef inline void _gx_plane(const floating *gy, const floating *w, floating *gx, const geom_t *g,
                           const dw_t *dp, idx_t it, floating *dxs, const floating **base,
                           const idx_t *off) noexcept nogil:
    """Work item it = (image, input channel) of the input gradient, on the polyphase planes
    (dxs: _dw_gx_plane_elems elements of scratch, base: kh*kw pointers)."""
    cdef dw_t d = dp[0]
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, L = _round16((d.Hq - 1) * d.Wg + d.Wq)
    cdef idx_t SP = d.Hq * d.Wg + DW_SLACK  # sub-plane pitch
    cdef idx_t n = it // g.C, c = it % g.C, k, f, t, a, nt_ab
    cdef floating *grid = dxs + d.nsub * SP
    cdef floating *wt = grid + (d.Hq + d.DI) * d.Wg + DW_SLACK
    cdef floating wv
    cdef bint finite = True
    for t in range(g.Fg * d.kk):
        wv = w[c * g.Fg * d.kk + t]
        if not (wv - wv == 0):
            finite = False
    if not finite:
        _gx_depthwise_exact(gy, w, gx, g, n, c, dxs)
        return
    for k in range(g.Fg):
        f = c * g.Fg + k
        _place(gy + (n * g.F + f) * P, g.OH, g.OW, d.Hq + d.DI, d.Wg, d.DI, d.DJ, grid)
        for a in range(d.nsub):
            nt_ab = 0
            for t in range(d.kk):
                if off[d.kk + t] == a:
                    base[nt_ab] = grid + off[t]
                    wt[nt_ab] = w[f * d.kk + t]
                    nt_ab = nt_ab + 1
            _taps(1, L, 0, 0, nt_ab, base, wt, 0, k > 0, dxs + a * SP)
    if floating is float:
        cvx_dw_unpoly_float(dxs, g.H, g.W, g.ph, g.pw, g.sh, g.sw, d.Hp, d.Wp, d.na,
                            off + 2 * d.kk, d.nb, off + 2 * d.kk + d.na, SP, d.Wg,
                            gx + it * HW)
    else:
        cvx_dw_unpoly_double(dxs, g.H, g.W, g.ph, g.pw, g.sh, g.sw, d.Hp, d.Wp, d.na,
                             off + 2 * d.kk, d.nb, off + 2 * d.kk + d.na, SP, d.Wg,
                             gx + it * HW)


cdef void _gx_depthwise(const floating *gy, const floating *w, floating *gx, const geom_t *g,
                        const dw_t *dp, floating *scratch, idx_t ld_s, size_t *ptrs,
                        const idx_t *off, int nt) noexcept nogil:
    cdef idx_t it
    with parallel(num_threads=nt):
        for it in prange(g.N * g.C, schedule='static'):
            _gx_plane(gy, w, gx, g, dp, it, scratch + cvx_omp_get_thread_num() * ld_s,
                      <const floating **>(ptrs + cvx_omp_get_thread_num() * dp.kk), off)


cdef void _gx_depthwise_cb(const floating *gy, const floating *w, floating *gx, const geom_t *g,
                           const dw_t *dp, floating *scratch, idx_t ld_s, size_t *ptrs,
                           const idx_t *off, const int *tcount, const int *tix,
                           int nt) noexcept nogil:
    """Work items (image, block of DW_CB channels): isa/depthwise.inc's cvx_dw_cb_gx, or the
    per-plane work items of the block's channels when one of its weights is not finite (in the
    same scratch per thread: the larger of the two)."""
    cdef dw_t d = dp[0]
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, nblk = (g.C + DW_CB - 1) // DW_CB
    cdef idx_t it, n, c0, nl, t, k
    cdef floating *xs
    cdef floating wv
    cdef bint finite
    with parallel(num_threads=nt):
        for it in prange(g.N * nblk, schedule='static'):
            xs = scratch + cvx_omp_get_thread_num() * ld_s
            n = it // nblk
            c0 = (it % nblk) * DW_CB
            nl = min(DW_CB, g.C - c0)
            finite = True
            for t in range(nl * d.kk):
                wv = w[c0 * d.kk + t]
                if not (wv - wv == 0):
                    finite = False
            if not finite:
                for k in range(nl):
                    _gx_plane(gy, w, gx, g, dp, n * g.C + c0 + k, xs,
                              <const floating **>(ptrs + cvx_omp_get_thread_num() * d.kk), off)
                continue
            if floating is float:
                cvx_dw_cb_gx_float(nl, gy + (n * g.F + c0) * P, g.OH, g.OW, g.H, g.W, g.ph, g.pw,
                                   d.Hp, d.Wp, g.sh, g.sw, d.DI, d.DJ, d.Hq, d.Wq, d.na,
                                   off + 2 * d.kk, d.nb, off + 2 * d.kk + d.na, <int>d.kk,
                                   tcount, tix, off, w + c0 * d.kk,
                                   xs, gx + (n * g.C + c0) * HW)
            else:
                cvx_dw_cb_gx_double(nl, gy + (n * g.F + c0) * P, g.OH, g.OW, g.H, g.W, g.ph,
                                    g.pw, d.Hp, d.Wp, g.sh, g.sw, d.DI, d.DJ, d.Hq, d.Wq, d.na,
                                    off + 2 * d.kk, d.nb, off + 2 * d.kk + d.na, <int>d.kk,
                                    tcount, tix, off, w + c0 * d.kk,
                                    xs, gx + (n * g.C + c0) * HW)


cdef void _gw_depthwise(const floating *gy, const floating *x, floating *gw, const geom_t *g,
                        const dw_t *dp, floating *scratch, idx_t ld_s, size_t *ptrs,
                        const idx_t *off, int nt) noexcept nogil:
    cdef dw_t d = dp[0]
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, L = (g.OH - 1) * d.Wq + g.OW
    cdef idx_t f, c, n, t, q
    cdef floating *xs
    cdef floating *grid
    cdef floating *acc
    cdef const floating **base
    cdef const floating *gyp
    cdef bint flat
    with parallel(num_threads=nt):
        for f in prange(g.F, schedule='dynamic'):
            xs = scratch + cvx_omp_get_thread_num() * ld_s
            grid = xs + d.nsub * d.Hq * d.Wq + DW_SLACK
            acc = grid + g.OH * d.Wq + DW_SLACK
            base = <const floating **>(ptrs + cvx_omp_get_thread_num() * d.kk)
            c = f // g.Fg
            for q in range(16 * d.kk):
                acc[q] = 0
            for t in range(d.kk):
                base[t] = xs + off[t]
            for n in range(g.N):
                _poly(x + (n * g.C + c) * HW, g, &d, off, xs)
                gyp = gy + (n * g.F + f) * P
                flat = g.OW < DW_FLAT_OW
                if flat:
                    if floating is float:
                        flat = cvx_dw_finite_float(d.nsub * d.Hq * d.Wq, xs)
                    else:
                        flat = cvx_dw_finite_double(d.nsub * d.Hq * d.Wq, xs)
                if flat:
                    _place(gyp, g.OH, g.OW, g.OH, d.Wq, 0, 0, grid)
                    _dots(1, _round16(L), 0, 0, d.kk, base, grid, acc)
                else:
                    _dots(g.OH, g.OW, d.Wq, g.OW, d.kk, base, gyp, acc)
            for t in range(d.kk):
                if floating is float:
                    gw[f * d.kk + t] = cvx_dw_lanes_float(acc + 16 * t)
                else:
                    gw[f * d.kk + t] = cvx_dw_lanes_double(acc + 16 * t)


cdef idx_t[::1] _dw_gw_lists(const dw_t *d, const geom_t *g):
    """The pixel lists of cvx_dw_cb_gw: 2 x 17 starts, then the 2*OH*OW output pixels
    (oh*OW + ow), then their windows' pixels in the padded plane (oh*sh*Wp + ow*sw): list 0
    in classes j = (oh*Wq + ow) % 16 (the flat grid's lanes), list 1 in classes ow % 16 (the
    rows'), each class in row-major order."""
    cdef idx_t P = g.OH * g.OW
    oh, ow = np.divmod(np.arange(P, dtype=np.intp), g.OW)
    out = np.empty(34 + 4 * P, dtype=np.intp)
    for lst, cls in enumerate(((oh * d.Wq + ow) % 16, ow % 16)):
        order = np.argsort(cls, kind="stable")  # row-major within a class
        out[17 * lst: 17 * lst + 17] = lst * P + np.searchsorted(cls[order], np.arange(17))
        out[34 + lst * P: 34 + (lst + 1) * P] = order
        out[34 + 2 * P + lst * P: 34 + 2 * P + (lst + 1) * P] = (
            oh[order] * g.sh * d.Wp + ow[order] * g.sw)
    return out


cdef inline void _dots(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_g, idx_t ntaps,
                       const floating **base, const floating *gp,
                       floating *acc) noexcept nogil:
    if floating is float:
        cvx_dw_dots_float(rows, n, ld_in, ld_g, <int>ntaps, base, gp, acc)
    else:
        cvx_dw_dots_double(rows, n, ld_in, ld_g, <int>ntaps, base, gp, acc)

# --------------------------------------------------------------------------------------------
# direct route (few channels): isa/kernels.inc

cdef inline idx_t _direct_hq(const geom_t *g) noexcept nogil:
    # OH and the dilated kernel are each at most 2**40 (Python's window_geometry): no overflow
    return g.OH + (g.dil_h * (g.kh - 1)) // g.sh


cdef cvx_direct_geom _direct_geom(const geom_t *g) noexcept nogil:
    cdef cvx_direct_geom d
    d.Cg, d.H, d.W, d.Fg, d.kh, d.kw = g.Cg, g.H, g.W, g.Fg, g.kh, g.kw
    d.sh, d.sw, d.ph, d.pw, d.dil_h, d.dil_w = g.sh, g.sw, g.ph, g.pw, g.dil_h, g.dil_w
    d.OH, d.OW, d.Hq = g.OH, g.OW, _direct_hq(g)
    d.K = g.Cg * g.kh * g.kw
    d.P = g.OH * g.OW
    d.p_begin, d.p_end, d.f_begin, d.f_end = 0, d.P, 0, d.Fg
    d.res, d.clamp, d.lo, d.hi = NULL, 0, 0, 0
    d.band_bytes = 0  # the forward's: set with its scratch (direct_fwd_scratch)
    return d


cdef _direct_offsets(const cvx_direct_geom *d):
    """off[k] for tap k = (c*kh + i)*kw + j: where its input run starts in the unfolded U."""
    off = np.empty(d.K, dtype=np.intp)
    cdef idx_t[::1] o = off
    cdef idx_t c, i, j, k = 0
    for c in range(d.Cg):
        for i in range(d.kh):
            for j in range(d.kw):
                o[k] = (((c * d.sh + (i * d.dil_h) % d.sh) * d.kw + j) * d.Hq
                        + (i * d.dil_h) // d.sh) * d.OW
                k += 1
    return off


cdef inline void _fwd_direct_item(idx_t it, const floating *x, const floating *w,
                                  const floating *wp, const floating *b, floating *y,
                                  const geom_t *g, const cvx_direct_geom *direct_g,
                                  const idx_t *off, idx_t npb, idx_t nfr, const floating *res,
                                  const epi_t *e, int clamp, floating lo, floating hi,
                                  floating *buf) noexcept nogil:
    """Work item `it` of _fwd_direct, on the thread's scratch `buf`."""
    cdef idx_t n, gi, fri, pa, pb, fa, fe, HW = g.H * g.W, P = g.OH * g.OW
    cdef idx_t K = direct_g.K, base
    cdef idx_t FB = cvx_direct_filter_block(g.Fg), nblk = (g.Fg + FB - 1) // FB
    cdef const floating *bg
    cdef const floating *wpg
    cdef cvx_direct_geom dl
    cdef span_t pspan = _band_tile((it // nfr) % npb, 1, npb, P)  # pixel block: one band
    n = it // (g.G * npb * nfr)
    gi = (it // (npb * nfr)) % g.G
    fri = it % nfr
    pa = pspan.lo
    pb = pspan.hi
    fa = FB * (nblk * fri // nfr)
    fe = FB * (nblk * (fri + 1) // nfr)
    if fe > g.Fg:
        fe = g.Fg
    if pb <= pa or fe <= fa:
        return
    dl = direct_g[0]
    dl.p_begin, dl.p_end, dl.f_begin, dl.f_end = pa, pb, fa, fe
    base = (n * g.F + gi * g.Fg) * P
    if clamp >= 0:
        dl.res, dl.clamp, dl.lo, dl.hi = _at(res, base), clamp, lo, hi
    bg = NULL
    if b != NULL:
        bg = b + gi * g.Fg
    wpg = NULL
    if wp != NULL:
        wpg = wp + gi * g.Fg * K
    if floating is float:
        cvx_direct_fwd_float(&dl, x + (n * g.C + gi * g.Cg) * HW, w + gi * g.Fg * K, wpg,
                             bg, off, y + base, buf)
    else:
        cvx_direct_fwd_double(&dl, x + (n * g.C + gi * g.Cg) * HW, w + gi * g.Fg * K,
                              wpg, bg, off, y + base, buf)
    if clamp < 0:
        base = base + fa * P + pa
        _epilogue(y + base, P, fe - fa, pb - pa, _at(res, base), P, e)


cdef void _fwd_direct(const floating *x, const floating *w, const floating *wp,
                      const floating *b, floating *y, const geom_t *g,
                      const cvx_direct_geom *direct_g, const idx_t *off, idx_t npb, idx_t nfr,
                      bint owned, const floating *res, const epi_t *e, floating *scratch,
                      idx_t ld_s, int nt) noexcept nogil:
    """Work items (image, group, block of pixels, range of filter blocks): npb blocks of whole
    48-pixel strips (a multiple of every ISA's forward tile) times nfr ranges of the kernel's
    filter blocks. wp: the weights packed once (pack_direct_weight), or NULL (the kernel packs
    each filter block). Every output element has the same arithmetic whatever item computes
    it, so npb and nfr may follow the thread count. owned: the items in a static schedule,
    each thread its own pixel bands or planes (_owned_bands, _owns_planes); else a dynamic
    one."""
    cdef idx_t it, nitems = g.N * g.G * npb * nfr
    cdef floating lo = 0, hi = 0
    # the epilogue in the kernel, on each tile while it is in cache (_dw_clamp: residual and
    # clamps), else (other activations) on the work item's block of y after the kernel
    cdef int clamp = _dw_clamp(e, &lo, &hi)
    if owned:
        for it in prange(nitems, schedule='static', num_threads=nt):
            _fwd_direct_item(it, x, w, wp, b, y, g, direct_g, off, npb, nfr, res, e, clamp, lo,
                             hi, scratch + cvx_omp_get_thread_num() * ld_s)
    else:
        for it in prange(nitems, schedule='dynamic', num_threads=nt):
            _fwd_direct_item(it, x, w, wp, b, y, g, direct_g, off, npb, nfr, res, e, clamp, lo,
                             hi, scratch + cvx_omp_get_thread_num() * ld_s)


cdef void _gw_direct(const floating *gy, const floating *x, floating *gw, const geom_t *g,
                     const cvx_direct_geom *direct_g, const idx_t *off, floating *scratch,
                     idx_t ld_s, floating *part, idx_t nb, int nt) noexcept nogil:
    """Images are cut into nb fixed blocks (never depending on the thread count); work item
    (block, group) sums its images into the block's partial dW; the blocks are added in order."""
    cdef idx_t HW = g.H * g.W, P = g.OH * g.OW, K = direct_g.K, FK = g.F * K
    cdef idx_t it, blk, gi, n, n0, n1, q, e, nv = cvx_direct_v_elems(direct_g)
    cdef floating *buf
    cdef floating *v
    cdef floating s
    with parallel(num_threads=nt):
        for it in prange(nb * g.G, schedule='dynamic'):
            buf = scratch + cvx_omp_get_thread_num() * ld_s
            v = buf + cvx_direct_scratch(direct_g)
            blk = it // g.G
            gi = it % g.G
            for q in range(nv):
                v[q] = 0
            n0 = blk * g.N // nb
            n1 = (blk + 1) * g.N // nb
            for n in range(n0, n1):
                if floating is float:
                    cvx_direct_gw_float(direct_g, x + (n * g.C + gi * g.Cg) * HW,
                                        gy + (n * g.F + gi * g.Fg) * P, off, v, buf)
                else:
                    cvx_direct_gw_double(direct_g, x + (n * g.C + gi * g.Cg) * HW,
                                         gy + (n * g.F + gi * g.Fg) * P, off, v, buf)
            if floating is float:
                cvx_direct_gw_finish_float(direct_g, v, part + blk * FK + gi * g.Fg * K)
            else:
                cvx_direct_gw_finish_double(direct_g, v, part + blk * FK + gi * g.Fg * K)
    for e in prange(FK, nogil=True, schedule='static', num_threads=nt):
        s = part[e]
        for blk in range(1, nb):
            s = s + part[blk * FK + e]
        gw[e] = s


# --------------------------------------------------------------------------------------------
# forward

def conv2d_forward_depthwise(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                             const floating[::1] b, floating[:, :, :, ::1] y,
                             Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                             Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                             Py_ssize_t groups, int n_threads,
                             const floating[:, :, :, ::1] residual=None, int act=0, double a0=0,
                             double a1=0, int _blocks=-1, int _bands=-1):
    """y = act(conv2d(x, w) + b + residual) on the depthwise route (b and residual may be
    None; act an ACT_* code, 0: none), the epilogue on each output plane. Fills all of y.
    _blocks (tests only): -1 channel blocks or row rings where the geometry rule chooses them,
    0 never, 1 channel blocks wherever they fit, 2 row rings wherever they fit, 3 stride-2 or
    stride-1 rows wherever they apply (_dw_rows_chosen), 4 flat planes wherever they apply
    (_dw_flat_chosen), else the rule; _bands (tests
    only, without blocks): -1 the rule's bands, 0 one band (the whole plane), 1 one row per
    band, 2 the rule's bands never written straight to the output (DW_ROWS_MIN_OW). The result
    is the same bits either way."""
    cdef const floating[::1] packed = None  # (the route packs no weight)
    _forward_once(ROUTE_DEPTHWISE, x, w, b, y, stride_h, stride_w, pad_top, pad_left, dil_h,
                  dil_w, groups, n_threads, residual, act, a0, a1, packed, _blocks, _bands)


cdef int _prep_depthwise(fwd_t *p, list keep, const floating[:, :, :, ::1] w, bint residual,
                         int blocks, int bands) except -1:
    """The depthwise route's kernel for p's geometry (_dw_fwd_kernel), its thread count, tables
    and scratch (conv2d_forward_depthwise's blocks and bands: its _blocks and _bands)."""
    cdef geom_t *g = &p.g
    p.d = _dw(g)
    cdef dw_t *d = &p.d
    cdef idx_t[::1] toff
    cdef idx_t i, j, lanes
    dtype = _DTYPE[floating is double]
    cdef int kernel = _dw_fwd_kernel(g, d, residual, blocks, sizeof(floating))
    if kernel == 1:
        p.kernel = K_DW_S2
        p.nt = _threads_for(g.N * g.C, p.nt)
        # each thread's ring on cache lines of its own, the first on a line's start: the rings
        # are rewritten row by row, and a line two threads write moves between their cores on
        # every write (the rings were side by side, their base where malloc put it)
        p.ld_s = cvx_dw_s2_ring(g.OW) + 16  # (_place_scratch: the first on a line's start)
        return 0
    if kernel == 5:
        p.kernel = K_DW_S1F
        p.nt = _threads_for(g.N * g.C, p.nt)
        lanes = isa_table().f32_lanes if sizeof(floating) == 4 else isa_table().f64_lanes
        # (at least one vector's masks: an empty plane, which the kernel skips, has none)
        toff = np.empty(9 * max(1, (g.H * g.W + lanes - 1) // lanes), dtype=np.intp)
        cvx_dw_flat_masks(g.H, g.W, lanes, &toff[0])
        p.tab = <idx_t *>_keep_data(keep, toff.base)
        p.ld_s = 0
        return 0
    if kernel == 4:
        p.kernel = K_DW_S1
        p.nt = _threads_for(g.N * g.C, p.nt)
        p.ld_s = _round16(g.W) + 32  # each thread's zero row and 16 zeros on either side
        return 0
    if kernel == 2:
        p.kernel = K_DW_CB
        p.nt = _threads_for(g.N * ((g.C + DW_CB - 1) // DW_CB), p.nt)
        toff = np.empty(d.kk, dtype=np.intp)
        for i in range(g.kh):
            for j in range(g.kw):
                toff[i * g.kw + j] = i * g.dil_h * d.Wp + j * g.dil_w
        p.tab = <idx_t *>_keep_data(keep, toff.base)
        p.ld_s = _dw_cb_elems(d, g) + 16
        return 0
    if kernel == 3:
        p.kernel = K_DW_CBR
        p.nseg = _dw_cbr_segments(g, p.nt)
        p.nt = _threads_for(g.N * ((g.C + DW_CB - 1) // DW_CB) * p.nseg, p.nt)
        toff = np.empty(2 * d.kk, dtype=np.intp)
        for i in range(g.kh):
            for j in range(g.kw):
                toff[i * g.kw + j] = i * g.dil_h
                toff[d.kk + i * g.kw + j] = j * g.dil_w
        p.tab = <idx_t *>_keep_data(keep, toff.base)
        p.ld_s = _dw_cbr_elems(d, g) + 16
        return 0
    p.kernel = K_DW_PLANES
    p.nt = _threads_for(g.N * g.C, p.nt)
    _, _, off_a = _dw_alloc(dtype, 0, d, g, 0)
    p.ld_s = _dw_scratch_elems(d, g, 0)
    p.nptrs = d.kk
    cdef idx_t[::1] off = off_a
    p.tab = <idx_t *>_keep_data(keep, off.base)
    # the taps' offsets in a band's sub-planes (B + DI rows of Wq each)
    p.B = _dw_band_rows(d, g, bands)
    cdef idx_t[::1] boff = np.empty(d.kk, dtype=np.intp)
    for i in range(g.kh):
        for j in range(g.kw):
            boff[i * g.kw + j] = (off[d.kk + i * g.kw + j] * (p.B + d.DI) * d.Wq
                                  + ((i * g.dil_h) // g.sh) * d.Wq + (j * g.dil_w) // g.sw)
    p.tab2 = <idx_t *>_keep_data(keep, boff.base)
    p.straight = bands != 2 and g.OW >= DW_ROWS_MIN_OW
    return 0


# _balanced_pixel_blocks simulates at most this many threads and block counts (on more
# threads it takes the most blocks): a few microseconds at most, once per call.
DEF BALANCE_MAX_THREADS = 16
DEF BALANCE_MAX_COUNTS = 8


cdef idx_t _balanced_pixel_blocks(idx_t S, idx_t P, idx_t lo, idx_t hi, idx_t pairs,
                                  int nt):
    """The number of pixel blocks, lo..hi, into which each of `pairs` (image, group) pairs of
    the direct forward is split (blocks of whole 48-pixel strips, _fwd_direct's pa..pb): the
    most blocks whose dynamic schedule over nt threads, an item costing its pixels, ends at
    most 1/16 later than the best count's (more items even out a thread that another process
    slows). 6 strips in 4 blocks of 1, 2, 1 and 2 strips end after 4 strips' time on 2
    threads, in 2 blocks of 3 after 3: 2 blocks; 66 strips: 4 blocks (1600 pixels' time
    against 1584 in 2)."""
    cdef idx_t best = lo, best_end = -1, npb, i, t, k, end, pa, pb
    cdef idx_t busy[BALANCE_MAX_THREADS]  # the threads' finishing times
    cdef idx_t ends[BALANCE_MAX_COUNTS]  # the schedule's end for each count
    if nt > BALANCE_MAX_THREADS:
        return hi  # as many blocks as allowed: simulating would cost more than it saves
    if hi > lo + BALANCE_MAX_COUNTS - 1:
        lo = hi - (BALANCE_MAX_COUNTS - 1)
    for npb in range(lo, hi + 1):
        for t in range(nt):
            busy[t] = 0
        end = 0
        for i in range(pairs * npb):
            pa = 48 * (S * (i % npb) // npb)
            pb = min(48 * (S * (i % npb + 1) // npb), P)
            k = 0  # the thread that is free first takes the next item
            for t in range(1, nt):
                if busy[t] < busy[k]:
                    k = t
            busy[k] += max(pb - pa, 0)
            end = max(end, busy[k])
        ends[npb - lo] = end
        if best_end < 0 or end < best_end:
            best_end = end
    for npb in range(lo, hi + 1):
        if 16 * ends[npb - lo] <= 17 * best_end:
            best = npb
    return best


def conv2d_forward_direct(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                          const floating[::1] b, floating[:, :, :, ::1] y,
                          Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                          Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                          Py_ssize_t groups, int n_threads,
                          const floating[:, :, :, ::1] residual=None, int act=0, double a0=0,
                          double a1=0, const floating[::1] packed=None):
    """y = act(conv2d(x, w) + b + residual) on the direct route (b and residual may be None;
    act an ACT_* code, 0: none), the residual and a clamp (ReLU, ReLU6, Hardtanh) on each tile
    in the kernel, other activations on each work item's block after it. packed: w as
    pack_direct_weight(w, groups) returned it, or None. Fills all of y."""
    _forward_once(ROUTE_DIRECT, x, w, b, y, stride_h, stride_w, pad_top, pad_left, dil_h,
                  dil_w, groups, n_threads, residual, act, a0, a1, packed, -1, -1)


cdef int _prep_direct(fwd_t *p, list keep, const floating[:, :, :, ::1] w,
                      const floating[::1] packed) except -1:
    """The direct route's work split for p's geometry and thread count, its offsets, scratch
    and packed weight (packed, or packed here when several items read it, or none)."""
    cdef geom_t *g = &p.g
    p.kernel = K_DIRECT
    p.dg = _direct_geom(g)
    p.tab = <idx_t *>_keep_data(keep, _direct_offsets(&p.dg))
    # with fewer (image, group) pairs than 2 per thread, split each into `want` items: by
    # pixels (blocks of 48-pixel strips, each unfolding only its rows of the image) when the
    # unfolded image U outweighs the group's weights, else by filter blocks (each unfolding all
    # of U but packing and reading only its own weights). With fewer pairs than threads, U's
    # unfolds weigh more: then one item per thread (want1), by pixels while each gets 2 strips
    # (14x14: 5 strips, the last of 4 pixels, in 2 and 2.1), else by filter blocks
    cdef int n_threads = p.nt
    cdef idx_t npb = 1, nfr = 1, FB = cvx_direct_filter_block(g.Fg), S = (g.OH * g.OW + 47) // 48
    cdef idx_t want = (2 * <idx_t>n_threads + g.N * g.G - 1) // (g.N * g.G)
    cdef idx_t want1 = (<idx_t>n_threads + g.N * g.G - 1) // (g.N * g.G)
    cdef idx_t nbands = _owned_bands(g.N * g.G, n_threads)
    cdef bint owned = False
    if n_threads > 1 and want > 1:
        if p.dg.Cg * p.dg.sh * p.dg.kw * p.dg.Hq * p.dg.OW >= g.Fg * p.dg.K:
            if nbands > 1 and S >= nbands:
                npb, owned = nbands, True
            else:
                npb = _balanced_pixel_blocks(S, g.OH * g.OW, min(want1, S), min(want, S),
                                             g.N * g.G, n_threads)
        elif want1 == 1:
            nfr = min((g.Fg + FB - 1) // FB, want)
        elif S >= 2 * want1:
            npb = want1
        else:
            nfr = min((g.Fg + FB - 1) // FB, want1)
    if _owns_planes(g.N * g.G, n_threads):
        owned = True
    p.npb, p.nfr, p.owned = npb, nfr, owned
    p.nt = _threads_for(g.N * g.G * npb * nfr, n_threads)
    p.ld_s = direct_fwd_scratch(&p.dg)
    if packed is None and g.N * npb >= 2:
        # several items (images, pixel blocks) read each group's filter blocks: packed once here
        # (by all the threads) rather than by every item
        p.wp = _keep_data(keep, pack_direct_weight(w, g.G, p.nt))
    elif packed is not None:
        p.wp = &packed[0]
    return 0


def pack_direct_weight(const floating[:, :, :, ::1] w, Py_ssize_t groups, int n_threads=1):
    """w (F, C/groups, kH, kW) packed for conv2d_forward_direct's ``packed`` argument: group by
    group, the filter blocks of the active ISA's forward tile, tap-major (isa/kernels.inc,
    cvx_direct_pack), on up to n_threads threads (each packing whole filter blocks: the same
    array). Valid for this process (the ISA is chosen once at import)."""
    cdef cvx_direct_geom d
    cdef idx_t gi, FK, it, c, nch, nblk, FB
    d.Fg = w.shape[0] // groups
    d.K = w.shape[1] * w.shape[2] * w.shape[3]
    FK = d.Fg * d.K
    out = np.empty(w.shape[0] * d.K, dtype=_DTYPE[floating is double])
    cdef floating[::1] o = out
    if FK == 0:
        return out
    FB = cvx_direct_filter_block(d.Fg)
    nblk = (d.Fg + FB - 1) // FB
    nch = min(nblk, max(1, <idx_t>n_threads))  # ranges of filter blocks per group
    n_threads = _threads_for(groups * nch, n_threads)
    with nogil, parallel(num_threads=n_threads):
        for it in prange(groups * nch, schedule='static'):
            gi = it // nch
            c = it % nch
            if floating is float:
                cvx_direct_pack_float(&d, &w[0, 0, 0, 0] + gi * FK, &o[0] + gi * FK,
                                      FB * (nblk * c // nch), FB * (nblk * (c + 1) // nch))
            else:
                cvx_direct_pack_double(&d, &w[0, 0, 0, 0] + gi * FK, &o[0] + gi * FK,
                                       FB * (nblk * c // nch), FB * (nblk * (c + 1) // nch))
    return out


# --------------------------------------------------------------------------------------------
# valid-taps forward (isa/valid_taps.inc): the filters in the vector lanes (blocks of FB =
# cvx_vt_filter_block filters: 64 floats on AVX-512), each output pixel's sum over only the taps
# that land inside the input. The other routes multiply the zero padding like any input (their
# unfolded rows hold it), which on small planes is a large part of the work: a 3x3 kernel with
# padding 1 reads padding in 18% of its products on a 7x7 plane, 9% on 14x14, 4.6% on 28x28.
# Each output element is bias + its in-image products over the channels ascending and, within a
# channel, the taps in row-major order, one fused multiply-add each (valid_taps.inc), so the
# result is the same for every thread count, band and batch. Zeros skipped change no finite sum
# (x + w*0 = x) except possibly the sign of a zero one, but inf or NaN times a padded zero is
# NaN, which the other routes (and PyTorch's reference) leave in y: a weight with a non-finite
# element runs the GEMM route instead (pack_valid_taps_weight finds it while packing).
# Work items: (block of images, group, block of filters, band of output rows); an item's sums
# wait in the thread's scratch, pixel-major, about VT_BAND_BYTES (its images' rows of OW*FB; a
# single row may take up to VT_BAND_ELEMS elements), its register tiles run along a region's
# rows, down its columns or across its images (valid_taps.inc), and the blocks and bands follow
# the thread count (a pixel's sum never depends on them). At most VT_IMAGES images per item
# (twice the widest tile). VT_BAND_BYTES is a quarter of a 1 MB L2: the sums are written there,
# then read again by the transposes into y, beside the block's packed weights. Measured on a
# Zen 4 (float32, 3x3, medians of alternated processes, GFLOP/s, 1 MB of sums per item / 256
# KB): 64x112x112 -> 128 batch 16 on two threads 167-178 / 187-193, batch 4 on one thread 83-88
# / 92-106; 128 KB and 512 KB were slower on one thread or the other (e.g. 128x56x56 -> 128
# batch 4, one thread: 100-104 at 128 KB, 101-108 at 256 KB, 91-95 at 512 KB).
DEF VT_BAND_ELEMS = 262144
DEF VT_BAND_BYTES = 262144
DEF VT_IMAGES = 14


cdef cvx_vt_geom _vt_geom(const geom_t *g) noexcept nogil:
    cdef cvx_vt_geom v
    v.Cg, v.H, v.W, v.kh, v.kw = g.Cg, g.H, g.W, g.kh, g.kw
    v.sh, v.sw, v.ph, v.pw, v.dil_h, v.dil_w = g.sh, g.sw, g.ph, g.pw, g.dil_h, g.dil_w
    v.OH, v.OW = g.OH, g.OW
    return v


def valid_taps_band_elems():
    """The most elements of one work item's sums in the valid-taps forward (a band of output
    rows times the filter block): functional/_routes.py accepts no plane a row of which needs
    more."""
    return VT_BAND_ELEMS


def valid_taps_packed_elems(Py_ssize_t F, Py_ssize_t K, Py_ssize_t groups, bint is_double):
    """Elements of pack_valid_taps_weight's array for F filters of K = C/G*kH*kW elements in
    `groups` groups: per group, its filters rounded up to whole blocks, times K."""
    cdef idx_t fb = cvx_vt_filter_block(is_double)
    return groups * ((F // groups + fb - 1) // fb) * fb * K


def empty_aligned(Py_ssize_t n, dtype, Py_ssize_t align=64):
    """An uninitialised 1-D array of n elements of dtype whose data starts on an `align`-byte
    boundary (a power of two; for n > 0: an empty array's pointer is numpy's). numpy aligns
    its data to 16 bytes only: a 64-byte vector load from it may span two cache lines (the
    valid-taps weight, pack_valid_taps_weight), and a block meant for 2 MB pages must start
    on one (convext.inference's arenas)."""
    if align < 1 or align & (align - 1):
        raise ValueError(f"empty_aligned: align must be a power of two, got {align}")
    nbytes = n * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip : skip + nbytes].view(dtype)


cdef extern from "Python.h":
    Py_ssize_t _refcnt "Py_REFCNT" (PyObject *o)


def only_in_list(list items, Py_ssize_t i):
    """True when ``items`` holds the only reference to items[i] (the count read from the object
    itself: no temporary reference, whatever the interpreter does with its own). For
    convext._recycle, which calls it holding its lock."""
    if not 0 <= i < len(items):
        raise IndexError(f"i: {i} is out of range for {len(items)} items")
    return _refcnt(PyList_GET_ITEM(items, i)) == 1


cdef int _vt_pack_rotated(const floating *w, idx_t Fg, idx_t Cg, idx_t kk, idx_t fb, idx_t blk,
                          floating *wp) noexcept nogil:
    """Block blk of pack_valid_taps_weight's packing of one group's input-gradient weight
    w'[c, f] = w[f, c] rotated by 180 degrees (_grad_input_as_forward), read straight from the
    group's w (Fg filters, Cg channels, kk taps): wp[(f*kk + t)*fb + j] = w[f, blk*fb + j,
    kk-1-t] for the block's channels j, 0 past Cg (w' has Cg filters of Fg channels; a 180-degree
    rotation of both axes reverses the taps' row-major order). Returns 0 when a weight it read
    is an inf or a NaN, else 1."""
    cdef idx_t c0 = blk * fb, nc = min(fb, Cg - c0), f, j, t
    cdef const floating *src
    cdef floating *d
    cdef floating v
    cdef int bad = 0
    for f in range(Fg):
        src = w + (f * Cg + c0) * kk  # the block's channels of filter f: nc * kk in a row
        d = wp + f * kk * fb
        for j in range(nc):
            for t in range(kk):
                v = src[j * kk + t]
                bad = bad | (v - v != 0)
                d[(kk - 1 - t) * fb + j] = v
        for t in range(kk):
            for j in range(nc, fb):
                d[t * fb + j] = 0
    return not bad


def pack_valid_taps_weight(const floating[:, :, :, ::1] w, Py_ssize_t groups, int n_threads=1,
                           bint rotated=False):
    """w (F, C/groups, kH, kW) packed for conv2d_forward_valid_taps's ``packed``: per group, per
    block of filters, channel-major, tap-major, the block's filters contiguous (the filters past
    the group's zero); or None when w holds an inf or a NaN (that weight takes the GEMM route:
    see above); its data starts on a 64-byte boundary. On up to n_threads threads (blocks are
    independent: the same array). Valid for this process (the ISA is chosen once at import).
    rotated: the packing of the input gradient's weight w' instead (_grad_input_as_forward:
    w'[c, f] = w[f, c] rotated by 180 degrees in each group, of shape (C, F/groups, kH, kW)),
    the same array, read straight from w without making w' (_vt_pack_rotated)."""
    cdef cvx_vt_geom vg  # the packing reads Cg, kh and kw only
    vg.H = vg.W = vg.sh = vg.sw = vg.ph = vg.pw = vg.dil_h = vg.dil_w = vg.OH = vg.OW = 0
    vg.Cg, vg.kh, vg.kw = w.shape[1], w.shape[2], w.shape[3]
    cdef idx_t Fg = w.shape[0] // groups, Cg = w.shape[1], kk = w.shape[2] * w.shape[3]
    # the packed weight's filters per group and its channels x taps per filter
    cdef idx_t nf = Cg if rotated else Fg, ck = (Fg if rotated else Cg) * kk
    cdef idx_t fb = cvx_vt_filter_block(floating is double), nblk = (nf + fb - 1) // fb
    cdef idx_t it, gi, blk
    # on a cache line: the tile loads its vectors of filters from it. Measured on an Intel Xeon
    # (AVX-512, 2 MB L2 per core; float32, 64x56x56 -> 64 3x3, batch 1, one thread, medians of
    # 60 alternated calls): 1.27 ms with the weight 32 bytes into a line (where numpy put it),
    # 1.16 ms aligned.
    out = empty_aligned(valid_taps_packed_elems(groups * nf, ck, groups, floating is double),
                        _DTYPE[floating is double])
    finite = np.ones(max(1, groups * nblk), dtype=np.int8)
    cdef floating[::1] o = out
    cdef signed char[::1] ok = finite
    if o.shape[0] == 0:
        return out
    n_threads = _threads_for(groups * nblk, n_threads)
    with nogil, parallel(num_threads=n_threads):
        for it in prange(groups * nblk, schedule='static'):  # block blk of group gi, at it*fb*ck
            gi = it // nblk
            blk = it % nblk
            if rotated:
                ok[it] = _vt_pack_rotated(&w[0, 0, 0, 0] + gi * Fg * Cg * kk, Fg, Cg, kk, fb,
                                          blk, &o[0] + it * fb * ck)
            elif floating is float:
                ok[it] = cvx_vt_pack_float(&vg, Fg, &w[0, 0, 0, 0] + gi * Fg * ck,
                                           &o[0] + gi * nblk * fb * ck, blk, blk + 1)
            else:
                ok[it] = cvx_vt_pack_double(&vg, Fg, &w[0, 0, 0, 0] + gi * Fg * ck,
                                            &o[0] + gi * nblk * fb * ck, blk, blk + 1)
    return out if finite.all() else None


def conv2d_forward_valid_taps(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                              const floating[::1] b, floating[:, :, :, ::1] y,
                              Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                              Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                              Py_ssize_t groups, int n_threads,
                              const floating[:, :, :, ::1] residual=None, int act=0, double a0=0,
                              double a1=0, const floating[::1] packed=None):
    """y = act(conv2d(x, w) + b + residual) on the valid-taps route (b and residual may be None;
    act an ACT_* code, 0: none; the residual and activation on each work item's block of y after
    its sums, the arithmetic of conv2d_epilogue). packed: pack_valid_taps_weight(w, groups), or
    None (then packed here; a w with a non-finite element then runs conv2d_forward_gemm).
    kH, kW <= 16 and OW * FB <= VT_BAND_ELEMS (functional/_routes.py). Fills all of y."""
    _forward_once(ROUTE_VALID_TAPS, x, w, b, y, stride_h, stride_w, pad_top, pad_left, dil_h,
                  dil_w, groups, n_threads, residual, act, a0, a1, packed, -1, -1)


cdef int _prep_valid_taps(fwd_t *p, list keep, const floating[:, :, :, ::1] w,
                          const floating[::1] packed) except -1:
    """The valid-taps route's work split for p's geometry and thread count, its scratch and
    packed weight (packed, or packed here: a w with a non-finite element then takes the GEMM
    route, _prep_gemm)."""
    if packed is None:
        packed_once = pack_valid_taps_weight(w, p.g.G, p.nt)
        if packed_once is None:
            return _prep_gemm(p, keep, w, packed)  # (packed is None)
        p.wp = _keep_data(keep, packed_once)
    else:
        p.wp = &packed[0]
    return _vt_plan(p, <const floating *>p.wp)


cdef int _vt_plan(fwd_t *p, const floating *wp) except -1:
    """The valid-taps route's work split for p's geometry and thread count and its scratch, for
    the packed weight wp (pack_valid_taps_weight's layout)."""
    cdef geom_t *g = &p.g
    p.wp = wp
    p.kernel = K_VALID_TAPS
    p.vg = _vt_geom(g)
    # the kernel's epilogue: the residual, then a clamp (the other activations after it, in
    # _fwd_valid_taps)
    cdef floating lo = 0, hi = 0
    p.vg.clamp = max(_dw_clamp(&p.e, &lo, &hi), 0)
    p.vg.lo, p.vg.hi = lo, hi
    cdef idx_t fb = cvx_vt_filter_block(floating is double), nblk = (g.Fg + fb - 1) // fb
    # items of about VT_BAND_BYTES of sums (at least one row): bands of rows, then blocks of
    # images, and at least two items per thread where the images and then the rows allow
    cdef idx_t band_elems = VT_BAND_BYTES // sizeof(floating)
    cdef idx_t rows = max(1, min(g.OH, band_elems // (g.OW * fb)))
    cdef idx_t nimg = max(1, min(g.N, VT_IMAGES, band_elems // (rows * g.OW * fb)))
    cdef idx_t pairs = g.G * nblk, want
    if pairs * ((g.N + nimg - 1) // nimg) < 2 * <idx_t>p.nt:
        nimg = max(1, min(nimg, g.N * pairs // (2 * <idx_t>p.nt)))
    cdef idx_t nib = (g.N + nimg - 1) // nimg  # image blocks, their sizes within one
    want = (2 * <idx_t>p.nt + nib * pairs - 1) // (nib * pairs)
    rows = min(rows, max(1, (g.OH + want - 1) // want))
    cdef idx_t nbands = (g.OH + rows - 1) // rows
    p.fb, p.nblk, p.rows, p.nimg, p.nib, p.nbands = fb, nblk, rows, nimg, nib, nbands
    p.nt = _threads_for(nib * pairs * nbands, p.nt)
    p.ld_s = cvx_vt_scratch(fb, nimg * rows, g.OW)
    return 0


cdef inline const floating *_vt_item_weight(idx_t it, const floating *wp,
                                            const fwd_t *p) noexcept nogil:
    """The packed weights of _fwd_valid_taps's work item `it` (its group's filter block)."""
    cdef idx_t blk = (it // p.nbands) % p.nblk, gi = (it // (p.nbands * p.nblk)) % p.g.G
    return wp + (gi * p.nblk + blk) * p.fb * (p.g.Cg * p.g.kh * p.g.kw)


cdef inline void _fwd_valid_taps_item(idx_t it, idx_t nxt, const floating *x,
                                      const floating *wp, const floating *bp, floating *y,
                                      const fwd_t *p, const floating *rp,
                                      floating *buf) noexcept nogil:
    """Work item `it` of _fwd_valid_taps on the thread's scratch buf; nxt: the item the
    thread runs next (its weights are fetched into the L2 meanwhile), or -1."""
    cdef const geom_t *g = &p.g
    cdef idx_t fb = p.fb, nblk = p.nblk, nbands = p.nbands
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W
    cdef idx_t band = it % nbands, blk = (it // nbands) % nblk
    cdef idx_t gi = (it // (nbands * nblk)) % g.G
    cdef idx_t n = it // (nbands * nblk * g.G)  # the image block
    cdef idx_t n1 = (n + 1) * g.N // p.nib
    cdef idx_t oh0 = band * p.rows, oh1, nf = min(fb, g.Fg - blk * fb), base, m
    cdef const floating *bb = NULL
    cdef const floating *wnext = NULL
    if nxt >= 0:
        wnext = _vt_item_weight(nxt, wp, p)
    n = n * g.N // p.nib
    oh1 = min(g.OH, oh0 + p.rows)
    if bp != NULL:
        bb = bp + gi * g.Fg + blk * fb
    base = (n * g.F + gi * g.Fg + blk * fb) * P
    if floating is float:
        cvx_vt_fwd_float(&p.vg, x + (n * g.C + gi * g.Cg) * HW, g.C * HW,
                         _vt_item_weight(it, wp, p), wnext, bb, nf, y + base, g.F * P,
                         _at(rp, base), n1 - n, oh0, oh1, buf)
    else:
        cvx_vt_fwd_double(&p.vg, x + (n * g.C + gi * g.Cg) * HW, g.C * HW,
                          _vt_item_weight(it, wp, p), wnext, bb, nf, y + base, g.F * P,
                          _at(rp, base), n1 - n, oh0, oh1, buf)
    if p.e.act != ACT_NONE and not p.vg.clamp:  # another activation, after the residual
        for m in range(n1 - n):
            base = (m * g.F * P) + (n * g.F + gi * g.Fg + blk * fb) * P + oh0 * g.OW
            _epilogue(y + base, P, nf, (oh1 - oh0) * g.OW, NULL, P, &p.e)


cdef void _fwd_valid_taps(const floating *x, const floating *wp, const floating *bp,
                          floating *y, const fwd_t *p, const floating *rp,
                          floating *scratch) noexcept nogil:
    """Work items (block of images, group, filter block, band of rows; _prep_valid_taps's
    split): the valid-taps kernel with the residual and a clamp in its epilogue, then any other
    activation on the item's block of y (the arithmetic of conv2d_epilogue). On one thread the
    items in order; on up to CVX_SCHED_THREADS threads each thread's static share, the units of
    a share another thread has not yet started taken over by a thread that has run out
    (cvx_sched, _openmp_helpers.h: a thread held up by another process no longer holds up the
    layer, while the others run what a static schedule would have left to it); on more, a
    static schedule where _static_items allows it, else a dynamic one. A thread that knows
    which item it likely runs next (the next of its unit, else the first of its share's next
    unit: cvx_sched_after; on more threads, the next of its static share) fetches that item's
    weights while it runs one. Measured on the 2-vCPU Zen 3 VM (float32, two threads,
    optimize_for_inference of resnet18, its time over onnxruntime's in the same process,
    medians of 11 alternated calls, one figure per process, processes of the two builds
    alternated; static or dynamic as before / this schedule): with a process spinning on one
    of the two CPUs for 3 ms of every 6 (four processes each), batch 1 1.21-1.28 (median 1.25)
    / 1.01-1.16 (1.09) and batch 8 1.20-1.23 (1.21) / 0.91-1.06 (0.93); without it, on the
    busy host as it was (three each), batch 1 1.13-1.17 / 1.11-1.15 and batch 8 1.18-1.35 /
    1.03-1.26."""
    cdef idx_t it, nitems = p.nib * p.g.G * p.nblk * p.nbands
    cdef idx_t per = nitems if p.nt == 1 else nitems // p.nt
    cdef int tid
    cdef cvx_sched sched
    if p.nt == 1:
        for it in range(nitems):
            _fwd_valid_taps_item(it, it + 1 if it + 1 < nitems else -1, x, wp, bp, y, p, rp,
                                 scratch)
    elif p.nt <= CVX_SCHED_THREADS:
        cvx_sched_init(&sched, nitems, p.nt)
        it = tid = 0  # (each thread's own inside the region)
        with parallel(num_threads=p.nt):
            tid = cvx_omp_get_thread_num()
            it = cvx_sched_next(&sched, tid)
            while it >= 0:
                _fwd_valid_taps_item(it, cvx_sched_after(&sched, tid, it), x, wp, bp, y, p, rp,
                                     scratch + tid * p.ld_s)
                it = cvx_sched_next(&sched, tid)
    elif _static_items(nitems, p.nt):
        for it in prange(nitems, schedule='static', num_threads=p.nt):
            _fwd_valid_taps_item(it, it + 1 if (it + 1) % per else -1, x, wp, bp, y, p, rp,
                                 scratch + cvx_omp_get_thread_num() * p.ld_s)
    else:
        for it in prange(nitems, schedule='dynamic', num_threads=p.nt):
            _fwd_valid_taps_item(it, -1, x, wp, bp, y, p, rp,
                                 scratch + cvx_omp_get_thread_num() * p.ld_s)


def gemm_packed_weight_elems(Py_ssize_t F, Py_ssize_t K, Py_ssize_t groups, bint is_double):
    """Elements of the packed copy of a weight of F filters of K = C/G*kH*kW elements in
    `groups` groups (conv2d_pack_weight_gemm) for the active instruction set: per group, the
    F/G x K matrix in strips of the GEMM tile's rows, the last strip zero-padded."""
    return groups * cvx_gemm_packed_a_elems(F // groups, K, gemm_mr(is_double))


def conv2d_pack_weight_gemm(const floating[:, :, :, ::1] w, floating[::1] packed,
                            Py_ssize_t groups):
    """Pack the weight w (F, C/G, kH, kW) once for conv2d_forward_gemm(..., packed=):
    `packed` has gemm_packed_weight_elems(F, C/G*kH*kW, groups, w is float64) elements. The
    packing is the one every GEMM call does to its A blocks (isa/kernels.inc), done whole, so
    the forward pass with it gives the same bits as without it."""
    cdef idx_t F = w.shape[0], K = w.shape[1] * w.shape[2] * w.shape[3], G = groups
    cdef idx_t Fg = F // G, gi
    cdef idx_t per = cvx_gemm_packed_a_elems(Fg, K, gemm_mr(floating is double))
    with nogil:
        for gi in range(G):
            gemm_pack_a(Fg, K, &w[gi * Fg, 0, 0, 0], K, 1, &packed[gi * per])


cdef idx_t[::1] _gather_table(const geom_t *g, idx_t nimg):
    """Offsets of the unfolded input for gemm_pack_b_gather: entry t*ldt + m*P + p (tap t =
    i*kW + j, image m < nimg, output pixel p; ldt = nimg*P) is the offset of its input element
    from channel 0 of image 0, m*C*H*W + ih*W + iw, or -1 in the zero padding."""
    cdef idx_t P = g.OH * g.OW, ldt = nimg * P, HW = g.H * g.W
    cdef idx_t i, j, m, oh, ow, ih, iw, t
    cdef idx_t[::1] tab = np.empty(max(1, g.kh * g.kw * ldt), dtype=np.intp)
    for i in range(g.kh):
        for j in range(g.kw):
            t = i * g.kw + j
            for oh in range(g.OH):
                ih = oh * g.sh + i * g.dil_h - g.ph
                for ow in range(g.OW):
                    iw = ow * g.sw + j * g.dil_w - g.pw
                    if ih < 0 or ih >= g.H or iw < 0 or iw >= g.W:
                        tab[t * ldt + oh * g.OW + ow] = -1
                    else:
                        tab[t * ldt + oh * g.OW + ow] = ih * g.W + iw
            for m in range(1, nimg):
                for oh in range(P):
                    ih = tab[t * ldt + oh]
                    tab[t * ldt + m * P + oh] = -1 if ih < 0 else ih + m * g.C * HW
    return tab


def conv2d_forward_gemm(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                        const floating[::1] b, floating[:, :, :, ::1] y,
                        Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                        Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                        Py_ssize_t groups, int n_threads,
                        const floating[:, :, :, ::1] residual=None, int act=0, double a0=0,
                        double a1=0, const floating[::1] packed=None):
    """y = act(conv2d(x, w) + b + residual) on the GEMM route (b and residual may be None; act
    an ACT_* code, 0: none). Fills all of y. packed: None, or w packed by
    conv2d_pack_weight_gemm (with the same groups), which the GEMMs then read in place of
    packing w on every call (the same bits: convext.inference packs each weight once).

    Small planes: when several images' tiles fit in one tile of TILE_BYTES, a work item puts
    nimg images side by side in the GEMM's columns (its output goes through a per-thread
    buffer). Few work items (batch 1): on a plane of many more pixels than filters, the plane
    is cut into more pixel tiles (_split_pixels, SPLIT_PIXELS_MIN_RATIO); else each item is
    split into blocks of filters (rows of the
    GEMM; whole strips of the GEMM tile's rows, so that with `packed` each block starts at a
    packed strip; near-equal, _filter_block), which share the item's unfolded input, packed
    once by all the threads (_fwd_gemm_shared_b), or, for a 1x1 kernel reading its images in
    place where the thread count is a multiple of the items, one block per thread packing its
    own strips of the image (_prep_gemm). None of these changes any output's arithmetic
    (the GEMM's result depends only on K), so y is the same for every batch size and thread
    count."""
    _forward_once(ROUTE_GEMM, x, w, b, y, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w,
                  groups, n_threads, residual, act, a0, a1, packed, -1, -1)


cdef int _prep_gemm(fwd_t *p, list keep, const floating[:, :, :, ::1] w,
                    const floating[::1] packed) except -1:
    """The GEMM route's work split for p's geometry and thread count (conv2d_forward_gemm's
    docstring), its gather table, scratch and packed weight (packed, or packed here when
    several items read it)."""
    cdef geom_t g = p.g
    cdef int n_threads = p.nt
    cdef idx_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW
    cdef bint image_is_cols = _pointwise(&g)
    cdef idx_t PT = tile_pixels(K, P, sizeof(floating))
    cdef idx_t nimg = tile_pixels(K, g.N * P, sizeof(floating)) // P
    if nimg < 2 or (image_is_cols and K < POINTWISE_SIDE_BY_SIDE_MIN_K):
        nimg = 1
    cdef idx_t ntile = 1 if nimg > 1 else (P + PT - 1) // PT
    cdef idx_t nbands = 1
    if nimg == 1 and n_threads > 1 and P >= SPLIT_PIXELS_MIN_RATIO * g.Fg:
        nbands = _owned_bands(g.N * g.G, n_threads)
        if nbands > 1 and PT >= 48 and (P + 47) // 48 >= nbands:
            ntile = nbands * _band_tiles(P, nbands, PT)  # tiles of at most PT pixels
        else:
            nbands = 1
            PT = _split_pixels(PT, P, g.N * g.G, n_threads)
            ntile = (P + PT - 1) // PT
    # the batch in nib blocks of at most nimg images (_image_block_start: sizes within one of
    # each other); with several threads, a multiple of the thread count where the batch has
    # the images (8 images in blocks of 3 would leave one thread two blocks, the other one)
    cdef idx_t nib = (g.N + nimg - 1) // nimg, nbal
    if nimg > 1 and n_threads > 1 and nib % n_threads:
        nbal = (nib + n_threads - 1) // n_threads * n_threads
        if nbal <= g.N:
            nib = nbal
    cdef idx_t items = nib * g.G * ntile
    cdef idx_t nfb = 1, mr = gemm_mr(floating is double), Fgp = 0, strips, want, FB
    cdef const floating *wp = NULL
    if packed is None and nimg == 1 and items >= 2 * g.G * <idx_t>max(1, n_threads):
        # tiles of one image, at least two items per thread reading each group's weight:
        # packed once here rather than in every item's GEMM. Not for images side by side,
        # where each item's GEMM is wide and packing its own blocks (kept in cache) measured
        # faster than reading a packed copy of the whole weight.
        packed = np.empty(gemm_packed_weight_elems(g.F, K, g.G, floating is double),
                          dtype=_DTYPE[floating is double])
        conv2d_pack_weight_gemm(w, packed, g.G)
    if packed is not None:
        wp = &packed[0]
        Fgp = (g.Fg + mr - 1) // mr * mr  # rows of one group's packed weight
    # Few items (batch 1): each item's filters in nfb blocks of whole strips of the GEMM tile's
    # mr rows (a block starts at a packed strip), their strip counts within one of each other
    # (_filter_block): two blocks per thread where the strips allow it, else one, so that the
    # threads get equal shares. (Blocks rounded up to a multiple of 24 rows had left a thread
    # 24 of 32 filters, or 48 of 64.) A 1x1 kernel reading images in place, where the thread
    # count is a multiple of the items (batch 1): n_threads / items blocks per item, one per
    # thread, each packing its own B strips from the image inside its GEMM (_fwd_gemm), as the
    # single thread does, rather than the shared B's two phases (_fwd_gemm_shared_b) with
    # their barrier and every thread's GEMM reading strips packed by another core (with other
    # counts, 3 items on 2 threads, one block per thread would leave a thread idle a third of
    # the time: those keep the shared B's finer blocks). Measured
    # (Zen 5, float32, batch 1, 2 threads, kernel alone, medians of 15 x 200 calls, us, shared
    # B / own strips): 64x14x14 -> 384 36.9-40.8 / 31.0-32.4, 96x14x14 -> 576 69.3-75.2 /
    # 62.9-63.7, 64x7x7 -> 384 14.3 / 11.4-11.6, 160x7x7 -> 960 51.5-53.2 / 48.8-49.3,
    # 1024x14x14 -> 256 337-352 / 314; 320x7x7 -> 1280 124-129 / 130-132, 256x14x14 -> 1024
    # 296-311 / 294-306, 2048x7x7 -> 512 397-403 / 366-369.
    strips = (g.Fg + mr - 1) // mr
    cdef bint own_strips = image_is_cols and nimg == 1 and n_threads % items == 0
    if n_threads > 1 and items < 2 * <idx_t>n_threads and g.Fg >= 16 and nbands == 1:
        want = (2 * <idx_t>n_threads + items - 1) // items
        if strips < 2 * want or own_strips:
            want = (<idx_t>n_threads + items - 1) // items
        nfb = min(strips, want)
    FB = min(g.Fg, mr * ((strips + nfb - 1) // nfb))  # filters in the largest block
    n_threads = _threads_for(items * nfb, n_threads)
    # B packed straight from x through a table of offsets (one copy of the input, not an
    # unfolded tile and then its packing), where the table is small enough
    cdef bint gather = nimg > 1 and nfb == 1 and g.kh * g.kw * nimg * P <= GATHER_MAX
    cdef const idx_t *tab = NULL
    if gather:
        tab = <idx_t *>_keep_data(keep, _gather_table(&g, nimg).base)
    cdef idx_t per = 0 if (image_is_cols and nimg == 1) else K * PT
    if nimg > 1:
        per = K * nimg * P + FB * nimg * P
    if gather:  # the packed B (its strips rounded up), and the output block of nimg images
        per = (gemm_packed_b_elems(K, nimg * P, floating is double) + 15) // 16 * 16 + FB * nimg * P
    # several filter blocks per item (but own_strips, above): they share its B, unfolded and
    # packed once by all the threads (a block of cb channels at a time, through the thread's
    # buffer; an image read in place packed from x), so per thread: that block's unfolded rows,
    # or (nimg > 1) the output block of the filter blocks
    cdef bint share_b = nfb > 1 and not own_strips
    cdef idx_t cb = max(1, PACK_ROWS // (g.kh * g.kw)), ldb = 0, steps
    cdef idx_t cols = nimg * P if nimg > 1 else PT
    if share_b:
        cb = min(cb, g.Cg)
        if items * ((g.Cg + cb - 1) // cb) < 2 * <idx_t>n_threads:
            # fewer packing steps than two per thread (a few items of a 1x1 kernel on at most
            # PACK_ROWS channels: one step each) would leave the other threads waiting at the
            # phase's end: the channels in smaller blocks (the packed B is the same)
            steps = (2 * <idx_t>n_threads + items - 1) // items  # per item
            cb = (g.Cg + steps - 1) // steps
        per = cb * g.kh * g.kw * cols
        if nimg > 1:
            per = max(per, FB * cols)
        elif image_is_cols:
            per = 0
        ldb = (gemm_packed_b_elems(K, cols, floating is double) + 15) // 16 * 16
        p.aux_elems = items * ldb  # (_place_scratch: its strips start on a cache line)
    if packed is not None:
        keep.append(packed)
    p.kernel = K_GEMM_SHARED_B if share_b else K_GEMM
    p.wp, p.Fgp, p.ldb, p.tab = wp, Fgp, ldb, tab
    p.PT, p.nimg, p.nib, p.nfb, p.mr, p.nbands, p.cb = PT, nimg, nib, nfb, mr, nbands, cb
    p.image_is_cols, p.per, p.nt = image_is_cols, per, n_threads
    p.ld_s = _gemm_scratch_row(per)
    return 0


cdef void *_keep_data(list keep, a) except NULL:
    """The address of the (contiguous, non-empty) array a's first element; a kept in `keep`."""
    keep.append(a)
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef int _prep_conv(fwd_t *p, tuple xs, tuple ws, const floating *w, const floating[::1] b,
                    tuple ys, idx_t groups, idx_t sh, idx_t sw, idx_t ph, idx_t pw,
                    idx_t dil_h, idx_t dil_w, int n_threads, int act, double a0,
                    double a1) except -1:
    """The fields of p every route reads: geometry, epilogue, thread count, w (of shape ws; NULL
    for a run that reads only a packed weight) and b."""
    p.g = _geom(xs, ws, ys, groups, sh, sw, ph, pw, dil_h, dil_w)
    p.e = _epi(act, a0, a1)
    p.nt = n_threads
    p.w = w
    p.b = NULL
    if b is not None:
        p.b = &b[0]
    p.wp = p.scratch = p.aux = NULL
    p.itemsize = sizeof(floating)
    p.aux_elems = 0
    p.tab = p.tab2 = NULL
    p.ptrs = NULL
    p.nptrs = 0
    p.owned = p.image_is_cols = p.straight = False
    return 0


cdef void _fwd_run(const fwd_t *p, const floating *x, floating *y,
                   const floating *r) noexcept nogil:
    """y = act(conv2d(x, w) + b + r) by p's kernel (r: the residual, or NULL)."""
    cdef const floating *w = <const floating *>p.w
    cdef const floating *wp = <const floating *>p.wp
    cdef const floating *b = <const floating *>p.b
    cdef floating *s = <floating *>p.scratch
    if p.kernel == K_DIRECT:
        _fwd_direct(x, w, wp, b, y, &p.g, &p.dg, p.tab, p.npb, p.nfr, p.owned, r, &p.e, s,
                    p.ld_s, p.nt)
    elif p.kernel == K_GEMM:
        _fwd_gemm(x, w, wp, p.Fgp, b, y, &p.g, p.PT, p.nimg, p.nib, p.nfb, p.mr, p.nbands,
                  p.image_is_cols, p.tab, r, &p.e, s, p.ld_s, p.per, p.nt)
    elif p.kernel == K_GEMM_SHARED_B:
        _fwd_gemm_shared_b(x, w, wp, p.Fgp, b, y, &p.g, p.PT, p.nimg, p.nib, p.nfb, p.mr,
                           p.cb, p.image_is_cols, <floating *>p.aux, p.ldb, r, &p.e, s,
                           p.ld_s, p.per, p.nt)
    elif p.kernel == K_VALID_TAPS:
        _fwd_valid_taps(x, wp, b, y, p, r, s)
    elif p.kernel == K_DW_S2 or p.kernel == K_DW_S1 or p.kernel == K_DW_S1F:
        _fwd_depthwise_rows(x, w, b, y, &p.g, &p.e, s, p.ld_s,
                            p.tab if p.kernel == K_DW_S1F else NULL, p.nt)
    elif p.kernel == K_DW_CB:
        _fwd_depthwise_cb(x, w, b, y, &p.g, &p.d, r, &p.e, s, p.ld_s, p.tab, p.nt)
    elif p.kernel == K_DW_CBR:
        _fwd_depthwise_cbr(x, w, b, y, &p.g, &p.d, r, &p.e, s, p.ld_s, p.tab, p.nseg, p.nt)
    else:
        _fwd_depthwise(x, w, b, y, &p.g, &p.d, r, &p.e, s, p.ld_s, p.ptrs, p.tab, p.tab2, p.B,
                       p.straight, p.nt)


cdef inline idx_t _round64(idx_t nbytes) noexcept nogil:
    return (nbytes + 63) // 64 * 64


cdef idx_t _scratch_bytes(const fwd_t *p) noexcept nogil:
    """Bytes of the buffer of everything a run of p writes besides y (_place_scratch): its
    scratch, shared B and tap pointers, alignment included."""
    return (_round64(p.nt * p.ld_s * p.itemsize) + _round64(p.aux_elems * p.itemsize)
            + p.nt * p.nptrs * sizeof(size_t) + 64)


cdef void _place_scratch(fwd_t *p, char *buf) noexcept nogil:
    """p's scratch (each thread's ld_s elements) from buf's first cache line on, then its shared
    B (the GEMM's strips on cache lines), then its tap pointers (nptrs per thread); buf has
    _scratch_bytes(p) bytes."""
    buf += (64 - <size_t>buf % 64) % 64
    p.scratch = buf
    buf += _round64(p.nt * p.ld_s * p.itemsize)
    p.aux = NULL
    if p.aux_elems:
        p.aux = buf
    buf += _round64(p.aux_elems * p.itemsize)
    p.ptrs = NULL
    if p.nptrs:
        p.ptrs = <size_t *>buf


cdef int _prep_route(fwd_t *p, list keep, int route, tuple xs, const floating[:, :, :, ::1] w,
                     const floating[::1] b, tuple ys, idx_t sh, idx_t sw, idx_t ph, idx_t pw,
                     idx_t dil_h, idx_t dil_w, idx_t groups, int n_threads, bint residual,
                     int act, double a0, double a1, const floating[::1] packed, int blocks,
                     int bands) except -1:
    """_prep_conv, then the route's _prep_<route> (route: ROUTE_*; blocks and bands: the
    depthwise route's, as conv2d_forward_depthwise's _blocks and _bands)."""
    _prep_conv(p, xs, _s4(w.shape), &w[0, 0, 0, 0], b, ys, groups, sh, sw, ph, pw, dil_h, dil_w,
               n_threads, act, a0, a1)
    if route == ROUTE_DIRECT:
        return _prep_direct(p, keep, w, packed)
    if route == ROUTE_GEMM:
        return _prep_gemm(p, keep, w, packed)
    if route == ROUTE_VALID_TAPS:
        return _prep_valid_taps(p, keep, w, packed)
    return _prep_depthwise(p, keep, w, residual, blocks, bands)


cdef int _forward_once(int route, const floating[:, :, :, ::1] x,
                       const floating[:, :, :, ::1] w, const floating[::1] b,
                       floating[:, :, :, ::1] y, idx_t sh, idx_t sw, idx_t ph, idx_t pw,
                       idx_t dil_h, idx_t dil_w, idx_t groups, int n_threads,
                       const floating[:, :, :, ::1] residual, int act, double a0, double a1,
                       const floating[::1] packed, int blocks, int bands) except -1:
    """A conv2d_forward_<route> call: _prep_route, then _fwd_run on scratch of its own."""
    cdef fwd_t p
    cdef list keep = []  # what p points into
    cdef const floating *rp = NULL
    _prep_route(&p, keep, route, _s4(x.shape), w, b, _s4(y.shape), sh, sw, ph, pw, dil_h, dil_w,
                groups, n_threads, residual is not None, act, a0, a1, packed, blocks, bands)
    if residual is not None:
        rp = &residual[0, 0, 0, 0]
    return _run_once(&p, &x[0, 0, 0, 0], &y[0, 0, 0, 0], rp)


cdef int _run_once(fwd_t *p, const floating *x, floating *y, const floating *r) except -1:
    """_fwd_run of the prepared p on scratch of its own."""
    scratch = np.empty(_scratch_bytes(p), dtype=np.uint8)
    _place_scratch(p, <char *>cnp.PyArray_DATA(<cnp.ndarray>scratch))
    with nogil:
        _fwd_run(p, x, y, r)
    return 0


_ROUTES = ("direct", "gemm", "valid_taps", "depthwise")  # by ROUTE_* code


@cython.auto_pickle(False)
cdef class ForwardCall:
    """One convolution forward with everything but its data decided once (prepare_forward):
    call(x, y[, residual]) fills y with act(conv2d(x, w) + b + residual), the same bits as the
    route's conv2d_forward_<route> with the same arguments. x, y and residual: C-contiguous,
    aligned, native-order arrays of the prepared shapes and dtype, y writeable and apart from
    x and residual (TypeError / ValueError otherwise, before anything is written). A run
    writes y and its scratch only (a buffer of its own per call, or the one use_scratch gave),
    so calls on their own scratch may run at the same time."""
    cdef fwd_t p
    cdef list keep  # what p points into
    cdef object scratch  # the buffer of p's scratch (use_scratch), or None: one per call
    cdef tuple x_shape, y_shape
    cdef bint residual
    cdef int typenum
    # bytes of the scratch buffer a run needs (use_scratch)
    cdef readonly Py_ssize_t scratch_bytes
    # the threads it runs on (at most the thread count it was prepared for)
    cdef readonly int n_threads

    def __call__(self, x, y, residual=None):
        cdef const char *xp
        cdef char *yp
        cdef const char *rp
        self._resolve(x, y, residual, "", &xp, &yp, &rp)
        cdef fwd_t own
        cdef const fwd_t *p = &self.p
        if self.scratch is None:  # this run's own scratch
            own = self.p
            scratch = np.empty(self.scratch_bytes, dtype=np.uint8)
            _place_scratch(&own, <char *>cnp.PyArray_DATA(<cnp.ndarray>scratch))
            p = &own
        with nogil:
            if self.typenum == cnp.NPY_FLOAT64:
                _fwd_run(p, <const double *>xp, <double *>yp, <const double *>rp)
            else:
                _fwd_run(p, <const float *>xp, <float *>yp, <const float *>rp)

    cdef int _resolve(self, x, y, residual, str at, const char **xp, char **yp,
                      const char **rp) except -1:
        """The data of a run's x, y and residual (NULL: none) after the checks __call__
        documents; an error names each array with `at` after it (a ForwardChain's index)."""
        xp[0] = self._data(x, "x" + at, self.x_shape, False)
        yp[0] = <char *>self._data(y, "y" + at, self.y_shape, True)
        rp[0] = NULL
        cdef Py_ssize_t ny = cnp.PyArray_NBYTES(<cnp.ndarray>y)
        if self.residual != (residual is not None):
            raise TypeError("residual" + at + ": this call was prepared "
                            + ("with" if self.residual else "without") + " one")
        if residual is not None:
            rp[0] = self._data(residual, "residual" + at, self.y_shape, False)
            if rp[0] < yp[0] + ny and yp[0] < rp[0] + ny:
                raise ValueError("y" + at + ": overlaps residual" + at)
        if xp[0] < yp[0] + ny and yp[0] < xp[0] + cnp.PyArray_NBYTES(<cnp.ndarray>x):
            raise ValueError("y" + at + ": overlaps x" + at)
        return 0

    def use_scratch(self, buf):
        """Run on buf (a writeable, contiguous uint8 array of at least scratch_bytes) from now
        on, instead of a new buffer per call: buf is then this call's while it runs, and the
        call's runs must not overlap (convext.inference gives every convolution of a plan the
        plan's one scratch buffer: its steps run one at a time)."""
        if (not isinstance(buf, np.ndarray) or buf.dtype != np.uint8
                or not buf.flags.c_contiguous or not buf.flags.writeable):
            raise TypeError("buf: expected a writeable, contiguous uint8 array")
        if buf.nbytes < self.scratch_bytes:
            raise ValueError(f"buf: expected at least {self.scratch_bytes} bytes, got {buf.nbytes}")
        _place_scratch(&self.p, <char *>cnp.PyArray_DATA(<cnp.ndarray>buf))
        self.scratch = buf

    cdef const char *_data(self, a, str name, tuple shape, bint write) except NULL:
        cdef cnp.ndarray arr
        cdef int i
        cdef bint same
        if not cnp.PyArray_Check(a):
            raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
        arr = <cnp.ndarray>a
        if cnp.PyArray_TYPE(arr) != self.typenum or not cnp.PyArray_ISNOTSWAPPED(arr):
            raise TypeError(f"{name}: expected {_DTYPE[self.typenum == cnp.NPY_FLOAT64]}, "
                            f"got {arr.dtype}")
        same = cnp.PyArray_NDIM(arr) == len(shape)
        for i in range(len(shape) if same else 0):
            same = same and cnp.PyArray_DIMS(arr)[i] == <Py_ssize_t>shape[i]
        if not same:
            raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
        if not cnp.PyArray_ISCARRAY_RO(arr) or (write and not cnp.PyArray_ISWRITEABLE(arr)):
            raise ValueError(f"{name}: expected a C-contiguous, aligned"
                             + (", writeable" if write else "") + " array")
        return <const char *>cnp.PyArray_DATA(arr)


@cython.auto_pickle(False)
cdef class ForwardChain:
    """Prepared convolution calls run one after the other on arrays given once:
    ForwardChain(calls, xs, ys, residuals).run() is calls[i](xs[i], ys[i], residuals[i]) for i
    in order (residuals[i] None: without one), the same bits, in one call without the GIL and
    without Python between the kernels (convext.inference runs its consecutive convolutions on
    the plan's own buffers so). Each call must run on a scratch buffer (ForwardCall.use_scratch;
    the one it has when run() runs); each triple is checked here as ForwardCall checks it
    (TypeError / ValueError naming it, e.g. ``xs[2]``). The chain keeps the calls and arrays:
    a ys[i] may be an xs[j] or residuals[j] of a later call (j > i), which then reads what call
    i wrote. Its runs must not overlap (their calls' scratch)."""
    cdef list keep  # the calls and arrays the pointers below point into
    cdef Py_ssize_t n
    cdef const fwd_t **ps
    cdef const char **xs
    cdef char **ys
    cdef const char **rs
    cdef bint *wide  # float64

    def __cinit__(self):
        self.n = 0
        self.ps = NULL
        self.xs = NULL
        self.ys = NULL
        self.rs = NULL
        self.wide = NULL

    def __init__(self, list calls, list xs, list ys, list residuals):
        cdef Py_ssize_t i, n = len(calls)
        cdef ForwardCall c
        if self.ps != NULL:
            raise TypeError("ForwardChain: already made")
        if not (len(xs) == len(ys) == len(residuals) == n) or n == 0:
            raise ValueError("calls, xs, ys, residuals: expected lists of one length, at least 1")
        self.ps = <const fwd_t **>PyMem_Malloc(n * sizeof(fwd_t *))
        self.xs = <const char **>PyMem_Malloc(n * sizeof(char *))
        self.ys = <char **>PyMem_Malloc(n * sizeof(char *))
        self.rs = <const char **>PyMem_Malloc(n * sizeof(char *))
        self.wide = <bint *>PyMem_Malloc(n * sizeof(bint))
        if (self.ps == NULL or self.xs == NULL or self.ys == NULL or self.rs == NULL
                or self.wide == NULL):
            raise MemoryError()
        for i in range(n):
            if not isinstance(calls[i], ForwardCall):
                raise TypeError(f"calls[{i}]: expected a ForwardCall, "
                                f"got {type(calls[i]).__name__}")
            c = <ForwardCall>calls[i]
            if c.scratch is None:
                raise ValueError(f"calls[{i}]: has no scratch buffer (use_scratch)")
            c._resolve(xs[i], ys[i], residuals[i], f"s[{i}]", &self.xs[i], &self.ys[i],
                       &self.rs[i])
            self.ps[i] = &c.p
            self.wide[i] = c.typenum == cnp.NPY_FLOAT64
        self.keep = [list(calls), list(xs), list(ys), list(residuals)]
        self.n = n

    def __dealloc__(self):
        PyMem_Free(self.ps)
        PyMem_Free(self.xs)
        PyMem_Free(self.ys)
        PyMem_Free(self.rs)
        PyMem_Free(self.wide)

    def __len__(self):
        return self.n

    def run(self):
        """Run the calls in order."""
        cdef Py_ssize_t i
        with nogil:
            for i in range(self.n):
                if self.wide[i]:
                    _fwd_run(self.ps[i], <const double *>self.xs[i], <double *>self.ys[i],
                             <const double *>self.rs[i])
                else:
                    _fwd_run(self.ps[i], <const float *>self.xs[i], <float *>self.ys[i],
                             <const float *>self.rs[i])


def prepare_forward(str route, tuple x_shape, const floating[:, :, :, ::1] w,
                    const floating[::1] b, tuple y_shape, Py_ssize_t stride_h,
                    Py_ssize_t stride_w, Py_ssize_t pad_top, Py_ssize_t pad_left,
                    Py_ssize_t dil_h, Py_ssize_t dil_w, Py_ssize_t groups, int n_threads,
                    bint residual=False, int act=0, double a0=0, double a1=0,
                    const floating[::1] packed=None):
    """A ForwardCall of conv2d_forward_<route> for these shapes and arguments (the same
    arguments as that function, the arrays x, y and residual left for the call; the geometry
    trusted as there: functional.conv's checks and routes). It keeps w, b and packed (which
    must not change while it is in use), its scratch and tables."""
    if route not in _ROUTES:
        raise ValueError(f"route: expected one of {_ROUTES}, got {route!r}")
    if len(x_shape) != 4 or len(y_shape) != 4:
        raise ValueError("x_shape, y_shape: expected 4 dimensions")
    cdef ForwardCall c = ForwardCall.__new__(ForwardCall)
    cdef int code = _ROUTES.index(route)
    c.keep = []
    _prep_route(&c.p, c.keep, code, x_shape, w, b, y_shape, stride_h, stride_w,
                pad_top, pad_left, dil_h, dil_w, groups, n_threads, residual, act, a0, a1,
                packed, -1, -1)
    c.scratch_bytes = _scratch_bytes(&c.p)
    c.scratch = None
    c.keep += [w, b, packed]
    c.x_shape = tuple(int(v) for v in x_shape)
    c.y_shape = tuple(int(v) for v in y_shape)
    c.residual = residual
    c.typenum = cnp.NPY_FLOAT64 if floating is double else cnp.NPY_FLOAT32
    c.n_threads = c.p.nt
    return c


cdef inline void _add_bias(floating *y, idx_t ldy, idx_t rows, idx_t cols,
                           const floating *b) noexcept nogil:
    cdef idx_t f, q
    cdef floating bv
    for f in range(rows):
        bv = b[f]
        for q in range(cols):
            y[f * ldy + q] += bv


cdef void _bias_epilogue(floating *y, idx_t ldy, idx_t rows, idx_t cols, const floating *b,
                         const floating *r, idx_t ldr, const epi_t *e) noexcept nogil:
    """_add_bias (b may be NULL) then _epilogue (r may be NULL) on rows x cols of y: where the
    activation is none or a clamp (_dw_clamp), in one pass in the instruction-set layer
    (cvx_bias_out: row by row, the same operations in the same order: y + b, + r, then v = lo if
    v < lo else v, hi if v > hi else v); else the two passes over the whole block."""
    cdef floating lo = 0, hi = INFINITY
    cdef int clamp = _dw_clamp(e, &lo, &hi)
    if clamp < 0:
        if b != NULL:
            _add_bias(y, ldy, rows, cols, b)
        _epilogue(y, ldy, rows, cols, r, ldr, e)
    elif floating is float:
        cvx_bias_out_float(rows, cols, y, ldy, b, r, ldr, clamp, lo, hi)
    else:
        cvx_bias_out_double(rows, cols, y, ldy, b, r, ldr, clamp, lo, hi)


cdef inline void _fwd_gemm_rows(const floating *w, const floating *wp, idx_t Fgp, idx_t gi,
                                idx_t f0, idx_t f1, idx_t cols, idx_t K, idx_t Fg,
                                const floating *B, idx_t rsb, floating *C, idx_t ldc,
                                floating *work) noexcept nogil:
    """C = rows f0..f1-1 of group gi's weight @ B: from the packed weight when there is one."""
    if wp != NULL:
        gemm_pa(f1 - f0, cols, K, wp + (gi * Fgp + f0) * K, B, rsb, 1, C, ldc, 0, work)
    else:
        _gemm(f1 - f0, cols, K, w + (gi * Fg + f0) * K, K, 1, B, rsb, 1, C, ldc, 0, work)


cdef inline span_t _filter_block(idx_t i, idx_t nfb, idx_t unit, idx_t Fg) noexcept nogil:
    """The filters [lo, hi) of block i when a group's Fg filters, in strips of `unit` (the last
    strip shorter), go in nfb <= strips blocks of whole strips, their strip counts within one of
    each other. (Returned by value, as _ow_range.)"""
    cdef span_t r
    cdef idx_t strips = (Fg + unit - 1) // unit
    r.lo = min(Fg, unit * (strips * i // nfb))
    r.hi = min(Fg, unit * (strips * (i + 1) // nfb))
    return r


cdef inline idx_t _image_block_start(idx_t i, idx_t N, idx_t nib) noexcept nogil:
    """The first image of block i when N images go in nib blocks of even sizes (block i: the
    images [start(i), start(i + 1)), sizes within one of each other)."""
    return i * N // nib


cdef inline void _fwd_gemm_item(idx_t it, const floating *x, const floating *w,
                                const floating *wp, idx_t Fgp, const floating *b, floating *y,
                                const geom_t *g, idx_t PT, idx_t ntile, idx_t nbands,
                                idx_t nimg, idx_t nib, idx_t nfb, idx_t unit, bint image_is_cols,
                                const idx_t *tab, const floating *res, const epi_t *e,
                                floating *buf, floating *work) noexcept nogil:
    """Work item `it` of _fwd_gemm, on the thread's scratch buf and GEMM workspace work."""
    cdef idx_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW, HW = g.H * g.W
    cdef idx_t n, n1, j, gi, t, p0, p1, f0, f1, rest, rsb, cols, off
    cdef span_t fb, pspan
    cdef idx_t ldp = (gemm_packed_b_elems(K, nimg * P, floating is double) + 15) // 16 * 16
    cdef floating *ct
    cdef floating *yt
    cdef const floating *B
    cdef const floating *xn
    cdef const floating *ap
    fb = _filter_block(it % nfb, nfb, unit, g.Fg)
    f0 = fb.lo
    f1 = fb.hi
    rest = it // nfb
    t = rest % ntile
    gi = (rest // ntile) % g.G
    n = _image_block_start(rest // (ntile * g.G), g.N, nib)
    if nimg == 1:
        if nbands > 1:
            pspan = _band_tile(t, ntile // nbands, nbands, P)
            p0 = pspan.lo
            p1 = pspan.hi
        else:
            p0 = t * PT
            p1 = min(p0 + PT, P)
        xn = x + n * g.C * HW
        if image_is_cols:
            B = xn + gi * g.Cg * HW + p0
            rsb = HW
        else:
            _im2col_tile(xn, gi * g.Cg, g.Cg, p0, p1, buf, PT, g)
            B = buf
            rsb = PT
        off = (n * g.F + gi * g.Fg + f0) * P + p0
        yt = y + off
        _fwd_gemm_rows(w, wp, Fgp, gi, f0, f1, p1 - p0, K, g.Fg, B, rsb, yt, P, work)
        _bias_epilogue(yt, P, f1 - f0, p1 - p0, _at(b, gi * g.Fg + f0), _at(res, off),
                       P, e)
    else:
        # images n .. n1-1 side by side: columns j*P .. (j+1)*P of the GEMM are image n+j
        n1 = _image_block_start(rest // (ntile * g.G) + 1, g.N, nib)
        cols = (n1 - n) * P
        if tab != NULL:
            ct = buf + ldp
            gemm_pack_b_gather(K, cols, 0, K, x + n * g.C * HW + gi * g.Cg * HW, HW,
                               g.kh * g.kw, tab, nimg * P, buf)
            ap = NULL
            if wp != NULL:
                ap = wp + (gi * Fgp + f0) * K
            gemm_pb(f1 - f0, cols, K, w + (gi * g.Fg + f0) * K, K, 1, ap, buf, ct, cols,
                    0, work)
        else:
            ct = buf + K * nimg * P
            for j in range(n1 - n):
                _im2col_tile(x + (n + j) * g.C * HW, gi * g.Cg, g.Cg, 0, P,
                             buf + j * P, cols, g)
            _fwd_gemm_rows(w, wp, Fgp, gi, f0, f1, cols, K, g.Fg, buf, cols, ct, cols,
                           work)
        _store_images(ct, cols, y, g, n, n1, gi, f0, f1, b, res, e)


cdef void _fwd_gemm(const floating *x, const floating *w, const floating *wp, idx_t Fgp,
                    const floating *b, floating *y, const geom_t *g, idx_t PT, idx_t nimg,
                    idx_t nib, idx_t nfb, idx_t unit, idx_t nbands, bint image_is_cols,
                    const idx_t *tab,
                    const floating *res, const epi_t *e, floating *scratch, idx_t ld_s,
                    idx_t per, int nt) noexcept nogil:
    """Work items (image, or block of at most nimg images: nib blocks, _image_block_start;
    group; pixel tile; block of filters: nfb blocks of whole strips of `unit` rows,
    _filter_block). wp: NULL, or the weight packed by conv2d_pack_weight_gemm (Fgp rows per
    group; `unit` then the tile's rows, so that a block starts at a packed strip). tab: NULL,
    or _gather_table(g, nimg) (nimg > 1): an item then packs its B straight from x
    (gemm_pack_b_gather) and multiplies it in place (gemm_pb), instead of unfolding it into
    buf for the GEMM to pack: the same values, so the same bits. nbands > 1: each plane's
    tiles are nbands pixel bands (_owned_bands) of ntile / nbands tiles each (_band_tile), else
    tiles of PT pixels; in a static schedule where the threads own bands or whole planes or image
    blocks (_owns_planes), or the items are filter blocks that _static_items allows, else a
    dynamic one."""
    cdef idx_t P = g.OH * g.OW
    cdef idx_t ntile = 1 if nimg > 1 else (P + PT - 1) // PT
    cdef idx_t it, nitems
    if nbands > 1:
        ntile = nbands * _band_tiles(P, nbands, PT)
    nitems = nib * g.G * ntile * nfb
    if nbands > 1 or _owns_planes(nib * g.G, nt) or (nfb > 1 and _static_items(nitems, nt)):
        for it in prange(nitems, schedule='static', num_threads=nt):
            _fwd_gemm_item(it, x, w, wp, Fgp, b, y, g, PT, ntile, nbands, nimg, nib, nfb, unit,
                           image_is_cols, tab, res, e,
                           scratch + cvx_omp_get_thread_num() * ld_s,
                           scratch + cvx_omp_get_thread_num() * ld_s + per)
    else:
        for it in prange(nitems, schedule='dynamic', num_threads=nt):
            _fwd_gemm_item(it, x, w, wp, Fgp, b, y, g, PT, ntile, nbands, nimg, nib, nfb, unit,
                           image_is_cols, tab, res, e,
                           scratch + cvx_omp_get_thread_num() * ld_s,
                           scratch + cvx_omp_get_thread_num() * ld_s + per)

ctypedef struct shared_b_item_t:
    idx_t gi, n, n1, p0, p1, cols


cdef inline shared_b_item_t _shared_b_item(idx_t i, idx_t ntile, idx_t nimg, idx_t nib,
                                           idx_t PT, const geom_t *g) noexcept nogil:
    """Item i of _fwd_gemm_shared_b: its group gi, images [n, n1), pixels [p0, p1) of each, and
    the columns of its B. (Returned by value: inside prange, results written through pointers
    would be shared.)"""
    cdef shared_b_item_t q
    cdef idx_t P = g.OH * g.OW, t = i % ntile
    q.gi = (i // ntile) % g.G
    q.n = _image_block_start(i // (ntile * g.G), g.N, nib)
    q.n1 = _image_block_start(i // (ntile * g.G) + 1, g.N, nib)
    q.p0 = t * PT
    q.p1 = q.p0 + PT
    if q.p1 > P or nimg > 1:
        q.p1 = P
    q.cols = (q.n1 - q.n) * (q.p1 - q.p0)
    return q


cdef inline void _shared_b_pack_item(idx_t it, const floating *x, const geom_t *g, idx_t PT,
                                     idx_t nimg, idx_t nib, idx_t cb, bint image_is_cols,
                                     floating *bs, idx_t ldb,
                                     floating *buf) noexcept nogil:
    """Packing item `it` of _fwd_gemm_shared_b (item it // ncb's B, channels from
    (it % ncb) * cb) on the thread's scratch buf."""
    cdef idx_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW, HW = g.H * g.W, kk = g.kh * g.kw
    cdef idx_t ntile = 1 if nimg > 1 else (P + PT - 1) // PT
    cdef idx_t ncb = (g.Cg + cb - 1) // cb
    cdef idx_t i = it // ncb, c0 = (it % ncb) * cb, c1 = min(g.Cg, c0 + cb), j
    cdef shared_b_item_t q = _shared_b_item(i, ntile, nimg, nib, PT, g)
    cdef const floating *xg = x + q.n * g.C * HW + (q.gi * g.Cg + c0) * HW
    if image_is_cols and nimg == 1:
        gemm_pack_b(K, q.cols, c0, c1, xg + q.p0, HW, 1, bs + i * ldb)
    else:
        # images n .. n1-1 side by side: columns j*P .. (j+1)*P are image n+j
        for j in range(q.n1 - q.n):
            _im2col_tile(x + (q.n + j) * g.C * HW, q.gi * g.Cg + c0, c1 - c0, q.p0, q.p1,
                         buf + j * P, q.cols, g)
        gemm_pack_b(K, q.cols, c0 * kk, c1 * kk, buf, q.cols, 1, bs + i * ldb)


cdef inline void _shared_b_gemm_item(idx_t it, const floating *w, const floating *wp,
                                     idx_t Fgp, const floating *b, floating *y,
                                     const geom_t *g, idx_t PT, idx_t nimg, idx_t nib,
                                     idx_t nfb, idx_t unit, const floating *bs, idx_t ldb,
                                     const floating *res, const epi_t *e, floating *buf,
                                     floating *work) noexcept nogil:
    """Multiplying item `it` of _fwd_gemm_shared_b (filter block it % nfb of item it // nfb)
    on the thread's scratch buf and GEMM work area."""
    cdef idx_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW
    cdef idx_t ntile = 1 if nimg > 1 else (P + PT - 1) // PT
    cdef span_t fb = _filter_block(it % nfb, nfb, unit, g.Fg)
    cdef idx_t f0 = fb.lo, f1 = fb.hi, i = it // nfb, off
    cdef shared_b_item_t q = _shared_b_item(i, ntile, nimg, nib, PT, g)
    cdef const floating *ap = NULL
    cdef floating *yt
    if wp != NULL:
        ap = wp + (q.gi * Fgp + f0) * K
    if nimg == 1:
        off = (q.n * g.F + q.gi * g.Fg + f0) * P + q.p0
        yt = y + off
        gemm_pb(f1 - f0, q.cols, K, w + (q.gi * g.Fg + f0) * K, K, 1, ap, bs + i * ldb, yt, P,
                0, work)
        _bias_epilogue(yt, P, f1 - f0, q.cols, _at(b, q.gi * g.Fg + f0), _at(res, off), P, e)
    else:
        gemm_pb(f1 - f0, q.cols, K, w + (q.gi * g.Fg + f0) * K, K, 1, ap, bs + i * ldb, buf,
                q.cols, 0, work)
        _store_images(buf, q.cols, y, g, q.n, q.n1, q.gi, f0, f1, b, res, e)


cdef void _fwd_gemm_shared_b(const floating *x, const floating *w, const floating *wp,
                             idx_t Fgp, const floating *b, floating *y, const geom_t *g, idx_t PT,
                             idx_t nimg, idx_t nib, idx_t nfb, idx_t unit, idx_t cb,
                             bint image_is_cols, floating *bs, idx_t ldb, const floating *res,
                             const epi_t *e, floating *scratch, idx_t ld_s, idx_t per,
                             int nt) noexcept nogil:
    """_fwd_gemm's work items (image or block of at most nimg images, group, pixel tile, block
    of filters) when an item's filter blocks are several (few items: batch 1, or a few
    blocks of images on a small plane; an image read in place only where the threads do not
    divide the items evenly, _prep_gemm) and share its B: first every (images, group, tile)
    item's B is unfolded (an image read in place: not) and packed once into bs + item*ldb
    (gemm_pack_b), the threads taking blocks of cb channels; then the filter blocks
    multiply it (gemm_pb). The GEMM reads the same values in the same order, so every output
    bit is _fwd_gemm's. Each pass in a static schedule where _static_items allows it, else a
    dynamic one."""
    cdef idx_t P = g.OH * g.OW
    cdef idx_t ntile = 1 if nimg > 1 else (P + PT - 1) // PT
    cdef idx_t items = nib * g.G * ntile
    cdef idx_t ncb = (g.Cg + cb - 1) // cb
    cdef idx_t it
    if _static_items(items * ncb, nt):
        for it in prange(items * ncb, schedule='static', num_threads=nt):
            _shared_b_pack_item(it, x, g, PT, nimg, nib, cb, image_is_cols, bs, ldb,
                                scratch + cvx_omp_get_thread_num() * ld_s)
    else:
        for it in prange(items * ncb, schedule='dynamic', num_threads=nt):
            _shared_b_pack_item(it, x, g, PT, nimg, nib, cb, image_is_cols, bs, ldb,
                                scratch + cvx_omp_get_thread_num() * ld_s)
    if _static_items(items * nfb, nt):
        for it in prange(items * nfb, schedule='static', num_threads=nt):
            _shared_b_gemm_item(it, w, wp, Fgp, b, y, g, PT, nimg, nib, nfb, unit, bs, ldb,
                                res, e, scratch + cvx_omp_get_thread_num() * ld_s,
                                scratch + cvx_omp_get_thread_num() * ld_s + per)
    else:
        for it in prange(items * nfb, schedule='dynamic', num_threads=nt):
            _shared_b_gemm_item(it, w, wp, Fgp, b, y, g, PT, nimg, nib, nfb, unit, bs, ldb,
                                res, e, scratch + cvx_omp_get_thread_num() * ld_s,
                                scratch + cvx_omp_get_thread_num() * ld_s + per)


cdef inline void _store_images(floating *ct, idx_t cols, floating *y, const geom_t *g,
                               idx_t n, idx_t n1, idx_t gi, idx_t f0, idx_t f1,
                               const floating *b, const floating *res,
                               const epi_t *e) noexcept nogil:
    """Filters f0..f1-1 of group gi for images n..n1-1 side by side in ct (columns j*P ..
    (j+1)*P are image n+j, row pitch cols) into each image's y, with bias and epilogue. ct
    (in cache) gets the bias in place first where the epilogue is a residual and a clamp at
    most (_dw_clamp), which are then done while copying out (cvx_dw_out): one pass over y
    instead of three, the same operations in the same order."""
    cdef idx_t j, off, P = g.OH * g.OW
    cdef floating *yt
    cdef floating lo = 0, hi = 0
    cdef int clamp = _dw_clamp(e, &lo, &hi)
    if clamp >= 0:
        if b != NULL:
            _add_bias(ct, cols, f1 - f0, (n1 - n) * P, b + gi * g.Fg + f0)
        for j in range(n1 - n):
            off = ((n + j) * g.F + gi * g.Fg + f0) * P
            if floating is float:
                cvx_dw_out_float(f1 - f0, P, ct + j * P, cols, _at(res, off), P, clamp, lo, hi,
                                 y + off, P)
            else:
                cvx_dw_out_double(f1 - f0, P, ct + j * P, cols, _at(res, off), P, clamp, lo,
                                  hi, y + off, P)
        return
    for j in range(n1 - n):
        off = ((n + j) * g.F + gi * g.Fg + f0) * P
        yt = y + off
        _copy_rows(ct + j * P, cols, yt, P, f1 - f0, P)
        _bias_epilogue(yt, P, f1 - f0, P, _at(b, gi * g.Fg + f0), _at(res, off), P, e)


cdef inline void _copy_rows(const floating *src, idx_t lds, floating *dst, idx_t ldd,
                            idx_t rows, idx_t cols) noexcept nogil:
    cdef idx_t i, q
    for i in range(rows):
        for q in range(cols):
            dst[i * ldd + q] = src[i * lds + q]


# --------------------------------------------------------------------------------------------
# grad input

cdef tuple _dw_subplane_taps(const dw_t *d, const idx_t *off):
    """The input gradient's taps by sub-plane (off: _dw_alloc's table of pass 1, each tap's
    sub-plane at off[kk + t]): (tcount, tix), tcount[a] taps in sub-plane a, and tix their
    indices, each sub-plane's in row-major order, one sub-plane after the other."""
    cdef int[::1] tcount = np.zeros(d.nsub, dtype=np.intc)
    cdef int[::1] tix = np.empty(d.kk, dtype=np.intc)
    cdef idx_t a, t, q = 0
    for a in range(d.nsub):
        for t in range(d.kk):
            if off[d.kk + t] == a:
                tix[q] = <int>t
                tcount[a] += 1
                q += 1
    return np.asarray(tcount), np.asarray(tix)


def conv2d_grad_input_depthwise(const floating[:, :, :, ::1] gy,
                                const floating[:, :, :, ::1] w, floating[:, :, :, ::1] gx,
                                Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                                Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                                Py_ssize_t groups, int n_threads, int _blocks=-1):
    """gx = the gradient of conv2d with respect to its input, depthwise route. Fills all of gx.
    _blocks (tests only): as conv2d_forward_depthwise's."""
    cdef geom_t g = _geom(_s4(gx.shape), _s4(w.shape), _s4(gy.shape), groups, stride_h,
                          stride_w, pad_top, pad_left, dil_h, dil_w)
    cdef dw_t d = _dw(&g)
    cdef bint blocks = _dw_gx_cb_chosen(&d, &g, _blocks)
    cdef int[::1] tcount
    cdef int[::1] tix
    if blocks:
        n_threads = _threads_for(g.N * ((g.C + DW_CB - 1) // DW_CB), n_threads)
    else:
        n_threads = _threads_for(g.N * g.C, n_threads)
    flat_a, ptrs_a, off_a = _dw_alloc(_DTYPE[floating is double], n_threads, &d, &g, 1)
    cdef floating[:, ::1] flat = flat_a
    cdef size_t[:, ::1] ptrs = ptrs_a
    cdef idx_t[::1] off = off_a
    if blocks:
        tcount, tix = _dw_subplane_taps(&d, &off[0])
        with nogil:
            _gx_depthwise_cb(&gy[0, 0, 0, 0], &w[0, 0, 0, 0], &gx[0, 0, 0, 0], &g, &d,
                             &flat[0, 0], flat.shape[1], &ptrs[0, 0], &off[0], &tcount[0],
                             &tix[0], n_threads)
        return
    with nogil:
        _gx_depthwise(&gy[0, 0, 0, 0], &w[0, 0, 0, 0], &gx[0, 0, 0, 0], &g, &d,
                      &flat[0, 0], flat.shape[1], &ptrs[0, 0], &off[0], n_threads)


def conv2d_grad_input_gemm(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] w,
                           floating[:, :, :, ::1] gx,
                           Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                           Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                           Py_ssize_t groups, int n_threads):
    """gx = the gradient of conv2d with respect to its input, GEMM route. Fills all of gx.

    Small planes: when several images fit in one tile, a work item puts nimg images side by
    side in the GEMM's columns (as conv2d_forward_gemm does), so the weight block is packed once
    for all of them; every column's sum (over the filters, in order) is unchanged. W_g^T is
    packed once per call for all the work items (gemm_pack_a; channel blocks start at a packed
    strip): the same bits as packing it in each GEMM."""
    cdef geom_t g = _geom(_s4(gx.shape), _s4(w.shape), _s4(gy.shape), groups, stride_h,
                          stride_w, pad_top, pad_left, dil_h, dil_w)
    cdef idx_t kk = g.kh * g.kw, P = g.OH * g.OW
    cdef bint image_is_cols = _pointwise(&g)
    cdef idx_t PT = tile_pixels(g.Cg * kk, P, gx.itemsize)
    # (a 1x1 geometry's GEMM writes straight into gx, one image at a time: faster than a copy)
    cdef idx_t nimg = 1 if image_is_cols else _images_per_tile(g.Cg * kk, P, g.N, gx.itemsize)
    # Split each group's channels into blocks so there are enough work items for the threads.
    # A dx element's sum does not depend on the blocking; the tile width must not depend on the
    # thread count either (col2im adds tile after tile), so it is chosen from Cg, not CB.
    cdef idx_t items = (g.N + nimg - 1) // nimg * g.G
    cdef idx_t nb = min(g.Cg, max(1, (4 * <idx_t>n_threads + items - 1) // items))
    # a block's first row of W_g^T (cb*CB*kk) is a multiple of the GEMM tile's rows
    cdef idx_t mr = gemm_mr(floating is double), unit = mr // _gcd(kk, mr)
    cdef idx_t CB = ((g.Cg + nb - 1) // nb + unit - 1) // unit * unit
    nb = (g.Cg + CB - 1) // CB
    n_threads = _threads_for(items * nb, n_threads)
    cdef idx_t per = 0 if image_is_cols else CB * kk * PT
    if nimg > 1:
        per = (CB * kk + g.Fg) * nimg * P
    dtype = _DTYPE[floating is double]
    cdef floating[:, ::1] scratch = _scratch(dtype, n_threads, per)
    cdef idx_t Kgp = (g.Cg * kk + mr - 1) // mr * mr  # rows of one group's packed W_g^T
    cdef floating[::1] wt = np.empty(g.G * Kgp * g.Fg, dtype)
    with nogil:
        _pack_wt(&w[0, 0, 0, 0], &wt[0], &g, Kgp, mr, n_threads)
        _gx_gemm(&gy[0, 0, 0, 0], &wt[0], Kgp, &gx[0, 0, 0, 0], &g, CB, PT, nimg,
                 image_is_cols, &scratch[0, 0], scratch.shape[1], per, n_threads)


cdef inline idx_t _gcd(idx_t a, idx_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef void _pack_wt(const floating *w, floating *wt, const geom_t *g, idx_t Kgp, idx_t mr,
                   int nt) noexcept nogil:
    """wt = each group's W_g^T (Kg x Fg: A[r, f] = w[gi*Fg + f, r]) packed by gemm_pack_a, group
    gi at wt + gi*Kgp*Fg; in runs of PACK_STRIPS strips (the same layout as packing it whole)."""
    cdef idx_t Kg = g.Cg * g.kh * g.kw, run = PACK_STRIPS * mr
    cdef idx_t nrun = (Kg + run - 1) // run, it, gi, r0, r1
    for it in prange(g.G * nrun, schedule='static', num_threads=nt):
        gi = it // nrun
        r0 = (it % nrun) * run
        r1 = r0 + run
        if r1 > Kg:
            r1 = Kg
        gemm_pack_a(r1 - r0, g.Fg, w + gi * g.Fg * Kg + r0, 1, Kg,
                    wt + gi * Kgp * g.Fg + r0 * g.Fg)


def conv2d_grad_input_direct(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] w,
                             floating[:, :, :, ::1] gx,
                             Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                             Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                             Py_ssize_t groups, int n_threads):
    """gx = the gradient of conv2d with respect to its input, direct route: stride 1 and
    padding at most dil*(k-1) at the top and left (convext.functional._routes,
    grad_input_as_forward). It is the direct forward convolution of gy with the weight
    w'[c, f] = w[f, c] rotated by 180 degrees in each group, padding dil*(k-1) - pad at the top
    and left. Fills all of gx. A non-finite weight runs the GEMM route instead: here its
    products with the zeros around gy would be NaN where the gradient has no such product."""
    _grad_input_as_forward(_forward_direct, gy, w, gx, stride_h, stride_w, pad_top, pad_left,
                           dil_h, dil_w, groups, n_threads)


def conv2d_grad_input_valid_taps(const floating[:, :, :, ::1] gy,
                                 const floating[:, :, :, ::1] w, floating[:, :, :, ::1] gx,
                                 Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                                 Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                                 Py_ssize_t groups, int n_threads):
    """gx = the gradient of conv2d with respect to its input, valid-taps route: as
    conv2d_grad_input_direct (stride 1, the forward convolution of gy with the rotated weight),
    on the valid-taps forward, whose skipped taps are then those that would read the zeros
    around gy. Fills all of gx. A non-finite weight runs the GEMM route instead (as in
    _grad_input_as_forward). The rotated weight is packed straight from w
    (pack_valid_taps_weight's rotated): the forward's packing of it, without the rotated copy
    first (512x512x3x3: 1.8 ms of a 12 ms gradient at batch 16)."""
    cdef Py_ssize_t F = w.shape[0], Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    packed = pack_valid_taps_weight(w, groups, n_threads, rotated=True)
    if packed is None:
        _grad_input_gemm(gy, w, gx, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w,
                         groups, n_threads)
        return
    cdef const floating[::1] pk = packed
    cdef const floating[::1] no_bias = None
    cdef fwd_t p
    _prep_conv(&p, _s4(gy.shape), (groups * Cg, F // groups, kh, kw), <const floating *>NULL,
               no_bias, _s4(gx.shape), groups, 1, 1, dil_h * (kh - 1) - pad_top,
               dil_w * (kw - 1) - pad_left, dil_h, dil_w, n_threads, 0, 0, 0)
    _vt_plan(&p, &pk[0])
    _run_once(&p, &gy[0, 0, 0, 0], &gx[0, 0, 0, 0], <const floating *>NULL)


def _grad_input_as_forward(forward, gy, w, gx, Py_ssize_t stride_h, Py_ssize_t stride_w,
                           Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dil_h,
                           Py_ssize_t dil_w, Py_ssize_t groups, int n_threads):
    """The input gradient (stride 1) as the forward convolution `forward` (a conv2d_forward_*
    entry point) of gy with w'[c, f] = w[f, c] rotated by 180 degrees in each group, padding
    dil*(k-1) - pad at the top and left; with a non-finite w, the GEMM route's input gradient
    (the forward's products of w with the zeros around gy would be NaN where the gradient has
    no such product)."""
    wa = np.asarray(w)
    cdef Py_ssize_t F = wa.shape[0], Cg = wa.shape[1], kh = wa.shape[2], kw = wa.shape[3]
    wr = wa.reshape(groups, F // groups, Cg, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    wr = np.ascontiguousarray(wr).reshape(groups * Cg, F // groups, kh, kw)
    if not np.isfinite(wr).all():
        _grad_input_gemm(gy, w, gx, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w,
                         groups, n_threads)
        return
    forward(gy, wr, None, gx, 1, 1, dil_h * (kh - 1) - pad_top, dil_w * (kw - 1) - pad_left,
            dil_h, dil_w, groups, n_threads)


# the entry points conv2d_grad_input_direct and _valid_taps run, bound here once: a call inside
# this module runs these functions, whatever later happens to the module's public names
# (the valid-taps one runs _grad_input_gemm for a non-finite weight)
_forward_direct = conv2d_forward_direct
_grad_input_gemm = conv2d_grad_input_gemm


cdef idx_t _images_per_tile(idx_t K, idx_t P, idx_t N, idx_t itemsize):
    """How many whole images of P pixels go side by side in one GEMM (1: one image, or a tile
    of one, per GEMM): as many as one tile holds (tile_pixels); from the geometry only."""
    cdef idx_t nimg = tile_pixels(K, N * P, itemsize) // P
    return nimg if nimg > 1 else 1


cdef void _gx_gemm(const floating *gy, const floating *wt, idx_t Kgp, floating *gx,
                   const geom_t *g, idx_t CB, idx_t PT, idx_t nimg, bint image_is_cols,
                   floating *scratch, idx_t ld_s, idx_t per, int nt) noexcept nogil:
    """Work items (image, or block of nimg images, group, block of CB channels); wt: each
    group's W_g^T packed (_pack_wt)."""
    cdef idx_t kk = g.kh * g.kw, P = g.OH * g.OW, HW = g.H * g.W
    cdef idx_t nb = (g.Cg + CB - 1) // CB, nib = (g.N + nimg - 1) // nimg
    cdef idx_t ntile = (P + PT - 1) // PT
    cdef idx_t it, n, n1, j, cols, gi, cb, c0, ncb, t, p0, p1, q
    cdef floating *buf
    cdef floating *work
    cdef floating *dxn
    cdef floating *bt
    cdef const floating *A
    cdef const floating *B
    with parallel(num_threads=nt):
        for it in prange(nib * g.G * nb, schedule='dynamic'):
            buf = scratch + cvx_omp_get_thread_num() * ld_s
            work = buf + per
            n = it // (g.G * nb) * nimg
            gi = (it // nb) % g.G
            cb = it % nb
            c0 = gi * g.Cg + cb * CB
            ncb = g.Cg - cb * CB
            if ncb > CB:
                ncb = CB
            # the block's rows of W_g^T, packed
            A = wt + (gi * Kgp + cb * CB * kk) * g.Fg
            if nimg > 1:
                # images n .. n1-1 side by side: columns j*P .. (j+1)*P are image n+j
                n1 = n + nimg
                if n1 > g.N:
                    n1 = g.N
                cols = (n1 - n) * P
                bt = buf + ncb * kk * cols
                for j in range(n1 - n):
                    _copy_rows(gy + ((n + j) * g.F + gi * g.Fg) * P, P, bt + j * P, cols, g.Fg, P)
                gemm_pa(ncb * kk, cols, g.Fg, A, bt, cols, 1, buf, cols, 0, work)
                for j in range(n1 - n):
                    dxn = gx + (n + j) * g.C * HW
                    for q in range(ncb * HW):
                        dxn[c0 * HW + q] = 0
                    _col2im_tile(dxn, c0, ncb, 0, P, buf + j * P, cols, g)
                continue
            dxn = gx + n * g.C * HW
            if not image_is_cols:
                for q in range(ncb * HW):
                    dxn[c0 * HW + q] = 0
            for t in range(ntile):
                p0 = t * PT
                p1 = min(p0 + PT, P)
                B = gy + (n * g.F + gi * g.Fg) * P + p0
                if image_is_cols:
                    gemm_pa(ncb, p1 - p0, g.Fg, A, B, P, 1, dxn + c0 * HW + p0, HW, 0, work)
                else:
                    gemm_pa(ncb * kk, p1 - p0, g.Fg, A, B, P, 1, buf, PT, 0, work)
                    _col2im_tile(dxn, c0, ncb, p0, p1, buf, PT, g)


# --------------------------------------------------------------------------------------------
# grad weight

def conv2d_grad_weight_depthwise(const floating[:, :, :, ::1] gy,
                                 const floating[:, :, :, ::1] x, floating[:, :, :, ::1] gw,
                                 Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                                 Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                                 Py_ssize_t groups, int n_threads, int _blocks=-1):
    """gw = the gradient of conv2d with respect to its weight, depthwise route. Fills all of
    gw. _blocks (tests only): as conv2d_forward_depthwise's."""
    cdef geom_t g = _geom(_s4(x.shape), _s4(gw.shape), _s4(gy.shape), groups, stride_h,
                          stride_w, pad_top, pad_left, dil_h, dil_w)
    cdef dw_t d = _dw(&g)
    cdef bint blocks = _dw_gw_cb_chosen(&d, &g, _blocks)
    cdef idx_t[::1] toff
    cdef idx_t[::1] lists
    cdef idx_t i, j
    if blocks:
        n_threads = _threads_for((g.C + DW_CB - 1) // DW_CB, n_threads)
    else:
        n_threads = _threads_for(g.F, n_threads)
    flat_a, ptrs_a, off_a = _dw_alloc(_DTYPE[floating is double], n_threads, &d, &g, 2)
    cdef floating[:, ::1] flat = flat_a
    cdef size_t[:, ::1] ptrs = ptrs_a
    cdef idx_t[::1] off = off_a
    if blocks:
        toff = np.empty(d.kk, dtype=np.intp)
        for i in range(g.kh):
            for j in range(g.kw):
                toff[i * g.kw + j] = i * g.dil_h * d.Wp + j * g.dil_w
        lists = _dw_gw_lists(&d, &g)
        # the chunk's images beyond the first (_dw_gw_cb_chunk)
        flat = np.empty((n_threads, _dw_gw_cb_elems(&d, &g) + 16 + (_dw_gw_cb_chunk(&d, &g) - 1)
                         * DW_CB * (d.Hp * d.Wp + g.OH * g.OW)), dtype=_DTYPE[floating is double])
        with nogil:
            _gxw_depthwise_cb(&gy[0, 0, 0, 0], &x[0, 0, 0, 0], NULL, NULL, &gw[0, 0, 0, 0], &g,
                              &d, &flat[0, 0], flat.shape[1], &off[0], &toff[0], &lists[0],
                              NULL, NULL, n_threads)
        return
    with nogil:
        _gw_depthwise(&gy[0, 0, 0, 0], &x[0, 0, 0, 0], &gw[0, 0, 0, 0], &g, &d,
                      &flat[0, 0], flat.shape[1], &ptrs[0, 0], &off[0], n_threads)


def conv2d_grad_depthwise(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] x,
                          const floating[:, :, :, ::1] w, floating[:, :, :, ::1] gx,
                          floating[:, :, :, ::1] gw, Py_ssize_t stride_h, Py_ssize_t stride_w,
                          Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dil_h,
                          Py_ssize_t dil_w, Py_ssize_t groups, int n_threads):
    """Both gradients of the depthwise route in one pass over the output gradient, where the
    geometry rule puts each on channel blocks (one filter per channel), the weights are finite
    and there are at least two blocks per thread: work items are blocks of DW_CB channels over
    all the images (isa/depthwise.inc's cvx_dw_cb_gxw), each image's output gradient transposed
    once for both. The same bits as conv2d_grad_input_depthwise and
    conv2d_grad_weight_depthwise (so the choice may follow the thread count). Returns whether
    it ran; when it did not, nothing is written (the caller runs those two)."""
    cdef geom_t g = _geom(_s4(x.shape), _s4(w.shape), _s4(gy.shape), groups, stride_h,
                          stride_w, pad_top, pad_left, dil_h, dil_w)
    cdef dw_t d = _dw(&g)
    cdef idx_t nblk = (g.C + DW_CB - 1) // DW_CB
    if not (_dw_gx_cb_chosen(&d, &g, -1) and _dw_gw_cb_chosen(&d, &g, -1)
            and nblk >= 2 * <idx_t>n_threads and np.isfinite(np.asarray(w)).all()):
        return False
    n_threads = _threads_for(nblk, n_threads)
    # the input gradient's table (pass 1: its grid offsets, then the phases)
    _, _, off_a = _dw_alloc(_DTYPE[floating is double], 1, &d, &g, 1)
    cdef idx_t[::1] off = off_a
    cdef int[::1] tcount
    cdef int[::1] tix
    tcount, tix = _dw_subplane_taps(&d, &off[0])
    cdef idx_t[::1] toff = np.empty(d.kk, dtype=np.intp)
    cdef idx_t i, j
    for i in range(g.kh):
        for j in range(g.kw):
            toff[i * g.kw + j] = i * g.dil_h * d.Wp + j * g.dil_w
    cdef idx_t[::1] lists = _dw_gw_lists(&d, &g)
    cdef floating[:, ::1] flat = np.empty(
        (n_threads, _dw_gw_cb_elems(&d, &g) + 16
         + (_dw_gw_cb_chunk(&d, &g) - 1) * DW_CB * (d.Hp * d.Wp + g.OH * g.OW)
         + DW_CB * ((d.Hq + d.DI) * d.Wg + g.H * g.W + d.kk + 1)), dtype=_DTYPE[floating is double])
    with nogil:
        _gxw_depthwise_cb(&gy[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0], &gx[0, 0, 0, 0],
                          &gw[0, 0, 0, 0], &g, &d, &flat[0, 0], flat.shape[1], &off[0],
                          &toff[0], &lists[0], &tcount[0], &tix[0], n_threads)
    return True


cdef void _gxw_depthwise_cb(const floating *gy, const floating *x, const floating *w,
                            floating *gx, floating *gw, const geom_t *g, const dw_t *dp,
                            floating *scratch, idx_t ld_s, const idx_t *off, const idx_t *toff,
                            const idx_t *lists, const int *tcount, const int *tix,
                            int nt) noexcept nogil:
    """Work items: blocks of DW_CB channels, each over all the images (cvx_dw_cb_gxw). gx NULL
    (w, tcount, tix unused, NULL): the weight gradient alone."""
    cdef dw_t d = dp[0]
    cdef idx_t P = g.OH * g.OW, HW = g.H * g.W, nblk = (g.C + DW_CB - 1) // DW_CB
    cdef idx_t blk, c0, nl
    cdef floating *xs
    cdef floating *gxb
    cdef const floating *wb
    cdef int flat = g.OW < DW_FLAT_OW
    with parallel(num_threads=nt):
        for blk in prange(nblk, schedule='dynamic'):
            xs = scratch + cvx_omp_get_thread_num() * ld_s
            c0 = blk * DW_CB
            nl = min(DW_CB, g.C - c0)
            gxb = NULL
            wb = NULL
            if gx != NULL:
                gxb = gx + c0 * HW
                wb = w + c0 * d.kk
            if floating is float:
                cvx_dw_cb_gxw_float(nl, g.N, x + c0 * HW, g.C * HW, gy + c0 * P, g.F * P, g.H,
                                    g.W, g.ph, g.pw, d.Hp, d.Wp, g.OH, g.OW, g.sh, g.sw, d.na,
                                    off + 2 * d.kk, d.nb, off + 2 * d.kk + d.na, <int>d.kk,
                                    toff, flat, lists, lists + 34, lists + 34 + 2 * P, xs,
                                    gw + c0 * d.kk, gxb, g.C * HW, wb, d.DI, d.DJ, d.Hq, d.Wq,
                                    tcount, tix, off)
            else:
                cvx_dw_cb_gxw_double(nl, g.N, x + c0 * HW, g.C * HW, gy + c0 * P, g.F * P, g.H,
                                     g.W, g.ph, g.pw, d.Hp, d.Wp, g.OH, g.OW, g.sh, g.sw, d.na,
                                     off + 2 * d.kk, d.nb, off + 2 * d.kk + d.na, <int>d.kk,
                                     toff, flat, lists, lists + 34, lists + 34 + 2 * P, xs,
                                     gw + c0 * d.kk, gxb, g.C * HW, wb, d.DI, d.DJ, d.Hq, d.Wq,
                                     tcount, tix, off)


def conv2d_grad_weight_direct(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] x,
                              floating[:, :, :, ::1] gw,
                              Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                              Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                              Py_ssize_t groups, int n_threads):
    """gw = the gradient of conv2d with respect to its weight, direct route. Fills all of gw."""
    cdef geom_t g = _geom(_s4(x.shape), _s4(gw.shape), _s4(gy.shape), groups, stride_h,
                          stride_w, pad_top, pad_left, dil_h, dil_w)
    cdef cvx_direct_geom direct_g = _direct_geom(&g)
    cdef idx_t[::1] off = _direct_offsets(&direct_g)
    cdef idx_t nb = min(MAX_BLOCKS, g.N)
    n_threads = _threads_for(nb * g.G, n_threads)
    dtype = _DTYPE[floating is double]
    cdef idx_t row = cvx_direct_scratch(&direct_g) + cvx_direct_v_elems(&direct_g)
    # (each thread's U on a cache line: both terms are multiples of 16 elements)
    cdef floating[:, ::1] flat = empty_aligned(n_threads * row, dtype).reshape(n_threads, row)
    cdef floating[:, ::1] part = np.empty((nb, g.F * direct_g.K), dtype=dtype)
    with nogil:
        _gw_direct(&gy[0, 0, 0, 0], &x[0, 0, 0, 0], &gw[0, 0, 0, 0], &g, &direct_g, &off[0],
                   &flat[0, 0], flat.shape[1], &part[0, 0], nb, n_threads)


cdef bint _gw_layout(const geom_t *g, idx_t itemsize, idx_t *PT, idx_t *nimg,
                     bint *image_is_cols):
    """The weight gradient's GEMM route for this geometry: its tile of pixels PT, its images
    side by side nimg, whether the input is read in place as the unfolded input (a 1x1 kernel),
    and whether each product is dW^T = U gy^T (cvx_gemm_nt; the result) rather than dW = gy U^T:
    at most GW_NT_MAX_FG filters per group, U not read in place from the input, and rows of U
    (a tile's pixels, or the images side by side) of at least GW_NT_MIN_ROW."""
    cdef idx_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW
    image_is_cols[0] = _pointwise(g)
    PT[0] = tile_pixels(K, P, itemsize)
    # images side by side up to CVX_GEMM_KC pixels (cvx_gemm's K chunk, its inner products')
    nimg[0] = max(_images_per_tile(K, P, g.N, itemsize), min(g.N, CVX_GEMM_KC // P))
    if PT[0] < P:  # several tiles per image
        nimg[0] = 1
    return (g.Fg <= GW_NT_MAX_FG and not image_is_cols[0]
            and (nimg[0] * P if nimg[0] > 1 else PT[0]) >= GW_NT_MIN_ROW)


def grad_weight_gemm_transposed(tuple x_shape, tuple w_shape, tuple gy_shape, Py_ssize_t groups,
                                Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                                Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                                Py_ssize_t itemsize):
    """Whether conv2d_grad_weight_gemm runs this geometry as dW^T = U gy^T (_gw_layout)."""
    cdef geom_t g = _geom(x_shape, w_shape, gy_shape, groups, stride_h, stride_w, pad_top,
                          pad_left, dil_h, dil_w)
    cdef idx_t PT, nimg
    cdef bint image_is_cols
    return bool(_gw_layout(&g, itemsize, &PT, &nimg, &image_is_cols))


def conv2d_grad_weight_gemm(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] x,
                            floating[:, :, :, ::1] gw,
                            Py_ssize_t stride_h, Py_ssize_t stride_w, Py_ssize_t pad_top,
                            Py_ssize_t pad_left, Py_ssize_t dil_h, Py_ssize_t dil_w,
                            Py_ssize_t groups, int n_threads, transposed=None):
    """gw = the gradient of conv2d with respect to its weight, GEMM route. Fills all of gw.

    The (image, group, tile) triples go in nblk blocks, each summed into its own partial dW,
    the partials then added in block order. nblk depends on the geometry only: at most
    MAX_BLOCKS, at most PART_BYTES of partials (at least one block), and blocks of at least
    nimg images. Small planes: a
    block's images go nimg at a time side by side along the GEMM's inner dimension (one
    product of nimg*P terms instead of nimg of P terms: fewer passes over the partial dW).
    With few filters and long rows of the unfolded input U (_gw_layout) each product is
    dW^T = U gy^T with U read in place; else dW = gy U^T with U packed transposed. Either way
    a dW element's sum is, per block, over each product's K chunks an FMA chain from zero added
    in order; the choice and the chunks depend on the geometry and the dtype only.
    ``transposed`` (tests only): True or False forces the one or the other."""
    cdef geom_t g = _geom(_s4(x.shape), _s4(gw.shape), _s4(gy.shape), groups, stride_h,
                          stride_w, pad_top, pad_left, dil_h, dil_w)
    cdef idx_t K = g.Cg * g.kh * g.kw, P = g.OH * g.OW, FK = g.F * K
    cdef idx_t PT, nimg
    cdef bint image_is_cols
    cdef bint dwt = _gw_layout(&g, gw.itemsize, &PT, &nimg, &image_is_cols)
    if transposed is not None:
        dwt = transposed
    cdef idx_t ntile = (P + PT - 1) // PT
    cdef idx_t nblk = min(MAX_BLOCKS, (g.N * g.G * ntile + nimg - 1) // nimg,
                          max(1, PART_BYTES // (FK * <idx_t>gw.itemsize)))
    # fewer blocks than twice the threads (batch 1, small planes): split each block's dW too,
    # along its longer side: its input channels (each item unfolds only its channels) or its
    # filters (each item copies only its rows of grad_out, where grad_out has more rows than
    # the unfolded input: 160x7x7 -> 960 1x1 at batch 16); each item writes only its part of
    # dW, and no dW element's arithmetic changes
    cdef idx_t ncb = 1, CB = g.Cg, nfb = 1, FB = g.Fg, kk = g.kh * g.kw
    cdef idx_t parts = (2 * <idx_t>n_threads + nblk - 1) // nblk
    if n_threads > 1 and nblk < 2 * <idx_t>n_threads:
        if g.Fg > g.Cg * kk:
            nfb = min(g.Fg, parts)
            FB = (g.Fg + nfb - 1) // nfb
            nfb = (g.Fg + FB - 1) // FB
        elif g.Cg >= 2:
            ncb = min(g.Cg, parts)
            CB = (g.Cg + ncb - 1) // ncb
            ncb = (g.Cg + CB - 1) // CB
    n_threads = _threads_for(nblk * ncb * nfb, n_threads)
    dtype = _DTYPE[floating is double]
    cdef idx_t per = 0 if image_is_cols else CB * kk * PT
    if nimg > 1:
        per = (CB * kk + FB) * nimg * P
    cdef floating[:, ::1] scratch = _scratch(dtype, n_threads, per)
    cdef floating[:, ::1] part = np.empty((nblk, FK), dtype=dtype)
    with nogil:
        _gw_gemm(&gy[0, 0, 0, 0], &x[0, 0, 0, 0], &gw[0, 0, 0, 0], &g, PT, nimg, image_is_cols,
                 &scratch[0, 0], scratch.shape[1], per, &part[0, 0], nblk, CB, FB, dwt,
                 n_threads)


cdef inline void _gw_product(bint transposed, idx_t nf, idx_t nq, idx_t k,
                             const floating *gyr, idx_t ldg, const floating *u, idx_t ldu,
                             floating *C, idx_t K, idx_t Fg, floating *work) noexcept nogil:
    """One product of the weight gradient's GEMM route into its partial C: nf rows of
    grad_out (gyr, rows ldg apart) against nq rows of the unfolded input (u, rows ldu apart),
    both k long; C += gy U^T (cvx_gemm, C's rows K apart) or, transposed, C += U gy^T
    (cvx_gemm_nt, U's rows read in place, C's rows Fg apart)."""
    if transposed:
        gemm_nt(nq, nf, k, u, ldu, gyr, ldg, C, Fg, work)
    else:
        _gemm(nf, nq, k, gyr, ldg, 1, u, 1, ldu, C, K, 1, work)


cdef void _gw_gemm(const floating *gy, const floating *x, floating *gw, const geom_t *g,
                   idx_t PT, idx_t nimg, bint image_is_cols, floating *scratch, idx_t ld_s,
                   idx_t per, floating *part, idx_t nblk, idx_t CB, idx_t FB, bint transposed,
                   int n_threads) noexcept nogil:
    """Work items (block of (image, group, tile) triples, block of CB input channels, block of
    FB filters: rows [f0, f1) and columns [c0*kh*kw, c1*kh*kw) of each group's dW). With
    nimg > 1 (one tile per image), each group's images of the block go nimg at a time, in
    order. transposed: each product is dW^T += U gy^T (cvx_gemm_nt, U's rows read in place),
    the partials hold dW^T (rows [c0*kh*kw, c1*kh*kw), columns [f0, f1)) and are transposed as
    they are added; else dW += gy U^T (cvx_gemm)."""
    cdef idx_t kk = g.kh * g.kw, K = g.Cg * kk, P = g.OH * g.OW, HW = g.H * g.W, FK = g.F * K
    cdef idx_t ntile = (P + PT - 1) // PT
    cdef idx_t nitems = g.N * g.G * ntile
    cdef idx_t ncb = (g.Cg + CB - 1) // CB, nfb = (g.Fg + FB - 1) // FB
    cdef idx_t wi, blk, c0, c1, f0, f1, i0, i1, it, n, n1, na, nz, j, cols, gi, t, p0, p1, q
    cdef idx_t e, csb, f
    # where the partials hold element (f, q) of group gi's dW: at gi*FgK + f*sf + q*sq, Fg x K
    # (cvx_gemm's dW) or K x Fg (transposed: cvx_gemm_nt's dW^T)
    cdef idx_t FgK = g.Fg * K, sf = 1 if transposed else K, sq = g.Fg if transposed else 1
    cdef idx_t at_q
    cdef floating *buf
    cdef floating *work
    cdef floating *pw
    cdef floating *at
    cdef const floating *B
    cdef const floating *xn
    cdef floating s
    with parallel(num_threads=n_threads):
        for wi in prange(nblk * ncb * nfb, schedule='dynamic'):
            buf = scratch + cvx_omp_get_thread_num() * ld_s
            work = buf + per
            blk = wi // (ncb * nfb)
            c0 = (wi // nfb % ncb) * CB
            c1 = c0 + CB
            if c1 > g.Cg:
                c1 = g.Cg
            f0 = (wi % nfb) * FB
            f1 = f0 + FB
            if f1 > g.Fg:
                f1 = g.Fg
            pw = part + blk * FK
            for gi in range(g.G):  # this item's part of the partial, zero, in memory order
                if transposed:
                    for q in range(c0 * kk, c1 * kk):
                        for f in range(f0, f1):
                            pw[gi * FgK + f + q * g.Fg] = 0
                else:
                    for f in range(f0, f1):
                        for q in range(c0 * kk, c1 * kk):
                            pw[gi * FgK + f * K + q] = 0
            i0 = blk * nitems // nblk
            i1 = (blk + 1) * nitems // nblk
            if nimg > 1:
                # items are (image, group) here; group gi's images of the block: [na, nz)
                for gi in range(g.G):
                    na = 0
                    if i0 > gi:
                        na = (i0 - gi + g.G - 1) // g.G
                    nz = 0
                    if i1 > gi:
                        nz = (i1 - gi + g.G - 1) // g.G
                    n = na
                    while n < nz:
                        n1 = n + nimg
                        if n1 > nz:
                            n1 = nz
                        cols = (n1 - n) * P
                        at = buf + (c1 - c0) * kk * cols
                        for j in range(n1 - n):
                            _im2col_tile(x + (n + j) * g.C * HW, gi * g.Cg + c0, c1 - c0, 0, P,
                                         buf + j * P, cols, g)
                            _copy_rows(gy + ((n + j) * g.F + gi * g.Fg + f0) * P, P,
                                       at + j * P, cols, f1 - f0, P)
                        _gw_product(transposed, f1 - f0, (c1 - c0) * kk, cols, at, cols, buf,
                                    cols, pw + gi * FgK + f0 * sf + c0 * kk * sq, K, g.Fg,
                                    work)
                        n = n1
                continue
            for it in range(i0, i1):
                n = it // (g.G * ntile)
                gi = (it // ntile) % g.G
                t = it % ntile
                p0 = t * PT
                p1 = min(p0 + PT, P)
                xn = x + n * g.C * HW
                if image_is_cols:
                    B = xn + (gi * g.Cg + c0) * HW + p0
                    csb = HW
                else:
                    _im2col_tile(xn, gi * g.Cg + c0, c1 - c0, p0, p1, buf, PT, g)
                    B = buf
                    csb = PT
                _gw_product(transposed, f1 - f0, (c1 - c0) * kk, p1 - p0,
                            gy + (n * g.F + gi * g.Fg + f0) * P + p0, P, B, csb,
                            pw + gi * FgK + f0 * sf + c0 * kk * sq, K, g.Fg, work)
    # add the partial sums in block order (the same result for every thread count) into gw
    cdef idx_t nqb = (K + 15) // 16, q0, q1
    if not transposed:
        for e in prange(FK, nogil=True, schedule='static', num_threads=n_threads):
            s = part[e]
            for blk in range(1, nblk):
                s = s + part[blk * FK + e]
            gw[e] = s
        return
    # transposed: row gi*K + q of the partials is column q of group gi's rows of gw. They go
    # 16 rows at a time, so that each row of gw gets a run of 16 (a cache line of floats) and
    # the partials' lines of those rows are read while they are still in cache.
    for e in prange(g.G * nqb, nogil=True, schedule='static', num_threads=n_threads):
        gi = e // nqb
        q0 = e % nqb * 16
        q1 = min(q0 + 16, K)
        for f in range(g.Fg):
            for q in range(q0, q1):
                at_q = gi * FgK + f + q * g.Fg
                s = part[at_q]
                for blk in range(1, nblk):
                    s = s + part[blk * FK + at_q]
                gw[(gi * g.Fg + f) * K + q] = s


# --------------------------------------------------------------------------------------------
# grad bias

def conv2d_grad_bias(const floating[:, :, :, ::1] gy, floating[::1] gb, int n_threads):
    """gb[f] = sum of gy[:, f]. Fills all of gb."""
    cdef idx_t N = gy.shape[0], F = gy.shape[1], P = gy.shape[2] * gy.shape[3]
    cdef const floating *p = &gy[0, 0, 0, 0]
    cdef idx_t f, n
    cdef floating s
    for f in prange(F, nogil=True, schedule='static', num_threads=n_threads):
        s = 0
        for n in range(N):
            s = s + _sum(p + (n * F + f) * P, P)
        gb[f] = s
