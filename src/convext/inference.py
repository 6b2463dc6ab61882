"""``optimize_for_inference(model)``: an eval-only copy of a model that runs as a flat list of
prebound kernel calls, with BatchNorm folded into the convolutions and the bias, the residual
add and the activation done in the convolution's output epilogue.

How it works
------------
1. Lowering. The model is deep-copied (later changes to the original do not reach it) and put in
   eval mode, then lowered to a list of nodes on numbered values: ``conv`` (a Conv2D's weight,
   bias and geometry), ``bn`` (an eval-mode BatchNorm2D), ``act`` (an activation with an
   epilogue code), ``add`` (two same-shaped tensors), ``dense`` (a Dense layer) and ``call``
   (anything else, run as the copied layer or a function: pooling, reshapes...). Sequential,
   Residual, Concat, Graph (imported ONNX models too) and the zoo's composite blocks (ResNet's
   BasicBlock/Bottleneck, MobileNetV2's InvertedResidual, the U-Net's blocks and decoder steps)
   are lowered into their parts; Dropout and Identity vanish; an imported Clip with finite
   bounds is an ``act`` (Hardtanh).
   Any other layer with children is kept as one ``call`` whose children are replaced by
   optimized copies of themselves (its own ``forward`` then calls those).
2. Planning, once per input shape, dtype and thread count (and per Python thread: a plan owns
   its buffers). The nodes are run once unfused to learn every value's shape, then fused:
   ``conv`` [-> ``bn``] [-> ``add``] [-> ``act``] becomes one kernel call when each value in
   the chain has that one consumer (BatchNorm folded into the weight and bias in float64, then
   cast; the add's other operand becomes the epilogue's residual), its kernel cropped to the
   taps that land inside the input (``_crop_to_input``). The route and the thread
   count are chosen as ``functional.conv2d`` chooses them, the output buffers are placed in one
   arena (``_share_buffers``: values alive at the same time never overlap), and each step is
   prebound: a convolution's kernel call is prepared once (``_conv.prepare_forward``: the
   route's kernel, work split, tables and packed weight), so a run only checks its arrays and
   enters the kernel, and every convolution of the plan runs on one scratch buffer (the steps
   run one at a time). A ``dense`` node on a 2-D batch of at most DENSE_PACKED_ROWS rows
   gets its weight packed once (``_linear.dense_pack``) and a forward that streams it with the
   bias added (``_linear.dense_forward``), bitwise the same as the layer's own forward.
   A pooling node (MaxPool2D without indices, AvgPool2D, GlobalAvgPool2D, AdaptiveAvgPool2D to
   1x1, functional.global_avg_pool2d) has its geometry validated once
   (``functional.pooling._prepared_*``) and becomes a direct kernel call into its buffer.
3. Running: one Python loop over the steps. Intermediate buffers are reused between calls; the
   returned arrays are never one of them. A run that starts after the OpenMP team has been
   idle runs its convolutions on one thread until a helper thread has woken a second CPU
   (``convext._team``), instead of waiting for the sleeping workers. A model whose every node
   computes each image alone (``_per_sample``) may run a large batch in chunks of images
   (``InferenceModel._chunk_size``), each chunk through its own plan, the outputs joined on the
   batch axis.

The results equal the original model's within float32 rounding (folding BatchNorm into the
weights rounds differently, and so does a cropped kernel's shorter sum: an unbatched input,
which runs the model itself, may differ from the same image in a batch in the last bit), and,
as every convext kernel, are bitwise the same for every thread count and batch size. The
optimized model cannot be trained: ``train()``, ``backward`` and ``fit`` raise.
"""

from __future__ import annotations

import copy
import math
import threading

import numpy as np

from . import _team, functional
from ._config import get_num_threads
from ._kernels import _conv, _linear
from ._validation import _shape_text
from .functional import pooling as _pooling
from .functional._routes import choose_route, conv_shape
from .functional.conv import _conv_setup, _kernel_geom
from .functional.linear import _linear_threads
from .layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2D,
    AvgPool2D,
    BatchNorm2D,
    Concat,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Graph,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Identity,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    ReLU6,
    Residual,
    Sequential,
    Sigmoid,
    SiLU,
    Tanh,
    Upsample,
)
from .layers.graph import Add
from .models._common import flatten_batch
from .onnx._ops import OnnxClip, OnnxFlatten

__all__ = ["InferenceModel", "optimize_for_inference"]

# Epilogue activation codes: the ACT_* values of _kernels/_conv.pyx.
ACT_NONE, ACT_RELU, ACT_RELU6, ACT_LEAKY, ACT_HARDTANH, ACT_ELU = 0, 1, 2, 3, 4, 5
ACT_SIGMOID, ACT_TANH, ACT_SILU, ACT_HARDSWISH, ACT_HARDSIGMOID = 6, 7, 8, 9, 10
ACT_GELU, ACT_GELU_TANH = 11, 12


def activation_code(layer):
    """(code, a0, a1) of an activation layer the epilogue computes, or None."""
    simple = {
        ReLU: ACT_RELU,
        ReLU6: ACT_RELU6,
        Sigmoid: ACT_SIGMOID,
        Tanh: ACT_TANH,
        SiLU: ACT_SILU,
        Hardswish: ACT_HARDSWISH,
        Hardsigmoid: ACT_HARDSIGMOID,
    }
    t = type(layer)
    if t in simple:
        return simple[t], 0.0, 0.0
    if t is LeakyReLU:
        return ACT_LEAKY, float(layer.negative_slope), 0.0
    if t is Hardtanh:
        return ACT_HARDTANH, layer.min_val, layer.max_val
    if t is ELU:
        return ACT_ELU, float(layer.alpha), 0.0
    if t is GELU:
        return (ACT_GELU_TANH if layer.approximate == "tanh" else ACT_GELU), 0.0, 0.0
    if t is OnnxClip:  # an imported Clip with finite bounds (torch's ReLU6) is a Hardtanh
        bounds = layer.hardtanh_bounds()
        return None if bounds is None else (ACT_HARDTANH, *bounds)
    return None


class _Node:
    __slots__ = ("kind", "ins", "out", "run", "attrs")

    def __init__(self, kind, ins, out, run, **attrs):
        self.kind, self.ins, self.out, self.run, self.attrs = kind, tuple(ins), out, run, attrs


class _Lowering:
    """Appends nodes for layers; values are ints (0..n_inputs-1 are the model's inputs)."""

    def __init__(self, n_inputs):
        self.nodes = []
        self.n_values = n_inputs

    def emit(self, kind, ins, run, **attrs):
        out = self.n_values
        self.n_values += 1
        self.nodes.append(_Node(kind, ins, out, run, **attrs))
        return out

    def call(self, fn, *ins):
        return self.emit("call", ins, fn)

    def layer(self, layer, v):
        """Lower ``layer`` applied to value ``v``; the value of its output."""
        lower = _LOWER.get(type(layer))
        if lower is not None:
            return lower(self, layer, v)
        code = activation_code(layer)
        if code is not None:
            return self.emit("act", (v,), layer, code=code)
        if isinstance(layer, Dropout):  # eval mode: the identity
            return v
        return self.call(_with_optimized_children(layer), v)


def _lower_sequential(lw, seq, v):
    for layer in seq:
        v = lw.layer(layer, v)
    return v


