"""``python -m convext onnx MODEL.onnx``: import a model, print its graph (nodes, output
shapes, parameter count) and time its forward pass on random input."""

import time

import numpy as np

from .._cli_args import int_in, sizes
from .._validation import check_alloc

MAX_REPEAT = 10_000  # as the demo's --epochs: more is a typo, not a timing


def add_arguments(p):
    p.add_argument("model", help="path of the .onnx file")
    # --shape gives the batch size too (its first size): a --batch beside it is refused, not
    # silently ignored (default None, so that argparse sees an explicit --batch 1 as given)
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--batch",
        type=int_in(1),
        default=None,
        help="batch size of the random input (replaces a symbolic first dimension; default 1)",
    )
    size.add_argument(
        "--shape",
        type=sizes,
        default=None,
        help="input shape, e.g. 1,3,224,224, batch size first (default: the one the model "
        "declares; not with --batch)",
    )
    p.add_argument(
        "--repeat",
        type=int_in(1, MAX_REPEAT),
        default=10,
        help=f"timed forward passes (default 10, at most {MAX_REPEAT})",
    )
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")


def _input_shape(declared, batch, override):
    """The shape of the random input; ValueError where the model leaves a size open and
    --shape does not give it."""
    if override:
        return override  # checked by argparse (_cli_args.sizes)
    batch = 1 if batch is None else batch
    if declared is None:
        raise ValueError("the model does not declare its input shape: give --shape")
    shape = []
    for k, d in enumerate(declared):
        if k == 0 and not (isinstance(d, int) and d > 0):
            shape.append(batch)  # symbolic batch size
        elif isinstance(d, int) and d > 0:
            shape.append(d)
        elif k == 0:
            shape.append(batch)
        else:
            raise ValueError(f"dimension {k} of the input is {d!r}, not fixed: give --shape")
    return tuple(shape)


def run(args):
    import sys

    from . import load

    try:
        graph = load(args.model, dtype=args.dtype)
    except (ValueError, OSError) as e:
        print(f"python -m convext onnx: {e}", file=sys.stderr)
        return 2
    try:
        shapes = [
            _input_shape(graph.onnx_input_shapes.get(n), args.batch, args.shape)
            for n in graph.input_names
        ]
        for s in shapes:
            check_alloc(s, "the input of shape", np.dtype(args.dtype).itemsize)
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal(s, dtype=args.dtype) for s in shapes]  # no float64 copy
        names = [n for n, _, _ in graph.nodes]
        env = graph.run(*xs, keep=names)
    except (ValueError, TypeError) as e:  # an input the model cannot take
        print(f"python -m convext onnx: {e}", file=sys.stderr)
        return 2
    print(
        f"{args.model}: {len(names)} nodes, inputs "
        + ", ".join(f"{n} {s}" for n, s in zip(graph.input_names, shapes, strict=True))
    )
    width = max([len(n) for n in names] + [4])
    for name, layer, ins in graph.nodes:
        shape = tuple(np.shape(env[name]))
        n_params = sum(p.size for p in layer.parameters().values())
        extra = f"  [{n_params} parameters]" if n_params else ""
        print(
            f"  {name:<{width}}  {type(layer).__name__:<22} {str(shape):<22} "
            f"<- {', '.join(ins) or '()'}{extra}"
        )
    print(f"outputs: {', '.join(graph.output_names)}")
    total = sum(p.size for p in graph.parameters().values())
    print(f"parameters: {total}")
    graph(*xs)  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        graph(*xs)
        times.append(time.perf_counter() - t0)
    print(
        f"forward at batch {shapes[0][0] if shapes[0] else '-'}: median "
        f"{1e3 * float(np.median(times)):.3f} ms, best {1e3 * min(times):.3f} ms "
        f"({args.repeat} runs)"
    )
    return 0
