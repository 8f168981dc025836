#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Mutation check of cuda/ on cudasim: plants realistic bugs in cuda/, one at a
# time, in a copy of the tree, and reports which ones the simulator suite
# (test_cross_sim cuda, in the schedules of tests/cudasim/CMakeLists.txt)
# catches. The caller's working tree is never written.
#
# Each suite run stops at its first failing test (CMOCKA_TEST_ABORT), so "caught
# by" names the first test that caught a mutant.
#
# Usage: tools/cuda-mutants.sh [-k] [-l] [ID...]
#   -k     keep the work folder (copy, build, logs) and print its path
#   -l     list the mutants (patterns checked) and exit
#   ID...  run only these mutants (default: all)
# Environment: CTML_MUT_JOBS (build jobs, default 2), CTML_MUT_TIMEOUT (seconds
# per suite run, default 120), TMPDIR.
# Exit status: 0 when every mutant is caught; 1 when one survives or does not
# compile; 2 on a setup error (pattern not found exactly once, baseline fails).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${CTML_MUT_JOBS:-2}
tmo=${CTML_MUT_TIMEOUT:-120}
keep=0 list=0
while getopts kl opt; do
  case $opt in
    k) keep=1 ;;
    l) list=1 ;;
    *) sed -n '3,17p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

die() { echo "cuda-mutants: $*" >&2; exit 2; }
# die_log LOG MESSAGE: the end of LOG, then die.
die_log() { tail -30 "$1" >&2; die "$2"; }

# ---- the mutants -------------------------------------------------------------
# mut ID FILE DESCRIPTION PATTERN REPLACEMENT: PATTERN must occur exactly once.
K=cuda/cuda_kernels.cu B=cuda/cuda_backend.c
ids=() files=() descs=() pats=() reps=()
mut() { ids+=("$1"); files+=("$2"); descs+=("$3"); pats+=("$4"); reps+=("$5"); }

mut M01 $K "ct__row_reduce: barrier after each tree step removed" \
  $'b > a ? b : a) : a + b;\n    }\n    __syncthreads();\n  }\n' \
  $'b > a ? b : a) : a + b;\n    }\n  }\n'
mut M02 $K "ct__row_reduce: barrier after reading row[0] removed (next call overwrites it)" \
  $'  double r = row[0];\n  __syncthreads();\n' \
  $'  double r = row[0];\n'
mut M03 $K "ct__block_sum: barrier after sh[t] = v removed" \
  $'  sh[t] = v;\n  __syncthreads();\n' \
  $'  sh[t] = v;\n'
mut M04 $K "embedding_rev: barrier before restaging the id tile removed" \
  $'(base + k) * width + j];\n      }\n    __syncthreads();\n' \
  $'(base + k) * width + j];\n      }\n'
mut M05 $K "embedding_rev: dtable = dy instead of +=" \
  'dtable[id * width + j] += dy[' \
  'dtable[id * width + j] = dy['
mut M06 $K "embedding_rev: vocabulary partition bound id <= hi (rows on two writers)" \
  'if (id >= lo && id < hi)' \
  'if (id >= lo && id <= hi)'
mut M07 $K "embedding_fwd: id < vocab check dropped" \
  'bool ok = id >= 0 && id < vocab;' \
  'bool ok = id >= 0;'
mut M08 $K "embedding_fwd: id check off by one (id <= vocab)" \
  'bool ok = id >= 0 && id < vocab;' \
  'bool ok = id >= 0 && id <= vocab;'
mut M09 $K "xent_fwd: target check off by one (tt > c)" \
  $'    if (tt < 0 || tt >= c) {\n      ct__record(err, node, op, 1, r, tt, c);\n      continue;\n    }\n    double pt' \
  $'    if (tt < 0 || tt > c) {\n      ct__record(err, node, op, 1, r, tt, c);\n      continue;\n    }\n    double pt'
mut M10 $K "ct__record: last writer wins (atomicExch) instead of lowest position" \
  'atomicMax(&e->nkey, ~key);' \
  'atomicExch(&e->nkey, ~key);'
mut M11 $K "softmax: no max subtraction" \
  $'s += (double)expf(xr[j] - row_max);\n  *mx = row_max;' \
  $'s += (double)expf(xr[j]);\n  *mx = 0.0f;'
