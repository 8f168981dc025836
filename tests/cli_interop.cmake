# SPDX-License-Identifier: MIT
# ctest cases for ctml export, import, eval, train --init-from and the
# checkpoint loader's checks (uses CLI from tests/CMakeLists.txt).

set(CTML_IO_DATA ${CMAKE_CURRENT_SOURCE_DIR}/data/gpl-3.txt)
set(CTML_IO_RUN train --data ${CTML_IO_DATA} --steps 20 --eval-every 20 --layers 1 --heads 2
    --width 16 --block 16 --batch 4 --backend cpu)
string(REPLACE ";" " " CTML_IO_RUN "${CTML_IO_RUN}")

# The logits of a checkpoint on cpu_ref, for the numpy GPT-2 check.
add_executable(ctml_logits ctml_logits.c)
target_link_libraries(ctml_logits PRIVATE ctml m)

# export --hf is read by a float64 numpy GPT-2 forward (logits within 1e-4),
# also after a BF16 round trip; run where python3 has numpy.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  # Crafted checkpoint metadata: every number is checked against its flag's
  # range before anything is allocated (width 16384 fails at once).
  add_test(NAME cli_checkpoint_metadata_ranges COMMAND ${Python3_EXECUTABLE}
           ${CMAKE_CURRENT_SOURCE_DIR}/craft_checkpoint.py ${CLI} ${CTML_IO_DATA})
  set_tests_properties(cli_checkpoint_metadata_ranges PROPERTIES TIMEOUT 120
                       PASS_REGULAR_EXPRESSION "all crafted checkpoints refused")
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "import numpy" RESULT_VARIABLE ctml_no_numpy
                  OUTPUT_QUIET ERROR_QUIET)
  if(ctml_no_numpy EQUAL 0)
    add_test(NAME cli_hf_export_numpy COMMAND ${Python3_EXECUTABLE}
             ${CMAKE_CURRENT_SOURCE_DIR}/hf_export_check.py --ctml ${CLI}
             --logits $<TARGET_FILE:ctml_logits> --data ${CTML_IO_DATA}
             --work ${CMAKE_CURRENT_BINARY_DIR}/hf_export_check)
    set_tests_properties(cli_hf_export_numpy PROPERTIES TIMEOUT 300
                         PASS_REGULAR_EXPRESSION "hf export check passed")
  else()
    message(STATUS "cli_hf_export_numpy not registered: ${Python3_EXECUTABLE} lacks numpy")
  endif()
endif()

