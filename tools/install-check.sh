#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a user of an installed ctml gets, checked from a built build folder:
#  - `cmake --install` to a temporary prefix: headers, libctml, the tool, the
#    docs, the CMake package and ctml.pc are there;
#  - tests/install/consumer.c built against the prefix with find_package(ctml)
#    and with pkg-config (`pkg-config --static` for a static libctml), and run;
#  - `ctml train` (a short run) from the prefix;
#  - a shared libctml: a versioned SONAME, and `nm -D` shows exactly the public
#    ct_ declarations of the installed headers (no ct__ internals, nothing else);
#  - the installed tool with the CUDA libraries and the OpenCL ICD loader
#    unreachable (tools/without-device-libs.sh): `ctml devices` names the device
#    backends absent and exits 0, `ctml train --backend cpu` exits 0;
#  - with --subproject, ctml added to a project by add_subdirectory (CPU only):
#    the alias ctml::ctml links, and no test, tool, benchmark or build type leaks.
# Usage: tools/install-check.sh BUILD_DIR [--subproject]
# CTML_REQUIRE_NAMESPACES=1 makes a missing user namespace a failure (CI sets it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 1 ] || [ ! -d "$1" ]; then sed -n '3,18p' "$0" >&2; exit 2; fi
build=$(cd "$1" && pwd)
subproject=0
[ "${2:-}" = --subproject ] && subproject=1
work=$(mktemp -d "${TMPDIR:-/tmp}/ctml-install-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
step() { echo "== install-check ($(basename "$build")): $*"; }
fail() { echo "install-check: FAILED: $*" >&2; exit 1; }
# quiet LOG CMD...: runs CMD with its output in LOG, shown when it fails.
quiet() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; fail "$*"; }
}

step "install to $prefix"
quiet "$work/install.log" cmake --install "$build" --prefix "$prefix"
lib=$(find "$prefix" -name 'libctml.so' -o -name 'libctml.a' | head -1)
[ -n "$lib" ] || fail "no libctml under $prefix"
libdir=$(dirname "$lib")
kind=static
[[ $lib == *.so ]] && kind=shared
for f in include/ctml/ctml.h include/ctml/version.h include/ctml/export.h bin/ctml \
         share/doc/ctml/LICENSE share/doc/ctml/README.md share/doc/ctml/CHANGELOG.md; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done
cfg=$(find "$prefix" -name ctmlConfig.cmake | head -1)
pc=$(find "$prefix" -name ctml.pc | head -1)
if [ -z "$cfg" ] || [ ! -f "$(dirname "$cfg")/ctmlConfigVersion.cmake" ]; then
  fail "no CMake package"
fi
[ -n "$pc" ] || fail "no ctml.pc"
echo "libctml: $kind ($lib)"

step "consumer with find_package(ctml)"
quiet "$work/cmake-consumer.log" cmake -S "$root/tests/install" -B "$work/cmake-consumer" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
quiet "$work/cmake-consumer-build.log" cmake --build "$work/cmake-consumer"
"$work/cmake-consumer/consumer" || fail "the find_package consumer"

step "consumer with pkg-config ($kind)"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
if [ $kind = static ]; then
  flags=$(pkg-config --static --cflags --libs ctml)
else
  flags="$(pkg-config --cflags --libs ctml) -Wl,-rpath,$libdir"
fi
echo "cc -std=c11 consumer.c $flags"
# shellcheck disable=SC2086 # the flags split on spaces
cc -std=c11 -Wall -Werror "$root/tests/install/consumer.c" -o "$work/pc-consumer" $flags ||
  fail "the pkg-config consumer does not build"
"$work/pc-consumer" || fail "the pkg-config consumer"
needed=$(readelf -d "$work/pc-consumer" | grep NEEDED || true)
if [ $kind = static ]; then
  ! grep -q libctml <<<"$needed" || fail "the static consumer needs a shared libctml"
else
  grep -q libctml <<<"$needed" || fail "the shared consumer does not need libctml.so"
fi