mut M12 $K "causal_softmax_fwd: row length off by one (j < r % T)" \
  $'len = (live ? r : 0) % T + 1;\n    float mx;' \
  $'len = (live ? r : 0) % T;\n    float mx;'
mut M13 $K "causal_mask: j < i (diagonal masked)" \
  'dst[k] = j <= i ? src[k] : 0.0f;' \
  'dst[k] = j < i ? src[k] : 0.0f;'
mut M14 $K "layernorm_fwd: saved mean and rstd slots swapped" \
  $'      saved[r] = (float)mean;\n      saved[rows + r] = (float)rstd;' \
  $'      saved[r] = (float)rstd;\n      saved[rows + r] = (float)mean;'
mut M15 $K "layernorm_fwd: early exit of padding rows before the reductions (divergent barrier)" \
  $'    double mean, rstd;\n    ct__ln_stats(x + o, n, live, sh, &mean, &rstd);\n    if (!live) continue;\n    if (threadIdx.x == 0) {' \
  $'    if (!live) continue;\n    double mean, rstd;\n    ct__ln_stats(x + o, n, live, sh, &mean, &rstd);\n    if (threadIdx.x == 0) {'
mut M16 $K "layernorm_rev_params_sum: dg = instead of +=" \
  'if (dg) dg[j] = (float)((double)dg[j] + sg);' \
  'if (dg) dg[j] = (float)sg;'
mut M17 $K "layernorm_rev_params_sum: the first chunk left out" \
  $'    for (int64_t k = 0; k < chunks; k++) {\n      sg += part' \
  $'    for (int64_t k = 1; k < chunks; k++) {\n      sg += part'
mut M18 $K "pos_embedding_rev: dP = instead of +=" \
  'dP[i] = (float)((double)dP[i] + acc);' \
  'dP[i] = (float)acc;'
mut M19 $K "CT__FOR_ELEMS: bound i <= n" \
  $'i < (n); \\\n' \
  $'i <= (n); \\\n'
mut M20 $K "CT__FOR_ELEMS: stride blockDim.x instead of the grid" \
  'i += (int64_t)gridDim.x * blockDim.x)' \
  'i += (int64_t)blockDim.x)'
mut M21 $K "CT__ROW_PASSES: stride gridDim.x * blockDim.x (x for y)" \
  'base += (int64_t)gridDim.x * blockDim.y)' \
  'base += (int64_t)gridDim.x * blockDim.x)'
mut M22 $K "head_split: source index of head_merge's layout" \
  'y[i] = x[((b * T + t) * H + h) * D + d];' \
  'y[i] = x[((b * H + h) * T + t) * D + d];'
mut M23 $K "gelu_rev: derivative of a x^3 taken as a x^2" \
  '(1.0 + 3.0 * CT__GELU_A * v * v)' \
  '(1.0 + CT__GELU_A * v * v)'
mut M24 $K "hyper_step: error-record check removed (a failed step counts)" \
  'blockIdx.x != 0 || err->flag) return;' \
  'blockIdx.x != 0) return;'
mut M25 $K "sgd_update: error-record check removed" \
  $'  if (err->flag) return;\n  const float lr = h[CT__CU_HYPER_LR], scale = h[CT__CU_HYPER_SCALE];\n' \
  $'  const float lr = h[CT__CU_HYPER_LR], scale = h[CT__CU_HYPER_SCALE];\n'
mut M26 $K "adamw_update: error-record check removed" \
  $'  if (err->flag) return;\n  const float lr = h[CT__CU_HYPER_LR], scale = h[CT__CU_HYPER_SCALE], b1' \
  $'  const float lr = h[CT__CU_HYPER_LR], scale = h[CT__CU_HYPER_SCALE], b1'
mut M27 $K "adamw_update: bias correction BC1 missing" \
  'const float step = __fdiv_rn(lr, h[CT__CU_HYPER_BC1]),' \
  'const float step = lr,'
mut M28 $K "sumsq_partials: acc = instead of += across grid-stride passes" \
  'CT__FOR_ELEMS(i, n) acc += (double)x[i] * (double)x[i];' \
  'CT__FOR_ELEMS(i, n) acc = (double)x[i] * (double)x[i];'
