"""Pooling benchmark against torch: ``python benchmarks/bench_pool.py`` (= ``python -m convext bench pool``)."""
import sys

from convext.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["bench", "pool", *sys.argv[1:]]))
