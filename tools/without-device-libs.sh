#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command where the CUDA libraries (driver, runtime, cuBLAS) and the
# OpenCL ICD loader cannot be loaded. In a user and mount namespace (unshare
# -rm: no root needed) every file of theirs that the dynamic loader could find
# (ldconfig's cache, LD_LIBRARY_PATH, the standard directories and each --dir)
# is covered by /dev/null, so dlopen fails on it ("file too short"). Nothing
# outside the namespace changes.
# Usage: tools/without-device-libs.sh [--dir DIR]... [--] COMMAND [ARG...]
# Exit status: the command's; 77 when user namespaces are unavailable here (the
# skip code of ctest's SKIP_RETURN_CODE).
set -euo pipefail
dirs=()
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dirs+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '3,12p' "$0" >&2; exit 2; }

if ! command -v unshare >/dev/null || ! unshare -rm true 2>/dev/null; then
  echo "without-device-libs: skipped: no user and mount namespaces here (unshare -rm fails)" >&2
  exit 77
fi

patterns=(libcuda.so libcudart.so libcublas.so libcublasLt.so libOpenCL.so)
search=(/lib /usr/lib /lib64 /usr/lib64 /usr/local/lib)
for d in /lib/*-linux-gnu /usr/lib/*-linux-gnu; do [ -d "$d" ] && search+=("$d"); done
IFS=: read -r -a ldpath <<<"${LD_LIBRARY_PATH:-}"
search+=(${ldpath[@]+"${ldpath[@]}"} ${dirs[@]+"${dirs[@]}"})

files=()
add() { local f; f=$(readlink -f "$1" 2>/dev/null) && [ -f "$f" ] && files+=("$f"); return 0; }
while read -r path; do add "$path"; done < <(
  ldconfig -p 2>/dev/null | awk -v pats="${patterns[*]}" '
    BEGIN { n = split(pats, p, " ") }
    { for (i = 1; i <= n; i++) if (index($1, p[i]) == 1) { print $NF; break } }')
shopt -s nullglob
for d in "${search[@]}"; do
  if [ -z "$d" ] || [ ! -d "$d" ]; then continue; fi
  for p in "${patterns[@]}"; do
    for f in "$d/$p" "$d/$p".*; do add "$f"; done
  done
done
mapfile -t files < <(printf '%s\n' ${files[@]+"${files[@]}"} | sort -u)

# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare -rm bash -c '
  n=$1; shift
  for ((i = 0; i < n; i++)); do
    mount --bind /dev/null "$1" || { echo "without-device-libs: cannot cover $1" >&2; exit 2; }
    shift
  done
  echo "without-device-libs: $n library files covered" >&2
  exec "$@"' bash "${#files[@]}" ${files[@]+"${files[@]}"} "$@"
