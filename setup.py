"""Build the compiled kernels of convext.

All metadata lives in pyproject.toml; this file only declares the extension modules:
one Extension per ``src/convext/_kernels/*.pyx``, OpenMP flags chosen per compiler, and the
Cython directives set once for every module.

Environment switches (for local source builds; release wheels use none of them):
  CONVEXT_DEBUG=1   boundscheck, initializedcheck and wraparound on; -O0 -g.
  CONVEXT_ASAN=1    compile and link with -fsanitize=address (run with LD_PRELOAD of libasan).
  CONVEXT_NATIVE=1  add -march=native (never in a wheel: it can crash on older CPUs).
  CONVEXT_NO_OPENMP=1  build without OpenMP (the kernels then run single-threaded). Without
                       it, a compiler that fails the OpenMP probe stops the build with a
                       message saying how to get OpenMP on each platform.
"""
import glob
import os
import sys
import tempfile
import textwrap

import Cython
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("CONVEXT_DEBUG", "0") == "1"
ASAN = os.environ.get("CONVEXT_ASAN", "0") == "1"
NATIVE = os.environ.get("CONVEXT_NATIVE", "0") == "1"
NO_OPENMP = os.environ.get("CONVEXT_NO_OPENMP", "0") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
    # Free-threaded CPython (3.13t, 3.14t): the modules keep no mutable state of their own and
    # run their loops without the GIL already; what convext shares between Python threads is
    # guarded in Python (docs/reliability.md, check 19; tests/reliability/test_concurrency.py).
    "freethreading_compatible": True,
}


OPENMP_HELP = """\
************************************************************************************
convext: the compiler cannot build OpenMP code ({tried}).
Without OpenMP every kernel runs on one thread. To get OpenMP:
  Linux, gcc:    it is part of gcc (libgomp); install your distribution's gcc
                 (Debian/Ubuntu: apt install gcc; Fedora/RHEL: dnf install gcc libgomp).
  Linux, clang:  install LLVM's runtime (Debian/Ubuntu: apt install libomp-dev).
  macOS:         Apple clang has no OpenMP runtime: brew install libomp, then
                   export CPATH="$(brew --prefix libomp)/include"
                   export LIBRARY_PATH="$(brew --prefix libomp)/lib"
                 (or use conda's llvm-openmp with its clang).
  Windows:       MSVC has OpenMP built in (/openmp): use Visual Studio Build Tools.
Or install a binary wheel (pip install convext --only-binary convext), which bundles it.
To build single-threaded kernels on purpose, set CONVEXT_NO_OPENMP=1.
************************************************************************************"""


def _openmp_flags(compiler):
    """(compile_args, link_args) for OpenMP with this compiler. ([], []) when CONVEXT_NO_OPENMP=1;
    otherwise a compiler that fails the probe stops the build (SystemExit) after printing
    OPENMP_HELP: a source build that silently ran on one thread is the failure this prevents."""
    if NO_OPENMP:
        print("convext: CONVEXT_NO_OPENMP=1: building single-threaded kernels", file=sys.stderr)
        return [], []
    ctype = compiler.compiler_type
    if ctype == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, lflags in candidates:
        if _compiles(compiler, cflags, lflags):
            return cflags, lflags
    tried = "; ".join(f"compile {' '.join(c)}, link {' '.join(l)}" for c, l in candidates)
    print(OPENMP_HELP.format(tried=tried), file=sys.stderr)
    raise SystemExit(
        "convext: OpenMP not available (see above); CONVEXT_NO_OPENMP=1 builds without it"
    )


def _compiles(compiler, cflags, lflags):
    code = textwrap.dedent(
        """
        #include <omp.h>
        int main(void) { int n = 0;
        #pragma omp parallel reduction(+:n)
          n += omp_get_num_threads();
          return n > 0 ? 0 : 1; }
        """
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            compiler.link_executable(objs, os.path.join(tmp, "omp_test"), extra_postargs=lflags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        omp_c, omp_l = _openmp_flags(self.compiler)
        if ctype == "msvc":
            cflags = ["/O2"] + omp_c
            lflags = list(omp_l)
        else:
            cflags = (["-O0", "-g"] if DEBUG else ["-O3"]) + omp_c
            cflags += ["-fno-math-errno", "-Wno-unreachable-code"]
            lflags = list(omp_l)
            if not DEBUG:
                # Release builds are stripped: a few hundred kB instead of over a MB.
                cflags.append("-g0")
                if sys.platform.startswith("linux"):
                    lflags.append("-s")
                elif sys.platform == "darwin":
                    lflags.append("-Wl,-x")  # drop local symbols (ld64 has no -s)
            if ASAN:
                cflags += ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]
                lflags += ["-fsanitize=address"]
            if NATIVE:
                cflags.append("-march=native")
        for ext in self.extensions:
            ext.extra_compile_args = cflags + list(ext.extra_compile_args)
            ext.extra_link_args = lflags + list(ext.extra_link_args)
            ext.define_macros.append(("CVX_BUILD_CFLAGS", '"%s"' % " ".join(cflags)))
            ext.define_macros.append(("CVX_OPENMP", "1" if omp_c else "0"))
        super().build_extensions()


def extensions():
    exts = []
    for pyx in sorted(glob.glob(os.path.join("src", "convext", "_kernels", "*.pyx"))):
        name = "convext._kernels." + os.path.splitext(os.path.basename(pyx))[0]
        exts.append(
            Extension(
                name,
                [pyx],
                include_dirs=[numpy.get_include(), os.path.join("src", "convext", "_kernels")],
                define_macros=[
                    ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                    # Recorded by convext.build_info().
                    ("CVX_CYTHON_VERSION", '"%s"' % Cython.__version__),
                    ("CVX_NUMPY_VERSION", '"%s"' % numpy.__version__),
                ],
            )
        )
    return cythonize(exts, compiler_directives=DIRECTIVES, quiet=True)


# Importable without building (tests/kernels/test_build_openmp.py checks the OpenMP probe);
# pip, build and "python setup.py" all run this file as __main__.
if __name__ == "__main__":
    setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