def _lower_conv(lw, conv, v):
    w, b = conv.weight, conv.bias
    geom = (conv.stride, conv.padding, conv.dilation, conv.groups)

    def run(x):
        return functional.conv2d(x, w, b, *geom)

    return lw.emit("conv", (v,), run, weight=w, bias=b, geom=geom)


def _lower_dense(lw, dense, v):
    return lw.emit("dense", (v,), dense, weight=dense.weight, bias=dense.bias)


def _lower_bn(lw, bn, v):
    if not bn.track_running_stats:
        return lw.call(bn, v)
    return lw.emit("bn", (v,), bn, layer=bn)


def _add(a, b):
    return a + b


def _lower_residual(lw, res, v):
    s = v if res.shortcut is None else lw.layer(res.shortcut, v)
    return lw.emit("add", (lw.layer(res.body, v), s), _add)


def _lower_concat(lw, cat, v):
    outs = [lw.layer(branch, v) for branch in cat.children()]
    axis = cat.axis

    def run(*xs):
        return np.concatenate(xs, axis=axis)

    return lw.emit("call", outs, run, per_sample=axis >= 1)


def _relu(x):
    return functional.relu(x)


def _lower_block(lw, block, v):
    """ResNet's BasicBlock and Bottleneck: relu(main(x) + shortcut(x)); the shortcut first,
    so that the last convolution can take it as its residual."""
    s = v if block.downsample is None else lw.layer(block.downsample, v)
    convs = [(block.conv1, block.bn1), (block.conv2, block.bn2)]
    if hasattr(block, "conv3"):
        convs.append((block.conv3, block.bn3))
    for i, (conv, bn) in enumerate(convs):
        v = _lower_bn(lw, bn, _lower_conv(lw, conv, v))
        if i < len(convs) - 1:
            v = lw.emit("act", (v,), _relu, code=(ACT_RELU, 0.0, 0.0))
    return lw.layer(block.relu, lw.emit("add", (v, s), _add))


def _lower_inverted_residual(lw, block, v):
    y = lw.layer(block.conv, v)
    return lw.emit("add", (y, v), _add) if block.use_res_connect else y


def _lower_resnet(lw, net, v):
    for layer in net._trunk():
        v = lw.layer(layer, v)
    return lw.layer(net.fc, lw.call(flatten_batch, v))


def _lower_mobilenet(lw, net, v):
    v = lw.call(functional.global_avg_pool2d, lw.layer(net.features, v))
    return lw.layer(net.classifier, lw.call(flatten_batch, v))


def _lower_vgg(lw, net, v):
    v = lw.layer(net.avgpool, lw.layer(net.features, v))
    return lw.layer(net.classifier, lw.call(flatten_batch, v))


def _lower_graph_into(lw, graph, ins):
    """Lower a Graph's nodes given the values of its inputs; the values of its outputs."""
    env = dict(zip(graph.input_names, ins, strict=True))
    for name in graph._order:
        layer, names = graph._children[name], graph._inputs[name]
        vals = [env[i] for i in names]
        if type(layer) is Add:
            env[name] = lw.emit("add", vals, layer)
        elif type(layer) is Graph:
            outs = _lower_graph_into(lw, layer, vals)
            env[name] = outs[0] if len(outs) == 1 else lw.call(_tuple, *outs)
        elif getattr(layer, "n_inputs", 1) != 1:
            env[name] = lw.call(layer, *vals)
        else:
            env[name] = lw.layer(layer, vals[0])
    return [env[o] for o in graph.output_names]


def _tuple(*xs):
    return xs


def _lower_graph(lw, graph, v):
    if len(graph.input_names) != 1 or len(graph.output_names) != 1:
        return lw.call(_with_optimized_children(graph), v)
    return _lower_graph_into(lw, graph, [v])[0]


def _lower_unet(lw, net, v):
    """UNet.forward, step by step: the input check, the encoder's skips, each decoder step's
    upsampling, join (Up.joined: pad and concatenate) and DoubleConv, the 1x1 output conv."""
    skips = [lw.layer(net.inc, lw.emit("call", (v,), net.checked_input, per_sample=True))]
    for i in range(1, net.depth + 1):
        skips.append(lw.layer(getattr(net, f"down{i}"), skips[-1]))
    y = skips.pop()
    for j in range(1, net.depth + 1):
        up = getattr(net, f"up{j}")
        u = lw.layer(up.up, y)
        y = lw.layer(
            up.conv, lw.emit("call", (skips[net.depth - j], u), up.joined, per_sample=True)
        )
    return lw.layer(net.outc, y)


def _zoo_lowerings():
    from .models import mobilenet, resnet, vgg
    from .models.unet import DoubleConv, Down, OutConv, UNet

    def child(name):  # a block whose forward is one child's
        return lambda lw, block, v: lw.layer(getattr(block, name), v)

    return {
        resnet.BasicBlock: _lower_block,
        resnet.Bottleneck: _lower_block,
        resnet.ResNet: _lower_resnet,
        mobilenet.InvertedResidual: _lower_inverted_residual,
        mobilenet.MobileNetV2: _lower_mobilenet,
        vgg.VGG: _lower_vgg,
        DoubleConv: child("double_conv"),
        Down: child("maxpool_conv"),
        OutConv: child("conv"),
        UNet: _lower_unet,
    }


_LOWER = {
    Sequential: _lower_sequential,
    Conv2D: _lower_conv,
    Dense: _lower_dense,
    BatchNorm2D: _lower_bn,
    Residual: _lower_residual,
    Concat: _lower_concat,
    Identity: lambda lw, layer, v: v,
    Graph: _lower_graph,
}
_LOWER.update(_zoo_lowerings())


def _lowerable(layer):
    return type(layer) in _LOWER or activation_code(layer) is not None


def _with_optimized_children(layer):
    """``layer`` itself (a copy, in eval mode), its children that can be lowered replaced by
    optimized versions: its own forward, whatever it does, then calls those."""
    for name, child in list(layer._children.items()):
        if _lowerable(child):
            opt = InferenceModel._from_copy(child)
            layer._release(name)
            layer._adopt(name, opt)
            if name in layer.__dict__:
                object.__setattr__(layer, name, opt)
        elif child._children:
            _with_optimized_children(child)
    return layer


def _per_sample(node):
    """Whether a node computes each image of the batch from that image alone (so that a batch
    may run in chunks): convolutions, BatchNorm with running statistics, residual adds,
    activations, dense layers, and the pooling, flatten and concatenation calls that keep the
    batch axis apart. Anything else (another layer's own forward, an operation of an imported
    graph) is taken to mix the images."""
    if node.kind in ("conv", "bn", "add", "act", "dense"):
        return True
    fn = node.run
    if fn is flatten_batch or fn is functional.global_avg_pool2d:
        return True
    if node.attrs.get("per_sample"):  # said by the lowering that made the node
        return True
    t = type(fn)
    if t is MaxPool2D:
        return not fn.return_indices
    if t is Flatten:
        return fn.start_dim >= 1
    if t is OnnxFlatten:  # to (batch, features) only with axis 1
        return fn.axis == 1
    return t in (
        AvgPool2D,
        AdaptiveAvgPool2D,
        GlobalAvgPool2D,
        ConvTranspose2D,
        Upsample,
        OnnxClip,
    )


# --------------------------------------------------------------------------------------------
# planning


