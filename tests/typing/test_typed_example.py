"""tests/typing/typed_example.py, which mypy checks in CI (lint_check.sh), also runs."""

import runpy
from pathlib import Path


def test_typed_example_runs():
    example = runpy.run_path(str(Path(__file__).with_name("typed_example.py")))
    example["main"]()
