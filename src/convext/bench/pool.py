"""Pooling benchmark: the pooling shapes of docs/benchmarks.md, float32, convext against torch.

Forward (max pooling with its indices) and backward (torch through
torch.ops.aten.max_pool2d_with_indices_backward / avg_pool2d_backward, not autograd). Medians of
alternating runs; throughput is counted in input elements per second.

Pooling is memory-bound, so a second table sets each call against the machine's copy bandwidth
measured in the same run: the bytes the call must move (its inputs read once and outputs
written once: x, y and the int64 indices forward; grad_out, the indices and grad_x backward)
per second, against a copy (``np.copyto``, split over the run's threads) of half as many bytes,
which reads and writes the same total, alternated run by run with the convext call.
Max pooling has a third row, "fwd values": max_pool2d without return_indices (what MaxPool2D
does in eval mode), which moves x and y only (torch: F.max_pool2d without indices).
"""

import concurrent.futures

import numpy as np

from .. import functional
from ._common import alternate, no_grad, print_table, ratio_table

# name, N, C, H=W, op, kernel, stride, pad
SHAPES = [
    ("pool-small", 64, 32, 32, "max", 2, 2, 0),
    ("pool-large", 16, 64, 112, "max", 2, 2, 0),
    ("pool-overlap", 16, 64, 112, "max", 3, 2, 1),
    ("avg-small", 64, 32, 32, "avg", 2, 2, 0),
    ("resnet18-pool-b1", 1, 64, 112, "max", 3, 2, 1),
    ("pool-same", 16, 64, 56, "max", 3, 1, 1),
]


def measure(ctx):
    """(rows of (name, pass, convext s, torch s (nan without torch), input elements), rows of
    (name, pass, bytes moved, convext s, copy s))."""
    rng = np.random.default_rng(0)
    rows, memory = [], []
    for name, N, C, H, op, k, s, p in ctx.select(SHAPES):
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        convext_calls, gy = _convext_pair(op, x, k, s, p, rng)
        torch_calls = _torch_pair(ctx.torch, op, x, gy, k, s, p)
        # bytes each pass moves: float arrays x (or grad_x) and y (or grad_out), int64 indices
        # (the values-only forward: x and y)
        moved = x.nbytes + gy.nbytes + (2 * gy.nbytes if op == "max" else 0)
        labels = ("forward", "backward", "fwd values")[: len(convext_calls)]
        bytes_of = {"forward": moved, "backward": moved, "fwd values": x.nbytes + gy.nbytes}
        copies = {b: _copy_call(b // 2, ctx.threads) for b in set(bytes_of.values())}
        warmup = 1 if ctx.quick else 2
        with no_grad(ctx.torch):
            for label, fa, fb in zip(labels, convext_calls, torch_calls, strict=True):
                ta, tb = alternate(fa, fb, repeats=ctx.repeats, warmup=warmup, watch=ctx.watch)
                rows.append((name, label, ta, tb, x.size))
                tm, tc = alternate(
                    fa, copies[bytes_of[label]], repeats=ctx.repeats, warmup=warmup, watch=ctx.watch
                )
                memory.append((name, label, bytes_of[label], tm, tc))
    return rows, memory


def _copy_call(nbytes, threads):
    """A copy of nbytes (reading nbytes and writing nbytes) split over `threads` threads
    (np.copyto releases the GIL)."""
    n = max(1, nbytes // 4)
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    bounds = np.linspace(0, n, max(1, threads) + 1).astype(int)
    parts = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if len(parts) == 1:
        return lambda: np.copyto(dst, src)
    pool = concurrent.futures.ThreadPoolExecutor(len(parts))

    def copy():
        list(pool.map(lambda ds: np.copyto(*ds), parts))

    return copy


def memory_table(memory):
    """Print the bandwidth table; returns the convext/copy ratios."""
    headers = ["shape", "pass", "MB moved", "convext GB/s", "copy GB/s", "convext/copy"]
    table, ratios = [], []
    for name, label, moved, tm, tc in memory:
        gm, gc = moved / tm / 1e9, moved / tc / 1e9
        ratios.append(gm / gc)
        table.append(
            [name, label, f"{moved / 1e6:.1f}", f"{gm:.1f}", f"{gc:.1f}", f"{gm / gc:.2f}"]
        )
    print_table(headers, table)
    print()
    return ratios


def _convext_pair(op, x, k, s, p, rng):
    """convext's forward and backward (and for max pooling the values-only forward), and the
    output gradient the backward uses."""
    if op == "max":
        y, idx = functional.max_pool2d(x, k, s, p, return_indices=True)
        gy = rng.standard_normal(y.shape, dtype=np.float32)

        def fwd():
            functional.max_pool2d(x, k, s, p, return_indices=True)

        def bwd():
            functional.max_pool2d_backward(gy, idx, x.shape)

        def fwd_values():
            functional.max_pool2d(x, k, s, p)

        return (fwd, bwd, fwd_values), gy
    else:
        y = functional.avg_pool2d(x, k, s, p)
        gy = rng.standard_normal(y.shape, dtype=np.float32)

        def fwd():
            functional.avg_pool2d(x, k, s, p)

        def bwd():
            functional.avg_pool2d_backward(gy, x.shape, k, s, p)

    return (fwd, bwd), gy


def _torch_pair(torch, op, x, gy, k, s, p):
    """torch's forward and backward of the same pooling (and the values-only forward for max
    pooling), or Nones without torch."""
    if torch is None:
        return (None,) * (3 if op == "max" else 2)
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

        def t_fwd_values():
            tf.max_pool2d(tx, k, s, p)

        return t_fwd, t_bwd, t_fwd_values
    else:

        def t_fwd():
            tf.avg_pool2d(tx, k, s, p)

        def t_bwd():
            aten.avg_pool2d_backward(tgy, tx, [k, k], [s, s], [p, p], False, True, None)

    return t_fwd, t_bwd


def run(ctx):
    print("\n## Pooling (float32, NCHW)\n")
    rows, memory = measure(ctx)
    if not rows:
        print("(no pooling shape selected)")
        return []
    ratios = ratio_table(rows, "Gelem/s", 2, "pool", ctx)
    print(
        f"\n## Pooling against the copy bandwidth ({ctx.threads} thread(s), alternated run by "
        "run)\n"
    )
    memory_table(memory)
    return ratios
