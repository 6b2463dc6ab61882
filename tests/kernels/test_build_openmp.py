"""setup.py's OpenMP probe (source builds): a compiler that cannot build OpenMP code stops the
build with a visible block saying how to get OpenMP on each platform, unless
``CONVEXT_NO_OPENMP=1`` asks for single-threaded kernels on purpose.

The probe of the real setup.py runs with this machine's real C compiler, once as it is and once
behind a wrapper that rejects the OpenMP options the probe tries (as Apple's clang rejects
``-fopenmp`` and has no ``-lomp`` to link), so the compile-and-link check itself is exercised,
not a stand-in for it.

setup.py is read from the source tree beside tests/; the wheel check runs a copy of tests/
without it (and without Cython, which setup.py imports), where these tests do not apply.
"""

import importlib.util
import os
import stat
import sys

import pytest

SETUP_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "setup.py")

pytestmark = [
    pytest.mark.skipif(not os.path.isfile(SETUP_PY), reason="no source tree (setup.py) here"),
    pytest.mark.skipif(sys.platform == "win32", reason="MSVC's /openmp is not probed"),
]


@pytest.fixture
def setup_module(monkeypatch):
    """setup.py imported as a module: its __name__ is not __main__, so nothing is built."""
    pytest.importorskip("Cython", reason="setup.py imports Cython")
    monkeypatch.delenv("CONVEXT_NO_OPENMP", raising=False)
    spec = importlib.util.spec_from_file_location("convext_setup_under_test", SETUP_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compiler():
    pytest.importorskip("setuptools")  # provides distutils on Python >= 3.12
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    if compiler.compiler_type != "unix":
        pytest.skip(f"probe test written for unix compilers, not {compiler.compiler_type}")
    return compiler


def _without_openmp(compiler, tmp_path):
    """Put a wrapper in front of the compiler and linker that fails on every OpenMP option and
    logs each call (to show the probe really compiled)."""
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "cc-without-openmp"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'for a in "$@"; do\n'
        '  case "$a" in -fopenmp|-fopenmp=*|-lomp|-lgomp|-qopenmp)\n'
        "    echo \"cc: error: unsupported option '$a'\" >&2; exit 1;;\n"
        "  esac\n"
        "done\n"
        'exec "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    for name in ("compiler_so", "linker_exe"):
        compiler.set_executable(name, [str(wrapper)] + list(getattr(compiler, name)))
    return log


def test_probe_without_openmp_stops_the_build_with_instructions(setup_module, tmp_path, capsys):
    compiler = _compiler()
    log = _without_openmp(compiler, tmp_path)
    with pytest.raises(SystemExit) as info:
        setup_module._openmp_flags(compiler)
    assert "CONVEXT_NO_OPENMP=1" in str(info.value.code)
    assert log.read_text().count("-fopenmp") >= 1  # the probe compiled, and the compile failed
    err = capsys.readouterr().err
    # a visible block, with a way to get OpenMP on each platform and the opt-out
    assert err.count("*" * 60) >= 2
    for needle in (
        "-fopenmp",  # what was tried
        "apt install gcc",
        "apt install libomp-dev",
        "brew install libomp",
        "MSVC",
        "CONVEXT_NO_OPENMP=1",
    ):
        assert needle in err, needle


def test_no_openmp_opt_out_builds_single_threaded_without_probing(
    setup_module, tmp_path, monkeypatch, capsys
):
    compiler = _compiler()
    log = _without_openmp(compiler, tmp_path)
    monkeypatch.setattr(setup_module, "NO_OPENMP", True)
    assert setup_module._openmp_flags(compiler) == ([], [])
    assert not log.exists()  # no probe at all
    assert "CONVEXT_NO_OPENMP=1" in capsys.readouterr().err


def test_no_openmp_switch_is_read_from_the_environment(monkeypatch):
    pytest.importorskip("Cython", reason="setup.py imports Cython")
    for value, expected in (("1", True), ("0", False)):
        monkeypatch.setenv("CONVEXT_NO_OPENMP", value)
        spec = importlib.util.spec_from_file_location("convext_setup_env", SETUP_PY)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.NO_OPENMP is expected


def test_probe_with_openmp_returns_the_flags(setup_module):
    import convext

    if not convext.openmp_enabled():
        pytest.skip("this machine's build of convext has no OpenMP")
    flags = setup_module._openmp_flags(_compiler())
    assert any("-fopenmp" in f for f in flags[0]), flags
