"""Command line: ``python -m convext {demo,bench,info,onnx}``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m convext", description="convext: fast, exact CNN building blocks for NumPy."
    )
    sub = parser.add_subparsers(dest="command", metavar="{demo,bench,info,onnx}")
    sub.required = True

    p = sub.add_parser(
        "demo",
        help="train a small CNN on scikit-learn's 8x8 digits and draw "
        "what it learned (needs the 'demo' extra)",
    )
    from .demo import add_arguments as demo_args

    demo_args(p)

    p = sub.add_parser(
        "bench",
        help="benchmark convext against PyTorch and the machine's "
        "FMA peak (torch: the 'bench' extra)",
    )
    from .bench import add_arguments as bench_args

    bench_args(p)

    sub.add_parser("info", help="print how convext was built and the threads it uses")

    p = sub.add_parser(
        "onnx",
        help="import an ONNX model, print its graph (nodes, shapes, "
        "parameter count) and time it on random input (the 'onnx' extra)",
    )
    from .onnx._cli import add_arguments as onnx_args

    onnx_args(p)

    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        return run(args)
    if args.command == "bench":
        from .bench import run

        return run(args)
    if args.command == "info":
        from ._build_info import show_config

        show_config()
        return 0
    if args.command == "onnx":
        from .onnx._cli import run

        return run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
