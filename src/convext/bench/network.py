"""Whole-network benchmarks (docs/benchmarks.md).

1. One LeNet training step, batch 64, 28x28, float32.
2. The model zoo at 3x224x224, float32: ResNet-18 and MobileNetV2 inference (eval mode) at
   batch 1 and 8, and one ResNet-18 training step at batch 16 (forward, cross-entropy,
   backward, SGD with momentum). convext's ``convext.models`` against the same networks in
   torch.nn (torchvision's layout, the same weights; inference under ``torch.no_grad()``) and,
   when onnxruntime and onnx are installed, the torch model exported with
   ``torch.onnx.export`` run by onnxruntime (CPU provider, ``intra_op_num_threads`` = the run's
   thread count, all graph optimisations), alternating run by run. Inference rows also time
   ``convext.optimize_for_inference`` of the same model (BatchNorm folded, epilogues fused),
   and every timed call waits until the process is idle (onnxruntime's idle workers spin for
   30-60 ms after a run and would slow whatever runs next on the same cores). Besides the
   ratios of the medians, the table gives optimized/onnxruntime paired: the median of each
   round's ratio (_paired_ratio).

LeNet:

conv 6@5x5 pad 2, relu, maxpool 2, conv 16@5x5, relu, maxpool 2, dense 120, relu, dense 84,
relu, dense 10, softmax cross-entropy; forward + backward + SGD update (momentum 0.9). convext's
layers against the same network in torch.nn (zero_grad, forward, loss.backward(), step), with
the same weights, alternating run by run; numpy's BLAS is limited to the same thread count
(with threadpoolctl, when installed).
"""

import contextlib
import functools
import math
import os
import tempfile
import time

import numpy as np

from .. import layers as L
from .._config import get_num_threads
from ..losses import CrossEntropyLoss
from ..optim import SGD
from ._common import alternate, print_table

BATCH = 64
# the networks, for --shapes: (name, model, batch, training)
SHAPES = [
    ("lenet",),
    ("resnet18-b1", "resnet18", 1, False),
    ("resnet18-b8", "resnet18", 8, False),
    ("mobilenet_v2-b1", "mobilenet_v2", 1, False),
    ("mobilenet_v2-b8", "mobilenet_v2", 8, False),
    ("resnet18-train-b16", "resnet18", 16, True),
]
IMAGE = (3, 224, 224)


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


