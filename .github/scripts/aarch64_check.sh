#!/usr/bin/env bash
# AArch64 step of CI, called by .ci/run: the C kernel harness (tests/kernels/harness/kernel_check.c)
# cross-compiled with aarch64-linux-gnu-gcc -O2 and -O3 and run under qemu-aarch64, then built and run
# natively for the x86 kernel tables this CPU has (at -O3, and at -O0 and -O3 -ffp-contract=off,
# where the compiler fuses no multiply-add of its own: the FMA-order replay then checks that
# every kernel writes its fused multiply-adds explicitly). The harness compares every compiled kernel
# table (GEMM, direct convolution, axpy and dot, depthwise and pooling kernels) with naive loops:
# exactly on integer data, within the rounding bound on random data, and bit for bit against the
# documented FMA order.
# ARM speed is not measured here (qemu says nothing about it; CONTRIBUTING.md argues it).
#
#   bash .github/scripts/aarch64_check.sh
#
# Needs aarch64-linux-gnu-gcc and qemu-aarch64 (Debian/Ubuntu packages gcc-aarch64-linux-gnu
# and qemu-user); installs them with apt-get when missing and allowed (root, or sudo without a
# password). CROSS_CC, QEMU and QEMU_LD_PREFIX override the tools and the target's sysroot.
# The whole package is not run under qemu: see CONTRIBUTING.md ("NEON").
set -euo pipefail
cd "$(dirname "$0")/../.."
cross_cc=${CROSS_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU:-qemu-aarch64}
sysroot=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}

if ! command -v "$cross_cc" >/dev/null || ! command -v "$qemu" >/dev/null; then
  echo "== installing gcc-aarch64-linux-gnu and qemu-user"
  if [[ $(id -u) == 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "aarch64_check: $cross_cc or $qemu is missing and apt-get cannot be run" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -q >/dev/null
  "${sudo[@]}" apt-get install -y -q gcc-aarch64-linux-gnu qemu-user >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
harness=tests/kernels/harness/kernel_check.c
isa=src/convext/_kernels/isa
# the direct forward's pixel bands at 1 MB (cvx_base.h), which the harness's band shapes cross
cflags=(-Wall -Wextra -Wno-unused-function -Werror -I "$isa" "-DCVX_DIRECT_BAND_BYTES=(1024*1024)")

# build CC OUT ROW:FLAGS... (with $opt): the harness, cvx_isa.c and isa_<row>.c of each row, every ISA file
# compiled with its own flags only and CVX_HAVE_ISA_<ROW> defined for the rows present, as
# setup.py builds the _isa extension
build() {
  local cc=$1 out=$2 row flags defs=() objs=()
  local -a ccv
  read -r -a ccv <<< "$cc" # a compiler with its target flags
  read -r -a defs <<< "$opt" # the optimisation flags
  shift 2
  for spec in "$@"; do
    row=${spec%%:*}
    [[ $row == generic ]] || defs+=("-DCVX_HAVE_ISA_${row^^}=1")
  done
  for spec in "$@"; do
    row=${spec%%:*}
    flags=${spec#*:}
    # shellcheck disable=SC2086  # $flags: a word list
    "${ccv[@]}" "${cflags[@]}" "${defs[@]}" $flags -c "$isa/isa_$row.c" -o "$out.$row.o"
    objs+=("$out.$row.o")
  done
  "${ccv[@]}" "${cflags[@]}" "${defs[@]}" -c "$isa/cvx_isa.c" -o "$out.cvx_isa.o"
  "${ccv[@]}" "${cflags[@]}" "${defs[@]}" -o "$out" "$harness" "${objs[@]}" "$out.cvx_isa.o" -lm
}

# Each configuration below is a job (build, then run) with its own output; the jobs run side by
# side, one per CPU, and their outputs are printed in order once all have ended.
jobs_max=$(nproc 2>/dev/null || echo 1)
names=()
pids=()
job() {  # job NAME: run the rest of the arguments in the background, output to $work/NAME.log
  local name=$1
  shift
  while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done
  ("$@") >"$work/$name.log" 2>&1 &
  names+=("$name")
  pids+=($!)
}

aarch64_job() {  # aarch64_job OPT OUT CC...: the harness for generic and NEON, run under qemu
  local opt=$1 out=$2
  shift 2
  echo "== aarch64 $opt with $("$1" --version | head -n 1), under $($qemu --version | head -n 1)"
  build "$*" "$out" generic: neon:
  QEMU_LD_PREFIX=$sysroot "$qemu" "$out"
}

x86_job() {  # x86_job OPT OUT: the harness for the x86 tables this CPU has, run natively
  local opt=$1 out=$2 cc=${CC:-cc}
  echo "== x86-64 $opt (generic, avx2, avx512; those this CPU has), native: $($cc --version | head -n 1)"
  build "$cc" "$out" generic: "avx2:-mavx2 -mfma" "avx512:-mavx512f -mavx2 -mfma"
  "$out"
}

# -O3 is setup.py's level (the depthwise loops are vectorised only there), -O2 the usual one
for opt in -O2 -O3; do
  job "aarch64$opt" aarch64_job "$opt" "$work/kernel_check_aarch64$opt" "$cross_cc"
done
# clang compiles the macOS arm64 wheels: the same check with clang's code, when clang is here
if command -v clang >/dev/null; then
  job aarch64-clang aarch64_job -O3 "$work/kernel_check_clang" clang --target=aarch64-linux-gnu
else
  echo "== aarch64 with clang: skipped (no clang)"
fi
if [[ $(uname -m) == x86_64 ]]; then
  # -O0: no optimisation and no FMA contraction at all; -ffp-contract=off: as MSVC's /fp:precise
  for opt in -O3 -O0 "-O3 -ffp-contract=off"; do
    job "x86${opt// /}" x86_job "$opt" "$work/kernel_check_x86${opt// /}"
  done
fi
failed=()
for i in "${!pids[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  cat "$work/${names[$i]}.log"
  (( status == 0 )) || failed+=("${names[$i]}")
done
if (( ${#failed[@]} )); then
  echo "aarch64_check: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== aarch64_check: OK"