mut M29 $K "xent_fwd: acc = instead of -= across grid-stride passes" \
  'acc -= log(pt < CT__P_FLOOR ? CT__P_FLOOR : pt);' \
  'acc = -log(pt < CT__P_FLOOR ? CT__P_FLOOR : pt);'
mut M30 $K "layernorm_rev_params: barrier before the next tile's shared writes removed" \
  $'      part[(2 * chunk + 1) * nc + j] = sb;\n    }\n    __syncthreads();\n' \
  $'      part[(2 * chunk + 1) * nc + j] = sb;\n    }\n'
mut M31 $B "linear_rev dx: CUBLAS_OP_T -> CUBLAS_OP_N on W" \
  'CUBLAS_OP_T, CUBLAS_OP_N, (int)k, (int)rows, (int)m, &one,' \
  'CUBLAS_OP_N, CUBLAS_OP_N, (int)k, (int)rows, (int)m, &one,'
mut M32 $B "linear_fwd: leading dimension of x off by one (k + 1)" \
  'a->in[0], (int)k, bias ? &one : &zero' \
  'a->in[0], (int)k + 1, bias ? &one : &zero'
mut M33 $B "linear_fwd: bias dropped (beta 0 after ct__cu_bias_rows)" \
  'bias ? &one : &zero, a->out[0],' \
  '&zero, a->out[0],'
mut M34 $B "linear_rev dW: beta 0 (overwrites instead of accumulating)" \
  '&one, a->dparam[0], (int)m));' \
  '(const float[]){0.0f}, a->dparam[0], (int)m));'
mut M35 $B "attn_apply_fwd: batch stride of the weights T*D instead of T*T" \
  'T * D, a->in[0], T, T * T, a->out[0], D, T * D, batch));' \
  'T * D, a->in[0], T, T * D, a->out[0], D, T * D, batch));'
mut M36 $B "attn_scores_rev dk: m instead of m^T (CUBLAS_OP_T dropped)" \
  'CUBLAS_OP_N, CUBLAS_OP_T, D, T, T, scale, a->in[0], D,' \
  'CUBLAS_OP_N, CUBLAS_OP_N, D, T, T, scale, a->in[0], D,'
mut M37 $B "sync: error record not cleared after it is reported" \
  $'  if (!r.flag) return CT_OK;\n  CT__CU(cudaMemsetAsync, (c->err, 0, sizeof *c->err, c->stream));\n' \
  $'  if (!r.flag) return CT_OK;\n'
mut M38 $K "attn_fwd: causal bound off by one (s < t: the diagonal masked)" \
  $'s0 + lane <= mine + r;\n        const float x = valid' \
  $'s0 + lane < mine + r;\n        const float x = valid'
mut M39 $K "attn_fwd: running sum not rescaled when the running max grows" \
  'l[r] = fmaf(l[r], alpha, p);' \
  'l[r] = l[r] + p;'
mut M40 $K "attn_fwd: __syncwarp between the weights and their use removed" \
  $'        if (lane == 0) sa[w][r] = alpha;\n      }\n      __syncwarp();\n' \
  $'        if (lane == 0) sa[w][r] = alpha;\n      }\n'
mut M41 $K "attn_dkv: causal bound off by one (t > s: the diagonal dropped)" \
  'tj < g.T && tj >= mine + r;' \
  'tj < g.T && tj > mine + r;'
mut M42 $K "attn_fwd, wide heads: the first key tile reads the output row (unwritten)" \
  'g.D, s0 > 0, mysa, lane);' \
  'g.D, true, mysa, lane);'
mut M43 $K "adamw_update: weight decay on every element (n_decay ignored)" \
  'float keep = i < n_decay ? decayed : 1.0f;' \
  'float keep = decayed;'
mut M44 $K "kv_attend: barrier between the warps' partials and their merge removed" \
  $'sacc[w][lane + 32 * i] = acc[i];\n      __syncthreads();\n' \
  $'sacc[w][lane + 32 * i] = acc[i];\n'
mut M45 $K "kv_attend: the row's own position excluded (positions < p, not <= p)" \
  'p + 1 ? s0 + g.chunk : p + 1;' \
  'p ? s0 + g.chunk : p;'
