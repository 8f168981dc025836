#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A save to a full filesystem leaves the previous checkpoint intact: the run
# directory is a small tmpfs (in a user and mount namespace, unshare -rm) that
# holds one checkpoint but not a second beside it. The run fails at its second
# save with a message, the checkpoint of the first save is byte for byte that
# of a run stopped there, and it loads. A resume that cannot write loss.csv
# fails before training and leaves the log as it was.
# Exit 77 (skipped) where user namespaces are not allowed.
# Usage: full_disk.sh CTML DATA
set -euo pipefail
ctml=$1 data=$2
if ! command -v unshare >/dev/null || ! unshare -rm true 2>/dev/null; then
  echo "full_disk: skipped: no user and mount namespaces here (unshare -rm fails)" >&2
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
run=(train --data "$data" --backend cpu --layers 2 --heads 2 --width 48 --block 32 --batch 4
     --steps 20 --save-every 10 --eval-every 10 --eval-batches 1)
"$ctml" "${run[@]}" --out ref --stop-after 10 >/dev/null
size=$(stat -c %s ref/checkpoint.safetensors)
# room for the checkpoint, the log and the plot, and half a checkpoint more
kb=$(( (size * 3 / 2 + 65536) / 1024 ))
mkdir -p fs
set +e
unshare -rm bash -c '
  mount -t tmpfs -o size='"$kb"'k tmpfs fs || exit 77
  "$0" "$@" --out fs/run >run.out 2>run.err
  echo $? >rc
  cp -a fs/run kept' "$ctml" "${run[@]}"
ns=$?
set -e
[ "$ns" = 77 ] && { echo "full_disk: skipped: cannot mount a tmpfs in the namespace" >&2; exit 77; }
rc=$(cat rc)
echo "full_disk: tmpfs of $kb KiB, checkpoint $size bytes; the run exited $rc: $(cat run.err)"
[ "$rc" = 1 ] || { echo "full_disk: expected exit 1" >&2; exit 1; }
grep -q "checkpoint not saved (the previous one, if any, is intact)" run.err ||
  { echo "full_disk: the message does not say the checkpoint was not saved" >&2; exit 1; }
cmp ref/checkpoint.safetensors kept/checkpoint.safetensors ||
  { echo "full_disk: the previous checkpoint changed" >&2; exit 1; }
[ ! -e kept/checkpoint.safetensors.tmp ] || { echo "full_disk: the temporary file was left" >&2; exit 1; }
"$ctml" sample --checkpoint kept --backend cpu --tokens 4 --temperature 0 >/dev/null 2>&1
echo "full_disk: the step-10 checkpoint is intact and loads"

# resume on a filesystem with no room for the rewritten loss.csv
cp kept/loss.csv loss.before
set +e
unshare -rm bash -c '
  mount -t tmpfs -o size='"$(( (size + 16384) / 1024 ))"'k tmpfs fs || exit 77
  cp -a kept fs/run && head -c $(( '"$size"' )) /dev/zero >fs/fill 2>/dev/null
  "$0" train --resume fs/run --backend cpu >run2.out 2>run2.err
  echo $? >rc2
  cp fs/run/loss.csv loss.after' "$ctml"
set -e
rc2=$(cat rc2)
echo "full_disk: the resume on a full filesystem exited $rc2: $(cat run2.err)"
[ "$rc2" = 1 ] || { echo "full_disk: expected exit 1" >&2; exit 1; }
cmp loss.before loss.after || { echo "full_disk: loss.csv changed" >&2; exit 1; }
echo "full_disk: loss.csv unchanged"
