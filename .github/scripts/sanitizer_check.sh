#!/usr/bin/env bash
# Memory-safety step of CI (docs/reliability.md check 13), called by .ci/run after the unit tests.
#
# 1. Build the extension once with CONVEXT_DEBUG=1 and CONVEXT_ASAN=1 together (Cython
#    boundscheck, wraparound and initializedcheck on, -Og -g, -fsanitize=address) and run the
#    whole test suite against it with libasan preloaded into the interpreter; any
#    "ERROR: AddressSanitizer" report fails the step. Under AddressSanitizer tests/parity is not
#    collected (torch and onnxruntime do not load beside libasan: tests/parity/conftest.py).
# 2. On that build, tests/kernels and tests/functional at every other instruction-set level this
#    machine runs (CONVEXT_ISA), so the AVX2 and generic kernels are checked too.
# 3. Build it with CONVEXT_DEBUG=1 alone and run against it the tests that AddressSanitizer
#    leaves out (DEBUG_ONLY below: tests/parity, the ONNX error tests, the memory-growth check),
#    so that the bounds checks also see the comparisons with torch and onnxruntime.
#
# Each build happens in its own temporary copy of the source tree (tracked and untracked files,
# no build products), so the checkout's own in-place build is never touched. The current python
# (the CI venv, with the test dependencies) is used; Cython, setuptools and numpy are installed
# into it if missing. CONVEXT_TEST_EXAMPLES caps hypothesis's max_examples per test
# (tests/conftest.py); this step sets it to keep the instrumented runs short (default 25,
# override by exporting it). The suite includes the hypothesis fuzz target
# (tests/reliability/test_reliability_fuzz.py: absurd geometry up to 2**64, zero- and one-sized planes), which
# the same variable caps (at no fewer than 100 examples). Extra arguments are passed to pytest
# (for runs by hand, e.g. `bash .github/scripts/sanitizer_check.sh -k pool`).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
python=${PYTHON:-python}
pytest_args=("$@")
export CONVEXT_TEST_EXAMPLES=${CONVEXT_TEST_EXAMPLES:-25}

if ! "$python" -c "import Cython, setuptools, numpy" 2>/dev/null; then
  "$python" -m pip install "Cython>=3.1" "setuptools>=77" "numpy>=2.0"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

copy_tree() {  # copy_tree DEST: the source tree without build products
  local dest=$1
  mkdir -p "$dest"
  if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
       | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$dest"
  else
    (cd "$root" && tar --exclude='*.so' --exclude='*.pyd' --exclude='*.c' --exclude=build \
       --exclude=dist --exclude='*.egg-info' --exclude=.hypothesis --exclude=__pycache__ \
       -cf - .) | tar -xf - -C "$dest"
  fi
}

