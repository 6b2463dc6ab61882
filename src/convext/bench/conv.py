"""Convolution benchmark: the shapes of docs/benchmarks.md, float32, convext against torch.

Forward; backward (grad input, grad weight, grad bias; torch through
torch.ops.aten.convolution_backward, not autograd); forward + backward. Medians of alternating
runs, GFLOP/s counted as 2*N*F*OH*OW*(C/groups)*kH*kW per forward (twice that per backward),
and as a fraction of the FMA peak measured in the same run (convext.bench.peak).
"""

import numpy as np

from .. import functional
from ._common import alternate, no_grad, ratio_table

# name, N, C, H=W, F, k, stride, pad, dilation, groups
SHAPES = [
    ("lenet-c1", 64, 1, 28, 6, 5, 1, 2, 1, 1),
    ("lenet-c2", 64, 6, 14, 16, 5, 1, 0, 1, 1),
    ("cifar", 64, 32, 32, 64, 3, 1, 1, 1, 1),
    ("resnet-l2", 16, 64, 56, 64, 3, 1, 1, 1, 1),
    ("strided", 32, 64, 56, 128, 3, 2, 1, 1, 1),
    ("pointwise", 32, 128, 28, 256, 1, 1, 0, 1, 1),
    ("depthwise", 32, 64, 56, 64, 3, 1, 1, 1, 64),
    ("dilated", 16, 32, 64, 32, 3, 1, 2, 2, 1),
]
# the large layers, reported as a fraction of the FMA peak
LARGE = ("resnet-l2", "strided")


def measure(ctx):
    """Rows of (name, pass, convext s, torch s (nan without torch), flops)."""
    rng = np.random.default_rng(0)
    rows = []
    for name, N, C, H, Fo, k, s, p, d, g in ctx.select(SHAPES):
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = rng.standard_normal((Fo, C // g, k, k), dtype=np.float32) * 0.1
        b = rng.standard_normal(Fo, dtype=np.float32)
        y = functional.conv2d(x, w, b, s, p, d, g)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        flops = 2.0 * N * Fo * y.shape[2] * y.shape[3] * (C // g) * k * k
        convext_calls = _convext_calls(x, w, b, gy, s, p, d, g)
        torch_calls = _torch_calls(ctx.torch, x, w, b, gy, s, p, d, g)
        with no_grad(ctx.torch):
            for label, fa, fb, work in zip(
                ("forward", "backward", "fwd+bwd"),
                convext_calls,
                torch_calls,
                (flops, 2 * flops, 3 * flops),
                strict=True,
            ):
                ta, tb = alternate(
                    fa, fb, repeats=ctx.repeats, warmup=1 if ctx.quick else 2, watch=ctx.watch
                )
                rows.append((name, label, ta, tb, work))
    return rows


def _convext_calls(x, w, b, gy, s, p, d, g):
    """convext's forward, backward (grad bias only when there is a bias) and both."""

    def fwd():
        functional.conv2d(x, w, b, s, p, d, g)

    def bwd():
        functional.conv2d_backward(gy, x, w, s, p, d, g, needs_bias_grad=b is not None)

    def both():
        fwd()
        bwd()

    return fwd, bwd, both


def _torch_calls(torch, x, w, b, gy, s, p, d, g):
    """torch's forward, backward (aten.convolution_backward; grad bias only when there is a
    bias) and both; Nones without torch. s, p, d: ints or pairs."""
    if torch is None:
        return None, None, None
    tf = torch.nn.functional
    tx, tw, tgy = (torch.from_numpy(a) for a in (x, w, gy))
    tb = None if b is None else torch.from_numpy(b)
    n_filters = w.shape[0]
    s, p, d = ([v, v] if isinstance(v, int) else list(v) for v in (s, p, d))
    mask = [True, True, b is not None]

    def fwd():
        tf.conv2d(tx, tw, tb, s, p, d, g)

    def bwd():
        torch.ops.aten.convolution_backward(
            tgy, tx, tw, [n_filters], s, p, d, False, [0, 0], g, mask
        )

    def both():
        fwd()
        bwd()

    return fwd, bwd, both


def run(ctx):
    print("\n## Convolution (float32, NCHW)\n")
    rows = measure(ctx)
    if not rows:
        print("(no convolution shape selected)")
        return []
    ratios = ratio_table(rows, "GFLOP/s", 1, "conv", ctx, peak_flops=True)
    est = " (an estimate: generic C loop)" if ctx.ceiling_estimate else ""
    for name, label, ta, _, fl in rows:
        if label == "forward" and name in LARGE:
            rate = fl / ta / 1e9
            print(
                f"{name} forward: {rate:.1f} GFLOP/s = {rate / ctx.ceiling:.0%} of the FMA peak "
                f"at {ctx.threads} threads ({ctx.ceiling:.1f} GFLOP/s{est})"
            )
    return ratios
