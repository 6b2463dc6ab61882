"""Convolution benchmark: the shapes of docs/benchmarks.md, float32, convext against torch.

Forward; backward (grad input, grad weight, grad bias; torch through
torch.ops.aten.convolution_backward, not autograd); forward + backward. Medians of alternating
runs, GFLOP/s counted as 2*N*F*OH*OW*(C/groups)*kH*kW per forward (twice that per backward), and as a
fraction of the FMA peak measured in the same run (convext.bench.peak).
"""
import numpy as np

from .. import functional as F
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
    torch = ctx.torch
    rng = np.random.default_rng(0)
    rows = []
    for name, N, C, H, Fo, k, s, p, d, g in ctx.select(SHAPES):
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = rng.standard_normal((Fo, C // g, k, k), dtype=np.float32) * 0.1
        b = rng.standard_normal(Fo, dtype=np.float32)
        y = F.conv2d(x, w, b, s, p, d, g)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        flops = 2.0 * N * Fo * y.shape[2] * y.shape[3] * (C // g) * k * k

        def c_fwd():
            F.conv2d(x, w, b, s, p, d, g)

        def c_bwd():
            F.conv2d_backward(gy, x, w, s, p, d, g)

        def c_both():
            c_fwd()
            c_bwd()

        t_fwd = t_bwd = t_both = None
        if torch is not None:
            tf = torch.nn.functional
            tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))

            def t_fwd():
                tf.conv2d(tx, tw, tb, s, p, d, g)

            def t_bwd():
                torch.ops.aten.convolution_backward(
                    tgy, tx, tw, [Fo], [s, s], [p, p], [d, d], False, [0, 0], g,
                    [True, True, True],
                )

            def t_both():
                t_fwd()
                t_bwd()

        with no_grad(torch):
            for label, fa, fb, fl in (
                ("forward", c_fwd, t_fwd, flops),
                ("backward", c_bwd, t_bwd, 2 * flops),
                ("fwd+bwd", c_both, t_both, 3 * flops),
            ):
                ta, tb_ = alternate(
                    fa, fb, repeats=ctx.repeats, warmup=1 if ctx.quick else 2, watch=ctx.watch
                )
                rows.append((name, label, ta, tb_, fl))
    return rows


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
