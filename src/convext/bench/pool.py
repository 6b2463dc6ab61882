"""Pooling benchmark: the pooling shapes of docs/benchmarks.md, float32, convext against torch.

Forward (max pooling with its indices) and backward (torch through
torch.ops.aten.max_pool2d_with_indices_backward / avg_pool2d_backward, not autograd). Medians of
alternating runs; throughput is counted in input elements per second.
"""

import numpy as np

from .. import functional
from ._common import alternate, no_grad, ratio_table

# name, N, C, H=W, op, kernel, stride, pad
SHAPES = [
    ("pool-small", 64, 32, 32, "max", 2, 2, 0),
    ("pool-large", 16, 64, 112, "max", 2, 2, 0),
    ("pool-overlap", 16, 64, 112, "max", 3, 2, 1),
    ("avg-small", 64, 32, 32, "avg", 2, 2, 0),
]


def measure(ctx):
    """Rows of (name, pass, convext s, torch s (nan without torch), input elements)."""
    rng = np.random.default_rng(0)
    rows = []
    for name, N, C, H, op, k, s, p in ctx.select(SHAPES):
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        convext_calls, gy = _convext_pair(op, x, k, s, p, rng)
        torch_calls = _torch_pair(ctx.torch, op, x, gy, k, s, p)
        with no_grad(ctx.torch):
            for label, fa, fb in zip(
                ("forward", "backward"), convext_calls, torch_calls, strict=True
            ):
                ta, tb = alternate(
                    fa, fb, repeats=ctx.repeats, warmup=1 if ctx.quick else 2, watch=ctx.watch
                )
                rows.append((name, label, ta, tb, x.size))
    return rows


def _convext_pair(op, x, k, s, p, rng):
    """convext's forward and backward, and the output gradient the backward uses."""
    if op == "max":
        y, idx = functional.max_pool2d(x, k, s, p, return_indices=True)
        gy = rng.standard_normal(y.shape, dtype=np.float32)

        def fwd():
            functional.max_pool2d(x, k, s, p, return_indices=True)

        def bwd():
            functional.max_pool2d_backward(gy, idx, x.shape)
    else:
        y = functional.avg_pool2d(x, k, s, p)
        gy = rng.standard_normal(y.shape, dtype=np.float32)

        def fwd():
            functional.avg_pool2d(x, k, s, p)

        def bwd():
            functional.avg_pool2d_backward(gy, x.shape, k, s, p)

    return (fwd, bwd), gy


def _torch_pair(torch, op, x, gy, k, s, p):
    """torch's forward and backward of the same pooling, or (None, None) without torch."""
    if torch is None:
        return None, None
    tf, aten = torch.nn.functional, torch.ops.aten
    tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)
    if op == "max":
        _, tidx = tf.max_pool2d(tx, k, s, p, return_indices=True)

        def t_fwd():
            tf.max_pool2d(tx, k, s, p, return_indices=True)

        def t_bwd():
            aten.max_pool2d_with_indices_backward(
                tgy, tx, [k, k], [s, s], [p, p], [1, 1], False, tidx
            )
    else:

        def t_fwd():
            tf.avg_pool2d(tx, k, s, p)

        def t_bwd():
            aten.avg_pool2d_backward(tgy, tx, [k, k], [s, s], [p, p], False, True, None)

    return t_fwd, t_bwd


def run(ctx):
    print("\n## Pooling (float32, NCHW)\n")
    rows = measure(ctx)
    if not rows:
        print("(no pooling shape selected)")
        return []
    return ratio_table(rows, "Gelem/s", 2, "pool", ctx)
