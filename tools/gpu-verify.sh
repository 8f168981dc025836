#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What the CUDA and OpenCL issues ask to verify on a GPU machine, in one command,
# staged most important first and kept inside a time budget:
#   1. build for sm_90; ctml devices; the cross-backend suite on cuda (every
#      generator both directions against cpu_ref, the GPT node by node); the
#      decoder and ct_check suites; the demo on cuda;
#   2. the GPT's loss, gradients and AdamW step on cuda against PyTorch in float64;
#      ctml check on the small config, fused vs unfused, the wide-head path;
#   3. speed: ctml bench on the small step (eager, graph, unfused, tf32) beside
#      PyTorch on the same GPU, and decoding with and without the cache;
#   4. the whole ctest suite except the cudasim runs; NVIDIA's OpenCL (cross
#      suite, demo, GPT reference); train + sample the small config;
#      compute-sanitizer over the cuda cross suite.
# A step that would start after VERIFY_BUDGET seconds (default 400) is recorded
# as skipped; each step has its own time limit. VERIFY_STEPS, an extended regular
# expression, runs only the steps whose names match it (configure and build always run). On the device machine, from the
# project root, after preparing .device once here (bash ../shared/device/prepare.sh):
#   . .device/env.sh && bash tools/gpu-verify.sh
# $OUT (or ./gpu-verify-out) receives summary.txt (one line per step),
# machine.txt and logs.tgz (every step's log); the exit status is non-zero when
# any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-verify-out}
build=${BUILD_DIR:-build-gpu}
budget=${VERIFY_BUDGET:-400}
logs="$build/verify-logs"
mkdir -p "$out" "$logs"
export POCL_CACHE_DIR="$PWD/$build/pocl-cache" CTML_OPENCL_CACHE="$PWD/$build/opencl-cache"
export PYTHONUNBUFFERED=1
failed=0
step() { # step NAME LIMIT_S COMMAND...: runs, times and records one step
  local name=$1 limit=$2; shift 2
  if [ -n "${VERIFY_STEPS:-}" ] && [ "$name" != configure ] && [ "$name" != build ] &&
     ! [[ $name =~ ^($VERIFY_STEPS)$ ]]; then
    return 0
  fi
  if [ "$SECONDS" -ge "$budget" ]; then
    printf '%-28s skipped (budget %ss spent)\n' "$name" "$budget" | tee -a "$out/summary.txt"
    return 0
  fi
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  printf '%-28s rc=%-3s %4ss\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$out/summary.txt"
  [ "$rc" -eq 0 ] || { failed=1; tail -n 15 "$logs/$name.log" | sed 's/^/    /'; }
  tar czf "$out/logs.tgz" -C "$logs" . 2>/dev/null
  return 0
}
: >"$out/summary.txt"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nvcc --version | tail -1; } \
  >"$out/machine.txt" 2>&1
cat "$out/machine.txt"
gen=; command -v ninja >/dev/null && gen="-G Ninja"
ctml="$build/ctml"
# 1. Correctness on the GPU.
step configure 120 cmake -S . -B "$build" $gen -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DCTML_CUDA=ON
step build 300 cmake --build "$build" -j"$(nproc)"
step devices 30 "$ctml" devices
step test_cross_cuda 180 "$build/tests/test_cross" cuda
step test_decode 120 "$build/tests/test_decode"
step test_check 120 "$build/tests/test_check"
step demo_cuda 30 "$ctml" demo --backend cuda --json
# 2. The GPT against PyTorch in float64, and ctml check on the real configs.
for init in own perturbed; do
  flag=; [ "$init" = perturbed ] && flag=--perturb
  step "gpt_dump_cuda_$init" 60 "$build/tools/ctml_gpt_dump" "$build/gptdump-cuda-$init" --backend cuda $flag
  step "gpt_reference_cuda_$init" 90 python3 tools/gpt_reference.py "$build/gptdump-cuda-$init"
