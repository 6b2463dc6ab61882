"""Convolution benchmark: the shapes of BENCHMARKS.md, float32, convext against torch.

Forward; backward (grad input, grad weight, grad bias; torch through
torch.ops.aten.convolution_backward, not autograd); forward + backward. Medians of alternating
runs, GFLOP/s counted as 2*N*F*OH*OW*(C/groups)*kH*kW per forward (twice that per backward).
"""
import numpy as np

from .. import functional as F
from ._common import alternate, ratio_table, require_torch, sgemm_gflops

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


def measure(repeats=7, quick=False):
    """Rows of (name, pass, convext s, torch s, flops) and the SGEMM ceiling in GFLOP/s."""
    torch = require_torch()
    tf = torch.nn.functional
    rng = np.random.default_rng(0)
    reps = 3 if quick else repeats
    rows = []
    ceiling = sgemm_gflops()
    for name, N, C, H, Fo, k, s, p, d, g in SHAPES:
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = rng.standard_normal((Fo, C // g, k, k), dtype=np.float32) * 0.1
        b = rng.standard_normal(Fo, dtype=np.float32)
        y = F.conv2d(x, w, b, s, p, d, g)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
        flops = 2.0 * N * Fo * y.shape[2] * y.shape[3] * (C // g) * k * k

        def c_fwd():
            F.conv2d(x, w, b, s, p, d, g)

        def t_fwd():
            tf.conv2d(tx, tw, tb, s, p, d, g)

        def c_bwd():
            F.conv2d_backward(gy, x, w, s, p, d, g)

        def t_bwd():
            torch.ops.aten.convolution_backward(tgy, tx, tw, [Fo], [s, s], [p, p], [d, d], False,
                                                [0, 0], g, [True, True, True])

        def c_both():
            c_fwd()
            c_bwd()

        def t_both():
            t_fwd()
            t_bwd()

        with torch.no_grad():
            for label, fa, fb, fl in (("forward", c_fwd, t_fwd, flops),
                                      ("backward", c_bwd, t_bwd, 2 * flops),
                                      ("fwd+bwd", c_both, t_both, 3 * flops)):
                ta, tb_ = alternate(fa, fb, repeats=reps, warmup=1 if quick else 2)
                rows.append((name, label, ta, tb_, fl))
    return rows, ceiling


def report(rows, ceiling):
    ratios = ratio_table(rows, "GFLOP/s", 1, "conv")
    print(f"SGEMM ceiling (numpy float32, n=2048): {ceiling:.1f} GFLOP/s")
    for name, label, ta, tb, fl in rows:
        if label == "forward" and name in ("resnet-l2", "strided"):
            print(f"{name} forward: {fl / ta / 1e9:.1f} GFLOP/s = {fl / ta / 1e9 / ceiling:.0%} "
                  f"of SGEMM")
    return ratios


def run(args):
    print("\n## Convolution (float32, NCHW)\n")
    rows, ceiling = measure(args.repeats, args.quick)
    report(rows, ceiling)


if __name__ == "__main__":
    import argparse

    from . import add_arguments
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    run(ap.parse_args())
