# SPDX-License-Identifier: MIT
# ctest cases for the command-line surface: --help on every command, the flags each
# command accepts, messages and exit codes, JSON output (uses CLI from tests/CMakeLists.txt).

set(CTML_S_TEXT ${CMAKE_CURRENT_SOURCE_DIR}/data/gpl-3.txt)
set(CTML_S_MODEL --layers 1 --heads 2 --width 16 --block 16 --batch 4)
string(REPLACE ";" " " CTML_S_MODEL_ARGS "${CTML_S_MODEL}")

# ctml_cli_expect(NAME CODE REGEX ARGS...): runs ctml ARGS with stderr into stdout; passes
# when the exit status is CODE and the output (followed by a line "exit CODE") matches REGEX.
function(ctml_cli_expect name code regex)
  add_test(NAME ${name} COMMAND bash -c
    "out=$(\"$0\" \"$@\" 2>&1); rc=$?; printf '%s\\nexit %s\\n' \"$out\" $rc; test $rc -eq ${code}"
    ${CLI} ${ARGN})
  set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${regex}.*\nexit ${code}\n")
endfunction()

# ctml_cli_script(NAME REGEX SCRIPT ARGS...): SCRIPT runs under bash in a fresh temporary
# directory with $0 the tool, $1 the training text and ARGS after; exit 77 skips (no python3).
function(ctml_cli_script name regex script)
  add_test(NAME ${name} COMMAND bash -c
    "d=$(mktemp -d) && cd \"$d\" && (${script}); rc=$?; rm -rf \"$d\"; exit $rc"
    ${CLI} ${CTML_S_TEXT} ${ARGN})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  if(NOT regex STREQUAL "")
    set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${regex}")
  endif()
endfunction()
set(CTML_NEED_PY "command -v python3 >/dev/null || exit 77")

# --help and -h on every command: its usage, exit 0; commands that open backends list
# the environment variables the backends read.
set(ctml_env_re "CTML_CUDA_DEVICE.*CTML_OPENCL_PLATFORM.*CTML_OPENCL_DEVICE.*CTML_OPENCL_GEMM.*CTML_OPENCL_CACHE")
foreach(cmd demo train sample check bench devices help version)
  foreach(h --help -h)
    set(re "^usage: ctml ${cmd}")
    if(NOT cmd MATCHES "^(help|version)$")
      string(APPEND re ".*${ctml_env_re}")
    endif()
    if(cmd STREQUAL "train")
      string(APPEND re ".*CTML_FORTUNES_DIR")
    endif()
    ctml_cli_expect(cli_help_${cmd}${h} 0 "${re}" ${cmd} ${h})
  endforeach()
endforeach()
ctml_cli_expect(cli_help_command 0 "^usage: ctml bench .*--warmup-steps N" help bench)

# Each command takes only the flags that mean something to it.
foreach(flag --steps --lr --min-lr --warmup --weight-decay --clip --beta1 --beta2 --eval-every
             --eval-batches --save-every)
  ctml_cli_expect(cli_bench_refuses${flag} 2
    "^ctml bench: ${flag} is a training flag that does nothing for bench" bench ${flag} 1)
endforeach()
foreach(flag --eval-every --eval-batches --save-every)
  ctml_cli_expect(cli_check_refuses${flag} 2
    "^ctml check: ${flag} is a training flag that does nothing for check" check ${flag}=1)
endforeach()
ctml_cli_expect(cli_bench_warmup_names_its_flag 2
  "^ctml bench: --warmup [^\n]*the untimed steps are --warmup-steps N" bench --warmup 1 --steps 9)
ctml_cli_expect(cli_bench_decode_refuses_batch 2 "^ctml bench: --batch does nothing for bench --decode"
  bench --decode --batch 2)
ctml_cli_expect(cli_bench_warmup_steps 0 "1 untimed \\+ 1 timed steps\n.*\ncpu +host CPU"
  bench --backend cpu --warmup-steps 1 --runs 1 ${CTML_S_MODEL})
ctml_cli_expect(cli_sample_refuses_config_flags 2 "^ctml sample: unknown option '--lr'" sample --lr 1)
ctml_cli_expect(cli_devices_refuses 2 "^ctml devices: unknown option '--x' \\(see 'ctml devices --help'\\)"
  devices --x)

# train --tf32 and --graph are cuda's: refused clearly on other backends.
ctml_cli_expect(cli_train_tf32_cpu 2 "^ctml train: --tf32 applies to the cuda backend only"
  train --tf32 --backend cpu)
ctml_cli_expect(cli_train_graph_opencl 2 "^ctml train: --graph applies to the cuda backend only"
  train --graph --backend opencl)
