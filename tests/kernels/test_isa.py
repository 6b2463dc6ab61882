"""The instruction-set layer: CONVEXT_ISA, what build_info() and show_config() report, and that
every level this machine runs gives the naive oracle's results (tests/reference.py).

The level is chosen once, at import, so each level runs in its own interpreter.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convext
from convext._kernels import _isa

TESTS = Path(__file__).resolve().parents[1]


def _run(code, isa, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("CONVEXT_ISA", None)
    if isa is not None:
        env["CONVEXT_ISA"] = isa
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_names_and_lists_are_consistent():
    assert _isa.known() == ["generic", "avx2", "avx512", "neon"]
    assert _isa.available() == [n for n in _isa.compiled() if n in _isa.cpu_supported()]
    assert "generic" in _isa.available()
    assert _isa.active() in _isa.available()
    assert _isa.code_path() in ("gnu", "msvc")
    if not os.environ.get("CONVEXT_ISA", "").strip():
        assert _isa.active() == _isa.available()[-1]  # the best one by default


def test_build_info_reports_the_active_isa():
    info = convext.build_info()
    assert info["isa"] == _isa.active()
    assert info["isa_cpu"] == ", ".join(_isa.cpu_supported())
    assert info["isa_compiled"] == ", ".join(_isa.compiled())
    assert info["code_path"] == _isa.code_path()
    tiles = _isa.active_info()
    mr, nr = tiles["sgemm_tile"]
    assert f"float32 {mr}x{nr}" in info["gemm_kernel"]
    assert nr % tiles["f32_lanes"] == 0


def test_which_tables_shift_the_depthwise_rows():
    """The depthwise rows at stride 1, the flat planes and the 3x3 stride-2 max pool work in
    registers where simd_avx512.h has the register rows (CVX_V_LANE_ROWS); the stride-2 rows
    wherever the lane operations are (CVX_V_LANE_OPS: AVX-512, and AVX2 in float32 from 48
    wide). The table says so (dw_lane_rows, dw_s2_lanes_min_ow), and the rows' rule reads it
    (tests/functional/test_conv_depthwise_rows.py checks the rule's choices)."""
    info = _isa.active_info()
    assert info["dw_lane_rows"] == (_isa.active() == "avx512")
    expected = {"avx512": (0, 0), "avx2": (48, -1)}.get(_isa.active(), (-1, -1))
    assert info["dw_s2_lanes_min_ow"] == expected


def test_unknown_name_is_refused_naming_the_variable():
    proc = _run("import convext", "sse9")
    assert proc.returncode != 0
    assert "ValueError" in proc.stderr and "CONVEXT_ISA='sse9'" in proc.stderr, proc.stderr
    assert "generic, avx2, avx512, neon" in proc.stderr  # the names it accepts
    assert ", ".join(_isa.available()) in proc.stderr  # and what runs here


def test_level_this_machine_lacks_is_refused():
    missing = [n for n in _isa.known() if n not in _isa.available()]
    if not missing:
        pytest.skip("this machine and build run every level")
    proc = _run("import convext", missing[0])
    assert proc.returncode != 0
    assert "ValueError" in proc.stderr and f"CONVEXT_ISA={missing[0]!r}" in proc.stderr
    assert "cannot be used" in proc.stderr, proc.stderr


def test_empty_or_auto_means_the_best():
    for value in ("", "auto", " AUTO "):
        proc = _run("import convext; print(convext.build_info()['isa'])", value)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == _isa.available()[-1]


# Run in a fresh interpreter per level: conv2d forward/backward on each route (GEMM with edge and
# narrow tiles, direct, depthwise) and linear against the float64 naive loops, in both dtypes,
# and each result bitwise the same on 1 and 2 threads.
ORACLE = r"""
import json
import numpy as np
import convext
import reference as ref
from convext.functional import conv2d, conv2d_backward, linear

rng = np.random.default_rng(7)
out = {"isa": convext.build_info()["isa"], "show": "", "err": {}, "threads_equal": {}}
import io
buf = io.StringIO()
convext.show_config(file=buf)
out["show"] = buf.getvalue()
from convext._kernels import _peak
out["peak_isa"] = _peak.fma_isa()

def err(got, want):
    want = np.asarray(want, np.float64)
    diff = np.max(np.abs(np.asarray(got, np.float64) - want))
    return float(diff / max(1.0, np.max(np.abs(want))))

def both_threads(fn):
    convext.set_num_threads(1)
    a = fn()
    convext.set_num_threads(2)
    b = fn()
    return a, all(np.array_equal(p, q) for p, q in zip(a, b) if p is not None)

cases = {
    "gemm": ((3, 5, 13, 11), (19, 5, 3, 3), dict(stride=1, padding=1), "gemm"),
    "direct": ((4, 3, 11, 13), (5, 3, 3, 2), dict(stride=2, padding=1, dilation=(1, 2)), "direct"),
    "depthwise": ((2, 4, 10, 9), (4, 1, 3, 3), dict(padding=1, groups=4), "depthwise"),
}
for dt in (np.float32, np.float64):
    for name, (xs, ws, kw, route) in cases.items():
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ws).astype(dt)
        b = rng.standard_normal(ws[0]).astype(dt)
        (y,), same_f = both_threads(lambda: (conv2d(x, w, b, **kw, _route=route),))
        yr = ref.conv2d(x, w, b, **kw)
        gy = rng.standard_normal(yr.shape).astype(dt)
        broute = {"grad_weight": "direct"} if route == "direct" else route  # dx: always GEMM
        grads, same_b = both_threads(lambda: conv2d_backward(gy, x, w, **kw, _route=broute))
        refg = ref.conv2d_grads(gy, x, w, **kw)
        key = f"{name}-{np.dtype(dt).name}"
        out["err"][key] = [err(y, yr)] + [err(g, r) for g, r in zip(grads, refg)]
        out["threads_equal"][key] = bool(same_f and same_b)
    x = rng.standard_normal((37, 50)).astype(dt)
    w = rng.standard_normal((29, 50)).astype(dt)
    b = rng.standard_normal(29).astype(dt)
    (y,), same = both_threads(lambda: (linear(x, w, b),))
    want = np.array([[sum(float(x[i, k]) * float(w[j, k]) for k in range(50)) + float(b[j])
                      for j in range(29)] for i in range(37)])
    out["err"][f"linear-{np.dtype(dt).name}"] = [err(y, want)]
    out["threads_equal"][f"linear-{np.dtype(dt).name}"] = bool(same)
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512", "neon"])
def test_every_level_matches_the_naive_oracle(isa):
    if isa not in _isa.available():
        pytest.skip(f"this machine or build cannot run {isa}")
    proc = _run(ORACLE, isa)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["isa"] == isa and res["peak_isa"] == isa
    assert "  isa " in res["show"] and f": {isa}\n" in res["show"], res["show"]
    for key, errs in res["err"].items():
        # max|got - ref| / max(1, max|ref|): float64 1e-10, float32 1e-5 (forward and gradients)
        tol = 1e-10 if key.endswith("float64") else 1e-5
        assert max(errs) <= tol, (key, errs)
    assert all(res["threads_equal"].values()), res["threads_equal"]
