#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What nvcc's ptxas says of every CUDA kernel for one architecture (default
# sm_90): registers, barriers, shared memory, stack frame and spills, one line
# per kernel. Fails when any kernel spills registers to local memory, or when
# ptxas reports no kernel at all.
#   tools/ptxas-report.sh [ARCH]      e.g. tools/ptxas-report.sh sm_80
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-sm_90}
if ! command -v nvcc >/dev/null; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; else
    echo "ptxas-report: nvcc not found (install the CUDA toolkit)" >&2
    exit 1
  fi
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
nvcc -arch="$arch" -std=c++17 -Xptxas -v -c cuda/cuda_kernels.cu -o /dev/null >"$log" 2>&1 || {
  cat "$log" >&2
  echo "ptxas-report: nvcc failed" >&2
  exit 1
}
# ptxas prints, per entry function: "Compiling entry function 'NAME'", then
# "N bytes stack frame, S bytes spill stores, L bytes spill loads", then
# "Used R registers, used B barriers[, M bytes smem]".
awk -v arch="$arch" '
  function demangle(m,   n, name, rest, args) { # _Z<len><name>[I(Li<int>E)+E]...: name<ints>
    if (!match(m, /^_Z[0-9]+/)) return m
    n = substr(m, 3, RLENGTH - 2) + 0
    name = substr(m, RLENGTH + 1, n)
    rest = substr(m, RLENGTH + 1 + n)
    if (match(rest, /^I(Li-?[0-9]+E)+E/)) {
      args = substr(rest, 2, RLENGTH - 2)
      gsub(/Li/, "", args); sub(/E$/, "", args); gsub(/E/, ",", args)
      name = name "<" args ">"
    }
    return name
  }
  /Compiling entry function/ { split($0, q, "'\''"); name = demangle(q[2]); next }
  /bytes stack frame/ && name != "" {
    stack[name] = $1; stores[name] = $5; loads[name] = $9; next
  }
  /Used [0-9]+ registers/ && name != "" {
    regs[name] = $5; bars[name] = $8; smem[name] = 0
    if (match($0, /[0-9]+ bytes smem/)) smem[name] = substr($0, RSTART, RLENGTH - 11)
    order[++n] = name; name = ""
  }
  END {
    printf "%-28s %5s %4s %6s %6s %6s %6s   (%s)\n", "kernel", "regs", "bar", "smem", "stack",
           "spillS", "spillL", arch
    bad = 0
    for (i = 1; i <= n; i++) {
      k = order[i]
      printf "%-28s %5d %4d %6d %6d %6d %6d\n", k, regs[k], bars[k], smem[k], stack[k], stores[k], loads[k]
      if (stores[k] + loads[k] > 0) { bad++; printf "  ^ %s spills registers\n", k }
    }
    if (n == 0) { print "ptxas-report: ptxas reported no kernel"; exit 1 }
    printf "%d kernels, %d with spills\n", n, bad
    exit bad > 0
  }' "$log"
