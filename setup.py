"""Build the compiled kernels of convext.

All metadata lives in pyproject.toml; this file only declares the extension modules:
one Extension per ``src/convext/_kernels/*.pyx``, OpenMP flags chosen per compiler, and the
Cython directives set once for every module.

Environment switches (for local source builds; release wheels use none of them):
  CONVEXT_DEBUG=1   boundscheck, initializedcheck and wraparound on; -Og -g (GCC's and clang's
                    level for debugging: -O0 ran the SIMD kernels 20x slower).
  CONVEXT_ASAN=1    compile and link with -fsanitize=address (run with LD_PRELOAD of libasan).
  CONVEXT_NATIVE=1  add -march=native (never in a wheel: it can crash on older CPUs).
  CONVEXT_NO_OPENMP=1  build without OpenMP (the kernels then run single-threaded). Without
                       it, a compiler that fails the OpenMP probe stops the build with a
                       message saying how to get OpenMP on each platform.
  CONVEXT_BUILD_JOBS=N  compiler processes at once (default: one per CPU).
  CONVEXT_MSVC_PATH=1  compile the C kernels as MSVC compiles them (no GNU attribute, vector type,
                       builtin or _Pragma; the ISA files as -std=c11 -pedantic-errors), to test the
                       Windows code path with gcc/clang; build_info()['code_path'] is then 'msvc'.

The instruction-set layer (src/convext/_kernels/isa/, CONTRIBUTING.md "Adding an instruction
set") is compiled into the one extension convext._kernels._isa: cvx_isa.c with the common flags,
and each isa/isa_<name>.c of this architecture with its own flags (ISA_FLAGS), so no kernel needs
a target attribute and MSVC compiles the same code.
"""

import concurrent.futures
import glob
import os
import sys
import sysconfig
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
MSVC_PATH = os.environ.get("CONVEXT_MSVC_PATH", "0") == "1"

KERNELS = os.path.join("src", "convext", "_kernels")
ISA_DIR = os.path.join(KERNELS, "isa")
ISA_EXT = "convext._kernels._isa"
# Compiler flags of each isa/isa_<name>.c (gcc/clang, MSVC); an ISA absent here needs none.
ISA_FLAGS = {
    "avx2": (["-mavx2", "-mfma"], ["/arch:AVX2"]),
    "avx512": (["-mavx512f", "-mavx2", "-mfma"], ["/arch:AVX512"]),
}


def isa_rows():
    """The ISAs built for the target platform (sysconfig's, so cross builds get theirs)."""
    plat = sysconfig.get_platform().lower()
    if plat.endswith(("x86_64", "amd64")) or plat == "win32":
        return ["generic", "avx2", "avx512"]
    if plat.endswith(("aarch64", "arm64")) and os.path.exists(os.path.join(ISA_DIR, "isa_neon.c")):
        return ["generic", "neon"]
    return ["generic"]


DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
    # Free-threaded CPython (3.13t, 3.14t): the modules keep no mutable state of their own
    # (but _threads' two flags of the team's helper thread, each written by one side only) and
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


def build_jobs():
    """Compiler processes run at once: CONVEXT_BUILD_JOBS, or one per CPU."""
    value = os.environ.get("CONVEXT_BUILD_JOBS", "0")
    if not value.isdigit():
        raise ValueError(f"CONVEXT_BUILD_JOBS must be a whole number of jobs, not {value!r}")
    return int(value) or os.cpu_count() or 1


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # the extensions (and the ISA files below) compile side by side
            self.parallel = build_jobs()

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        omp_c, omp_l = _openmp_flags(self.compiler)
        if ctype == "msvc":
            cflags = ["/O2"] + omp_c
            lflags = list(omp_l)
        else:
            cflags = (["-Og", "-g"] if DEBUG else ["-O3"]) + omp_c
            # -fno-trapping-math: floating-point exceptions are never unmasked here, so an
            # operation may be computed where its result is not chosen; without it GCC keeps
            # each product or quotient of a choice (leaky ReLU's v * a if v < 0 else v, the
            # hardswish gradient's middle piece) in a branch, which mispredicts on mixed
            # signs (4-5 ns an element, 15-25 times the vector blend it is with the flag). No
            # value changes: it permits no reassociation, contraction or constant folding
            # that rounds differently (the kernels' bits are the same with and without it).
            cflags += ["-fno-math-errno", "-fno-trapping-math", "-Wno-unreachable-code"]
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
            if MSVC_PATH:
                ext.define_macros.append(("CVX_MSVC_PATH", "1"))
        super().build_extensions()

    def build_extension(self, ext):
        if ext.name == ISA_EXT:
            ext.extra_objects = list(ext.extra_objects or []) + self._isa_objects(ext)
        super().build_extension(ext)

    def _isa_objects(self, ext):
        """Compile isa/isa_<name>.c of each ISA with its own flags; the object files."""
        msvc = self.compiler.compiler_type == "msvc"

        def compile_isa(isa):
            flags = list(ISA_FLAGS.get(isa, ([], []))[1 if msvc else 0])
            if MSVC_PATH and not msvc:
                flags += ["-std=c11", "-pedantic-errors"]
            return self.compiler.compile(
                [os.path.join(ISA_DIR, f"isa_{isa}.c")],
                output_dir=self.build_temp,
                macros=ext.define_macros,
                include_dirs=ext.include_dirs,
                extra_postargs=list(ext.extra_compile_args) + flags,
                depends=ext.depends,
            )

        # each ISA file is a separate compiler process (threads only wait on them)
        with concurrent.futures.ThreadPoolExecutor(build_jobs()) as pool:
            return [obj for objs in pool.map(compile_isa, isa_rows()) for obj in objs]


def extensions():
    exts = []
    isa_files = sorted(glob.glob(os.path.join(ISA_DIR, "*")))
    # the modules other than _isa include only these two of them
    isa_headers = [os.path.join(ISA_DIR, h) for h in ("cvx_isa.h", "cvx_base.h")]
    for pyx in sorted(glob.glob(os.path.join(KERNELS, "*.pyx"))):
        name = "convext._kernels." + os.path.splitext(os.path.basename(pyx))[0]
        sources, macros, depends = [pyx], [], isa_headers
        if name == ISA_EXT:  # the one copy of the kernels (the ISA files: BuildExt._isa_objects)
            sources.append(os.path.join(ISA_DIR, "cvx_isa.c"))
            macros = [(f"CVX_HAVE_ISA_{isa.upper()}", "1") for isa in isa_rows()]
            depends = isa_files
        exts.append(
            Extension(
                name,
                sources,
                include_dirs=[numpy.get_include(), KERNELS],
                depends=depends,
                define_macros=[
                    ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                    # Recorded by convext.build_info().
                    ("CVX_CYTHON_VERSION", '"%s"' % Cython.__version__),
                    ("CVX_NUMPY_VERSION", '"%s"' % numpy.__version__),
                ]
                + macros,
            )
        )
    return cythonize(exts, compiler_directives=DIRECTIVES, quiet=True, nthreads=build_jobs())


# Importable without building (tests/kernels/test_build_openmp.py checks the OpenMP probe);
# pip, build and "python setup.py" all run this file as __main__.
if __name__ == "__main__":
    setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
