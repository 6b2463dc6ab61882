"""Convolution benchmark against torch: ``python benchmarks/bench_conv.py`` (= ``python -m convext bench conv``)."""
import sys

from convext.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["bench", "conv", *sys.argv[1:]]))
