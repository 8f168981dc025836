#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Python package, checked as a user gets it: a virtual environment under
# build-python/ (or $CTML_PYTHON_BUILD), numpy, pytest and scikit-build-core
# installed into it from PyPI, then `pip install ./python` (libctml built by
# CMake inside pip, without the CUDA backend unless CTML_PYTHON_CUDA=AUTO or ON:
# compiling it would take most of CI's time for this check), then pytest on
# python/tests with the installed package. Exits non-zero when anything fails,
# and when pytest collected no test (its exit 5).
# The book test compares with `ctml demo --json` when a ctml tool is found:
# $CTML_CLI, else build/ctml (CI builds it first), else `ctml` on PATH.
# CTML_PYTHON_OFFLINE=1 (a disposable machine without PyPI, such as the GPU machine):
# no virtual environment; the package is installed into python3's own environment,
# which must hold numpy, pytest and scikit-build-core; nothing is downloaded.
# Usage: tools/python-check.sh [pytest arguments...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CTML_PYTHON_BUILD:-$root/build-python}
cuda=${CTML_PYTHON_CUDA:-OFF}
jobs=$(nproc 2>/dev/null || echo 2)
step() { echo "== python-check: $*"; }
fail() { echo "python-check: FAILED: $*" >&2; exit 1; }
start=$SECONDS
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
venv=$dir/venv
py=$venv/bin/python

if [ -n "${CTML_PYTHON_OFFLINE:-}" ]; then
  py=$(command -v python3)
elif [ ! -x "$py" ]; then
  step "virtual environment $venv"
  python3 -m venv "$venv" ||
    fail "python3 -m venv (on Debian/Ubuntu: apt-get install python3-venv, see tools/install-deps.sh)"
fi
pip=("$py" -m pip --disable-pip-version-check --no-input)
if [ -z "${CTML_PYTHON_OFFLINE:-}" ]; then
  step "numpy, pytest, scikit-build-core into the environment"
  "${pip[@]}" install -q numpy pytest "scikit-build-core>=0.10" || fail "pip install of the test dependencies"
fi

step "pip install ./python (CMake, CTML_CUDA=$cuda, $jobs jobs)"
log=$dir/pip-install.log
# --no-build-isolation: the build uses the scikit-build-core just installed
# (nothing more to download); the build folder is kept for a faster rerun.
if ! CMAKE_BUILD_PARALLEL_LEVEL=$jobs "${pip[@]}" install -v --no-build-isolation --force-reinstall \
     --no-deps -Cbuild-dir="$dir/cmake" -Ccmake.define.CTML_CUDA="$cuda" "$root/python" >"$log" 2>&1; then
  tail -40 "$log" >&2
  fail "pip install ./python (log: $log)"
fi
grep -E "ctml: CUDA backend" "$log" | sed 's/^ *//' || true

# The installed package is what is tested, not python/src: run from elsewhere.
pkg=$(cd / && "$py" -c 'import ctml, os; print(os.path.dirname(ctml.__file__))') ||
  fail "import ctml from the installed package"
case $pkg in "$root"/python/*) fail "ctml imported from the source tree ($pkg), not the installed package" ;; esac
[ -f "$pkg/lib/libctml.so" ] || fail "no libctml.so in the installed package $pkg/lib"
[ ! -e "$pkg/include" ] || fail "headers were installed into the package ($pkg/include)"
step "installed: $pkg (libctml $(cd / && "$py" -c 'import ctml; print(ctml.version())'))"

if [ -z "${CTML_CLI:-}" ] && [ -x "$root/build/ctml" ]; then
  export CTML_CLI=$root/build/ctml
fi
step "pytest python/tests${CTML_CLI:+ (ctml tool: $CTML_CLI)}"
unset CTML_LIBRARY
set +e
(cd "$root/python/tests" && "$py" -m pytest -p no:cacheprovider -q -rs "$@" .)
rc=$?
set -e
[ $rc -ne 5 ] || fail "pytest collected no test (exit 5)"
[ $rc -eq 0 ] || fail "pytest exit $rc"
step "passed in $((SECONDS - start)) s"
