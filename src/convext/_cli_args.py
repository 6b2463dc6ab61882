"""Argument types of the command line (``python -m convext demo|bench|onnx``): a value out of
range is argparse's usage error naming the option (exit status 2), not a traceback from deep
inside the run."""

import argparse
import math


def int_in(low, high=None):
    """An argparse type: an int in [low, high] (no upper bound when ``high`` is None)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r:.40} is not an int") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{value} is not {bound}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def positive_float(text):
    """An argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r:.40} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r:.40} is not a finite number > 0")
    return value


positive_float.__name__ = "float"


def sizes(text):
    """An argparse type: an array shape, sizes >= 1 separated by commas (``1,3,224,224``), as a
    tuple of ints."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r:.60} is not sizes >= 1 separated by commas (e.g. 1,3,224,224)"
        )
    return shape


sizes.__name__ = "shape"
