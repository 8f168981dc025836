#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The GPT training step with and without the rewrite rules on cpu and OpenCL,
# beside PyTorch on the CPU (eager, fused attention), in one run on one
# machine: the configs of docs/benchmarks.md. Needs a built tree (BUILD_DIR,
# default build) and, for the peer, torch importable by python3 (skipped with
# a note otherwise). Output: each tool's own lines, in order.
set -euo pipefail
cd "$(dirname "$0")/.."
ctml=${BUILD_DIR:-build}/ctml
runs=${RUNS:-10}
configs=("--config micro"
         "--config tiny"
         "--config small --batch 4")
torch_args=("--layers 2 --heads 4 --width 64 --block 64 --batch 16"
            "--layers 4 --heads 4 --width 128 --block 64 --batch 16"
            "--layers 6 --heads 6 --width 384 --block 256 --batch 4")
have_torch=1
python3 -c "import torch" 2>/dev/null || have_torch=0
echo "== $(date -u +%F) $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for k in "${!configs[@]}"; do
  read -r -a cfg <<<"${configs[$k]}"
  echo "== ${configs[$k]}"
  backends=(cpu opencl)
  [ "$k" -eq 2 ] && backends=(opencl) # small: the reference takes seconds per step
  for be in "${backends[@]}"; do
    for rw in "" "--no-rewrite"; do
      "$ctml" bench "${cfg[@]}" --backend "$be" --runs "$runs" $rw | tail -2
    done
  done
  if [ "$have_torch" -eq 1 ]; then
    read -r -a targs <<<"${torch_args[$k]}"
    python3 tools/torch_gpt_bench.py --device cpu --fused-attention --runs "$runs" "${targs[@]}"
  else
    echo "torch: not installed (pip install torch), peer skipped"
  fi
done