# A weights-only file (export --weights) samples, evaluates and fine-tunes:
# --init-from starts from its weights, so the first loss is far below a fresh
# model's, and the loss goes down.
add_test(NAME cli_weights_only_sample_eval_finetune COMMAND bash -c
  "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d
   $0 ${CTML_IO_RUN} --steps 150 --eval-every 150 --out base >/dev/null
   $0 export --weights w.safetensors --checkpoint base
   $0 sample --checkpoint w.safetensors --tokens 20 --backend cpu --temperature 0 2>/dev/null
   $0 eval --checkpoint w.safetensors --data ${CTML_IO_DATA} --backend cpu --json
   $0 train --init-from w.safetensors --data ${CTML_IO_DATA} --steps 40 --eval-every 40 --lr 1e-3 --batch 4 --backend cpu --out ft > ft.log
   cat ft.log
   first=$(sed -n 2p ft/loss.csv | cut -d, -f2); last=$(tail -1 ft/loss.csv | cut -d, -f3)
   base=$(tail -1 base/loss.csv | cut -d, -f3)
   echo \"fine-tune: first train loss $first, base val $base, final val $last\"
   awk -v f=$first -v l=$last -v b=$base 'BEGIN { exit !(f < 3.0 && l < b) }'
   echo fine-tune-ok" ${CLI})
set_tests_properties(cli_weights_only_sample_eval_finetune PROPERTIES TIMEOUT 300
  PASS_REGULAR_EXPRESSION "\"tokens_scored\": 35148.*init from w.safetensors.*fine-tune-ok")

# Fine-tuning: a byte outside the checkpoint's vocabulary is named with its
# offset; a flag that changes the architecture is refused; --resume refuses a
# weights-only file.
add_test(NAME cli_finetune_errors COMMAND bash -c
  "d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d
   $0 ${CTML_IO_RUN} --out base >/dev/null || exit 9
   printf 'the law\\x01 Z' > new.txt
   $0 train --init-from base --data new.txt --backend cpu --out ft 2>&1; test $? -eq 1 || exit 3
   $0 train --init-from base --data ${CTML_IO_DATA} --width 32 --out ft2 2>&1; test $? -eq 2 || exit 4
   $0 export --weights w.safetensors --checkpoint base >/dev/null
   $0 train --resume w.safetensors --data ${CTML_IO_DATA} 2>&1; test $? -eq 2 || exit 5
   $0 train --init-from base --resume base 2>&1; test $? -eq 2 || exit 6" ${CLI})
set_tests_properties(cli_finetune_errors PROPERTIES PASS_REGULAR_EXPRESSION
  "--data: byte 0x01 at offset 7 is not in the checkpoint's vocabulary of [0-9]+ bytes.*--width 32: the architecture comes from the checkpoint \\(width 16,.*is a weights-only file.*--init-from and --resume")

# eval: every byte after the first is scored once, on a text shorter than a
# block too; bits per byte = loss / ln 2; --batch does not change the loss on
# cpu; bad usage exits 2.
add_test(NAME cli_eval COMMAND bash -c
  "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d
   $0 ${CTML_IO_RUN} --out r >/dev/null
   $0 eval --checkpoint r --data ${CTML_IO_DATA} --backend cpu
   printf 'the' > short.txt
   $0 eval --checkpoint r --data short.txt --backend cpu --json
   num() { grep -o \"\\\"$1\\\": [0-9.e+-]*\" | cut -d' ' -f2; }
   j=$($0 eval --checkpoint r --data ${CTML_IO_DATA} --backend cpu --batch 1 --json)
   k=$($0 eval --checkpoint r --data ${CTML_IO_DATA} --backend cpu --batch 64 --json)
   l=$(num loss <<<\"$j\"); b=$(num bits_per_byte <<<\"$j\"); p=$(num perplexity <<<\"$j\")
   awk -v l=$l -v b=$b -v p=$p 'BEGIN { exit !(b - l / log(2) < 1e-6 && l / log(2) - b < 1e-6 && (p - exp(l)) ^ 2 < (1e-6 * p) ^ 2) }'
   echo eval-json-ok
   test \"$l\" = \"$(num loss <<<\"$k\")\" && echo batch-invariant
   ! $0 eval --checkpoint r 2>/dev/null; ! $0 eval --data x --bogus 2>/dev/null; echo usage-ok" ${CLI})
set_tests_properties(cli_eval PROPERTIES PASS_REGULAR_EXPRESSION
  "35148 bytes scored in 2197 windows of 16 \\(last window: 12 new\\).*loss [0-9.]+ nats/byte, [0-9.]+ bits/byte, perplexity [0-9.]+.*\"tokens_scored\": 2, \"windows\": 1, \"block\": 2.*eval-json-ok.*batch-invariant.*usage-ok")

# A GPT-2 layout whose config.json disagrees with its tensors: the tensor,
# its shape and the one needed are named.
add_test(NAME cli_hf_mismatch COMMAND bash -c
  "d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d
   $0 ${CTML_IO_RUN} --out r >/dev/null && $0 export --hf hf --checkpoint r >/dev/null || exit 9
   sed -i 's/\"n_embd\": 16/\"n_embd\": 32/' hf/config.json
   $0 sample --checkpoint hf --backend cpu 2>&1; test $? -eq 1 || exit 3
   sed -i 's/\"n_embd\": 32/\"n_embd\": 16/; s/\"n_layer\": 1/\"n_layer\": 2/' hf/config.json
   $0 import hf --out x.safetensors 2>&1; test $? -eq 1 || exit 4
   sed -i 's/\"n_layer\": 2/\"n_layer\": 1/; s/gelu_new/gelu/' hf/config.json
   $0 import hf --out x.safetensors 2>&1; test $? -eq 1 || exit 5" ${CLI})
set_tests_properties(cli_hf_mismatch PROPERTIES PASS_REGULAR_EXPRESSION
  "tensor 'transformer.wte.weight' has shape \\[[0-9]+,16\\]; config.json .* needs \\[[0-9]+,32\\].*tensor 'transformer.h.1.ln_1.weight' \\(ctml's 'h1.ln1.gain'\\) is missing.*'activation_function' is 'gelu'")


# --help and bad usage of eval, export and import (ctml_cli_expect: cli_surface.cmake).
foreach(cmd eval export import)
  ctml_cli_expect(cli_help_${cmd} 0 "^usage: ctml ${cmd} " ${cmd} --help)
  ctml_cli_expect(cli_help_cmd_${cmd} 0 "^usage: ctml ${cmd} " help ${cmd})
  ctml_cli_expect(cli_${cmd}_unknown_option 2
    "^ctml ${cmd}: unknown option '--x' \\(see 'ctml ${cmd} --help'\\)" ${cmd} --x)
endforeach()
ctml_cli_expect(cli_eval_help_env 0 "CTML_CUDA_DEVICE.*CTML_OPENCL_CACHE" eval --help)
ctml_cli_expect(cli_eval_unknown_backend 2 "--backend: unknown backend 'nope'" eval --data x --backend nope)
ctml_cli_expect(cli_export_needs_one 2 "give one of --hf DIR or --weights FILE" export --hf a --weights b)
ctml_cli_expect(cli_import_needs_out 2 "usage: ctml import SRC --out FILE" import x)
