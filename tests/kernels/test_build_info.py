"""convext.build_info(), convext.show_config() and ``python -m convext info``."""

import io
import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

import convext

KEYS = {
    "version",
    "python",
    "platform",
    "cython_version",
    "numpy_build_version",
    "numpy_version",
    "compiler",
    "cflags",
    "openmp",
    "openmp_spec",
    "num_threads",
    "arch",
    "simd_baseline",
    "isa",
    "isa_cpu",
    "isa_compiled",
    "gemm_kernel",
    "code_path",
}
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?")


def test_build_info_keys_and_runtime_values():
    info = convext.build_info()
    assert set(info) == KEYS
    assert info["version"] == convext.__version__
    assert info["python"] == platform.python_version()
    assert info["numpy_version"] == np.__version__
    assert info["openmp"] is convext.openmp_enabled()
    assert info["num_threads"] == convext.get_num_threads()


def test_build_info_compile_time_values():
    info = convext.build_info()
    assert VERSION.match(info["cython_version"]), info["cython_version"]
    assert VERSION.match(info["numpy_build_version"]), info["numpy_build_version"]
    # Built against numpy 2.x: such an extension also imports on numpy 1.23+ (PACKAGING.md).
    assert int(info["numpy_build_version"].split(".")[0]) >= 2
    assert info["compiler"] and info["compiler"] != "unknown"
    assert info["simd_baseline"] in {
        "AVX512F",
        "AVX2",
        "AVX",
        "SSE4.2",
        "SSE2",
        "SVE",
        "NEON",
        "none",
    }
    assert info["gemm_kernel"].split(" float32 ")[0] in {"AVX-512F", "AVX2+FMA", "NEON", "generic"}
    assert info["code_path"] in {"gnu", "msvc"}
    if info["openmp"]:
        assert info["openmp_spec"] >= 200203  # OpenMP 2.0 (MSVC) or later
    else:
        assert info["openmp_spec"] == 0


def test_build_info_arch_matches_machine():
    info = convext.build_info()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        assert info["arch"] == "x86_64"
        assert info["simd_baseline"] != "none"  # SSE2 is part of x86-64
    elif machine in ("aarch64", "arm64"):
        assert info["arch"] == "aarch64"
        assert info["simd_baseline"] in {"NEON", "SVE"}


def test_default_build_is_portable():
    """Release builds carry no -march=native (opt-in CONVEXT_NATIVE=1 only) and no debug
    optimisation level (-O0, -Og)."""
    if os.environ.get("CONVEXT_NATIVE") == "1" or os.environ.get("CONVEXT_DEBUG") == "1":
        pytest.skip("local build with CONVEXT_NATIVE/CONVEXT_DEBUG")
    info = convext.build_info()
    assert "native" not in info["cflags"], info["cflags"]
    assert not {"-O0", "-Og"} & set(info["cflags"].split()), info["cflags"]
    if info["arch"] == "x86_64" and not any(
        f.startswith(("-m", "/arch")) for f in info["cflags"].split()
    ):
        # No ISA flag: the baseline is what every x86-64 CPU has.
        assert info["simd_baseline"] == "SSE2"
    if info["openmp"]:
        assert "openmp" in info["cflags"]


def _cpu_flags_linux():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_isa_cpu_matches_cpu_flags():
    """isa_cpu lists what /proc/cpuinfo shows; without CONVEXT_ISA the best of it is in use."""
    info = convext.build_info()
    flags = _cpu_flags_linux() if sys.platform.startswith("linux") else None
    if flags is None or info["arch"] != "x86_64":
        pytest.skip("needs /proc/cpuinfo on x86-64")
    expected = ["generic"]
    if {"avx2", "fma"} <= flags:
        expected.append("avx2")
        if "avx512f" in flags:
            expected.append("avx512")
    assert info["isa_cpu"] == ", ".join(expected)
    if not os.environ.get("CONVEXT_ISA", ""):
        assert info["isa"] == expected[-1]
    else:
        assert info["isa"] == os.environ["CONVEXT_ISA"].strip().lower()


def test_build_info_follows_set_num_threads(restore_threads):
    if not convext.openmp_enabled():
        pytest.skip("convext was built without OpenMP")
    convext.set_num_threads(3)
    assert convext.build_info()["num_threads"] == 3


def test_show_config_prints_every_key():
    buf = io.StringIO()
    assert convext.show_config(file=buf) is None
    text = buf.getvalue()
    info = convext.build_info()
    for key in KEYS:
        assert re.search(rf"^\s+{key}\s+: ", text, re.M), key
    assert f"convext {info['version']}" in text
    assert info["compiler"] in text and info["cflags"] in text


def test_show_config_default_stdout(capsys):
    convext.show_config()
    assert "simd_baseline" in capsys.readouterr().out


def test_cli_info():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "convext", "info"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"convext {convext.__version__}" in out
    assert re.search(r"^\s+num_threads\s+: 1$", out, re.M), out
    assert re.search(rf"^\s+numpy_version\s+: {re.escape(np.__version__)}$", out, re.M), out