def _onnxruntime():
    """(onnxruntime, onnx) or None when either is missing."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def _ort_session(ctx, ort, tm, x, path):
    """An onnxruntime session of the torch model ``tm`` exported for input ``x``."""
    torch = ctx.torch
    with torch.no_grad():
        torch.onnx.export(
            tm, (torch.from_numpy(x),), path, input_names=["x"], output_names=["y"], dynamo=False
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = ctx.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


IDLE_GAP = 0.03  # seconds of sleep before each timed call, at least
IDLE_SLICE = 0.005  # then sleep in slices of this many seconds ...
IDLE_CPU = 0.1  # ... until one in which the process's threads used at most this share of a CPU
IDLE_LIMIT = 0.5  # or this many seconds in all


def _process_cpu_seconds():
    """CPU seconds used so far by all the threads of this process."""
    return time.process_time()


def _wait_idle(gap):
    """Sleep ``gap`` seconds, then until the process's own threads (another contender's
    spinning workers: onnxruntime's spin 30-60 ms after a run) have stopped using the CPU, at
    most IDLE_LIMIT seconds in all."""
    t_end = time.perf_counter() + IDLE_LIMIT
    time.sleep(gap)
    while time.perf_counter() < t_end:
        c0 = _process_cpu_seconds()
        time.sleep(IDLE_SLICE)
        if _process_cpu_seconds() - c0 <= IDLE_CPU * IDLE_SLICE:
            return


def _alternate_many(fns, repeats, warmup, watch, gap=0.0):
    """Seconds of each function's calls (None: an empty list), run in turn after ``warmup``
    rounds, each timed call after ``gap`` seconds of sleep and once the process is idle
    (_wait_idle): call r of every function in round r."""
    live = [f for f in fns if f is not None]
    for _ in range(warmup):
        for f in live:
            f()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, f in enumerate(fns):
            if f is not None:
                if gap:
                    _wait_idle(gap)
                t0 = time.perf_counter()
                f()
                times[i].append(time.perf_counter() - t0)
    for t in times:
        if t:
            watch.record_spread(t)
    return times


def _median(t):
    return float(np.median(t)) if t else float("nan")


def _paired_ratio(ta, tb):
    """The median over the rounds of ta[r] / tb[r] (nan if either was not timed): a round's two
    calls ran well under a second apart (with the idle waits and any call between them), so a
    host whose speed drifts over minutes moves both alike and their ratio less than the ratio of
    the two medians."""
    if not ta or not tb:
        return float("nan")
    if len(ta) != len(tb):
        raise ValueError(
            f"ta, tb: expected one time per round in each, got {len(ta)} and {len(tb)}"
        )
    return float(np.median(np.asarray(ta) / np.asarray(tb)))


def measure_zoo(ctx, name, batch, training, ort):
    """The seconds of each call of convext, convext optimized, torch and onnxruntime, in
    alternated rounds (_alternate_many): an empty list where not timed."""
    from .. import models
    from ..inference import optimize_for_inference
    from . import _torch_zoo

    torch = ctx.torch
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + IMAGE, dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    model = getattr(models, name)(rng=0)
    model.train(training)
    fns = [None, None, None, None]
    if training:
        opt = SGD(model, lr=0.01, momentum=0.9)
        loss = CrossEntropyLoss()

        def c_step():
            _, g = loss(model.forward(x), y)
            opt.zero_grad()
            model.backward(g, needs_input_grad=False)
            opt.step()

        fns[0] = c_step
    else:
        fns[0] = lambda: model.forward(x)
        fns[1] = optimize_for_inference(model)
        fns[1](x)  # plans for this input shape
        fns[1] = functools.partial(fns[1], x)
    tmp = None
    if torch is not None:
        tm = getattr(_torch_zoo, name)(torch)
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        tm.train(training)
        tx = torch.from_numpy(x)
        if training:
            topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
            ty = torch.from_numpy(y)
            tloss = torch.nn.CrossEntropyLoss()

            def t_step():
                topt.zero_grad()
                tloss(tm(tx), ty).backward()
                topt.step()

            fns[2] = t_step
        else:

            def t_infer():
                with torch.no_grad():
                    tm(tx)

            fns[2] = t_infer
            if ort is not None:
                tmp = tempfile.TemporaryDirectory()
                sess = _ort_session(ctx, ort, tm, x, os.path.join(tmp.name, "model.onnx"))
                fns[3] = lambda: sess.run(None, {"x": x})
    try:
        return _alternate_many(
            fns,
            repeats=2 if ctx.quick else max(ctx.repeats, 5),
            warmup=1 if ctx.quick else 2,
            watch=ctx.watch,
            gap=IDLE_GAP,
        )
    finally:
        if tmp is not None:
            tmp.cleanup()


def _ms(t):
    return "-" if math.isnan(t) else f"{t * 1e3:.1f}"


def _fmt_ratio(r):
    return "-" if math.isnan(r) else f"{r:.2f}"


def _ratio(a, b):
    return _fmt_ratio(a / b if not (math.isnan(a) or math.isnan(b)) else float("nan"))


def zoo_row(what, times):
    """The zoo table's row for the per-round times (measure_zoo) of convext, convext optimized,
    torch and onnxruntime: the medians in ms, the ratios of the medians, then optimized over
    onnxruntime paired round by round (_paired_ratio)."""
    _, t_optimized, _, t_ort = times
    tc, topt, tt, to = (_median(t) for t in times)
    return (
        (what, _ms(tc), _ms(topt), _ms(tt), _ms(to))
        + tuple(_ratio(a, b) for a in (tc, topt) for b in (tt, to))
        + (_fmt_ratio(_paired_ratio(t_optimized, t_ort)),)
    )


def run(ctx):
    print("\n## Whole network: LeNet training step (batch 64, 1x28x28, float32, SGD)\n")
    selected = ctx.select(SHAPES)
    if not selected:
        print("(network not selected)")
        return
    if any(s[0] == "lenet" for s in selected):
        tc, tt = measure(ctx)
        if ctx.torch is None:
            print_table(("network", "convext ms"), [("lenet step", f"{tc * 1e3:.2f}")])
        else:
            print_table(
                ("network", "convext ms", "torch ms", "convext/torch"),
                [("lenet step", f"{tc * 1e3:.2f}", f"{tt * 1e3:.2f}", f"{tc / tt:.2f}")],
            )
    else:
        print("(lenet not selected)")
    zoo = [s for s in selected if s[0] != "lenet"]
    if not zoo:
        return
    ort = _onnxruntime() if ctx.torch is not None else None
    print(
        "\n## Whole network: model zoo at 3x224x224, float32 (inference in eval mode; "
        "training: forward, cross-entropy, backward, SGD)\n"
    )
    if ort is None:
        print("(onnxruntime column: onnxruntime and onnx are not installed, or torch is not)\n")
    rows = []
    for _, name, batch, training in zoo:
        what = f"{name} {'train step' if training else 'inference'} b{batch}"
        rows.append(zoo_row(what, measure_zoo(ctx, name, batch, training, ort)))
    print(
        f"threads: {ctx.threads} (convext, torch and onnxruntime's intra-op pool); optimized: "
        "convext.optimize_for_inference of the same model; medians of alternated runs; paired: "
        "the median over the rounds of each round's optimized/onnxruntime\n"
    )
    print_table(
        (
            "network",
            "convext ms",
            "optimized ms",
            "torch ms",
            "onnxruntime ms",
            "convext/torch",
            "convext/onnxruntime",
            "optimized/torch",
            "optimized/onnxruntime",
            "optimized/onnxruntime paired",
        ),
        rows,
    )