build() {  # build DIR: in-place build of the copy in DIR (env switches already exported)
  (cd "$1" && "$python" setup.py -q build_ext --inplace >"$1/build.log" 2>&1) || {
    cat "$1/build.log"; echo "sanitizer_check: build failed in $1" >&2; return 1; }
  local where preload=()
  # an AddressSanitizer build can only be imported with libasan preloaded
  [[ ${CONVEXT_ASAN:-0} == 1 ]] && preload=(LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0)
  where=$(cd "$1" && env PYTHONPATH="$1/src" "${preload[@]}" "$python" -c \
    "import convext._kernels._conv as m; print(m.__file__)")
  case "$where" in
    "$1"/*) ;;
    *) echo "sanitizer_check: tests would import $where, not the build in $1" >&2; return 1 ;;
  esac
}

# the whole suite runs with one pytest-xdist worker per CPU when pytest-xdist is installed
workers=()
"$python" -c "import xdist" 2>/dev/null && workers=(-n auto)

run_suite() {  # run_suite DIR LOG "TESTS..." [env...]: the tests TESTS against the build in DIR
  local dir=$1 log=$2 tests=$3
  shift 3
  (cd "$dir" && env PYTHONPATH="$dir/src" "$@" \
     "$python" -m pytest -q -p no:cacheprovider "${workers[@]}" $tests "${pytest_args[@]}" 2>&1) \
     | tee "$log" | tail -n 25
  return "${PIPESTATUS[0]}"
}

libasan=$(gcc -print-file-name=libasan.so)
if [[ "$libasan" != /* || ! -e "$libasan" ]]; then
  echo "sanitizer_check: gcc's libasan.so not found" >&2
  exit 1
fi

echo "== debug + AddressSanitizer build (CONVEXT_DEBUG=1 CONVEXT_ASAN=1)"
start=$(date +%s)
copy_tree "$work/asan"
CONVEXT_DEBUG=1 CONVEXT_ASAN=1 build "$work/asan"
echo "   built in $(( $(date +%s) - start )) s"
mkdir -p "$work/asan-reports"
start=$(date +%s)
status=0
run_suite "$work/asan" "$work/asan.log" tests CONVEXT_DEBUG=1 CONVEXT_ASAN=1 LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="detect_leaks=0:log_path=$work/asan-reports/asan" || status=$?
echo "== debug + ASan suite took $(( $(date +%s) - start )) s"
reports=$( (grep -l "ERROR: AddressSanitizer" "$work/asan.log" "$work"/asan-reports/* \
            2>/dev/null || true) | wc -l)
if (( reports > 0 )); then
  for f in "$work"/asan-reports/*; do
    [[ -e "$f" ]] && { echo "--- $f"; head -n 60 "$f"; }
  done
  grep -A 40 "ERROR: AddressSanitizer" "$work/asan.log" | head -n 80 || true
  echo "sanitizer_check: AddressSanitizer reported errors ($reports file(s))" >&2
  exit 1
fi
if (( status != 0 )); then
  echo "sanitizer_check: the test suite failed under AddressSanitizer (exit $status)" >&2
  exit "$status"
fi
echo "== AddressSanitizer: 0 reports"

# The other instruction-set levels (the suite above ran the default: the best this CPU runs):
# tests/kernels and tests/functional under AddressSanitizer at each, on the same ASan build.
asan_env=(PYTHONPATH="$work/asan/src" CONVEXT_DEBUG=1 CONVEXT_ASAN=1 LD_PRELOAD="$libasan"
          ASAN_OPTIONS="detect_leaks=0:log_path=$work/asan-reports/asan")
read -r active levels <<<"$(cd "$work/asan" && env "${asan_env[@]}" "$python" -c \
  "from convext._kernels import _isa; print(_isa.active(), ' '.join(_isa.available()))")"
for isa in $levels; do
  [[ $isa == "$active" ]] && continue
  echo "== AddressSanitizer, CONVEXT_ISA=$isa: tests/kernels tests/functional"
  (cd "$work/asan" && env "${asan_env[@]}" CONVEXT_ISA="$isa" "$python" -m pytest -q \
     -p no:cacheprovider "${workers[@]}" tests/kernels tests/functional 2>&1) | tee "$work/asan-$isa.log" | tail -n 3
  status=${PIPESTATUS[0]}
  if grep -q "ERROR: AddressSanitizer" "$work/asan-$isa.log" "$work"/asan-reports/* 2>/dev/null; then
    grep -h -A 40 "ERROR: AddressSanitizer" "$work/asan-$isa.log" "$work"/asan-reports/* | head -n 80
    echo "sanitizer_check: AddressSanitizer reported errors at CONVEXT_ISA=$isa" >&2
    exit 1
  fi
  if (( status != 0 )); then
    echo "sanitizer_check: the tests failed under AddressSanitizer at CONVEXT_ISA=$isa" >&2
    exit "$status"
  fi
done
echo "== AddressSanitizer at every ISA level: 0 reports"

# the tests that skip themselves under AddressSanitizer (torch's, onnx's and onnxruntime's C++
# exceptions abort there; its quarantine keeps freed memory in the RSS)
DEBUG_ONLY="tests/parity tests/layers/test_onnx_errors.py tests/reliability/test_reliability_memory.py"
echo "== debug build (CONVEXT_DEBUG=1): $DEBUG_ONLY"
start=$(date +%s)
copy_tree "$work/debug"
CONVEXT_DEBUG=1 build "$work/debug"
echo "   built in $(( $(date +%s) - start )) s"
start=$(date +%s)
status=0
run_suite "$work/debug" "$work/debug.log" "$DEBUG_ONLY" CONVEXT_DEBUG=1 || status=$?
# 5: no test selected (a run by hand with -k that matches none of them)
if (( status != 0 && status != 5 )); then
  echo "sanitizer_check: the tests failed on the debug build (exit $status)" >&2
  exit "$status"
fi
echo "== debug tests took $(( $(date +%s) - start )) s"
