#!/usr/bin/env bash
# AArch64 step of CI, called by .ci/run: the C kernel harness (tests/kernels/harness/kernel_check.c)
# cross-compiled with aarch64-linux-gnu-gcc -O2 and run under qemu-aarch64, then built and run
# natively for the x86 kernel tables this CPU has. The harness compares every compiled kernel
# table (GEMM, direct convolution, axpy and dot) with naive loops: exactly on integer data,
# within the rounding bound on random data, and bit for bit against the documented FMA order.
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
root=$(pwd)
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
warn=(-Wall -Wextra -Wno-unused-function -Werror)

echo "== aarch64: $($cross_cc --version | head -n 1), $($qemu --version | head -n 1)"
"$cross_cc" -O2 "${warn[@]}" -o "$work/kernel_check_aarch64" "$harness" "$isa/isa_neon.c" -lm
QEMU_LD_PREFIX=$sysroot "$qemu" "$work/kernel_check_aarch64"

if [[ $(uname -m) == x86_64 ]]; then
  echo "== x86-64 (native): $(${CC:-cc} --version | head -n 1)"
  "${CC:-cc}" -O2 "${warn[@]}" -o "$work/kernel_check_x86" "$harness" -lm
  "$work/kernel_check_x86"
fi
echo "== aarch64_check: OK ($root)"
