"""The NEON row on aarch64 (Linux aarch64 and macOS arm64: the wheel builds run the suite there).

Elsewhere these tests skip: the NEON kernels themselves are checked on every CI run by the C
harness under qemu-aarch64 (tests/kernels/harness, .github/scripts/aarch64_check.sh); here the
package's own choice of them is checked on the hardware.
"""

import os
import platform

import numpy as np
import pytest

import convext
import reference as ref
from convext import functional as F

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("aarch64", "arm64"), reason="aarch64 only"
)


def test_neon_is_compiled_detected_and_chosen():
    info = convext.build_info()
    assert info["arch"] == "aarch64"
    assert info["isa_compiled"] == "generic, neon"
    assert info["isa_cpu"] == "generic, neon"
    if not os.environ.get("CONVEXT_ISA", "").strip():
        assert info["isa"] == "neon"
        assert info["gemm_kernel"].endswith("float32 8x12, float64 8x6")


@pytest.mark.parametrize("route", ["gemm", "direct", "depthwise"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neon_conv2d_matches_the_naive_reference(dtype, route):
    """Each convolution route through the public API, on shapes that reach the GEMM edges
    (12-wide float / 6-wide double strips, 8-row tiles and their remainders) and the direct
    route's 8-filter tile."""
    rng = np.random.default_rng(0)
    shapes = [(2, 3, 13, 11, 8, 3, 1, 1), (1, 16, 9, 14, 19, 3, 2, 0), (3, 5, 7, 7, 13, 1, 1, 0)]
    if route == "depthwise":  # groups = channels, one filter each
        shapes = [(2, 6, 13, 11, 6, 3, 1, 1), (1, 9, 17, 10, 9, 5, 2, 2)]
    for n, c, h, w, f, k, stride, pad in shapes:
        groups = c if route == "depthwise" else 1
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((f, c // groups, k, k)).astype(dtype)
        b = rng.standard_normal(f).astype(dtype)
        got = F.conv2d(x, wt, b, stride=stride, padding=pad, groups=groups, _route=route)
        want = ref.conv2d(x, wt, b, stride=stride, padding=pad, groups=groups)
        if dtype == np.float64:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        else:
            assert np.max(np.abs(got - want)) <= 1e-5 * max(1.0, np.max(np.abs(want)))
