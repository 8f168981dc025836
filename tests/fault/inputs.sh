#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regression tests of 'ctml train' and 'ctml sample' under hostile or careless
# input, one case per run:
#   non_utf8_data_path  a data path that is not UTF-8 trains, saves and resumes
#   losslog_atomic      resume replaces loss.csv (a new file renamed over it),
#                       never truncates and rewrites it in place
#   long_paths          --out, --data and --resume paths far over 1 KiB are used whole
#   unbounded_data      /dev/zero, a FIFO, a directory and a file over --max-data
#                       are refused at once
#   fifo_checkpoint     a FIFO as the checkpoint, and as an HF export's config.json,
#                       is refused at once (opening it does not wait for a writer)
#   huge_model          --layers 64 --width 8192 is refused in under a second
#   cpu_never_opens_devices 'sample', 'bench' and 'demo' with --backend cpu load no
#                       OpenCL or CUDA library ('train': cli_cpu_loads_no_device_library)
# Usage: inputs.sh CTML DATA CASE
set -euo pipefail
ctml=$1 data=$2 case=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
small=(--backend cpu --layers 1 --heads 2 --width 16 --block 16 --batch 4 --eval-batches 1
       --eval-every 5)
fail() { echo "$case: $*" >&2; exit 1; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

case $case in
non_utf8_data_path)
  name=$'text-\xe9\xff.txt'
  cp "$data" "$name"
  "$ctml" train --data "$name" --steps 10 --out run "${small[@]}" >out.txt ||
    fail "training on a non-UTF-8 path failed: $(cat out.txt)"
  [ -f run/checkpoint.safetensors ] || fail "no checkpoint"
  # resuming without --data finds the file by the stored path, byte for byte
  "$ctml" train --resume run --steps 15 --backend cpu >out2.txt ||
    fail "resume by the stored path failed: $(cat out2.txt)"
  grep -q '^done: 15 steps' out2.txt || fail "resume did not finish"
  echo "$case: trained, saved and resumed from '$name' (bytes e9 ff)"
  ;;
losslog_atomic)
  "$ctml" train --data "$data" --steps 10 --save-every 5 --stop-after 7 --out run "${small[@]}" >/dev/null
  ln run/loss.csv before.csv # a second name of the old file
  cp run/loss.csv before.copy
  "$ctml" train --resume run --backend cpu >/dev/null
  cmp before.csv before.copy || fail "the old loss.csv was rewritten in place"
  [ "$(stat -c %i before.csv)" != "$(stat -c %i run/loss.csv)" ] ||
    fail "loss.csv is the same file: it was rewritten in place, not replaced"
  [ "$(tail -n +2 run/loss.csv | cut -d, -f1 | tr '\n' ' ')" = "1 2 3 4 5 6 7 8 9 10 " ] ||
    fail "loss.csv steps after resume: $(cut -d, -f1 run/loss.csv | tr '\n' ' ')"
  echo "$case: the resumed run replaced loss.csv; the old file is untouched"
  ;;
long_paths)
  seg=$(printf 'p%.0s' $(seq 200))
  long=$seg/$seg/$seg/$seg/$seg/$seg # 1205 bytes
  mkdir -p "$long/data"
  cp "$data" "$long/data/text.txt"
  "$ctml" train --data "$PWD/$long/data/text.txt" --steps 6 --out "$long/run" "${small[@]}" >out.txt ||
    fail "train with long paths failed: $(cat out.txt)"
  [ -f "$long/run/checkpoint.safetensors" ] && [ -f "$long/run/loss.csv" ] &&
    [ -f "$long/run/loss.svg" ] || fail "the run's files are not in the --out directory"
  [ -z "$(find . -maxdepth 1 -newer "$long/data/text.txt" ! -name . ! -name out.txt ! -name "$seg")" ] ||
    fail "files were written outside --out: $(ls)"
  # --resume with the long path, without --data: the stored data path is whole
  "$ctml" train --resume "$PWD/$long/run" --steps 8 --backend cpu >out2.txt ||
    fail "resume with a long path failed: $(cat out2.txt)"
  "$ctml" sample --checkpoint "$PWD/$long/run/checkpoint.safetensors" --backend cpu --tokens 4 \
    >/dev/null 2>&1 || fail "sample with a long --checkpoint path failed"
  echo "$case: --out, --data, --resume and --checkpoint of ${#long}+ bytes used whole"
  ;;
