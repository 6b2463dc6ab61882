"""Route comparison: every convolution route that accepts a geometry, timed side by side.

``python -m convext bench routes [--shapes NAME,...] [--threads N] [--repeats N] [--quick]``

For each shape and pass (forward, grad_input, grad_weight) it times ``conv2d`` /
``conv2d_backward`` with the private ``_route`` forcing each route that accepts the geometry
(``functional._routes.accepts``), float32, convext only, and prints each route's ms next to
the route ``functional._routes.choose_route`` picks and the fastest one. The shapes are the
convolution benchmark's plus a sweep of channel counts across the direct-route limits of
``functional/_routes.py`` (channels = filters = 8 ... 512 at 28x28 and 56x56) and channel
multipliers of the depthwise route (2 and 8 filters per input channel): the command that
re-measures those limits.
"""

import numpy as np

from .. import functional
from ..functional import _routes
from ..functional.conv import _conv_setup
from ._common import alternate, print_table
from .conv import SHAPES as CONV_SHAPES

SWEEP_CHANNELS = (8, 16, 64, 128, 256, 512)
SWEEP_SIZES = (28, 56)
# name, N, C, H=W, F, k, stride, pad, dilation, groups: 4 images, so the weight gradient has
# the (image, group) pairs its direct route wants (GW_DIRECT_MIN_PAIRS)
SWEEP = [
    (f"sweep-c{c}-{hw}", 4, c, hw, c, 3, 1, 1, 1, 1) for hw in SWEEP_SIZES for c in SWEEP_CHANNELS
]
# channel multipliers up to the depthwise route's limit (DW_MAX_MULTIPLIER): one input channel
# per group and m filters on it, on grey images (a first layer) and on 32 channels
MULTIPLIERS = (2, 4, 8)
MULT_SWEEP = [
    (f"mult{m}-c{c}-{hw}", n, c, hw, m * c, 3, 1, 1, 1, c)
    for m in MULTIPLIERS
    for n, c, hw in ((16, 1, 28), (4, 32, 56))
]
SHAPES = CONV_SHAPES + SWEEP + MULT_SWEEP
HEADERS = (
    "shape",
    "pass",
    *(f"{r} ms" for r in _routes.ROUTES),
    "chosen",
    "fastest",
    "chosen/fastest",
)


def chosen(name):
    """{pass: the route choose_route picks} for the shape called ``name``."""
    ((_, N, C, H, Fo, k, s, p, d, g),) = [sh for sh in SHAPES if sh[0] == name]
    shape = geometry(N, C, H, Fo, k, s, p, d, g)
    return {pass_: _routes.choose_route(pass_, shape) for pass_ in _routes.PASSES}


def geometry(N, C, H, Fo, k, s, p, d, g):
    """The ConvShape conv2d sees for these arguments."""
    x4, w, _, _, window = _conv_setup(
        np.empty((N, C, H, H), np.float32),
        np.empty((Fo, C // g, k, k), np.float32),
        None,
        s,
        p,
        d,
        g,
    )
    return _routes.conv_shape(x4.shape, w.shape, window)


def _call(pass_, route, x, w, b, gy, s, p, d, g):
    if pass_ == "forward":
        return lambda: functional.conv2d(x, w, b, s, p, d, g, _route=route)
    gi = pass_ == "grad_input"
    return lambda: functional.conv2d_backward(
        gy,
        x,
        w,
        s,
        p,
        d,
        g,
        needs_input_grad=gi,
        needs_weight_grad=not gi,
        needs_bias_grad=False,
        _route={pass_: route},
    )


def measure(ctx):
    """Rows of (name, pass, {route: seconds, for the routes that accept}, chosen route)."""
    rng = np.random.default_rng(0)
    rows = []
    for name, N, C, H, Fo, k, s, p, d, g in ctx.select(SHAPES):
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = rng.standard_normal((Fo, C // g, k, k), dtype=np.float32) * 0.1
        b = rng.standard_normal(Fo, dtype=np.float32)
        gy = rng.standard_normal(functional.conv2d(x, w, b, s, p, d, g).shape, dtype=np.float32)
        shape = geometry(N, C, H, Fo, k, s, p, d, g)
        for pass_ in _routes.PASSES:
            times = {}
            for route in _routes.ROUTES:
                if _routes.accepts(route, pass_, shape):
                    times[route], _ = alternate(
                        _call(pass_, route, x, w, b, gy, s, p, d, g),
                        None,
                        repeats=ctx.repeats,
                        warmup=1 if ctx.quick else 2,
                        watch=ctx.watch,
                    )
            rows.append((name, pass_, times, _routes.choose_route(pass_, shape)))
    return rows


def run(ctx):
    print(f"\n## Convolution routes (float32, convext only, {ctx.threads} threads)\n")
    rows = measure(ctx)
    if not rows:
        print("(no route shape selected)")
        return []
    table = []
    for name, pass_, times, pick in rows:
        fastest = min(times, key=times.get)
        table.append(
            (
                name,
                pass_,
                *(f"{times[r] * 1e3:.3f}" if r in times else "-" for r in _routes.ROUTES),
                pick,
                fastest,
                f"{times[pick] / times[fastest]:.2f}",
            )
        )
    print_table(HEADERS, table)
    print(
        "\n'-': the route does not accept this geometry. The limits the chooser applies are "
        "the constants of convext/functional/_routes.py."
    )
    return []
