#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what ctml needs to build and test on Debian/Ubuntu: a C compiler,
# CMake, pkg-config, cmocka, and OpenCL (headers, the ICD loader and PoCL, an
# OpenCL implementation on the CPU), Debian's 'fortunes' (the default text
# corpus of 'ctml train'), python3-venv (tools/python-check.sh makes a virtual
# environment for the Python package), python3-numpy (tests/hf_export_check.py)
# clang with its libFuzzer runtime (tools/fuzz.sh and the sanitizer stage's
# clang pass) and Open MPI (the data-parallel collective and its tests). Packages already present are left alone.
# With CTML_INTEL_OPENCL=1 (CI sets it), also Intel's CPU OpenCL runtime, the
# second implementation the OpenCL tests run on (about 230 MB from PyPI), into
# .deps/intel-opencl, and .deps/ocl-vendors, an ICD vendors directory naming it
# beside the system's drivers (use it with OCL_ICD_VENDORS=$PWD/.deps/ocl-vendors);
# see docs/opencl-platforms.md. A failed install of it exits non-zero.
# The CUDA backend is built when the CUDA toolkit (nvcc, cuBLAS) is installed;
# it is not a Debian package here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
want_intel=${CTML_INTEL_OPENCL:-0}
[ "$(uname -m)" = x86_64 ] || want_intel=0 # the runtime's wheels are x86_64 only

pkgs=(gcc make cmake pkg-config libcmocka-dev ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd
      fortunes python3-venv python3-numpy clang libclang-rt-dev openmpi-bin libopenmpi-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "$want_intel" != 0 ] && ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3-pip)
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all present (${pkgs[*]})"
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ "$want_intel" = 0 ]; then
  echo "install-deps: Intel's OpenCL runtime not installed (CTML_INTEL_OPENCL=1 installs it, on x86_64)"
  exit 0
fi

# intel-opencl-rt holds libintelocl.so and its compiler; it needs TBB (a
# declared dependency) and the compiler runtime libimf, libsvml, libirng and
# libintlc (intel-cmplr-lib-rt, not declared). Its RUNPATH is $ORIGIN, so all
# of them in one lib/ need no LD_LIBRARY_PATH.
intel_version=2026.2.0
deps=$root/.deps
prefix=$deps/intel-opencl
lib=$prefix/lib/libintelocl.so
stamp=$prefix/.installed-$intel_version
vendors=$deps/ocl-vendors
mkdir -p "$deps"
[ -f "$deps/.gitignore" ] || echo '*' >"$deps/.gitignore"

fail() {
  echo "install-deps: FAILED: $*" >&2
  echo "install-deps: the OpenCL tests on Intel's runtime (test_cross_opencl_intel) need it;" \
       "without CTML_INTEL_OPENCL=1 this part is skipped" >&2
  exit 1
}

if [ -f "$stamp" ] && [ -f "$lib" ]; then
  echo "install-deps: Intel's OpenCL runtime $intel_version present in $prefix"
else
  echo "install-deps: installing Intel's OpenCL runtime $intel_version from PyPI" \
       "(intel-opencl-rt, about 230 MB to download) into $prefix"
  tmp=$prefix.partial
  rm -rf "$tmp"
  python3 -m pip install --quiet --disable-pip-version-check --no-cache-dir --root-user-action=ignore \
    --no-warn-script-location --prefix "$tmp" \
    "intel-opencl-rt==$intel_version" "intel-cmplr-lib-rt==$intel_version" ||
    fail "pip install of intel-opencl-rt==$intel_version into $tmp"
  [ -f "$tmp/lib/libintelocl.so" ] || fail "the wheel installed no lib/libintelocl.so under $tmp"
  # The wheels carry each library's versioned names as full copies: link them instead.
  for f in "$tmp"/lib/*.so "$tmp"/lib/*.so.*; do
    if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
    for g in "$f".*; do
      if [ -f "$g" ] && cmp -s "$f" "$g"; then
        ln -sf "$(basename "$g")" "$f"
        break
      fi
    done
  done
  unresolved=$(ldd "$tmp/lib/libintelocl.so" | grep 'not found' || true)
  [ -z "$unresolved" ] || fail "libintelocl.so has unresolved libraries:"$'\n'"$unresolved"
  rm -rf "$prefix"
  mv "$tmp" "$prefix"
  touch "$stamp"
  echo "install-deps: Intel's OpenCL runtime installed ($(du -sh "$prefix" | cut -f1))"
fi

# The vendors directory: the system's ICD files (PoCL's, and any GPU driver's)
# and intel.icd, the absolute path of libintelocl.so.
rm -rf "$vendors.partial"
mkdir -p "$vendors.partial"
shopt -s nullglob
for icd in /etc/OpenCL/vendors/*.icd; do
  cp "$icd" "$vendors.partial/"
done
echo "$lib" >"$vendors.partial/intel.icd"
rm -rf "$vendors"
mv "$vendors.partial" "$vendors"
echo "install-deps: OpenCL vendors directory $vendors ($(cd "$vendors" && echo *.icd))"