unbounded_data)
  mkfifo fifo
  mkdir dir
  head -c 5000 "$data" >five-k.txt
  for d in /dev/zero fifo dir five-k.txt; do
    extra=()
    [ "$d" = five-k.txt ] && extra=(--max-data 4K)
    t0=$(ms)
    set +e
    timeout 10 "$ctml" train --data "$d" "${extra[@]}" --steps 2 --out run "${small[@]}" >out.txt 2>err.txt
    rc=$?
    set -e
    dt=$(( $(ms) - t0 ))
    [ "$rc" = 1 ] || fail "--data $d: exit $rc, expected 1 ($(cat err.txt))"
    [ "$dt" -lt 1000 ] || fail "--data $d: refused after $dt ms"
    echo "$case: --data $d ${extra[*]}: refused in $dt ms: $(cat err.txt)"
  done
  ;;
fifo_checkpoint)
  mkfifo ck.safetensors
  "$ctml" train --data "$data" --steps 2 --out run "${small[@]}" >/dev/null
  "$ctml" export --hf hf --checkpoint run >/dev/null
  rm hf/config.json
  mkfifo hf/config.json
  for ck in ck.safetensors hf; do
    t0=$(ms)
    set +e
    timeout 10 "$ctml" sample --checkpoint "$ck" --backend cpu --tokens 2 >out.txt 2>err.txt
    rc=$?
    set -e
    dt=$(( $(ms) - t0 ))
    [ "$rc" = 1 ] || fail "--checkpoint $ck: exit $rc, expected 1 ($(cat err.txt))"
    [ "$dt" -lt 1000 ] || fail "--checkpoint $ck: refused after $dt ms"
    echo "$case: --checkpoint $ck: refused in $dt ms: $(cat err.txt)"
  done
  ;;
huge_model)
  t0=$(ms)
  set +e
  "$ctml" train --data "$data" --layers 64 --width 8192 --out run >out.txt 2>err.txt
  rc=$?
  set -e
  dt=$(( $(ms) - t0 ))
  [ "$rc" = 1 ] || fail "exit $rc, expected 1"
  grep -q "MiB of .*memory" err.txt || fail "the message names no estimate: $(cat err.txt)"
  [ "$dt" -lt 1000 ] || fail "refused after $dt ms"
  [ ! -e run ] || fail "the run directory was created"
  set +e
  "$ctml" train --data "$data" --steps 2 --max-memory 64K --out run2 "${small[@]}" >out.txt 2>err2.txt
  rc2=$?
  set -e
  [ "$rc2" = 1 ] && grep -q -- "--max-memory" err2.txt || fail "--max-memory 64K: exit $rc2: $(cat err2.txt)"
  echo "$case: refused in $dt ms: $(cat err.txt)"
  echo "$case: $(cat err2.txt)"
  ;;
cpu_never_opens_devices)
  "$ctml" train --data "$data" --steps 2 --out run "${small[@]}" >/dev/null
  for cmd in "sample --checkpoint run --backend cpu --tokens 4" \
             "bench --backend cpu --config micro --warmup-steps 0 --runs 1" \
             "bench --decode --backend cpu --config micro --tokens 4" "demo --backend cpu"; do
    read -r -a args <<<"$cmd"
    LD_DEBUG=files "$ctml" "${args[@]}" >out.txt 2>&1 || fail "$cmd failed: $(tail -3 out.txt)"
    if grep -E "file=lib(OpenCL|cublas|cuda)[.]" out.txt; then fail "$cmd loaded a device library"; fi
  done
  echo "$case: sample, bench and demo with --backend cpu loaded no device library"
  ;;
*)
  fail "unknown case"
  ;;
esac
