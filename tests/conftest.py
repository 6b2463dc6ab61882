"""Shared pytest configuration.

``CONVEXT_TEST_EXAMPLES=N`` caps every hypothesis test at N examples (the sanitizer step of CI
sets it so the instrumented debug and AddressSanitizer builds run the whole suite in reasonable
time; the normal run uses each test's own ``max_examples``).
"""
import os

from hypothesis import settings


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
