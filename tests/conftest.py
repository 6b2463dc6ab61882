"""Shared pytest configuration and fixtures of the whole suite.

Layout: tests/kernels (the compiled modules: build info, thread controls), tests/functional
(convext.functional against the naive oracles of tests/reference.py and finite differences),
tests/layers (layers, optimizers, training, serialization, the demo), tests/reliability (the
catalogue-driven error, layout, memory and concurrency checks, properties, fuzzing) and
tests/parity (everything compared with PyTorch: the only tests that import it; they skip where
it is not installed). tests/reference.py and tests/cases.py are shared helpers (NumPy and
hypothesis only), importable from every directory (pyproject.toml's pythonpath, and this
conftest's directory on sys.path for runs without the project's configuration, e.g. the wheel
check's copy of tests/).

``CONVEXT_TEST_EXAMPLES=N`` caps every hypothesis test at N examples (the sanitizer step of CI
sets it so the instrumented debug and AddressSanitizer builds run the whole suite in reasonable
time; the normal run uses each test's own ``max_examples``).
"""

import os
import sys

import pytest
from hypothesis import settings

import convext

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # reference.py, cases.py
    sys.path.insert(0, _HERE)


@pytest.fixture
def restore_threads():
    """Give convext back its default thread count after the test."""
    yield
    convext.set_num_threads(None)


def _examples_cap():
    value = os.environ.get("CONVEXT_TEST_EXAMPLES", "").strip()
    if not value:
        return None
    cap = int(value)
    if cap < 1:
        raise ValueError(f"CONVEXT_TEST_EXAMPLES must be a positive int, got {value!r}")
    return cap


def pytest_collection_modifyitems(config, items):
    cap = _examples_cap()
    if cap is None:
        return
    done = set()
    for item in items:
        fn = getattr(item, "obj", None)
        if getattr(fn, "hypothesis", None) is None or id(fn) in done:
            continue
        done.add(id(fn))
        current = getattr(fn, "_hypothesis_internal_use_settings", None) or settings.default
        if current.max_examples > cap:
            fn._hypothesis_internal_use_settings = settings(current, max_examples=cap)


def pytest_report_header(config):
    cap = _examples_cap()
    return None if cap is None else f"convext: hypothesis max_examples capped at {cap}"
