"""Per-layer benchmark: every distinct convolution of ResNet-18, ResNet-50, MobileNetV2 and
VGG-11 (convext.models, 3x224x224 input, float32), convext against torch.

The layers are found by running each network once at batch 1 and recording the geometry of
every convolution it calls (input channels and plane, weight, stride, padding, dilation,
groups); a geometry that an earlier network already had is timed once, under that network's
name. Three passes per layer, as in docs/benchmarks.md: batch-1 forward, batch-16 forward and
batch-16 backward (grad input and grad weight, and grad bias where the layer has a bias; torch
through torch.ops.aten.convolution_backward). Medians of alternating runs; the summary gives,
per pass, the geometric mean of convext/torch, the worst layer and how many exceed 1.2, and the
largest 3x3 layers as a fraction of the FMA peak (and, when torch is timed, torch's rate on them
as a fraction of the same peak: what a mature library reaches on the machine).
"""

import math

import numpy as np

from .. import functional
from ..functional.conv import _conv_window
from ._common import alternate, geomean, no_grad, print_table
from .conv import _convext_calls, _torch_calls

NETWORKS = ("resnet18", "resnet50", "mobilenet_v2", "vgg11")
# for --shapes: one name per network (its distinct layers)
SHAPES = [(f"layers-{net}",) for net in NETWORKS]
# pass label, batch, backward?
PASSES = (("b1 forward", 1, False), ("b16 forward", 16, False), ("b16 backward", 16, True))
WORST = 1.2  # the limit for any one layer
LARGEST_3X3 = 3  # how many of the largest 3x3 layers the peak summary lists


def distinct_layers(networks):
    """[(name, (C, H, W), weight shape, stride, padding, dilation, groups, has_bias)] for every
    distinct convolution of the networks, in the order they first run."""
    found = {}
    for net in networks:
        _record_convolutions(net, found)
    return [(name, *key, has_bias) for key, (name, has_bias) in found.items()]


def _record_convolutions(net, found):
    """Run the network once at batch 1; add each new geometry to ``found`` as key -> (name,
    has_bias), the name being the network and the convolution's position in its run."""
    from .. import models

    model = getattr(models, net)(rng=0).eval()
    real = functional.conv2d
    count = 0

    def record(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kw):
        nonlocal count
        key = (np.shape(x)[1:], np.shape(weight), stride, padding, dilation, groups)
        if key not in found:
            found[key] = (f"{net}.{count}", bias is not None)
        count += 1
        return real(x, weight, bias, stride, padding, dilation, groups, **kw)

    # every Conv2D calls functional.conv2d through the module: record it for one forward
    functional.conv2d = record
    try:
        model(np.zeros((1, 3, 224, 224), np.float32))
    finally:
        functional.conv2d = real


def _geometry(chw, wshape, stride, padding, groups):
    F, _, kh, kw = wshape
    text = f"{chw[0]}x{chw[1]}x{chw[2]} -> {F}, {kh}x{kw}"
    if stride != (1, 1):
        text += f" s{stride[0]}" if stride[0] == stride[1] else f" s{stride}"
    if groups > 1:
        text += " dw" if groups == chw[0] == F else f" g{groups}"
    return text


def measure(ctx, layers):
    """Rows of (name, geometry, kernel size, {pass: (convext s, torch s, flops)}, share of the
    products inside the input (inside_fraction))."""
    rng = np.random.default_rng(0)
    rows = []
    repeats = min(ctx.repeats, 5)
    for name, chw, wshape, stride, padding, dilation, groups, has_bias in layers:
        w = rng.standard_normal(wshape, dtype=np.float32) * 0.1
        b = rng.standard_normal(wshape[0], dtype=np.float32) if has_bias else None
        args = (stride, padding, dilation, groups)
        result = {}
        for label, N, backward in PASSES:
            x = rng.standard_normal((N,) + chw, dtype=np.float32)
            y = functional.conv2d(x, w, b, *args)
            gy = rng.standard_normal(y.shape, dtype=np.float32)
            flops = 2.0 * y.size * math.prod(wshape[1:]) * (2 if backward else 1)
            fwd, bwd, _ = _convext_calls(x, w, b, gy, *args)
            tf, tbwd, _ = _torch_calls(ctx.torch, x, w, b, gy, *args)
            fa, fb = (bwd, tbwd) if backward else (fwd, tf)
            with no_grad(ctx.torch):
                ta, tb = alternate(
                    fa, fb, repeats=repeats, warmup=1 if ctx.quick else 2, watch=ctx.watch
                )
            result[label] = (ta, tb, flops)
        inside = inside_fraction(chw, wshape, stride, padding, dilation, groups)
        geom = _geometry(chw, wshape, stride, padding, groups)
        rows.append((name, geom, wshape[2:], result, inside))
    return rows


