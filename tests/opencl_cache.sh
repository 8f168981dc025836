#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The OpenCL program cache: a first run writes entries; truncated, bit-flipped
# and garbage entries are rebuilt (never trusted) and rewritten; results do not
# change. Usage: opencl_cache.sh CTML_BINARY SCRATCH_DIR
set -euo pipefail
ctml=$1
dir=$2/opencl-cache-test
rm -rf "$dir" && mkdir -p "$dir"
export CTML_OPENCL_CACHE=$dir
ref=$("$ctml" demo --backend opencl --json)
shopt -s nullglob
entries=("$dir"/*.clbin)
[ ${#entries[@]} -ge 1 ] || { echo "no cache entry written in $dir"; exit 1; }
size() { stat -c %s "$1"; }
run_same() { # a run gives the reference numbers
  local out
  out=$("$ctml" demo --backend opencl --json)
  [ "$out" = "$ref" ] || { echo "$1: results changed: $out vs $ref"; exit 1; }
}
check() { # after damage: same numbers; each entry rewritten, and whole (the next run keeps it)
  local what=$1
  for f in "${entries[@]}"; do cp "$f" "$f.damaged"; done
  run_same "$what"
  for f in "${entries[@]}"; do
    cmp -s "$f" "$f.damaged" && { echo "$what: $f was not rewritten"; exit 1; }
    cp "$f" "$f.rebuilt"
  done
  run_same "$what (cached)"
  for f in "${entries[@]}"; do
    cmp -s "$f" "$f.rebuilt" || { echo "$what: the rewritten $f was not trusted"; exit 1; }
    rm -f "$f.damaged" "$f.rebuilt"
  done
  echo "$what: rebuilt, rewritten whole, same results"
}
declare -A sizes
for f in "${entries[@]}"; do sizes[$f]=$(size "$f"); done
for f in "${entries[@]}"; do truncate -s $(( ${sizes[$f]} / 2 )) "$f"; done
check truncated
for f in "${entries[@]}"; do
  printf '\xff\x00\xff' | dd of="$f" bs=1 seek=$(( ${sizes[$f]} / 2 )) conv=notrunc status=none
done
check bit-flipped
for f in "${entries[@]}"; do echo "not a program binary" >"$f"; done
check garbage