def _fold(node, bn, dtype):
    """The convolution's weight and bias with an eval-mode BatchNorm2D folded in (float64)."""
    w = np.asarray(node.attrs["weight"], dtype=np.float64)
    b = node.attrs["bias"]
    b = np.zeros(w.shape[0]) if b is None else np.asarray(b, dtype=np.float64)
    if bn is None:
        return np.ascontiguousarray(node.attrs["weight"]), node.attrs["bias"]
    bf = bn._buffers
    scale = 1.0 / np.sqrt(np.asarray(bf["running_var"], np.float64) + bn.eps)
    if bn.affine:
        scale = scale * np.asarray(bn._params["weight"], np.float64)
    shift = (b - np.asarray(bf["running_mean"], np.float64)) * scale
    if "bias" in bn._params:
        shift = shift + np.asarray(bn._params["bias"], np.float64)
    return (
        np.ascontiguousarray((w * scale[:, None, None, None]).astype(dtype)),
        shift.astype(dtype),
    )


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _pack_gemm_weight(w, groups):
    """The (folded, contiguous) weight packed for the GEMM route's forward kernel."""
    f, cg, kh, kw = w.shape
    n = _conv.gemm_packed_weight_elems(f, cg * kh * kw, groups, w.dtype == np.float64)
    packed = np.empty(n, w.dtype)
    _conv.conv2d_pack_weight_gemm(w, packed, groups)
    return packed


# forward route -> f(folded weight, groups) -> the weight packed for that route's kernel
# (the valid-taps packer returns None for a weight with an inf or a NaN: then the kernel packs it
# on every call and runs the GEMM route, as conv2d does)
_WEIGHT_PACKERS = {
    "direct": _conv.pack_direct_weight,
    "gemm": _pack_gemm_weight,
    "valid_taps": _conv.pack_valid_taps_weight,
}


# A network's packed weights are read from memory on every call (ResNet-18's 46 MB do not stay in
# the caches), each 4 kB page of them through a translation the TLB no longer holds: ResNet-18's
# 2 MB classifier took 0.13-0.17 ms on 4 kB pages after the convolutions, 0.08 on 2 MB pages.
# So a plan copies its packed weights into blocks of WEIGHT_BLOCK bytes that start at a 2 MB
# boundary, where the OS can map them with 2 MB pages (numpy asks Linux for transparent huge
# pages on arrays of 4 MB and more; elsewhere the blocks are plain memory). Measured on a Zen 4
# (float32, the optimized model against the same with each weight in its own array, medians of
# alternated processes, two runs): batch 1, ResNet-18 0.984-0.989 of the time on one thread,
# 0.985-0.991 on two, MobileNetV2 0.976-0.991 and 0.996; batch 8 0.975-1.003. A block holds
# weights one after the other (64-byte aligned), sized from the weights the plan still expects
# (a quarter more, for the packings' padding), at most WEIGHT_BLOCK; an array of more than that
# gets a block of its own. The part of a block no weight reaches is never written: on a fresh
# mapping it takes no memory beyond its last partly filled 2 MB page. A plan whose weights
# total less than a 2 MB page keeps plain arrays.
WEIGHT_BLOCK = 32 << 20
WEIGHT_PAGE = 2 << 20
WEIGHT_MIN_BYTES = 4096  # smaller arrays (biases) stay where they are


