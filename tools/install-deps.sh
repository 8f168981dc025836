#!/usr/bin/env bash
# Installs what ctml needs to build and test on Debian/Ubuntu: a C compiler,
# CMake, pkg-config, cmocka, and OpenCL (headers, the ICD loader and PoCL, an
# OpenCL implementation on the CPU), and Debian's 'fortunes' (the default text
# corpus of 'ctml train'). Packages already present are left alone.
# The CUDA backend is built when the CUDA toolkit (nvcc, cuBLAS) is installed;
# it is not a Debian package here.
set -euo pipefail
pkgs=(gcc make cmake pkg-config libcmocka-dev ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd
      fortunes)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all present (${pkgs[*]})"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
