# SPDX-License-Identifier: MIT
# Data-parallel training under mpirun, 2 ranks on one machine (uses CLI from
# tests/CMakeLists.txt). Registered only when MPI is built in and mpirun is
# found; about 15 s together.
if(NOT CTML_WITH_MPI OR NOT MPIEXEC_EXECUTABLE)
  message(STATUS "ctml: data-parallel tests not registered (MPI: ${CTML_WITH_MPI}, mpirun: "
                 "${MPIEXEC_EXECUTABLE})")
  return()
endif()
# Open MPI refuses root and more ranks than cores unless told.
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE ctml_mpi_version
                ERROR_QUIET)
set(CTML_MPIRUN ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2)
if(ctml_mpi_version MATCHES "Open MPI|OpenRTE")
  list(APPEND CTML_MPIRUN --oversubscribe --allow-run-as-root)
endif()
string(REPLACE ";" " " CTML_MPIRUN_SH "${CTML_MPIRUN}")

add_executable(test_dp test_dp.c)
target_link_libraries(test_dp PRIVATE ctml_internal m)
set(ctml_dp_tests "")
# The library: 2 ranks at batch b against one trainer at batch 2b, identical
# parameters on every rank, a failing rank named, a late rank timed out.
foreach(be cpu opencl)
  add_test(NAME dp_equiv_${be} COMMAND ${CTML_MPIRUN} $<TARGET_FILE:test_dp> equiv ${be})
  set_tests_properties(dp_equiv_${be} PROPERTIES PASS_REGULAR_EXPRESSION
                       "rank 0: equiv passed|backend ${be} absent")
  add_test(NAME dp_fail_${be} COMMAND ${CTML_MPIRUN} $<TARGET_FILE:test_dp> fail ${be})
  set_tests_properties(dp_fail_${be} PROPERTIES PASS_REGULAR_EXPRESSION
                       "rank 0: step 4 failed on every rank: rank 1 of 2: .*outside \\[0, 11\\)|backend ${be} absent")
  list(APPEND ctml_dp_tests dp_equiv_${be} dp_fail_${be})
endforeach()
add_test(NAME dp_timeout COMMAND bash -c "timeout 30 ${CTML_MPIRUN_SH} $0 timeout; true"
         $<TARGET_FILE:test_dp>)
set_tests_properties(dp_timeout PROPERTIES PASS_REGULAR_EXPRESSION
                     "rank 0: barrier failed after [0-9.]+ s: MPI barrier: rank 0 of 2 waited 2 s")
list(APPEND ctml_dp_tests dp_timeout)