def inside_fraction(chw, wshape, stride, padding, dilation, groups):
    """The share of a convolution's nominal products (outputs x C/G x kH x kW) whose tap lands
    inside the input rather than on its zero padding: the products that a route skipping the
    padding (convext's valid taps, oneDNN's kernels in torch) forms."""
    window = _conv_window((1, *chw), wshape, None, stride, padding, dilation, groups, "bench")
    share = 1.0
    for axis in range(2):
        n, k = chw[1 + axis], wshape[2 + axis]
        s, d = window.stride[axis], window.dilation[axis]
        before, out = window.padding[axis][0], window.out_hw[axis]
        inside = sum(1 for o in range(out) for i in range(k) if 0 <= o * s + i * d - before < n)
        share *= inside / (out * k)
    return share


def _peak_fraction(ctx, what, gflops, inside):
    """The rate (on nominal products) as a fraction of the FMA peak, marked ``!`` above 100%,
    and reported to the load watch where even the products inside the input (``inside`` of
    them: inside_fraction) would exceed the peak."""
    frac = gflops / ctx.ceiling
    if frac * inside > 1 and not ctx.ceiling_estimate:
        ctx.watch.flag_impossible(f"convext {what} {frac * inside:.0%} (inside the input)")
    return f"{frac:.0%}" + ("!" if frac > 1 else "")


def run(ctx):
    print("\n## Layers: the distinct convolutions of ResNet-18, ResNet-50, MobileNetV2, VGG-11\n")
    nets = [n for n in NETWORKS if ctx.shapes is None or f"layers-{n}" in ctx.shapes]
    if not nets:
        print("(no layer selected)")
        return []
    layers = distinct_layers(nets)
    rows = measure(ctx, layers)
    with_torch = ctx.torch is not None
    headers = ["layer", "geometry"]
    for label, _, _ in PASSES:
        headers += [f"{label} ms", f"{label} % peak"] + ([f"{label} /torch"] if with_torch else [])
    table = []
    for name, geom, _, res, inside in rows:
        row = [name, geom]
        for label, _, _ in PASSES:
            ta, tb, fl = res[label]
            gflops = fl / ta / 1e9
            row += [f"{ta * 1e3:.3f}", _peak_fraction(ctx, f"{name} {label}", gflops, inside)]
            if with_torch:
                row.append(f"{ta / tb:.2f}")
        table.append(row)
    print(
        f"{len(rows)} distinct layers of {', '.join(nets)}; float32; % of the FMA peak at "
        f"{ctx.threads} threads ({ctx.ceiling:.1f} GFLOP/s)\n"
    )
    print_table(headers, table)
    print()
    ratios = []
    if with_torch:
        for label, _, _ in PASSES:
            rs = [(res[label][0] / res[label][1], name) for name, _, _, res, _ in rows]
            over = [n for r, n in rs if r > WORST]
            worst, worst_name = max(rs)
            print(
                f"layers {label}: geometric mean convext/torch {geomean([r for r, _ in rs]):.2f}; "
                f"worst {worst:.2f} ({worst_name}); {len(over)} of {len(rs)} above {WORST}"
            )
            ratios += [r for r, _ in rs]
    big = sorted(
        (r for r in rows if tuple(r[2]) == (3, 3) and "dw" not in r[1]),
        key=lambda r: -r[3]["b16 forward"][2],
    )[:LARGEST_3X3]
    for name, geom, _, res, inside in big:
        fwd = res["b16 forward"]
        bwd = res["b16 backward"]
        f_frac, b_frac = (p[2] / p[0] / 1e9 / ctx.ceiling for p in (fwd, bwd))
        # torch's rate on the same layer in the same run: what the machine lets a mature
        # library reach, beside the target
        torch_part = ""
        if with_torch:
            tf, tbw = (p[2] / p[1] / 1e9 / ctx.ceiling for p in (fwd, bwd))
            torch_part = f"; torch forward {tf:.0%}, backward {tbw:.0%}"
        print(
            f"largest 3x3 {name} ({geom}), batch 16: forward {fwd[2] / fwd[0] / 1e9:.1f} GFLOP/s "
            f"= {f_frac:.0%} of the FMA peak, backward {b_frac:.0%} (counting the products "
            f"inside the input only, {inside:.1%} of them: {f_frac * inside:.0%} and "
            f"{b_frac * inside:.0%}){torch_part}"
        )
    return ratios
