# SPDX-License-Identifier: MIT
# Kill and fault tests of the tool (tests/fault/): kill -9 during training and
# saves with bit-identical resume, a full filesystem, and hostile inputs.
set(CTML_FAULT_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fault)
set(CTML_FAULT_DATA ${CMAKE_CURRENT_SOURCE_DIR}/data/gpl-3.txt)
add_test(NAME fault_kill_resume COMMAND bash ${CTML_FAULT_DIR}/kill_resume.sh
                                        $<TARGET_FILE:ctml_cli> ${CTML_FAULT_DATA} 10)
add_test(NAME fault_full_disk COMMAND bash ${CTML_FAULT_DIR}/full_disk.sh
                                      $<TARGET_FILE:ctml_cli> ${CTML_FAULT_DATA})
set_tests_properties(fault_full_disk PROPERTIES SKIP_RETURN_CODE 77)
foreach(c non_utf8_data_path losslog_atomic long_paths unbounded_data huge_model
          cpu_never_opens_devices fifo_checkpoint)
  add_test(NAME fault_${c} COMMAND bash ${CTML_FAULT_DIR}/inputs.sh $<TARGET_FILE:ctml_cli>
                                        ${CTML_FAULT_DATA} ${c})
endforeach()
set_tests_properties(fault_kill_resume fault_full_disk PROPERTIES TIMEOUT 300)
