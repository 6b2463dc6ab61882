#!/usr/bin/env bash
# The test suite under a free-threaded CPython (PEP 703: built with --disable-gil), on this
# machine, with a check that the GIL stayed off for the whole run.
#
# Debian 12 packages no free-threaded interpreter, and only Debian's and PyPI's packages are
# reachable here, so the interpreter is built from CPython's source as Debian 13 ships it
# (`apt-get source python3.13`: its .orig tarball is the upstream release), configured with
# --disable-gil, and kept in FT_CACHE for later runs (about 6 minutes on 2 cores the first
# time). numpy, Cython and the test tools come from PyPI as cp313t wheels; convext is built from
# this tree with that interpreter (its kernel modules are declared freethreading_compatible:
# importing one that is not would turn the GIL back on, which the check below catches).
#
# Usage: bash .github/scripts/free_threaded_check.sh [pytest arguments]
#        (default: tests/kernels tests/functional tests/reliability tests/layers; tests/parity
#        needs torch, which has no cp313t wheel)
# Environment:
#   FT_PYTHON=/path/to/python3.13t   use this free-threaded interpreter instead of building one
#   FT_CACHE=$HOME/.cache/convext-free-threaded   where the built interpreter is kept
# Needs root for apt-get (it adds a deb-src entry for Debian 13 when no python3.13 source is
# known), gcc, make and the usual CPython build libraries (zlib, libffi, openssl headers).
set -euo pipefail

t_start=$(date +%s)
step() { printf '\n=== free_threaded_check [%4ds] %s\n' "$(( $(date +%s) - t_start ))" "$*"; }
die() { echo "free_threaded_check: FAILED: $*" >&2; exit 1; }
pip_q() { "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${FT_CACHE:-$HOME/.cache/convext-free-threaded}
if [[ $# -eq 0 ]]; then
    set -- tests/kernels tests/functional tests/reliability tests/layers
fi

if [[ -z "${FT_PYTHON:-}" ]]; then
    FT_PYTHON=$CACHE/python/bin/python3.13t
    if [[ ! -x "$FT_PYTHON" ]]; then
        step "building CPython 3.13 with --disable-gil into $CACHE/python"
        if ! apt-cache showsrc python3.13 2>/dev/null | grep -q '^Version:'; then
            cat > /etc/apt/sources.list.d/convext-debian13-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
            apt-get update -qq
        fi
        rm -rf "$CACHE/src" && mkdir -p "$CACHE/src"
        (cd "$CACHE/src" && apt-get source --download-only -qq python3.13 2>&1 | tail -1)
        tar -xf "$CACHE"/src/python3.13_*.orig.tar.xz -C "$CACHE/src"
        src=$(ls -d "$CACHE"/src/Python-3.13.*/)
        (cd "$src" && ./configure --disable-gil --prefix="$CACHE/python" --with-ensurepip=install \
            > "$CACHE/configure.log" 2>&1 && make -j"$(nproc)" > "$CACHE/make.log" 2>&1 \
            && make install > "$CACHE/install.log" 2>&1) \
            || { tail -30 "$CACHE"/*.log; die "CPython build (logs in $CACHE)"; }
        rm -rf "$CACHE/src"
    fi
fi
"$FT_PYTHON" -c 'import sys, sysconfig; sys.exit(not sysconfig.get_config_var("Py_GIL_DISABLED"))' \
    || die "$FT_PYTHON is not a free-threaded build"
echo "interpreter: $("$FT_PYTHON" -VV)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/convext-free-threaded.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step "venv with numpy, Cython and the test tools (binary wheels)"
"$FT_PYTHON" -m venv "$WORK/venv"
PY=$WORK/venv/bin/python
pip_q "$PY" -m pip install -q --only-binary=:all: numpy Cython setuptools pytest hypothesis \
    threadpoolctl
"$PY" -c "import numpy; print('numpy', numpy.__version__)"

step "convext built from this tree by the free-threaded interpreter"
mkdir "$WORK/src"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$WORK/src")
(cd "$WORK/src" && "$PY" -m pip install --no-build-isolation --no-deps -v . > "$WORK/build.log" 2>&1) \
    || { tail -40 "$WORK/build.log"; die "convext build"; }
"$PY" -W error -c "
import importlib, pkgutil, sys
import convext, convext._kernels as k
for m in pkgutil.iter_modules(k.__path__):
    importlib.import_module('convext._kernels.' + m.name)
print('convext', convext.__version__, 'from', convext.__file__)
print('GIL enabled after importing every kernel module:', sys._is_gil_enabled())
sys.exit(sys._is_gil_enabled())
" || die "importing convext turned the GIL on"

step "tests: $*"
# a pytest plugin that fails the run if anything turned the GIL on during it
cat > "$WORK/gil_stays_off.py" <<'EOF'
import sys


def pytest_sessionfinish(session, exitstatus):
    enabled = sys._is_gil_enabled()
    print(f"\nfree_threaded_check: GIL enabled at the end of the run: {enabled}")
    if enabled:
        session.exitstatus = 1
EOF
cd "$WORK/src"
PYTHONPATH="$WORK" "$PY" -m pytest -p gil_stays_off -q -p no:cacheprovider "$@" \
    || die "the tests under free-threaded CPython"
echo "free_threaded_check: passed in $(( $(date +%s) - t_start )) s"
