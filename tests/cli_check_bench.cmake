# SPDX-License-Identifier: MIT
# ctest cases for ctml check and ctml bench (uses CLI from tests/CMakeLists.txt).

# A GPT small enough for a test: one layer, width 32, 2 x 16 tokens.
set(CTML_CB_TINY --layers 1 --width 32 --block 16 --batch 2)

# check: the OpenCL backend (PoCL on a CPU in CI) agrees with cpu_ref on every
# node and every updated parameter.
if(CTML_WITH_OPENCL)
  add_test(NAME cli_check_opencl COMMAND ${CLI} check --backend opencl ${CTML_CB_TINY})
  set_tests_properties(cli_check_opencl PROPERTIES TIMEOUT 300 PASS_REGULAR_EXPRESSION
    "all [0-9]+ results agree.*update: all [0-9]+ parameters agree.*check passed: opencl")
endif()

# check on cpu compares the reference with itself, and says so.
add_test(NAME cli_check_cpu_self COMMAND ${CLI} check --backend cpu ${CTML_CB_TINY})
set_tests_properties(cli_check_cpu_self PROPERTIES PASS_REGULAR_EXPRESSION
  "cpu compared with itself.*check passed: cpu")

# check on cuda: passes on a GPU, fails cleanly (exit 1, one message) without
# one; never a crash or a usage error.
add_test(NAME cli_check_cuda_clean COMMAND bash -c
  "out=$(\"$0\" check --backend cuda --layers 1 --width 32 --block 16 --batch 2 2>&1); rc=$?; \
   echo \"$out\" | tail -3; \
   if echo \"$out\" | grep -qE 'Segmentation|Abort|AddressSanitizer|: runtime error: '; then exit 3; fi; \
   if [ $rc -eq 0 ]; then echo \"$out\" | grep -q 'check passed: cuda' || exit 4; \
   elif [ $rc -eq 1 ]; then echo \"$out\" | grep -q '^ctml check: ' || exit 5; else exit 6; fi"
  ${CLI})

# Bad usage: exit 2 with one line naming the problem.
foreach(bad "check;--bogus" "check;--layers" "check;--backend;nope" "check;--config;huge"
            "check;--heads;3" "bench;--bogus" "bench;--runs;0" "bench;--backend;nope"
            "bench;--graph;--backend;cpu")
  string(REPLACE ";" "_" name "cli_rejects_${bad}")
  string(REPLACE "-" "" name "${name}")
  add_test(NAME ${name} COMMAND ${CLI} ${bad})
  set_tests_properties(${name} PROPERTIES WILL_FAIL TRUE)
endforeach()
add_test(NAME cli_check_unknown_option_message COMMAND bash -c
  "\"$0\" check --x 2>&1; test $? -eq 2" ${CLI})
set_tests_properties(cli_check_unknown_option_message PROPERTIES PASS_REGULAR_EXPRESSION
  "^ctml check: unknown option '--x' \\(see 'ctml check --help'\\)")
add_test(NAME cli_bench_unknown_option_message COMMAND bash -c
  "\"$0\" bench --x 2>&1; test $? -eq 2" ${CLI})
set_tests_properties(cli_bench_unknown_option_message PROPERTIES PASS_REGULAR_EXPRESSION
  "^ctml bench: unknown option '--x' \\(see 'ctml bench --help'\\)")

# bench: a cpu row with the timing.
add_test(NAME cli_bench_cpu COMMAND ${CLI} bench --backend cpu ${CTML_CB_TINY} --runs 2 --warmup-steps 1)
set_tests_properties(cli_bench_cpu PROPERTIES PASS_REGULAR_EXPRESSION
  "tokens/step.*\ncpu +host CPU +[0-9.]+ \\([0-9.]+\\) +[0-9]+ +[0-9.]+ +-")

# bench reports the step's structure with and without rewrites; --no-rewrite
# times the step as built.
add_test(NAME cli_bench_structure COMMAND ${CLI} bench --backend cpu --runs 1 --warmup-steps 0
                                          ${CTML_CB_TINY})
set_tests_properties(cli_bench_structure PROPERTIES PASS_REGULAR_EXPRESSION
  "[0-9]+ nodes, [0-9]+ launches/step, [0-9.]+ MiB planned [^\n]*without rewrites [0-9]+ nodes")
add_test(NAME cli_bench_no_rewrite COMMAND ${CLI} bench --backend cpu --runs 1 --warmup-steps 0
                                           --no-rewrite ${CTML_CB_TINY})
set_tests_properties(cli_bench_no_rewrite PROPERTIES PASS_REGULAR_EXPRESSION "\\(timed without\\)")
add_test(NAME cli_bench_trace COMMAND ${CLI} bench --backend cpu --runs 1 --warmup-steps 0 --trace
                                       ${CTML_CB_TINY})
set_tests_properties(cli_bench_trace PROPERTIES PASS_REGULAR_EXPRESSION
  "causal_attention\\.reverse +1 .*rewrites \\(nodes.*causal_attention at nodes [0-9]+ \\(attn_scores\\)")
add_test(NAME cli_demo_trace_rewrites COMMAND ${CLI} demo --trace)
set_tests_properties(cli_demo_trace_rewrites PROPERTIES PASS_REGULAR_EXPRESSION "rewrites: none fired")
if(CTML_WITH_OPENCL)
  add_test(NAME cli_check_rewrite_opencl COMMAND ${CLI} check --backend opencl ${CTML_CB_TINY}
                                                 --rewrite)
  set_tests_properties(cli_check_rewrite_opencl PROPERTIES TIMEOUT 300 PASS_REGULAR_EXPRESSION
    "rewrite: [^\n]*: agree.*check passed: opencl")
endif()
# auto takes OpenCL on a CPU device before the CPU reference (the first line says why); on a
# machine with a GPU, auto takes CUDA or OpenCL on that GPU first.
if(CTML_WITH_OPENCL)
  add_test(NAME cli_auto_prefers_opencl_cpu COMMAND bash -c
    "d=$(mktemp -d) && cd $d && \"$0\" train --data \"$1\" --steps 2 --eval-every 2 --layers 1 \
     --heads 2 --width 16 --block 16 --batch 2 --out t; rc=$?; rm -rf $d; exit $rc"
    ${CLI} ${CMAKE_CURRENT_SOURCE_DIR}/data/gpl-3.txt)
  set_tests_properties(cli_auto_prefers_opencl_cpu PROPERTIES TIMEOUT 300 PASS_REGULAR_EXPRESSION
    "^ctml train: backend (opencl \\(auto: opencl is present on a CPU device|cuda \\(auto: cuda is present with a GPU|opencl \\(auto: opencl is present with a GPU)")
endif()
add_test(NAME cli_bench_decode COMMAND ${CLI} bench --decode --backend cpu --runs 1 --tokens 20
                                        --prompt 5 --layers 1 --width 32 --block 16)
set_tests_properties(cli_bench_decode PROPERTIES PASS_REGULAR_EXPRESSION
  "cpu +cache +[0-9.]+ +[0-9.]+ +[0-9.]+ .*cpu +no cache .*decode with the cache is [0-9.]+x faster")
