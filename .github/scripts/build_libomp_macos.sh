#!/usr/bin/env bash
# LLVM's OpenMP runtime (libomp) built from its release source for the wheels' macOS deployment
# target, for cibuildwheel's before-all on macOS ([tool.cibuildwheel.macos] in pyproject.toml).
#
# Why: Apple's clang has no OpenMP runtime, and Homebrew's libomp is built for the runner's own
# macOS (14 on arm64, 15 on Intel), so a wheel that bundles it claims that macOS as its minimum
# (delocate refuses a lower tag). Built here with MACOSX_DEPLOYMENT_TARGET (11.0), the wheel
# runs on macOS 11 and newer. The dylib's install name is its absolute path under PREFIX:
# setup.py links it with -lomp (found through LIBRARY_PATH, omp.h through CPATH), no rpath is
# baked in, and delocate-wheel copies it into the wheel and rewrites the reference.
#
# Usage: MACOSX_DEPLOYMENT_TARGET=11.0 bash build_libomp_macos.sh PREFIX
# Needs curl, cmake and a C++ compiler (all on GitHub's macOS runners). The source tarballs are
# checked against SHA-256 sums (those recorded by Homebrew's libomp formula for this release).
set -euo pipefail

LLVM_VERSION=17.0.3
OPENMP_SHA256=e04172c067f256d06cd8112abb49bc65f4e1d986a4b49b36cd837dfee3cdd274
CMAKE_SHA256=54fc534f0da09088adbaa6c3bfc9899a500153b96e60c2fb9322a7aa37b1027a
URL=https://github.com/llvm/llvm-project/releases/download/llvmorg-$LLVM_VERSION

PREFIX=${1:?usage: build_libomp_macos.sh PREFIX}
TARGET=${MACOSX_DEPLOYMENT_TARGET:?set MACOSX_DEPLOYMENT_TARGET (the wheels' minimum macOS)}
ARCH=$(uname -m)
STAMP="$PREFIX/.convext-libomp-$LLVM_VERSION-$ARCH-$TARGET"
if [[ -f "$STAMP" && -f "$PREFIX/lib/libomp.dylib" ]]; then
    echo "libomp $LLVM_VERSION for $ARCH, macOS $TARGET: already in $PREFIX"
    exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fetch() {  # name sha256
    curl -fsSL --retry 3 -o "$1.tar.xz" "$URL/$1-$LLVM_VERSION.src.tar.xz"
    echo "$2  $1.tar.xz" | shasum -a 256 -c -
    tar -xf "$1.tar.xz"
    mv "$1-$LLVM_VERSION.src" "$1"
}
fetch openmp "$OPENMP_SHA256"
fetch cmake "$CMAKE_SHA256"  # LLVM's shared CMake modules, which a standalone runtime build needs

cmake -S openmp -B build \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DCMAKE_INSTALL_NAME_DIR="$PREFIX/lib" \
    -DCMAKE_OSX_ARCHITECTURES="$ARCH" \
    -DCMAKE_OSX_DEPLOYMENT_TARGET="$TARGET" \
    -DLIBOMP_INSTALL_ALIASES=OFF \
    -DOPENMP_ENABLE_LIBOMPTARGET=OFF \
    -DOPENMP_ENABLE_OMPT_TOOLS=OFF \
    -DLIBOMP_OMPD_SUPPORT=OFF
cmake --build build --parallel "$(sysctl -n hw.ncpu)"
cmake --install build

LIB="$PREFIX/lib/libomp.dylib"
if [[ "$(otool -D "$LIB" | tail -1)" != "$LIB" ]]; then  # e.g. @rpath/libomp.dylib
    install_name_tool -id "$LIB" "$LIB"
    codesign --force --sign - "$LIB"  # the edit invalidates the ad-hoc signature (arm64)
fi
# the library must say what the wheel will: built for this target, found by its absolute path
minos=$(otool -l "$LIB" | awk '/LC_BUILD_VERSION/ {b = 1} b && $1 == "minos" {print $2; exit}')
name=$(otool -D "$LIB" | tail -1)
echo "libomp $LLVM_VERSION: $LIB ($ARCH, minos $minos, install name $name)"
[[ "$minos" == "$TARGET" ]] || { echo "libomp was built for macOS $minos, not $TARGET" >&2; exit 1; }
[[ "$name" == "$LIB" ]] || { echo "libomp's install name is $name, not $LIB" >&2; exit 1; }
[[ -f "$PREFIX/include/omp.h" ]] || { echo "no omp.h in $PREFIX/include" >&2; exit 1; }
touch "$STAMP"