mut M46 $K "kv_attend: running sum not rescaled when the running max grows" \
  'l = fmaf(l, alpha, e[0]);' \
  'l = l + e[0];'
mut M47 $K "kv_write: rows with equal positions all write (the later-row check dropped)" \
  $'    if (later > 0.0) continue;\n' \
  ''
mut M48 $K "kv_combine: the chunk holding p left out (p / chunk chunks)" \
  'const int64_t n = p / g.chunk + 1;' \
  'const int64_t n = p / g.chunk;'
mut M49 $K "kv_attend, one row per batch row: barrier after writing its own k and v removed" \
  $'        vc[cb + p * D + d] = v[r * D + d];\n      }\n      __syncthreads();\n' \
  $'        vc[cb + p * D + d] = v[r * D + d];\n      }\n'

# ---- helpers -------------------------------------------------------------------
# occurrences TEXT PATTERN: literal, non-overlapping.
occurrences() {
  local rest=${1//"$2"/}
  echo $(((${#1} - ${#rest}) / ${#2}))
}
# slurp FILE: its exact text (trailing newlines kept).
slurp() {
  local t
  t=$(cat "$1"; printf x)
  printf '%s' "${t%x}"
}
# check_pattern I DIR: dies unless mutant I's pattern occurs exactly once in DIR.
check_pattern() {
  local n
  n=$(occurrences "$(slurp "$2/${files[$1]}"; printf x)" "${pats[$1]}")
  [[ $n == 1 ]] || die "${ids[$1]}: pattern found $n times in ${files[$1]} (want exactly 1)"
}

# Selection.
sel=()
if (($#)); then
  for want in "$@"; do
    found=0
    for i in "${!ids[@]}"; do
      if [[ ${ids[$i]} == "$want" ]]; then sel+=("$i"); found=1; fi
    done
    ((found)) || die "no mutant '$want' (see -l)"
  done
else
  sel=("${!ids[@]}")
fi

for i in "${sel[@]}"; do check_pattern "$i" "$root"; done
if ((list)); then
  for i in "${sel[@]}"; do printf '%s  %-22s %s\n' "${ids[$i]}" "${files[$i]}" "${descs[$i]}"; done
  exit 0
fi

# ---- the copy and its build ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/ctml-mutants.XXXXXX")
cleanup() {
  if ((keep)); then echo "cuda-mutants: work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
src=$work/src build=$work/build logs=$work/logs
mkdir -p "$src" "$logs" "$work/orig/cuda"
# Tracked and untracked-but-not-ignored files, as they are in the working tree.
git -C "$root" ls-files -z --cached --others --exclude-standard |
  tar -C "$root" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$src" -xf -
cp "$src"/cuda/* "$work/orig/cuda/"

targets=(test_cross_sim)
suite=("./tests/cudasim/test_cross_sim cuda")
if grep -q 'test_cuda_kernels' "$src/tests/cudasim/CMakeLists.txt"; then
  targets+=(test_cuda_kernels)
  suite+=("./tests/cudasim/test_cuda_kernels")
fi

# The schedules of tests/cudasim/CMakeLists.txt (CTSIM_SCHEDULES).
sched_names=(forward reverse random smallgrid)
sched_envs=("CTML_CUDASIM_ORDER=forward"
            "CTML_CUDASIM_ORDER=reverse"
            "CTML_CUDASIM_ORDER=random CTML_CUDASIM_SEED=20261129"
            "CTML_CUDASIM_ORDER=random CTML_CUDASIM_SEED=7 CTML_CUDASIM_GRID=small")

build_all() { timeout 900 cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$1" 2>&1; }
binsum() { (cd "$build/tests/cudasim" && cat "${targets[@]}") | sha256sum; }

# run_suite S LOG: runs every suite command in schedule S; prints "" when all
# pass, else what failed: the failing tests in run order (three, then a count),
# "timeout" or the exit status.
run_suite() {
  local cmd rc failed out=""
  : >"$2"
  for cmd in "${suite[@]}"; do
    rc=0
    # shellcheck disable=SC2086 # the schedule's assignments and the command split on spaces
    # CMOCKA_TEST_ABORT: the suite stops at its first failing test (a caught mutant
    # costs the time to its first failure, not a whole suite)
    (cd "$build" && env CMOCKA_TEST_ABORT=1 ${sched_envs[$1]} timeout -k 5 "$tmo" $cmd) >>"$2" 2>&1 ||
      rc=$?
    ((rc == 0)) && continue
    if ((rc == 124 || rc == 137)); then failed="timeout after ${tmo}s"
    else
      failed=$(grep -oE '^\[  (FAILED|ERROR) +\] [A-Za-z_][A-Za-z0-9_]*$' "$2" |
               awk '!seen[$NF]++ { n++; if (n <= 3) l = l (n > 1 ? ", " : "") $NF }
                    END { if (n > 3) l = l " (+" n - 3 " more)"; print l }') || true
      # aborted at the first failure: the test that was running
      [[ -n $failed ]] || failed=$(grep -oE '^\[ RUN +\] [A-Za-z_][A-Za-z0-9_]*$' "$2" |
                                   tail -1 | awk '{ print $NF }') || true
      failed=${failed:-exit $rc}
    fi
    ((${#suite[@]} > 1)) && failed="${cmd##*/}: $failed"
    out=$failed
    break
  done
  printf '%s' "$out"
}

t0=$SECONDS
echo "cuda-mutants: copy in $work; configuring" >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTML_OPENCL=OFF -DCTML_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 >"$logs/configure.log" 2>&1 ||
  die_log "$logs/configure.log" "configure failed"
build_all "$logs/build-baseline.log" || die_log "$logs/build-baseline.log" "baseline build failed"
base_sum=$(binsum)
# The unmutated tree must pass every schedule, or no result below means anything.
for s in "${!sched_names[@]}"; do
  ts=$SECONDS
  log=$logs/baseline-${sched_names[$s]}.log
  r=$(run_suite "$s" "$log")
  [[ -z $r ]] || die_log "$log" "the unmutated tree fails (${sched_names[$s]}): $r"
  echo "cuda-mutants: baseline passes ${sched_names[$s]} ($((SECONDS - ts)) s)" >&2
done

# ---- one mutant at a time ----------------------------------------------------------
results=() secs=()
survived=0 uncompiled=0
for i in "${sel[@]}"; do
  id=${ids[$i]} f=${files[$i]} tm=$SECONDS
  check_pattern "$i" "$src"
  text=$(slurp "$src/$f"; printf x)
  text=${text%x}
  printf '%s' "${text/"${pats[$i]}"/"${reps[$i]}"}" >"$src/$f"
  cmp -s "$src/$f" "$work/orig/$f" && die "$id: the replacement changed nothing"
  res=""
  if ! build_all "$logs/build-$id.log"; then
    res="does not compile"
    uncompiled=$((uncompiled + 1))
  else
    [[ $(binsum) != "$base_sum" ]] || die "$id: the rebuilt binary equals the baseline's (stale build?)"
    for s in "${!sched_names[@]}"; do
      r=$(run_suite "$s" "$logs/$id-${sched_names[$s]}.log")
      if [[ -n $r ]]; then res="${sched_names[$s]}: $r"; break; fi
    done
    if [[ -z $res ]]; then res="SURVIVED"; survived=$((survived + 1)); fi
  fi
  cp "$work/orig/$f" "$src/$f" # restore (a new mtime: rebuilt with the next mutant)
  results[i]=$res secs[i]=$((SECONDS - tm))
  printf 'cuda-mutants: %s %s (%d s)\n' "$id" "$res" "${secs[$i]}" >&2
done

# ---- report -------------------------------------------------------------------------
echo
echo "| id | file | mutant | caught by (schedule: failing tests) | s |"
echo "|----|------|--------|-------------------------------------|---|"
for i in "${sel[@]}"; do
  printf '| %s | %s | %s | %s | %d |\n' "${ids[$i]}" "${files[$i]#cuda/}" "${descs[$i]}" \
    "${results[$i]}" "${secs[$i]}"
done
echo
caught=$((${#sel[@]} - survived - uncompiled))
echo "cuda-mutants: ${#sel[@]} mutants: $caught caught, $survived survived," \
  "$uncompiled do not compile; $((SECONDS - t0)) s in all"
((survived == 0 && uncompiled == 0))
