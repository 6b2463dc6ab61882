"""tests/parity compares with torch (and onnxruntime). Under the AddressSanitizer build (CI's
sanitizer step, CONVEXT_ASAN=1) these files are not collected: torch, the onnx package and
onnxruntime report errors with C++ exceptions, which abort the process under ASan's __cxa_throw
interceptor (inside them, not convext). The kernels stay covered there by tests/functional and
tests/reliability against the naive oracles; the normal run and the debug build keep the parity
files.

Without torch each file skips itself (importorskip). ``CONVEXT_REQUIRE_TORCH=1`` (set by the
wheel tests wherever torch ships wheels: [tool.cibuildwheel] in pyproject.toml) turns a missing
or broken torch into an error, so the comparisons cannot silently skip there."""

import os

collect_ignore_glob = ["test_*.py"] if os.environ.get("CONVEXT_ASAN") == "1" else []

if os.environ.get("CONVEXT_REQUIRE_TORCH") == "1" and not collect_ignore_glob:
    import torch  # noqa: F401 - an ImportError here fails the run
