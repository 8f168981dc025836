#!/usr/bin/env bash
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
check() { # the run after damage: same numbers, every entry whole again
  local what=$1 out
  out=$("$ctml" demo --backend opencl --json)
  [ "$out" = "$ref" ] || { echo "$what: results changed: $out vs $ref"; exit 1; }
  for f in "${entries[@]}"; do
    [ "$(size "$f")" = "${sizes[$f]}" ] || { echo "$what: $f not rewritten"; exit 1; }
  done
  echo "$what: rebuilt, same results"
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
