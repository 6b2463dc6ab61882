#!/usr/bin/env bash
# Lint and type checks, run by .ci/run after the tests (in the same virtual environment, where
# convext is installed): ruff (lint and format), cython-lint, mypy on a typed example of the
# public API, and mypy.stubtest of the compiled kernel modules against their .pyi stubs.
#
#   bash .github/scripts/lint_check.sh
#
# Installs the "lint" extra of pyproject.toml (pinned ruff, cython-lint, mypy) into the
# current environment, without reinstalling convext. Every check runs; the script fails if any
# failed. Configuration: [tool.ruff], [tool.cython-lint], [tool.mypy] in pyproject.toml.
set -uo pipefail
cd "$(dirname "$0")/../.."

python - <<'PY' > "${TMPDIR:-/tmp}/convext-lint-reqs.txt" || exit 1
try:
    import tomllib
except ImportError:  # Python 3.10
    import subprocess, sys
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tomli"], check=True)
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["lint"]))
PY
python -m pip install -q -r "${TMPDIR:-/tmp}/convext-lint-reqs.txt" || exit 1

failed=()
check() {
  echo "== $*"
  "$@" || failed+=("$*")
}

check ruff check src tests
check ruff format --check src tests
check cython-lint src
# the public API from a caller's side: py.typed, the annotations, the kernel stubs as installed
check python -m mypy --config-file pyproject.toml
# the stubs against the built modules (stubtest cannot read Cython fused functions' signatures:
# tests/typing/test_stubs.py compares those)
modules=()
for pyx in src/convext/_kernels/*.pyx; do
  modules+=("convext._kernels.$(basename "$pyx" .pyx)")
done
check python -m mypy.stubtest --allowlist tests/typing/stubtest_allowlist.txt "${modules[@]}"

if (( ${#failed[@]} )); then
  printf 'lint_check: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "lint_check: all checks passed"
