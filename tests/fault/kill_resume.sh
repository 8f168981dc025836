#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kill -9 at random points of a short training run on cpu, some of them inside
# a checkpoint save (the moment its temporary file appears). After every kill
# the last checkpoint loads ('ctml sample'), the run resumes from it, and the
# checkpoint at the end is byte for byte the one of an uninterrupted run.
# Usage: kill_resume.sh CTML DATA [KILLS] [SEED]
set -euo pipefail
ctml=$1 data=$2 kills=${3:-8} seed=${4:-$RANDOM}
RANDOM=$seed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
run=(train --data "$data" --backend cpu --layers 2 --heads 2 --width 48 --block 32 --batch 8
     --steps 120 --save-every 6 --eval-every 40 --eval-batches 2 --log-every 1000)
echo "kill_resume: seed $seed, $kills kills"

t0=$(date +%s%N)
"$ctml" "${run[@]}" --out ref >/dev/null
ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "kill_resume: the uninterrupted run takes $ref_ms ms"

# The run in dir 'k': started afresh while it has no checkpoint, resumed after.
start() {
  if [ -f k/checkpoint.safetensors ]; then
    "$ctml" train --resume k --backend cpu >k.log 2>&1 &
  else
    "$ctml" "${run[@]}" --out k >k.log 2>&1 &
  fi
  pid=$!
}
in_save=0 at_random=0 done_early=0
for ((i = 0; i < kills; i++)); do
  start
  if ((i % 2)); then # inside a save: as soon as the temporary checkpoint exists
    for ((w = 0; w < 20000; w++)); do
      [ -e k/checkpoint.safetensors.tmp ] && break
      kill -0 "$pid" 2>/dev/null || break
    done
    kind=save
  else # at a random moment
    ms=$((RANDOM % (ref_ms / 3 + 1)))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kind=random
  fi
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    if [ "$kind" = save ] && [ -e k/checkpoint.safetensors.tmp ]; then in_save=$((in_save + 1)); else at_random=$((at_random + 1)); fi
  else
    wait "$pid" || { cat k.log; echo "kill_resume: the run failed" >&2; exit 1; }
    done_early=$((done_early + 1))
  fi
  if [ -f k/checkpoint.safetensors ]; then
    "$ctml" sample --checkpoint k --backend cpu --tokens 4 --temperature 0 >/dev/null 2>k.sample ||
      { cat k.sample; echo "kill_resume: after kill $i ($kind) the checkpoint does not load" >&2; exit 1; }
  fi
  if grep -q '^done:' k.log 2>/dev/null; then break; fi
done
# to the end
if ! grep -q '^done:' k.log 2>/dev/null; then
  start
  wait "$pid" || { cat k.log; echo "kill_resume: the final resume failed" >&2; exit 1; }
fi
echo "kill_resume: $in_save kills inside a save, $at_random elsewhere, $done_early runs finished first"
if ! cmp ref/checkpoint.safetensors k/checkpoint.safetensors; then
  echo "kill_resume: the resumed run's checkpoint differs from the uninterrupted run's (seed $seed)" >&2
  exit 1
fi
# the loss log has one row per step
rows=$(tail -n +2 k/loss.csv | cut -d, -f1 | tr '\n' ' ')
want=$(seq 1 120 | tr '\n' ' ')
[ "$rows" = "$want" ] || { echo "kill_resume: loss.csv steps are not 1..120: $rows" >&2; exit 1; }
echo "kill_resume: checkpoint identical to the uninterrupted run's; loss.csv complete"