class _WeightStore:
    """One plan's packed weights in 2 MB-aligned blocks (see WEIGHT_BLOCK); expected_bytes:
    about the bytes of the weights it will be given."""

    def __init__(self, expected_bytes):
        self._on = expected_bytes >= WEIGHT_PAGE
        self._left = expected_bytes  # the bytes still expected
        self._block, self._used = None, 0
        self.blocks = []  # every block made
        self.nbytes = 0  # the bytes of the arrays placed

    def place(self, a):
        """a's values in the store (a itself when small, when the plan's weights are small, or
        None)."""
        if a is None or not self._on or a.nbytes < WEIGHT_MIN_BYTES:
            return a
        n = -(-a.nbytes // 64) * 64
        if n > WEIGHT_BLOCK:
            room = self._new_block(n)
        else:
            if self._block is None or self._used + n > self._block.nbytes:
                want = max(n, self._left + self._left // 4)
                size = min(WEIGHT_BLOCK, -(-want // WEIGHT_PAGE) * WEIGHT_PAGE)
                self._block, self._used = self._new_block(size), 0
            room = self._block[self._used : self._used + n]
            self._used += n
        out = room[: a.nbytes].view(a.dtype).reshape(a.shape)
        out[...] = a
        self.nbytes += a.nbytes
        self._left = max(0, self._left - a.nbytes)
        return out

    def _new_block(self, nbytes):
        self.blocks.append(_new_arena(nbytes, WEIGHT_PAGE))
        return self.blocks[-1]


# A plan knows each convolution's input plane, so it drops the kernel's rows and columns that
# land in the padding for every output (a 3x3 kernel with padding 1 on a 1x1 plane keeps its
# centre tap: ResNet-18's last stage on a 32x32 image, whose 9.4 MB weights were read whole to
# multiply zeros; onnxruntime skips them). The products dropped are a padded zero times a finite
# weight, so the sums are those of the same taps without them: the same values within float
# rounding (the GEMM's chunks of K change with K), batch- and thread-independent as before. A
# weight with an inf or a NaN among the dropped taps keeps them (their products are NaN).


def _kept_taps(n, k, s, d, lo, o):
    """The first and last of a kernel's k taps along one dimension (stride s, dilation d, padding
    lo before an input of n, o outputs) that land inside the input for some output."""
    kept = []
    for i in range(k):
        c = i * d - lo  # output q reads q*s + c
        first = max(0, -(c // s))  # the least q with q*s + c >= 0 (ceil(-c / s))
        if first < o and first * s + c < n:
            kept.append(i)
    return (kept[0], kept[-1]) if kept else None


def _crop_to_input(w, g, in_hw):
    """(w cropped to its taps that land inside the input, its padding (top, bottom, left,
    right)) with the same output plane, or None when nothing can be dropped: every tap lands
    inside, a dropped tap's weight is not finite, or the crop would need a negative padding
    (or change the output plane)."""
    spans, pads = [], []
    for n, k, s, d, (lo, _), o in zip(
        in_hw, g.kernel, g.stride, g.dilation, g.padding, g.out_hw, strict=True
    ):
        span = _kept_taps(n, k, s, d, lo, o)
        if span is None:
            return None
        first, last = span
        lo2 = lo - first * d
        # the least bottom padding that still holds the last output's window
        hi2 = max(0, (o - 1) * s + d * (last - first) + 1 - n - lo2)
        if lo2 < 0 or (n + lo2 + hi2 - d * (last - first) - 1) // s + 1 != o:
            return None
        spans.append(span)
        pads += [lo2, hi2]
    (i0, i1), (j0, j1) = spans
    kh, kw = g.kernel
    if (i0, i1, j0, j1) == (0, kh - 1, 0, kw - 1):
        return None
    dropped = np.ones((kh, kw), bool)
    dropped[i0 : i1 + 1, j0 : j1 + 1] = False
    if not np.isfinite(w[:, :, dropped]).all():
        return None
    return np.ascontiguousarray(w[:, :, i0 : i1 + 1, j0 : j1 + 1]), tuple(pads)


def _conv_step(node, x_shape, dtype, bn, act, residual, out_buf, weights):
    """A prebound call of the conv kernel with its epilogue, f(x[, residual]) -> y; the same
    call on one thread (None where f runs on one already); y's shape; and the kernel calls
    (_conv.ForwardCall) of both, for the plan to give them scratch (use_scratch). The weight the
    kernel reads goes to the plan's store ``weights`` (_WeightStore)."""
    w, b = _fold(node, bn, dtype)
    stride, padding, dilation, groups = node.attrs["geom"]
    probe = np.empty(x_shape, dtype)
    x4, w, b, _, g = _conv_setup(probe, w, b, stride, padding, dilation, groups)
    cropped = _crop_to_input(w, g, x4.shape[2:])
    if cropped is not None:
        out_hw = g.out_hw
        x4, w, b, _, g = _conv_setup(probe, cropped[0], b, g.stride, cropped[1], g.dilation, groups)
        assert g.out_hw == out_hw
    route = choose_route("forward", conv_shape(x4.shape, w.shape, g))
    # ends with the thread count
    geom = _kernel_geom(g, x4.shape, w.shape, route, np.dtype(dtype).itemsize, "conv2d")
    code, a0, a1 = act if act is not None else (ACT_NONE, 0.0, 0.0)
    y_shape = (x_shape[0], w.shape[0]) + g.out_hw
    # the weight packed once for the route's kernel, not on every call
    packer = _WEIGHT_PACKERS.get(route)
    packed = weights.place(None if packer is None else packer(w, g.groups))
    if packed is None:  # the kernel reads w itself
        w = weights.place(w)

    def make(n_threads):
        # the route's kernel with its work split, tables and scratch decided once
        call = _conv.prepare_forward(
            route, x4.shape, w, b, y_shape, *geom[:-1], n_threads, residual, code, a0, a1, packed
        )
        if residual:

            def step(x, r):
                y = np.empty(y_shape, dtype) if out_buf is None else out_buf.array
                call(_c(x), y, _c(r))
                return y

        else:

            def step(x):
                y = np.empty(y_shape, dtype) if out_buf is None else out_buf.array
                call(_c(x), y)
                return y

        step.call = call  # for the plan's chains of calls (_Plan._link)
        calls.append(call)
        return step

    calls = []
    # the same call on one thread, for a run that starts while the team wakes (_team), where
    # that takes less than about the wake itself (SERIAL_MAX_MACS)
    macs = math.prod(y_shape) * math.prod(w.shape[1:])
    serial = make(1) if geom[-1] > 1 and macs <= SERIAL_MAX_MACS else None
    return make(geom[-1]), serial, y_shape, calls


# A convolution of more multiply-adds than this has no one-thread variant for a run that starts
# while the OpenMP team wakes (_conv_step, _team): about 4 ms on one thread, longer than the
# wake takes even on a VM whose idle CPUs are halted (a median of 2.8 ms after 30 ms of idle),
# so on every thread it finishes sooner even when it starts before the second thread runs.
# ResNet-18 at batch 8 on two threads with 0.3 s idle before each call (its convolutions of
# 0.5-0.9 G multiply-adds each; same process, alternated): 170.0 ms with one-thread variants
# for all of them, 157.7 with this limit (163.5 and 158.9 after 30 ms idle). At batch 1 (0.1 G
# at most) the one-thread variants win: a cold run took 20.8 ms with them and 21.4 with every
# step on both threads, MobileNetV2 at batch 1 6.1 against 15.4.
SERIAL_MAX_MACS = 200_000_000


# a Dense on at most this many rows runs on its weight packed once (_linear.dense_forward, which
# reads the weight once per call); on more, on the GEMM (functional.linear), which packs the
# weight per call but reuses it across many rows. Both give the same bits.
DENSE_PACKED_ROWS = 32


def _dense_step(node, x_shape, dtype, out_buf, weights):
    """A prebound call of the packed dense forward: f(x) -> y (x of shape x_shape), or None
    when the layer's own forward should run (another shape or dtype, or a large batch). The
    packed weight goes to the plan's store ``weights`` (_WeightStore)."""
    w, b = node.attrs["weight"], node.attrs["bias"]
    if (
        len(x_shape) != 2
        or not 1 <= x_shape[0] <= DENSE_PACKED_ROWS
        or x_shape[1] != w.shape[1]
        or dtype != w.dtype
        or dtype not in (np.float32, np.float64)
        or (b is not None and b.dtype != dtype)
    ):
        return None
    wp = weights.place(_linear.dense_pack(np.ascontiguousarray(w)))
    b = None if b is None else np.ascontiguousarray(b)
    y_shape = (x_shape[0], w.shape[0])
    threads = _linear_threads(x_shape[0], w.shape[0], w.shape[1])

    def step(x):
        y = np.empty(y_shape, dtype) if out_buf is None else out_buf.array
        _linear.dense_forward(_c(x), wp, b, y, threads)
        return y

    return step


def _pool_prepared(fn, x_shape, y_shape, dtype):
    """(run, out_shape) of the pooling a ``call`` node runs (a pooling layer in eval mode, or
    functional.global_avg_pool2d) validated once for its input, or None for anything else."""
    t = type(fn)
    if t is MaxPool2D and not fn.return_indices:
        return _pooling._prepared_max_pool2d(x_shape, dtype, *fn._args())
    if t is AvgPool2D:
        return _pooling._prepared_avg_pool2d(x_shape, dtype, *fn._args())
    # adaptive average pooling to 1x1 is the global average, the same bits
    if (
        t is GlobalAvgPool2D
        or fn is functional.global_avg_pool2d
        or t is AdaptiveAvgPool2D
        and len(y_shape) == 4
        and tuple(y_shape[2:]) == (1, 1)
    ):
        return _pooling._prepared_global_avg(x_shape, dtype)
    return None


def _pool_step(node, x_shape, y_shape, dtype, out_buf):
    """A prebound pooling kernel call writing into out_buf (or a new array): f(x) -> y, or None
    when the node should run as it is (not a pooling node, or another shape or dtype)."""
    if len(x_shape) != 4 or 0 in x_shape or dtype not in (np.float32, np.float64):
        return None
    prepared = _pool_prepared(node.run, x_shape, y_shape, dtype)
    if prepared is None or tuple(prepared[1]) != tuple(y_shape):
        return None
    run = prepared[0]

    def step(x):
        y = np.empty(y_shape, dtype) if out_buf is None else out_buf.array
        run(_c(x), y)
        return y

    return step


class _Slot:
    """The output buffer of a fused step: its shape and dtype when the plan is made, its array
    once the plan has given every slot one (_share_buffers)."""

    __slots__ = ("shape", "dtype", "array")

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.array = tuple(shape), np.dtype(dtype), None


class _Plan:
    """The fused steps for one input signature, with their output buffers. arena: None, or the
    arena of another plan that never runs while this one's values are in use (_Split's plans,
    one after the other), for this plan's buffers where it is large enough; scratch: likewise
    another plan's scratch buffer, for the kernels' scratch."""

    def __init__(self, nodes, n_inputs, outputs, inputs, arena=None, scratch=None):
        # 1. run unfused to learn the shapes (and dtypes) of every value, each value dropped
        # after the last node that reads it (planning holds about the values alive at once)
        vals = list(inputs)
        vals += [None] * (max((n.out for n in nodes), default=0) + 1 - len(vals))

        def describe(v):
            return np.shape(v), getattr(v, "dtype", None), isinstance(v, np.ndarray)

        meta = {i: describe(v) for i, v in enumerate(inputs)}
        last_read = {i: k for k, n in enumerate(nodes) for i in n.ins}
        for k, n in enumerate(nodes):
            vals[n.out] = n.run(*[vals[i] for i in n.ins])
            meta[n.out] = describe(vals[n.out])
            for i in n.ins:
                if last_read[i] == k and i not in outputs:
                    vals[i] = None
        n_values = len(vals)
        del vals
        uses = {}
        for n in nodes:
            for i in n.ins:
                uses[i] = uses.get(i, 0) + 1
        for o in outputs:
            uses[o] = uses.get(o, 0) + 1
        consumer = {}
        for n in nodes:
            for i in n.ins:
                consumer[i] = n
        outs = set(outputs)

        def sole(v, kind):
            n = consumer.get(v)
            if uses.get(v) == 1 and v not in outs and n is not None and n.kind == kind:
                return n
            return None

        # 2. fuse
        # the packed weights of the fused steps
        weights = _WeightStore(
            sum(n.attrs["weight"].nbytes for n in nodes if n.kind in ("conv", "dense"))
        )
        absorbed, claimed = set(), set()
        position = {n.out: k for k, n in enumerate(nodes)}
        fused_at = {}  # id(last absorbed node) -> the step for the chain
        kernel_calls = []  # the convolution kernels' calls, for their scratch
        serial_at = {}  # id(last absorbed node) -> its step on one thread (None: none)
        slots = {}  # value -> the _Slot its fused step writes
        for n in nodes:
            if n.kind != "conv":
                continue
            x_shape, dtype, _ = meta[n.ins[0]]
            if len(x_shape) != 4 or 0 in x_shape or dtype not in (np.float32, np.float64):
                continue
            last, v, bn, add, act = n, n.out, None, None, None
            cand = sole(v, "bn")
            if cand is not None:
                bn, last, v = cand.attrs["layer"], cand, cand.out
            cand = sole(v, "add")
            if cand is not None and id(cand) not in claimed:
                other = cand.ins[1] if cand.ins[0] == v else cand.ins[0]
                # the residual must exist when the convolution runs
                if (
                    cand.ins[0] != cand.ins[1]
                    and meta[other] == meta[v]
                    and position.get(other, -1) < position[n.out]
                ):
                    add, last, v = (cand, other), cand, cand.out
            cand = sole(v, "act")
            if cand is not None:
                act, last, v = cand.attrs["code"], cand, cand.out
            buf = None
            if v not in outs:
                buf = _Slot(meta[v][0], dtype)
                slots[v] = buf
            step, serial, y_shape, calls = _conv_step(
                n, x_shape, dtype, bn, act, add is not None, buf, weights
            )
            if tuple(y_shape) != tuple(meta[v][0]):  # not expected: keep the unfused nodes
                continue
            kernel_calls += calls
            ins = (n.ins[0],) if add is None else (n.ins[0], add[1])
            chain = {id(n), id(last)}
            if bn is not None:
                chain.add(id(consumer[n.out]))
            if add is not None:
                chain.add(id(add[0]))
            claimed |= chain
            absorbed |= chain - {id(last)}
            fused_at[id(last)] = (step, ins, v)
            serial_at[id(last)] = serial
        for n in nodes:
            if n.kind != "dense" or id(n) in fused_at:
                continue
            x_shape, dtype, is_array = meta[n.ins[0]]
            if not is_array:
                continue
            buf = None
            if n.out not in outs:
                buf = _Slot(meta[n.out][0], dtype)
            step = _dense_step(n, x_shape, dtype, buf, weights)
            if (
                step is None
                or buf is not None
                and buf.shape != (x_shape[0], n.attrs["weight"].shape[0])
            ):
                continue
            if buf is not None:
                slots[n.out] = buf
            fused_at[id(n)] = (step, n.ins, n.out)
        for n in nodes:
            if n.kind != "call" or len(n.ins) != 1 or id(n) in fused_at:
                continue
            x_shape, dtype, is_array = meta[n.ins[0]]
            y_shape, y_dtype, y_array = meta[n.out]
            if not (is_array and y_array and y_dtype == dtype):
                continue
            buf = None if n.out in outs else _Slot(y_shape, dtype)
            step = _pool_step(n, x_shape, y_shape, dtype, buf)
            if step is None:
                continue
            if buf is not None:
                slots[n.out] = buf
            fused_at[id(n)] = (step, n.ins, n.out)
        steps, fresh = [], set()  # fresh: the values the fused steps write
        serial = []  # each step's variant on one thread, or None (run the step itself)
        for n in nodes:
            if id(n) in absorbed:
                continue
            serial.append(serial_at.get(id(n)))
            if id(n) in fused_at:
                steps.append(fused_at[id(n)])
                fresh.add(fused_at[id(n)][2])
            else:
                steps.append((n.run, n.ins, n.out))
        # a conv chain that was not fused after all leaves its slot unused
        slots = {v: s for v, s in slots.items() if v in fresh}
        self._slots = slots
        self.steps = steps
        self.serial = serial
        self.has_serial = any(f is not None for f in serial)
        # the steps that run on several threads and have no one-thread variant
        self._wide = [
            f is None and getattr(getattr(fn, "call", None), "n_threads", 1) > 1
            for (fn, _, _), f in zip(steps, serial, strict=True)
        ]
        self.threads = get_num_threads()
        self.n_values = n_values
        self.n_inputs = n_inputs
        self.outputs = outputs
        self.segments = None  # how run() runs the steps (_link, once the buffers are bound)
        self._placed, self._arena_bytes, self._own = _share_buffers(steps, slots, fresh, outputs)
        self.arena, self._buffers = None, list(self._own)  # _own: arrays a model output may hold
        if self._placed:
            if arena is None or arena.nbytes < self._arena_bytes:
                arena = _new_arena(self._arena_bytes)
            self.bind(arena)
        self.buffer_bytes = self._arena_bytes + sum(b.nbytes for b in self._own)
        # one scratch buffer for every convolution: the steps run one at a time (and the
        # kernels write their scratch before they read it)
        self._kernel_calls = kernel_calls
        self._weights = weights
        self.scratch_bytes = max((c.scratch_bytes for c in kernel_calls), default=0)
        if scratch is None or scratch.nbytes < self.scratch_bytes:
            scratch = np.empty(self.scratch_bytes, np.uint8)
        self.bind_scratch(scratch)
        self._link()
        self.value_bytes = sum(_slot_bytes(s) for s in slots.values())
        # every output an array with the inputs' batch first (which chunks can be joined on)
        n = np.shape(inputs[0])[0]
        self.batch_first = all(meta[o][2] and meta[o][0][:1] == (n,) for o in outputs)
        # value -> its bytes, for the values that are arrays with the inputs' batch first
        self.batch_bytes = {
            i: int(np.prod(shape)) * np.dtype(dtype).itemsize
            for i, (shape, dtype, is_array) in meta.items()
            if is_array and shape[:1] == (n,)
        }

    def bind(self, arena):
        """Place the slots of the shared buffers in `arena` (a byte array of at least
        _arena_bytes, ARENA_ALIGN-aligned, that no other plan uses while this one's values are
        in use): their arrays are views of it at the offsets _share_buffers gave them. The
        steps read each slot's array when they run, so a plan may be bound again."""
        for offset, slot in self._placed:
            slot.array = arena[offset : offset + _slot_bytes(slot)].view(slot.dtype)
            slot.array = slot.array.reshape(slot.shape)
        self.arena = arena
        self._buffers = [arena] + self._own
        if self.segments is not None:  # bound again: the chains on the new arrays
            self._link()

    def _link(self):
        """self.segments: the steps as run() runs them when the team is awake, each run of
        consecutive convolution steps whose prepared call (_conv.ForwardCall) reads and writes
        only the plan's slots made one _conv.ForwardChain (its kernels back to back, without
        Python between them: in a network each step's Python, which the values streaming
        through the caches between calls have evicted, took several microseconds), the
        others as they are. A segment is (fn, ins, out, sets): fn(*ins' values) -> out's
        value, or for a chain, fn() and then the (value, array) pairs of sets, its slots that a
        later step or an output reads."""
        slots = self._slots
        groups = []  # [(fn, ins, out)] of a chain, or a step
        chain = []
        for fn, ins, out in self.steps:
            call = getattr(fn, "call", None)
            if (
                isinstance(call, _conv.ForwardCall)
                and out in slots
                and all(i in slots for i in ins)
            ):
                chain.append((call, ins, out))
                continue
            if chain:
                groups.append(chain)
                chain = []
            groups.append((fn, ins, out))
        if chain:
            groups.append(chain)
        read = set(self.outputs)
        for g in groups:
            if isinstance(g, tuple):
                read.update(g[1])
        self._groups, self._read = groups, read
        self._resume = {}  # step -> the segments from it on (_segments_from)
        self.segments = [self._segment(g) for g in groups]

    def _segment(self, g):
        """The segment of a group of _link: a step as it is, or a chain of [(call, ins, out)]."""
        if isinstance(g, tuple):
            return g + (None,)
        slots = self._slots
        run = _conv.ForwardChain(
            [call for call, _, _ in g],
            [slots[ins[0]].array for _, ins, _ in g],
            [slots[out].array for _, _, out in g],
            [slots[ins[1]].array if len(ins) > 1 else None for _, ins, _ in g],
        ).run
        return (
            run,
            (),
            None,
            tuple((out, slots[out].array) for _, _, out in g if out in self._read),
        )

    def _segments_from(self, k):
        """The segments that run steps k (< len(steps)) on: those of _link, the one where step k
        falls inside a chain a chain of its later steps (made on first use, then kept)."""
        segments = self._resume.get(k)
        if segments is None:
            sizes = [len(g) if isinstance(g, list) else 1 for g in self._groups]  # steps
            i = start = 0  # group i holds steps start, start + 1, ...
            while k >= start + sizes[i]:
                start += sizes[i]
                i += 1
            g = self._groups[i]
            head = self.segments[i] if k == start else self._segment(g[k - start :])
            segments = self._resume[k] = [head] + self.segments[i + 1 :]
        return segments

    def bind_scratch(self, scratch):
        """The convolutions' scratch in `scratch` (a uint8 array of at least scratch_bytes that
        no other plan uses while this one runs)."""
        for c in self._kernel_calls:
            c.use_scratch(scratch)
        self.scratch = scratch

    def run(self, inputs, detach=True):
        """The outputs for these inputs; with detach=False they may be views of the plan's
        buffers, valid until its next run."""
        vals = [None] * self.n_values
        vals[: self.n_inputs] = inputs
        # after an idle spell, the steps' serial variants until a second CPU runs (_team); the
        # helper stops after the first of them that has run on every thread
        cold = self.has_serial and _team.cold_start(self.threads)
        held = cold
        try:
            if not cold:  # every step on its threads: the chains (_link)
                _run_segments(self.segments, vals)
                steps = ()
            else:
                steps = self.steps
            for k, (fn, ins, out) in enumerate(steps):
                if cold and _team.awake():
                    cold = False
                parallel = self.serial[k] is not None
                if parallel and cold:
                    fn = self.serial[k]
                elif held and self._wide[k]:
                    # on every thread without a one-thread variant (SERIAL_MAX_MACS): its own
                    # parallel region wakes the team, and the helper need not hold a CPU
                    _team.release()
                    held = cold = False
                vals[out] = fn(*[vals[i] for i in ins])
                if parallel and held and not cold:  # it ran on every thread
                    _team.release()
                    held = False
                if not (cold or held) and k + 1 < len(steps):  # the rest as when warm
                    _run_segments(self._segments_from(k + 1), vals)
                    break
        finally:
            _team.finished()
        if not detach:
            return [vals[o] for o in self.outputs]
        return [self._detached(vals[o]) for o in self.outputs]

    def _detached(self, y):
        """An output as the caller may keep it: a copy where it is (or views) one of the
        plan's buffers, which the next call overwrites; inside tuples and lists too (a layer
        returning several arrays)."""
        if isinstance(y, (tuple, list)):
            return type(y)(self._detached(e) for e in y)
        if isinstance(y, np.ndarray) and any(np.may_share_memory(y, b) for b in self._buffers):
            return y.copy()
        return y


# A batch whose buffers would take more than this runs in chunks of images
# (InferenceModel._chunk_size): half the 32 MB last-level cache of the Zen 4 machine it was
# measured on, beside the weights. There, mobilenet_v2's 6 MB per image at batch 8 took
# 51.7-57.3 ms in one run on two threads and 42.9 ms in chunks of 2 (84-88 ms and 71-74 ms on
# one thread); resnet18's 4 MB per image gained nothing in chunks of 4 (0.97 of the speed
# on two threads, median of 6 alternated processes), hence _chunk_size's weight rule.
CHUNK_BYTES = 16 << 20

# A chunked batch runs in chunks only up to the node after which every value read or written
# for the whole batch takes at most SPLIT_BYTES_PER_THREAD per thread; the nodes from there run
# once on the whole batch (_Split): the small maps' GEMMs are wider and split better over the
# threads, and each of their weights is read once instead of once per chunk. Measured on the
# same Zen 4 (mobilenet_v2, float32, medians of alternated calls, time against chunks all the
# way; the split at the 28x28, 14x14 or 7x7 stage as the limit allows): two threads, batch 8
# 0.93-0.95 and batch 16 0.93-0.99; one thread, batch 8 0.92-0.98, batch 16 0.98, batch 4
# 0.99. Limits of 4 and 8 MB per thread gave 0.99-1.01 and 1.04 on one thread at batch 8 (the
# 14x14 and 28x28 stages' values no longer in its cache), 0.93 on two.
SPLIT_BYTES_PER_THREAD = 2 << 20


def _run_segments(segments, vals):
    """Run a plan's segments (_Plan._link) on its list of values."""
    for fn, ins, out, sets in segments:
        if sets is None:
            vals[out] = fn(*[vals[i] for i in ins])
        else:
            fn()
            for v, a in sets:
                vals[v] = a


class _Split:
    """A batch run in chunks of ``chunk`` images up to node ``k``, then whole: the plans of
    nodes[:k] per chunk size, whose outputs are the values nodes[k:] (or the model's outputs)
    read, copied into arrays of the whole batch, and the plan of nodes[k:] on them. Each
    image's values are the same bits in any batch (the kernels' guarantee): so are the
    outputs."""

    def __init__(self, nodes, n_inputs, outputs, chunk, k):
        later = {n.out for n in nodes[k:]}
        needed = set(outputs) | {i for n in nodes[k:] for i in n.ins}
        self.live = sorted(needed - later)  # produced before k (or inputs), read from k on
        # nodes[k:] with the live values renumbered as its inputs 0.. and the others after them
        index = {v: i for i, v in enumerate(self.live)}
        shift = len(self.live)

        def num(v):
            return index[v] if v in index else v + shift

        self._suffix_nodes = [
            _Node(n.kind, [num(i) for i in n.ins], num(n.out), n.run, **n.attrs) for n in nodes[k:]
        ]
        self._suffix_outputs = [num(o) for o in outputs]
        self._nodes, self._n_inputs, self.chunk, self.k = nodes, n_inputs, chunk, k
        self._prefix = {}  # images -> the plan of nodes[:k]
        self._suffix = None
        # one arena (and one scratch buffer) for all the plans: they run one after the other,
        # each one's outputs copied out before the next starts, so a batch holds one arena
        # instead of one per plan
        self._arena = self._scratch = None

    def run(self, inputs):
        n = inputs[0].shape[0]
        joined = None
        for start in range(0, n, self.chunk):
            part = [x[start : start + self.chunk] for x in inputs]
            m = part[0].shape[0]
            plan = self._prefix.get(m)
            if plan is None:
                plan = self._prefix[m] = _Plan(
                    self._nodes[: self.k],
                    self._n_inputs,
                    self.live,
                    part,
                    self._arena,
                    self._scratch,
                )
                self._keep_arena(plan)
            vals = plan.run(part, detach=False)
            if joined is None:
                joined = [np.empty((n,) + v.shape[1:], v.dtype) for v in vals]
            for whole, v in zip(joined, vals, strict=True):
                whole[start : start + m] = v
        if self._suffix is None:
            self._suffix = _Plan(
                self._suffix_nodes,
                len(self.live),
                self._suffix_outputs,
                joined,
                self._arena,
                self._scratch,
            )
            self._keep_arena(self._suffix)
        return self._suffix.run(joined)

    def _keep_arena(self, plan):
        """After a new plan, made on self._arena (and self._scratch) where that held its
        buffers: a new arena (scratch buffer) it needed, a larger one, becomes the arena
        (scratch buffer) of them all, the plans made before bound to it."""
        others = [p for p in (*self._prefix.values(), self._suffix) if p not in (None, plan)]
        if plan.arena is not None and plan.arena is not self._arena:
            self._arena = plan.arena
            for other in others:
                if other.arena is not None:
                    other.bind(self._arena)
        if plan.scratch is not self._scratch:
            self._scratch = plan.scratch
            for other in others:
                other.bind_scratch(self._scratch)


# the byte alignment of each slot in the plan's arena (a cache line; the kernels' vector loads
# need less)
ARENA_ALIGN = 64


def _share_buffers(steps, slots, fresh, outputs):
    """Lay the slots out in one arena (a byte array): each at an offset that no slot
    alive at the same time overlaps, so that a forward pass touches about its largest live
    values rather than every value once (mobilenet_v2 at batch 1: 26.7 MB of values in a 6.0 MB
    arena, where arrays shared only between values of one shape took 18.9 MB; with the 14 MB
    of weights that is what stays in the last-level cache between steps and between calls). A
    slot lives from the step that writes it to the last step that reads it or a value that may
    view it; two slots whose lives share a step never overlap, so no kernel writes over what it
    reads. The fused steps write their slot or a new array (their outputs: fresh); any other
    step may return a view of its inputs (flatten), so its output is taken to hold all of its
    inputs' buffers; a slot that a model output may hold gets an array of its own, never
    shared. Offsets: the slots largest first, each at the lowest aligned offset clear of the
    slots already placed whose lives meet its own (greedy by size). Returns [(offset, slot)]
    for the slots in the arena (_Plan.bind gives them their arrays), the arena's bytes, and
    the arrays of their own, given to the others."""
    holds = {}  # value -> the slots whose arrays it may be or view
    for _, ins, out in steps:
        s = slots.get(out)
        if s is not None:
            holds[out] = {s}
        elif out not in fresh:
            holds[out] = set().union(*(holds.get(i, ()) for i in ins))
    first, last = {}, {}
    for k, (_, ins, out) in enumerate(steps):
        s = slots.get(out)
        if s is not None:
            first.setdefault(s, k)
        for v in (*ins, out):
            for h in holds.get(v, ()):
                last[h] = k
    pinned = set().union(*(holds.get(o, ()) for o in outputs))
    placed, size = [], 0  # placed: (offset, end, slot)
    shared = [s for s in first if s not in pinned]
    shared.sort(key=lambda s: (-_slot_bytes(s), first[s]))
    for s in shared:
        nbytes = -(-_slot_bytes(s) // ARENA_ALIGN) * ARENA_ALIGN
        taken = sorted(
            (start, end)
            for start, end, t in placed
            if first[t] <= last[s] and first[s] <= last[t]  # lives that share a step
        )
        offset = 0
        for start, end in taken:
            if offset + nbytes <= start:
                break
            offset = max(offset, end)
        placed.append((offset, offset + nbytes, s))
        size = max(size, offset + nbytes)
    own = []
    for s in first:
        if s in pinned:
            s.array = np.empty(s.shape, s.dtype)
            own.append(s.array)
    return [(offset, s) for offset, _, s in placed], size, own


def _new_arena(nbytes, align=ARENA_ALIGN):
    """A byte array of nbytes starting at an ``align``-byte boundary."""
    return _conv.empty_aligned(nbytes, np.uint8, align)


def _slot_bytes(s):
    return math.prod(s.shape) * s.dtype.itemsize


class InferenceModel(Layer):
    """An eval-only model made by ``optimize_for_inference``: call it like the original
    (``model(x)``). It holds a private copy of the original's arrays; it cannot be trained,
    and it has no parameters of its own to train (``parameters()`` is empty)."""

    def __init__(self, model):
        super().__init__()
        if not isinstance(model, Layer):
            raise TypeError(
                f"optimize_for_inference: model must be a convext Layer, got {type(model).__name__}"
            )
        self._setup(copy.deepcopy(model).eval())

    @classmethod
    def _from_copy(cls, layer):
        self = cls.__new__(cls)
        Layer.__init__(self)
        self._setup(layer)
        return self

    def _setup(self, model):
        model.eval()
        object.__setattr__(self, "training", False)
        object.__setattr__(self, "_model", model)  # not a child: no parameters or state
        n_in = len(model.input_names) if isinstance(model, Graph) else 1
        lw = _Lowering(n_in)
        if isinstance(model, Graph):
            outputs = _lower_graph_into(lw, model, list(range(n_in)))
        else:
            outputs = [lw.layer(model, 0)]
        self._nodes = lw.nodes
        self._n_inputs = n_in
        self._outputs = outputs
        self._tuple_out = isinstance(model, Graph) and len(model.output_names) > 1
        self._per_sample = all(_per_sample(node) for node in lw.nodes)
        self._weight_bytes = sum(
            node.attrs[k].nbytes
            for node in lw.nodes
            if node.kind in ("conv", "dense")
            for k in ("weight", "bias")
            if node.attrs.get(k) is not None
        )
        self._local = threading.local()

    def __deepcopy__(self, memo):
        return InferenceModel._from_copy(copy.deepcopy(self._model, memo))

    def __getstate__(self):
        raise TypeError(
            "an optimized model cannot be pickled or saved: save the original model and "
            "optimize it again after loading"
        )

    def __call__(self, *inputs):
        return self.forward(*inputs)

    def forward(self, *inputs):
        if len(inputs) != self._n_inputs:
            raise ValueError(
                f"optimize_for_inference: the model takes {self._n_inputs} input(s), got "
                f"{len(inputs)}"
            )
        inputs = [np.asarray(x) for x in inputs]
        if any(x.ndim != 4 or x.size == 0 for x in inputs):
            # unbatched or empty input: the original layers' own forward (it validates)
            out = self._model(*inputs)
            return out
        entry = self._entry(inputs)
        if isinstance(entry, (_Plan, _Split)):
            outs = entry.run(inputs)
        else:  # chunks of `entry` images
            parts = []
            for i in range(0, inputs[0].shape[0], entry):
                part = [x[i : i + entry] for x in inputs]
                parts.append(self._entry(part).run(part))
            outs = [np.concatenate([p[k] for p in parts]) for k in range(len(self._outputs))]
        return tuple(outs) if self._tuple_out else outs[0]

    def _entry(self, inputs):
        """How inputs of these shapes and dtypes run at this thread count: their plan, the
        number of images per chunk (_chunk_size), or chunks up to a node and the whole batch
        after it (_Split, at _split_node). Made on first use, from the plan of one image per
        thread where the batch may run in chunks (so that a large batch is never planned
        whole: planning holds every value of an unfused run); at most 8 kept per Python
        thread."""
        key = (tuple((x.shape, x.dtype.str) for x in inputs), get_num_threads())
        plans = self._local.__dict__.setdefault("plans", {})
        entry = plans.get(key)
        if entry is None:
            n, threads = inputs[0].shape[0], get_num_threads()
            chunk, k = n, None
            if self._per_sample and n > threads and all(x.shape[0] == n for x in inputs):
                try:
                    probe = self._entry([x[:threads] for x in inputs])
                except ValueError as e:  # its message names the probe's shape, not the input's
                    shapes = ", ".join(_shape_text(x.shape) for x in inputs)
                    raise ValueError(
                        f"optimize_for_inference: input of shape {shapes} (planned on its first "
                        f"{threads} images): {e}"
                    ) from e
                chunk = self._chunk_size(probe, threads, n)
                if chunk < n:
                    k = self._split_node(probe, threads, n)
            if len(plans) >= 8:
                plans.clear()
            if k is not None:
                entry = plans[key] = _Split(self._nodes, self._n_inputs, self._outputs, chunk, k)
            elif chunk < n:
                entry = plans[key] = chunk
            else:
                entry = plans[key] = _Plan(self._nodes, self._n_inputs, self._outputs, inputs)
        return entry

    def _chunk_size(self, plan, images, n):
        """Images per run for a batch of n (more than the threads) of a model whose every node
        computes each image alone (_per_sample), from its plan for `images` images: n, or
        chunks of a whole number of images per thread whose buffers take about CHUNK_BYTES (at
        least one image per thread), so that the values passed from step to step stay in the
        last-level cache instead of streaming through memory, where those values outweigh the
        weights, which every chunk reads again (mobilenet_v2: 26.7 MB of values per image, 14 MB
        of weights; resnet18: 10.8 MB per image and 47 MB, not chunked); never for outputs
        that are not arrays with the batch first. Each image's result is the same bits in any
        batch (the kernels' guarantee), so chunks change no output."""
        if not plan.batch_first:
            return n
        threads = get_num_threads()
        per_image = max(1, plan.buffer_bytes // images)
        chunk = max(threads, CHUNK_BYTES // per_image // threads * threads)
        # each chunk reads all the weights again: worth it only where the values a chunk's
        # steps pass on (each written once and read at least once) outweigh them
        if chunk >= n or plan.value_bytes // images * chunk < self._weight_bytes:
            return n
        return chunk

    def _split_node(self, plan, images, n):
        """For a batch of n that runs in chunks, from the plan for `images` images: the first
        node of the longest run of last nodes whose every value read or written is an array
        with the batch first taking at most SPLIT_BYTES_PER_THREAD per thread for the whole
        batch, moved past any node a convolution's step would take in (the nodes from there
        run on the whole batch: _Split), or None where there is no such run or it is the whole
        model."""
        limit = SPLIT_BYTES_PER_THREAD * get_num_threads()
        k = len(self._nodes)
        while k > 0:
            node = self._nodes[k - 1]
            sizes = [plan.batch_bytes.get(v) for v in (node.out, *node.ins)]
            if any(b is None or b // images * n > limit for b in sizes):
                break
            k -= 1
        # never between a convolution and the BatchNorm, residual add or activation that its
        # step takes in (the chain is fused within one plan only)
        while k < len(self._nodes) and self._nodes[k].kind in ("bn", "add", "act"):
            k += 1
        if not plan.batch_first or k in (0, len(self._nodes)):
            return None
        return k

    def train(self, mode=True):
        if mode:
            raise RuntimeError(
                "optimize_for_inference: the optimized model is eval-only (BatchNorm is "
                "folded into the convolutions); train the original model and optimize it again"
            )
        return self

    def backward(self, grad_out, needs_input_grad=True):
        raise RuntimeError(
            "optimize_for_inference: the optimized model has no backward (it is eval-only); "
            "train the original model and optimize it again"
        )

    def save(self, path):
        self.get_config()  # raises

    def get_config(self):
        raise TypeError(
            "an optimized model cannot be saved: save the original model and optimize it "
            "again after loading"
        )

    def extra_repr(self):
        return f"{type(self._model).__name__}, {len(self._nodes)} nodes"

    def __repr__(self):
        return f"InferenceModel({self.extra_repr()})"


def optimize_for_inference(model: Layer) -> InferenceModel:
    """An eval-only copy of ``model`` (a Layer: Sequential, a composite or zoo model, an
    imported ONNX Graph...) that computes the same outputs within float32 rounding, faster.

    BatchNorm2D (eval mode) is folded into the preceding Conv2D (in float64, then cast to the
    model's dtype); the bias, a residual add and the activation (ReLU, ReLU6, LeakyReLU,
    Hardtanh, ELU, Sigmoid, Tanh, SiLU, Hardswish, Hardsigmoid, GELU) are applied in the
    convolution kernel's epilogue, on each output tile while it is in cache; weights are
    converted once; a kernel's rows and columns that land in the padding for every output of
    the input's plane (a 3x3 kernel on a 1x1 plane) are dropped where their weights are finite;
    intermediate buffers are reused between calls (per Python thread, so
    concurrent calls are safe); a call is one loop over prebound kernel calls. The first call
    with a new input shape plans (it runs the model once unfused). The returned model keeps its
    own copy of the weights: changing ``model`` afterwards does not change it.

    The optimized model cannot be trained: ``train()``, ``backward`` and ``fit`` raise a
    RuntimeError; nor saved (``save``/pickling raise TypeError): save the original.
    """
    return InferenceModel(model)
