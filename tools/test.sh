#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures, builds everything and runs the whole test suite (ctest over the cmocka suites).
# BUILD_DIR picks the build folder (default: build); CTML_CMAKE_ARGS adds
# configure options (e.g. "-DCTML_CUDA=ON -DCTML_OPENCL=ON"). Extra arguments go to ctest,
# e.g. tools/test.sh -R laws. A selection that matches no test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
read -r -a extra <<<"${CTML_CMAKE_ARGS:-}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${extra[@]+"${extra[@]}"}
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure --no-tests=error -j"$(nproc)" "$@"
