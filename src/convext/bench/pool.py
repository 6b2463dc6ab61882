"""Pooling benchmark: the pooling shapes of BENCHMARKS.md, float32, convext against torch.

Forward (max pooling with its indices) and backward (torch through
torch.ops.aten.max_pool2d_with_indices_backward / avg_pool2d_backward, not autograd). Medians of
alternating runs; throughput is counted in input elements per second.
"""
import numpy as np

from .. import functional as F
from ._common import alternate, ratio_table, require_torch

# name, N, C, H=W, op, kernel, stride, pad
SHAPES = [
    ("pool-small", 64, 32, 32, "max", 2, 2, 0),
    ("pool-large", 16, 64, 112, "max", 2, 2, 0),
    ("pool-overlap", 16, 64, 112, "max", 3, 2, 1),
    ("avg-small", 64, 32, 32, "avg", 2, 2, 0),
]


def measure(repeats=7, quick=False):
    """Rows of (name, pass, convext s, torch s, input elements)."""
    torch = require_torch()
    tf = torch.nn.functional
    aten = torch.ops.aten
    rng = np.random.default_rng(0)
    reps = 3 if quick else repeats
    rows = []
    for name, N, C, H, op, k, s, p in SHAPES:
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        tx = torch.from_numpy(x)
        if op == "max":
            y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
            gy = rng.standard_normal(y.shape, dtype=np.float32)
            tgy = torch.from_numpy(gy)
            _, tidx = tf.max_pool2d(tx, k, s, p, return_indices=True)

            def c_fwd():
                F.max_pool2d(x, k, s, p, return_indices=True)

            def t_fwd():
                tf.max_pool2d(tx, k, s, p, return_indices=True)

            def c_bwd():
                F.max_pool2d_backward(gy, idx, x.shape)

            def t_bwd():
                aten.max_pool2d_with_indices_backward(tgy, tx, [k, k], [s, s], [p, p], [1, 1],
                                                      False, tidx)
        else:
            y = F.avg_pool2d(x, k, s, p)
            gy = rng.standard_normal(y.shape, dtype=np.float32)
            tgy = torch.from_numpy(gy)

            def c_fwd():
                F.avg_pool2d(x, k, s, p)

            def t_fwd():
                tf.avg_pool2d(tx, k, s, p)

            def c_bwd():
                F.avg_pool2d_backward(gy, x.shape, k, s, p)

            def t_bwd():
                aten.avg_pool2d_backward(tgy, tx, [k, k], [s, s], [p, p], False, True, None)

        with torch.no_grad():
            for label, fa, fb in (("forward", c_fwd, t_fwd), ("backward", c_bwd, t_bwd)):
                ta, tb = alternate(fa, fb, repeats=reps, warmup=1 if quick else 2)
                rows.append((name, label, ta, tb, x.size))
    return rows


def report(rows):
    return ratio_table(rows, "Gelem/s", 2, "pool")


def run(args):
    print("\n## Pooling (float32, NCHW)\n")
    report(measure(args.repeats, args.quick))


if __name__ == "__main__":
    import argparse

    from . import add_arguments
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    run(ap.parse_args())