ctml_cli_expect(cli_train_log_format_bad 2 "^ctml train: --log-format: 'xml' is neither 'text' nor 'jsonl'"
  train --log-format xml)

# Messages and exit codes (issue 17).
ctml_cli_expect(cli_msg_lr_range 2 "^ctml train: --lr: 1e40 is out of range \\[1e-12, 10\\]" train --lr 1e40)
ctml_cli_expect(cli_msg_temperature_range 2 "^ctml sample: --temperature: 1e-40 is out of range \\[0, 100\\]"
  sample --temperature 1e-40)
ctml_cli_expect(cli_msg_seed_range 2
  "^ctml train: --seed: 99999999999999999999 is out of range \\[0, 2\\^64-1" train --seed 99999999999999999999)
ctml_cli_expect(cli_msg_seed_sample 2 "^ctml sample: --seed: -3 is out of range" sample --seed -3)
ctml_cli_expect(cli_msg_steps_range 2 "^ctml train: --steps: 99999999999999999999 is out of range \\[1, "
  train --steps 99999999999999999999)
ctml_cli_expect(cli_msg_not_a_number 2 "^ctml train: --lr: 'fast' is not a number" train --lr fast)
ctml_cli_expect(cli_msg_demo_format 2 "^ctml demo: unknown option '--x' \\(see 'ctml demo --help'\\)" demo --x)
foreach(cmd train sample check bench demo)
  ctml_cli_expect(cli_unknown_backend_${cmd} 2 "^ctml ${cmd}: --backend: unknown backend 'nope'"
    ${cmd} --backend nope)
endforeach()

# train: the progress line, the header for --save-every 0, a custom model's name, and the
# plot's baseline and title.
ctml_cli_script(cli_train_surface
  "model: custom \\(from tiny\\), 1 layer, 2 heads[^\n]*\n.*checkpoint at the end only, unigram baseline.*\nstep 2/4 train [0-9.]+ val [0-9.]+ lr [0-9.e-]+ norm [0-9.e+-]+ ms/step [0-9.]+ tok/s [0-9]+ eta .*svg-ok"
  "\"$0\" train --data \"$1\" --steps 4 --eval-every 2 --log-every 2 --save-every 0 --backend cpu \
   --out t ${CTML_S_MODEL_ARGS} && grep -q 'stroke-dasharray' t/loss.svg && grep -q '>unigram baseline<' t/loss.svg \
   && grep -q '>ctml train, custom (from tiny): 1 layer, 2 heads, width 16, block 16<' t/loss.svg \
   && grep -aq '\"config.name\":\"custom (from tiny)\"' t/checkpoint.safetensors && echo svg-ok")

# JSON: every object parses, with the fields scripts read (tests/cli_json_check.py).
set(CTML_JSON_CHECK "python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli_json_check.py")
ctml_cli_script(cli_json_devices "json-ok"
  "${CTML_NEED_PY}; \"$0\" devices --json > o.json && ${CTML_JSON_CHECK} devices o.json")
ctml_cli_script(cli_json_demo "json-ok"
  "${CTML_NEED_PY}; \"$0\" demo --json > o.json && ${CTML_JSON_CHECK} demo o.json")
ctml_cli_script(cli_json_bench "json-ok.*json-ok"
  "${CTML_NEED_PY}; \"$0\" bench --json --backend cpu --runs 1 --warmup-steps 0 ${CTML_S_MODEL_ARGS} \
   > o.json && ${CTML_JSON_CHECK} bench o.json && \"$0\" bench --json --decode --backend cpu --runs 1 \
   --tokens 5 --prompt 3 --layers 1 --heads 2 --width 16 --block 16 > d.json && ${CTML_JSON_CHECK} decode d.json")
ctml_cli_script(cli_json_check "json-ok"
  "${CTML_NEED_PY}; \"$0\" check --json --backend cpu --layers 1 --width 32 --block 16 --batch 2 \
   > o.json && ${CTML_JSON_CHECK} check o.json")
# train --log-format jsonl (one object per line, nothing else on stdout), then sample --json on
# a text of control bytes, quotes, backslashes and bytes outside UTF-8.
ctml_cli_script(cli_json_train_sample "json-ok.*json-ok"
  "${CTML_NEED_PY}; ${CTML_JSON_CHECK} odd-text odd.txt && \"$0\" train --data odd.txt --steps 4 \
   --eval-every 2 --log-every 1 --backend cpu --out t --log-format jsonl ${CTML_S_MODEL_ARGS} > t.jsonl \
   && ${CTML_JSON_CHECK} train t.jsonl && \"$0\" sample --checkpoint t --json --backend cpu --tokens 300 \
   --temperature 2 --count 2 --seed 18446744073709551615 > s.json && ${CTML_JSON_CHECK} sample s.json")
