"""Whole-network benchmark (docs/benchmarks.md): one LeNet training step, batch 64, 28x28, float32.

conv 6@5x5 pad 2, relu, maxpool 2, conv 16@5x5, relu, maxpool 2, dense 120, relu, dense 84,
relu, dense 10, softmax cross-entropy; forward + backward + SGD update (momentum 0.9). convext's
layers against the same network in torch.nn (zero_grad, forward, loss.backward(), step), with
the same weights, alternating run by run; numpy's BLAS is limited to the same thread count
(with threadpoolctl, when installed).
"""

import contextlib

import numpy as np

from .. import layers as L
from .._config import get_num_threads
from ..losses import CrossEntropyLoss
from ..optim import SGD
from ._common import alternate, print_table

BATCH = 64
# one "shape": the network, for --shapes
SHAPES = [("lenet",)]


def lenet():
    return L.Sequential(
        L.Conv2D(1, 6, 5, padding=2),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Conv2D(6, 16, 5),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(400, 120),
        L.ReLU(),
        L.Dense(120, 84),
        L.ReLU(),
        L.Dense(84, 10),
    )


def measure(ctx):
    """(convext seconds, torch seconds (nan without torch)) per training step."""
    torch = ctx.torch
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    model = lenet()
    t_step = None
    if torch is not None:
        nn = torch.nn
        torch.manual_seed(0)
        tm = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )  # fmt: skip
        model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
        topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tloss = nn.CrossEntropyLoss()

        def t_step():
            topt.zero_grad()
            tloss(tm(tx), ty).backward()
            topt.step()

    opt = SGD(model, lr=0.01, momentum=0.9)
    loss = CrossEntropyLoss()

    def c_step():
        out = model.forward(x)
        _, g = loss(out, y)
        opt.zero_grad()
        model.backward(g, needs_input_grad=False)
        opt.step()

    # numpy's BLAS gets the same thread count as convext and torch
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=get_num_threads(), user_api="blas")
    with limits:
        return alternate(
            c_step,
            t_step,
            repeats=3 if ctx.quick else max(ctx.repeats, 15),
            warmup=2 if ctx.quick else 5,
            watch=ctx.watch,
        )


def run(ctx):
    print("\n## Whole network: LeNet training step (batch 64, 1x28x28, float32, SGD)\n")
    if not ctx.select(SHAPES):
        print("(network not selected)")
        return
    tc, tt = measure(ctx)
    if ctx.torch is None:
        print_table(("network", "convext ms"), [("lenet step", f"{tc * 1e3:.2f}")])
    else:
        print_table(
            ("network", "convext ms", "torch ms", "convext/torch"),
            [("lenet step", f"{tc * 1e3:.2f}", f"{tt * 1e3:.2f}", f"{tc / tt:.2f}")],
        )
