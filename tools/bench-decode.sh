#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Generation with and without the key/value cache on cpu and OpenCL (ctml bench --decode),
# beside PyTorch's cached and uncached loops on the same CPU (tools/torch_decode_bench.py,
# 2 threads), in one run on one machine: the tiny and small presets, random weights, batch 1,
# a prompt of 16 and 200 greedy tokens (past the tiny block of 64: window restarts included
# for ctml; the PyTorch cached loop keeps no window, so for tiny it decodes 48 tokens).
# Needs a built tree (BUILD_DIR, default build); the peer is skipped without torch.
set -euo pipefail
cd "$(dirname "$0")/.."
ctml=${BUILD_DIR:-build}/ctml
runs=${RUNS:-3}
have_torch=1
python3 -c "import torch" 2>/dev/null || have_torch=0
echo "== $(date -u +%F) $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for cfg in tiny small; do
  echo "== --config $cfg"
  for be in cpu opencl; do
    tokens=200
    [ "$cfg" = small ] && [ "$be" = cpu ] && tokens=20 # the reference's full window: seconds a token
    "$ctml" bench --decode --config "$cfg" --backend "$be" --prompt 16 --tokens "$tokens" \
      --runs "$runs" | tail -n +3
  done
  if [ "$have_torch" -eq 1 ]; then
    if [ "$cfg" = tiny ]; then targs="--layers 4 --heads 4 --width 128 --block 64"; t=48
    else targs="--layers 6 --heads 6 --width 384 --block 256"; t=200; fi
    python3 tools/torch_decode_bench.py $targs --prompt 16 --tokens $t --runs "$runs" 2>/dev/null
    python3 tools/torch_decode_bench.py $targs --prompt 16 --tokens $t --runs "$runs" --no-cache \
      2>/dev/null
  else
    echo "torch: not installed (pip install torch), peer skipped"
  fi
done
