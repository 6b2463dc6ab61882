"""Whole-network benchmark (BENCHMARKS.md): one LeNet training step, batch 64, 28x28, float32.

conv 6@5x5 pad 2, relu, maxpool 2, conv 16@5x5, relu, maxpool 2, dense 120, relu, dense 84,
relu, dense 10, softmax cross-entropy; forward + backward + SGD update (momentum 0.9). convext's
layers against the same network in torch.nn (zero_grad, forward, loss.backward(), step), with
the same weights, alternating run by run.
"""
import numpy as np

from .. import layers as L
from ..losses import CrossEntropyLoss
from ..optim import SGD
from ._common import alternate, print_table, require_torch

BATCH = 64


def lenet():
    return L.Sequential(
        L.Conv2D(1, 6, 5, padding=2), L.ReLU(), L.MaxPool2D(2),
        L.Conv2D(6, 16, 5), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
        L.Dense(400, 120), L.ReLU(), L.Dense(120, 84), L.ReLU(), L.Dense(84, 10))


def measure(repeats=7, quick=False):
    """(convext seconds, torch seconds) per training step."""
    torch = require_torch()
    nn = torch.nn
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)

    torch.manual_seed(0)
    tm = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                       nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                       nn.Linear(84, 10))
    model = lenet()
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    opt = SGD(model, lr=0.01, momentum=0.9)
    loss = CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    tloss = nn.CrossEntropyLoss()

    def c_step():
        out = model.forward(x)
        _, g = loss(out, y)
        opt.zero_grad()
        model.backward(g, input_grad=False)
        opt.step()

    def t_step():
        topt.zero_grad()
        tloss(tm(tx), ty).backward()
        topt.step()

    return alternate(c_step, t_step, repeats=3 if quick else max(repeats, 15),
                     warmup=2 if quick else 5)


def run(args):
    print("\n## Whole network: LeNet training step (batch 64, 1x28x28, float32, SGD)\n")
    tc, tt = measure(args.repeats, args.quick)
    print_table(("network", "convext ms", "torch ms", "convext/torch"),
                [("lenet step", f"{tc * 1e3:.2f}", f"{tt * 1e3:.2f}", f"{tc / tt:.2f}")])
