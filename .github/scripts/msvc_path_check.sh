#!/usr/bin/env bash
# The Windows (MSVC) code path, checked with the tools of this machine. Called by .ci/run.
#
# 1. Build the extension with CONVEXT_MSVC_PATH=1 in a temporary copy of the source tree (the
#    checkout's own build is never touched): gcc/clang then compile exactly the C that MSVC
#    compiles (src/convext/_kernels/isa/cvx_base.h: no GNU attribute, vector type, builtin or
#    _Pragma; the ISA files as -std=c11 -pedantic-errors). The one difference from the MSVC text
#    is CPU detection, where <intrin.h>'s __cpuidex/_xgetbv become <cpuid.h> and an xgetbv
#    instruction (isa/cvx_isa.c), and MSVC's __forceinline/__restrict become static inline/restrict.
# 2. Run tests/kernels and tests/functional against that build, at every ISA level this machine
#    runs (CONVEXT_ISA), after checking that the tests import that build and that
#    build_info()['code_path'] is 'msvc'.
# 3. If clang is installed: syntax-check the kernel C files for the MSVC target
#    (clang --target=x86_64-pc-windows-msvc -fms-compatibility, with each file's /arch
#    equivalent), which also checks the MSVC-only lines (__forceinline, __restrict, __cpuidex,
#    _xgetbv). Only the kernel C files: they need no C library header beyond what clang ships
#    (-ffreestanding), whereas the Cython-generated modules include Python.h, whose Windows
#    configuration needs the Windows SDK headers, absent here.
#
# Extra arguments are passed to pytest (e.g. `bash .github/scripts/msvc_path_check.sh -k conv`).
# MSVC_PATH_KEEP=1 keeps the build's directory (printed) for timing it, e.g. with
# `PYTHONPATH=<dir>/src python -m convext bench conv --quick`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
python=${PYTHON:-python}
pytest_args=("$@")

if ! "$python" -c "import Cython, setuptools, numpy" 2>/dev/null; then
  "$python" -m pip install "Cython>=3.1" "setuptools>=77" "numpy>=2.0"
fi

work=$(mktemp -d)
if [[ ${MSVC_PATH_KEEP:-0} == 1 ]]; then
  echo "msvc_path_check: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi

# the source tree without build products
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
     | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$work"
else
  (cd "$root" && tar --exclude='*.so' --exclude='*.pyd' --exclude=build --exclude=dist \
     --exclude='*.egg-info' --exclude=.hypothesis --exclude=__pycache__ -cf - .) | tar -xf - -C "$work"
  find "$work/src" -name '*.c' ! -path '*/_kernels/isa/*' -delete
fi

echo "== msvc_path_check: CONVEXT_MSVC_PATH=1 build in $work"
start=$(date +%s)
(cd "$work" && CONVEXT_MSVC_PATH=1 "$python" setup.py -q build_ext --inplace -j 2 >"$work/build.log" 2>&1) || {
  cat "$work/build.log"; echo "msvc_path_check: build failed" >&2; exit 1; }
echo "== build took $(( $(date +%s) - start )) s"

levels=$(cd "$work" && PYTHONPATH="$work/src" "$python" - "$work" <<'PY'
import sys
import convext
from convext._kernels import _isa
where, info = convext.__file__, convext.build_info()
if not where.startswith(sys.argv[1]):
    sys.exit(f"msvc_path_check: tests would import {where}, not the build in {sys.argv[1]}")
if info["code_path"] != "msvc":
    sys.exit(f"msvc_path_check: build_info()['code_path'] is {info['code_path']!r}, not 'msvc'")
print(" ".join(_isa.available()))
PY
)
echo "== ISA levels: $levels"
for isa in $levels; do
  echo "== CONVEXT_ISA=$isa: tests/kernels tests/functional on the MSVC-path build"
  start=$(date +%s)
  (cd "$work" && CONVEXT_ISA=$isa PYTHONPATH="$work/src" "$python" -m pytest tests/kernels \
     tests/functional -x -q -p no:cacheprovider "${pytest_args[@]}")
  echo "== took $(( $(date +%s) - start )) s"
done

clang_bin=$(command -v clang || true)
if [[ -n "$clang_bin" ]]; then
  echo "== $clang_bin --target=x86_64-pc-windows-msvc -fsyntax-only: the kernel C files"
  isa_dir="$work/src/convext/_kernels/isa"
  msvc=("$clang_bin" --target=x86_64-pc-windows-msvc -fms-compatibility -fms-extensions
        -ffreestanding -fsyntax-only -Wall -Wextra -Werror)
  "${msvc[@]}" "$isa_dir/isa_generic.c"
  "${msvc[@]}" -mavx2 -mfma "$isa_dir/isa_avx2.c"                  # /arch:AVX2
  "${msvc[@]}" -mavx512f -mavx2 -mfma "$isa_dir/isa_avx512.c"      # /arch:AVX512
  "${msvc[@]}" -DCVX_HAVE_ISA_AVX2=1 -DCVX_HAVE_ISA_AVX512=1 "$isa_dir/cvx_isa.c"
  echo "== MSVC-target syntax check passed"
else
  echo "== clang not found: MSVC-target syntax check skipped (apt-get install clang)"
fi
