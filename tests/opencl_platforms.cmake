# SPDX-License-Identifier: MIT
# The OpenCL suite on two implementations: PoCL (the system's ICD) and Intel's
# CPU runtime, which tools/install-deps.sh installs under .deps/ with an ICD
# vendors directory naming both (read by the ICD loader through
# OCL_ICD_VENDORS). See docs/opencl-platforms.md.
# Included after the block that sets ENVIRONMENT on every test: the tests here
# append to it.
if(NOT CTML_WITH_OPENCL)
  return()
endif()

option(CTML_REQUIRE_INTEL_OPENCL
       "Register test_cross_opencl_intel even without Intel's OpenCL runtime, failing" OFF)
set(CTML_OCL_VENDORS_DIR "${PROJECT_SOURCE_DIR}/.deps/ocl-vendors" CACHE PATH
    "ICD vendors directory naming PoCL and Intel's OpenCL runtime (tools/install-deps.sh)")
# A non-empty CTML_REQUIRE_INTEL_OPENCL in the environment of the configure step
# requires it too (for scripts that cannot pass -D).
set(ctml_require_intel ${CTML_REQUIRE_INTEL_OPENCL})
if("$ENV{CTML_REQUIRE_INTEL_OPENCL}")
  set(ctml_require_intel ON)
endif()

# Intel's runtime counts as installed when intel.icd names a library that exists.
set(ctml_intel_icd "${CTML_OCL_VENDORS_DIR}/intel.icd")
set(ctml_intel_lib "")
set(ctml_intel_missing "")
if(EXISTS "${ctml_intel_icd}")
  file(STRINGS "${ctml_intel_icd}" ctml_intel_lib LIMIT_COUNT 1)
  if(NOT EXISTS "${ctml_intel_lib}")
    set(ctml_intel_missing "${ctml_intel_icd} names ${ctml_intel_lib}, which does not exist")
  endif()
else()
  set(ctml_intel_missing "no ${ctml_intel_icd}")
endif()
file(GLOB ctml_pocl_icd "${CTML_OCL_VENDORS_DIR}/pocl*.icd")

set(ctml_both_env "OCL_ICD_VENDORS=${CTML_OCL_VENDORS_DIR}")

if(ctml_intel_missing STREQUAL "")
  message(STATUS "ctml: OpenCL tests on Intel's runtime: ${ctml_intel_lib}")
  add_test(NAME test_cross_opencl_intel COMMAND test_cross opencl)
  # A platform that fails to load leaves the backend absent, and test_cross then
  # skips every test: that output fails these tests.
  set(ctml_absent_fails "skipped \\(opencl absent\\)")
  set_tests_properties(test_cross_opencl_intel PROPERTIES TIMEOUT 600
    ENVIRONMENT "${CTML_TEST_ENV};${ctml_both_env};CTML_OPENCL_PLATFORM=Intel"
    FAIL_REGULAR_EXPRESSION "${ctml_absent_fails}")
  if(ctml_pocl_icd)
    # Both implementations are visible through the directory: name each one.
    set_property(TEST test_cross_opencl APPEND PROPERTY ENVIRONMENT
                 "${ctml_both_env}" "CTML_OPENCL_PLATFORM=Portable")
    set_property(TEST test_cross_opencl PROPERTY FAIL_REGULAR_EXPRESSION "${ctml_absent_fails}")
    # 'ctml devices' lists both platforms.
    add_test(NAME cli_devices_opencl_platforms COMMAND ctml_cli devices)
    set_tests_properties(cli_devices_opencl_platforms PROPERTIES
      ENVIRONMENT "${CTML_TEST_ENV};${ctml_both_env}"
      PASS_REGULAR_EXPRESSION
        "platform [0-9]+ 'Intel\\(R\\) OpenCL'[^\n]*\n[^\n]*platform [0-9]+ 'Portable Computing Language'|platform [0-9]+ 'Portable Computing Language'[^\n]*\n[^\n]*platform [0-9]+ 'Intel\\(R\\) OpenCL'")
    # Each platform builds and reuses its own program-cache entry in a shared
    # cache directory, with the same results; with the two entries swapped,
    # each platform refuses the other's binary and rebuilds its own.
    add_test(NAME opencl_cache_per_platform COMMAND bash -c [=[
set -euo pipefail
export CTML_OPENCL_CACHE="$1/opencl-cache-platforms"
rm -rf "$CTML_OPENCL_CACHE"
demo() { CTML_OPENCL_PLATFORM=$1 "$0" demo --backend opencl --json; }
p1=$(demo Portable); i1=$(demo Intel)
n=$(ls "$CTML_OPENCL_CACHE"/*.clbin | wc -l)
[ "$n" = 2 ] || { echo "expected one cache entry per platform, found $n"; exit 1; }
touch -d '2000-01-01' "$CTML_OPENCL_CACHE"/*.clbin
p2=$(demo Portable); i2=$(demo Intel)
[ "$p1" = "$p2" ] && [ "$i1" = "$i2" ] || { echo "results changed with the cache"; exit 1; }
if find "$CTML_OPENCL_CACHE" -name '*.clbin' -newermt '2001-01-01' | grep -q .; then
  echo "a platform rewrote its entry instead of loading it"; exit 1
fi
e=("$CTML_OPENCL_CACHE"/*.clbin)
mv "${e[0]}" "$CTML_OPENCL_CACHE/swap" && mv "${e[1]}" "${e[0]}" && mv "$CTML_OPENCL_CACHE/swap" "${e[1]}"
p3=$(demo Portable); i3=$(demo Intel)
[ "$p1" = "$p3" ] && [ "$i1" = "$i3" ] || { echo "results changed with swapped entries"; exit 1; }
n=$(find "$CTML_OPENCL_CACHE" -name '*.clbin' -newermt '2001-01-01' | wc -l)
[ "$n" = 2 ] || { echo "with swapped entries, $n of 2 were rebuilt"; exit 1; }
echo "one entry per platform, loaded only by its own platform"]=]
      $<TARGET_FILE:ctml_cli> ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(opencl_cache_per_platform PROPERTIES
      ENVIRONMENT "${CTML_TEST_ENV};${ctml_both_env}")
  endif()
elseif(ctml_require_intel)
  message(STATUS "ctml: Intel's OpenCL runtime is missing (${ctml_intel_missing}); "
                 "test_cross_opencl_intel will fail (CTML_REQUIRE_INTEL_OPENCL)")
  add_test(NAME test_cross_opencl_intel COMMAND ${CMAKE_COMMAND} -E echo
    "test_cross_opencl_intel: Intel's OpenCL runtime is not installed (${ctml_intel_missing} at"
    "configure time); run tools/install-deps.sh, then configure again")
  set_tests_properties(test_cross_opencl_intel PROPERTIES
    FAIL_REGULAR_EXPRESSION "is not installed")
else()
  message(STATUS "ctml: OpenCL tests on Intel's runtime not registered (${ctml_intel_missing}; "
                 "tools/install-deps.sh installs it)")
endif()
