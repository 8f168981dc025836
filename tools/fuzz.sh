#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets of tests/fuzz with clang (address, undefined and
# fuzzer instrumentation, in build-fuzz/ or $FUZZ_BUILD_DIR) and runs each for
# SECONDS (default 60) on its kept corpus tests/fuzz/corpus/<target>/, two at a
# time. New inputs go to a scratch corpus in the build folder, not the repo.
# Fails on any finding (crash, leak, timeout, out-of-memory, undefined
# behaviour); prints the executions of each target and keeps crashing inputs
# under build-fuzz/findings/.
# Usage: tools/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-2}
cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (bash tools/install-deps.sh installs clang)" >&2; exit 1; }
targets=(safetensors checkpoint text losslog args)
t0=$(date +%s)
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" \
  -DCTML_FUZZ=ON -DCTML_TESTS=OFF -DCTML_TOOLS=OFF -DCTML_BENCHMARKS=OFF -DCTML_INSTALL=OFF \
  -DCTML_CUDA=OFF -DCTML_OPENCL=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >"$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log" >&2; exit 1; }
echo "fuzz: built ${#targets[@]} targets in $(( $(date +%s) - t0 )) s; ${secs} s each, $jobs at a time"

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export TMPDIR=$PWD/$build/tmp
rm -rf "$build/findings"
mkdir -p "$TMPDIR" "$build/findings"
rm -f "$build"/fuzz_*.status "$build"/fuzz_*.log
run_one() {
  local t=$1 scratch=$build/corpus/$1
  rm -rf "$scratch"
  mkdir -p "$scratch"
  # -close_fd_mask=3: the targets' own messages (refused inputs) are not printed;
  # libFuzzer's report of a finding still is.
  "$build/tests/fuzz/fuzz_$t" "$scratch" "tests/fuzz/corpus/$t" -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -close_fd_mask=3 \
    -artifact_prefix="$build/findings/$t-" -print_final_stats=1 >"$build/fuzz_$t.log" 2>&1
}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 0.2; done
  (if run_one "$t"; then echo ok; else echo FINDING; fi >"$build/fuzz_$t.status") &
done
wait
fail=0
declare -A status
for t in "${targets[@]}"; do
  status[$t]=$(cat "$build/fuzz_$t.status")
  [ "${status[$t]}" = ok ] || fail=1
done
for t in "${targets[@]}"; do
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/fuzz_$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$build/fuzz_$t.log" | tail -1 | grep -o '[0-9]*' || echo '?')
  printf 'fuzz: %-12s %-8s %10s executions, coverage %s\n' "$t" "${status[$t]}" "$execs" "$cov"
  if [ "${status[$t]}" != ok ]; then
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$build/fuzz_$t.log" | head -8 | sed 's/^/    /'
  fi
done
rm -rf "$TMPDIR"
echo "fuzz: $(( $(date +%s) - t0 )) s in all"
exit $fail