# ctml train: 2 ranks at batch 4 match one process at batch 8 (train and
# validation losses of every logged step within 1e-5); resume is bit-identical
# for the same world size and refused for another; a killed rank ends the job.
set(CTML_DP_DATA ${CMAKE_CURRENT_SOURCE_DIR}/data/gpl-3.txt)
set(CTML_DP_RUN "train --data ${CTML_DP_DATA} --steps 20 --eval-every 10 --layers 1 --heads 2 --width 16 --block 16 --log-every 10")
foreach(be cpu opencl)
  add_test(NAME dp_cli_matches_${be} COMMAND bash -c
    "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d
     $0 ${CTML_DP_RUN} --backend ${be} --batch 8 --out one >/dev/null 2>&1 || { echo 'backend ${be} absent'; exit 0; }
     ${CTML_MPIRUN_SH} $0 ${CTML_DP_RUN} --backend ${be} --batch 4 --out two | grep data-parallel
     paste -d, one/loss.csv two/loss.csv | awk -F, 'NR > 1 { d = \$2 - \$7; if (d < 0) d = -d; if (d > m) m = d; if (\$3 != \"\") { v = \$3 - \$8; if (v < 0) v = -v; if (v > m) m = v } } END { printf \"max loss difference %g over %d steps\\n\", m, NR - 1; exit !(m <= 1e-5 && NR == 21) }'
     echo dp-matches-ok" $<TARGET_FILE:ctml_cli>)
  set_tests_properties(dp_cli_matches_${be} PROPERTIES PASS_REGULAR_EXPRESSION
                       "data-parallel: 2 ranks over mpi.*max loss difference.*dp-matches-ok|backend ${be} absent")
  list(APPEND ctml_dp_tests dp_cli_matches_${be})
endforeach()
add_test(NAME dp_cli_resume COMMAND bash -c
  "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d
   ${CTML_MPIRUN_SH} $0 ${CTML_DP_RUN} --backend cpu --batch 4 --out full >/dev/null
   ${CTML_MPIRUN_SH} $0 ${CTML_DP_RUN} --backend cpu --batch 4 --out part --stop-after 7 >/dev/null
   ${CTML_MPIRUN_SH} $0 train --resume part --backend cpu >/dev/null
   cut -d, -f1-4 full/loss.csv > a; cut -d, -f1-4 part/loss.csv > b; cmp a b
   cmp full/checkpoint.safetensors part/checkpoint.safetensors && echo resume-bit-identical
   set +e; $0 train --resume part --steps 30 --backend cpu; echo \"one process: exit $?\"
   ${CTML_MPIRUN_SH} $0 train --resume part --steps 30 --backend cpu --collective none; echo \"none: exit $?\"" $<TARGET_FILE:ctml_cli>)
set_tests_properties(dp_cli_resume PROPERTIES PASS_REGULAR_EXPRESSION
  "resume-bit-identical.*trained on 2 ranks; resume it under a launcher.*one process: exit 2.*none: exit [1-9]")
list(APPEND ctml_dp_tests dp_cli_resume)
# rank 1 is killed (SIGKILL) 2 s into a run of a few minutes; the job must end
# with an error naming it well before the run would.
add_test(NAME dp_cli_killed_rank COMMAND bash -c
  "d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d; start=$(date +%s)
   timeout 60 ${CTML_MPIRUN_SH} bash -c 'if [ \"\${OMPI_COMM_WORLD_RANK:-\$PMI_RANK}\" = 1 ]; then (sleep 2; kill -9 \$\$) & fi; exec \"\$0\" \"\$@\"' $0 ${CTML_DP_RUN} --steps 100000 --backend cpu --batch 4 --out run 2>&1 | tail -5
   rc=\${PIPESTATUS[0]}; echo \"exit $rc after $(( $(date +%s) - start )) s\"
   test $rc -ne 0 && test $rc -ne 124 && echo killed-rank-ended-the-job" $<TARGET_FILE:ctml_cli>)
set_tests_properties(dp_cli_killed_rank PROPERTIES PASS_REGULAR_EXPRESSION
  "rank 1.*(signal 9|Killed).*killed-rank-ended-the-job")
list(APPEND ctml_dp_tests dp_cli_killed_rank)
# With libmpi unreadable (a user and mount namespace binds /dev/null over it)
# the collective is absent with dlopen's reason and one-process training runs.
add_test(NAME dp_mpi_absent COMMAND bash -c
  "unshare -rm true 2>/dev/null || exit 77; lib=$(readlink -f ${ctml_mpi_library}); d=$(mktemp -d); trap 'rm -rf $d' EXIT
   unshare -rm bash -c \"mount --bind /dev/null $lib && $0 devices && cd $d && $0 ${CTML_DP_RUN} --steps 2 --backend cpu --batch 2 --out run\"" $<TARGET_FILE:ctml_cli>)
set_tests_properties(dp_mpi_absent PROPERTIES SKIP_RETURN_CODE 77 PASS_REGULAR_EXPRESSION
                     "collective mpi  absent: cannot load MPI: .*done: 2 steps")
list(APPEND ctml_dp_tests dp_mpi_absent)
set_tests_properties(${ctml_dp_tests} PROPERTIES TIMEOUT 90 LABELS dp)