step "ctml train from the prefix"
(cd "$work" && "$prefix/bin/ctml" train --layers 1 --heads 2 --width 16 --block 16 --batch 2 \
   --steps 2 --backend cpu --data "$root/tests/data/gpl-3.txt" --out run) ||
  fail "ctml train from $prefix/bin"
[ -f "$work/run/checkpoint.safetensors" ] || fail "ctml train wrote no checkpoint"

if [ $kind = shared ]; then
  step "exported symbols of $(basename "$lib")"
  soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [[ $soname =~ ^libctml\.so\.[0-9] ]] || fail "SONAME '$soname' has no version"
  nm -D --defined-only "$lib" | awk '{ print $NF }' | sort -u >"$work/exported"
  # The public declarations: every CT_API name of the installed headers.
  sed -n 's/^CT_API .*\b\(ct_[a-z0-9_]*\) *[[(].*/\1/p' "$prefix"/include/ctml/*.h | sort -u \
    >"$work/public"
  if ! diff "$work/public" "$work/exported" >"$work/symbols.diff"; then
    sed 's/^</  declared, not exported:/; s/^>/  exported, not declared:/' "$work/symbols.diff" |
      grep exported >&2 || true
    fail "nm -D of $lib differs from the public ct_ declarations"
  fi
  echo "SONAME $soname; $(wc -l <"$work/public") symbols exported, all public ct_ declarations"
fi

step "the installed ctml with the CUDA and OpenCL libraries unreachable"
rc=0
bash "$root/tools/without-device-libs.sh" -- "$prefix/bin/ctml" devices >"$work/devices.txt" || rc=$?
if [ $rc = 77 ]; then
  [ "${CTML_REQUIRE_NAMESPACES:-0}" = 1 ] && fail "no user namespaces here (unshare -rm)"
  echo "skipped: no user and mount namespaces here"
else
  cat "$work/devices.txt"
  [ $rc = 0 ] || fail "ctml devices exits $rc"
  grep -q '^cpu  *present' "$work/devices.txt" || fail "ctml devices: cpu is not present"
  for be in cuda opencl; do
    if grep -q "^$be  *present" "$work/devices.txt"; then fail "ctml devices: $be is present"; fi
    grep -q "^$be  *absent  *." "$work/devices.txt" || fail "ctml devices: $be has no reason"
  done
  (cd "$work" && bash "$root/tools/without-device-libs.sh" -- "$prefix/bin/ctml" train \
     --layers 1 --heads 2 --width 16 --block 16 --batch 2 --steps 2 --backend cpu \
     --data "$root/tests/data/gpl-3.txt" --out run-hidden) || fail "ctml train --backend cpu"
fi

if [ $subproject = 1 ]; then
  step "ctml as a subproject (add_subdirectory)"
  sub=$work/subproject
  quiet "$work/subproject.log" cmake -S "$root/tests/install/subproject" -B "$sub" \
    -DCTML_SOURCE_DIR="$root" -DCTML_CUDA=OFF -DCTML_OPENCL=OFF
  ! grep -q '^CMAKE_BUILD_TYPE:[A-Z]*=.' "$sub/CMakeCache.txt" ||
    fail "ctml set CMAKE_BUILD_TYPE in the parent's cache: $(grep '^CMAKE_BUILD_TYPE' "$sub/CMakeCache.txt")"
  quiet "$work/subproject-build.log" cmake --build "$sub" -j"$(nproc)"
  "$sub/consumer" || fail "the subproject consumer"
  # (CMakeFiles/ holds configure-time probes such as FindMPI's test_mpi_C.bin)
  leaked=$(find "$sub" -path '*/CMakeFiles' -prune -o -type f -perm -u+x \( -name 'test_*' \
             -o -name ctml -o -name 'bench_*' -o -name 'ctml_*' \) -print | head -5)
  [ -z "$leaked" ] || fail "the subproject built ctml's tests or tools: $leaked"
  [ ! -f "$sub/ctml/CTestTestfile.cmake" ] || fail "the subproject registered ctml's tests"
fi
step "passed"
