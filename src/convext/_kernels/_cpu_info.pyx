"""Compile-time facts about this build of the kernels, for convext.build_info().

Everything here is fixed by the preprocessor when the module is compiled, so it describes how
the wheel (or the local build) was made, with the same compiler, flags and macros as the other
kernel modules: setup.py defines CVX_BUILD_CFLAGS, CVX_OPENMP, CVX_CYTHON_VERSION and
CVX_NUMPY_VERSION for every extension. Each value is stringified in C and unquoted in Python, so
it reads the same whether or not the build tool kept the quotes of a string-valued macro.

Run-time facts (the instruction set chosen at import, what the CPU supports, the code path) come
from convext._kernels._isa, the one place that detects the CPU.
"""

cdef extern from *:
    """
    #define CVX_BI_STR_(x) #x
    #define CVX_BI_STR(x) CVX_BI_STR_(x)

    #ifdef CVX_BUILD_CFLAGS
    #define CVX_BI_CFLAGS CVX_BI_STR(CVX_BUILD_CFLAGS)
    #else
    #define CVX_BI_CFLAGS ""
    #endif
    #ifdef CVX_CYTHON_VERSION
    #define CVX_BI_CYTHON CVX_BI_STR(CVX_CYTHON_VERSION)
    #elif defined(CYTHON_ABI)
    #define CVX_BI_CYTHON CYTHON_ABI
    #else
    #define CVX_BI_CYTHON ""
    #endif
    #ifdef CVX_NUMPY_VERSION
    #define CVX_BI_NUMPY CVX_BI_STR(CVX_NUMPY_VERSION)
    #else
    #define CVX_BI_NUMPY ""
    #endif

    /* The value of the _OPENMP macro (yyyymm of the supported specification), 0 without. */
    #ifdef _OPENMP
    #define CVX_BI_OPENMP_SPEC _OPENMP
    #else
    #define CVX_BI_OPENMP_SPEC 0
    #endif
    #ifdef CVX_OPENMP
    #define CVX_BI_OPENMP CVX_OPENMP
    #else
    #define CVX_BI_OPENMP (CVX_BI_OPENMP_SPEC != 0)
    #endif

    #if defined(__clang__)
    #define CVX_BI_COMPILER __VERSION__
    #elif defined(__GNUC__) && defined(__VERSION__)
    #define CVX_BI_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_FULL_VER)
    #define CVX_BI_COMPILER "msvc " CVX_BI_STR(_MSC_FULL_VER)
    #elif defined(__VERSION__)
    #define CVX_BI_COMPILER __VERSION__
    #else
    #define CVX_BI_COMPILER "unknown"
    #endif

    /* Highest SIMD extension the compiler was allowed to use everywhere (the baseline). */
    #if defined(__AVX512F__)
    #define CVX_BI_SIMD "AVX512F"
    #elif defined(__AVX2__)
    #define CVX_BI_SIMD "AVX2"
    #elif defined(__AVX__)
    #define CVX_BI_SIMD "AVX"
    #elif defined(__SSE4_2__)
    #define CVX_BI_SIMD "SSE4.2"
    #elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #define CVX_BI_SIMD "SSE2"
    #elif defined(__ARM_FEATURE_SVE)
    #define CVX_BI_SIMD "SVE"
    #elif defined(__ARM_NEON) || defined(__ARM_NEON__) || defined(_M_ARM64)
    #define CVX_BI_SIMD "NEON"
    #else
    #define CVX_BI_SIMD "none"
    #endif

    #if defined(__x86_64__) || defined(_M_X64)
    #define CVX_BI_ARCH "x86_64"
    #elif defined(__aarch64__) || defined(_M_ARM64)
    #define CVX_BI_ARCH "aarch64"
    #elif defined(__i386__) || defined(_M_IX86)
    #define CVX_BI_ARCH "x86"
    #else
    #define CVX_BI_ARCH "other"
    #endif

    """
    const char *CVX_BI_CFLAGS
    const char *CVX_BI_CYTHON
    const char *CVX_BI_NUMPY
    const char *CVX_BI_COMPILER
    const char *CVX_BI_SIMD
    const char *CVX_BI_ARCH
    long CVX_BI_OPENMP_SPEC
    int CVX_BI_OPENMP

cdef str _unquote(const char *s):
    text = s.decode("utf-8", "replace").strip()
    while len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:len(text) - 1].strip()
    return text.replace('\\"', '"')


def compile_info():
    """A dict of the facts fixed when the kernels were compiled."""
    return {
        "compiler": _unquote(CVX_BI_COMPILER),
        "cflags": _unquote(CVX_BI_CFLAGS),
        "openmp": bool(CVX_BI_OPENMP),
        "openmp_spec": int(CVX_BI_OPENMP_SPEC),
        "cython_version": _unquote(CVX_BI_CYTHON),
        "numpy_build_version": _unquote(CVX_BI_NUMPY),
        "simd_baseline": _unquote(CVX_BI_SIMD),
        "arch": _unquote(CVX_BI_ARCH),
    }