done
step check_cuda_small 90 "$ctml" check --backend cuda --config small --batch 2
step check_rewrite_cuda 60 "$ctml" check --backend cuda --layers 2 --width 64 --block 32 --batch 4 --rewrite
step check_cuda_wide_head 60 "$ctml" check --backend cuda --layers 1 --heads 1 --width 1024 --block 72 --batch 2
# NCCL data-parallel path with one rank (no launcher, no MPI): the same losses as
# without it (docs/scaling.md).
step nccl_one_rank 120 bash -c 'set -e; rm -rf "$1/run-nccl" "$1/run-none"
  for c in nccl none; do "$0" train --config small --backend cuda --collective $c --steps 30 \
    --eval-every 30 --data tests/data/gpl-3.txt --out "$1/run-$c" | grep -E "data-parallel|done"; done
  paste -d, "$1/run-nccl/loss.csv" "$1/run-none/loss.csv" | awk -F, "NR > 1 { d = \$2 - \$7;
    if (d < 0) d = -d; if (d > m) m = d } END { print \"max train loss difference\", m + 0; exit !(m <= 1e-5) }"' \
  "$ctml" "$build"
# 3. Speed, with PyTorch on the same GPU in the same run.
step bench_small 60 "$ctml" bench --config small --backend cuda --runs 20
step bench_small_graph 60 "$ctml" bench --config small --backend cuda --graph --runs 20
step bench_small_unfused 60 "$ctml" bench --config small --backend cuda --graph --no-rewrite --runs 20
step torch_small 90 python3 tools/torch_gpt_bench.py --runs 20
step torch_small_fused 90 python3 tools/torch_gpt_bench.py --runs 20 --fused-attention
step bench_decode_small 90 "$ctml" bench --decode --config small --backend cuda --tokens 200
step bench_small_trace 90 "$ctml" bench --config small --backend cuda --runs 3 --trace
step torch_decode_small 60 python3 tools/torch_decode_bench.py --device cuda
step torch_decode_small_nocache 90 python3 tools/torch_decode_bench.py --device cuda --no-cache
step bench_small_tf32 60 "$ctml" bench --config small --backend cuda --graph --tf32 --runs 20
step torch_small_tf32 90 python3 tools/torch_gpt_bench.py --runs 20 --fused-attention --tf32
# The Python package with the CUDA backend, its suite on the GPU (no PyPI there).
step python_cuda 240 env CTML_PYTHON_OFFLINE=1 CTML_PYTHON_CUDA=ON CTML_PYTHON_BUILD="$build/python" \
  CMAKE_ARGS=-DCMAKE_CUDA_ARCHITECTURES=90 CTML_CLI="$PWD/$ctml" bash tools/python-check.sh
# 4. Everything else.
step ctest 240 ctest --test-dir "$build" --output-on-failure --no-tests=error -j8 -E '_sim|cudasim'
step test_cross_opencl 180 "$build/tests/test_cross" opencl
step demo_opencl 30 "$ctml" demo --backend opencl --json
step gpt_dump_opencl_own 60 "$build/tools/ctml_gpt_dump" "$build/gptdump-opencl-own" --backend opencl
step gpt_reference_opencl_own 90 python3 tools/gpt_reference.py "$build/gptdump-opencl-own"
step check_opencl_tiny 120 "$ctml" check --backend opencl --config tiny
step sanitizer_memcheck 240 compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 99 \
  "$build/tests/test_cross" cuda
# The memory estimate against the GPU's own memory: activations far past 141 GiB with
# parameters that fit the host, refused before anything is allocated.
step budget_device_cuda 30 bash -c '"$0" train --backend cuda --layers 12 --heads 12 --width 768 \
  --block 1024 --batch 4096 --data tests/data/gpl-3.txt --out "$1/run-huge" 2>&1 |
  grep "of device memory, more than the .* of the device.s memory"' "$ctml" "$build"
step train_small_cuda 180 "$ctml" train --config small --backend cuda \
  --data tests/data/gpl-3.txt --steps 300 --eval-every 100 --out "$build/run-small"
step eval_small_cuda 60 "$ctml" eval --checkpoint "$build/run-small" --data tests/data/gpl-3.txt --backend cuda --json
step train_small_cuda_graph_tf32 90 "$ctml" train --config small --backend cuda --graph --tf32 \
  --data tests/data/gpl-3.txt --steps 100 --eval-every 50 --out "$build/run-small-graph"
step sample_small_cuda 60 "$ctml" sample --checkpoint "$build/run-small" --backend cuda --prompt "The " --tokens 200
step torch_small_compile 180 python3 tools/torch_gpt_bench.py --runs 20 --fused-attention --compile
for tool in racecheck synccheck initcheck; do
  step "sanitizer_$tool" 240 compute-sanitizer --tool "$tool" --report-api-errors no --error-exitcode 99 \
    "$build/tests/test_cross" cuda
done
echo "--- summary (${SECONDS}s)"; cat "$out/summary.txt"
exit "$failed"
