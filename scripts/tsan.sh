#!/usr/bin/env bash
# ThreadSanitizer run of the concurrent parts: the renderer's workers, the tile store's single
# flight, the server's render pool and HTTP threads, and the banded PNG encoder. Builds the unit
# tests with -DIGAN_SANITIZE=thread in a folder of their own (a long first build) and runs those
# tests; a race outside LibTorch/OpenBLAS (tests/tsan.supp) fails the run.
# IGAN_TSAN_BUILD_DIR: the build folder (default build-tsan); IGAN_TSAN_JOBS: build jobs (default
# nproc). Extra arguments go to the test binary, e.g. --gtest_filter='TileStore.*'.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${IGAN_TSAN_BUILD_DIR:-build-tsan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIGAN_SANITIZE=thread \
      -DIGAN_BUILD_TESTS=ON -DIGAN_BUILD_SERVER=ON -DIGAN_BUILD_EXPORT=OFF
cmake --build "$build" -j"${IGAN_TSAN_JOBS:-$(nproc)}" --target igan_unit_tests
# The first unsuppressed report ends the run with TSan's exit code (66).
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
exec "$build/tests/igan_unit_tests" "$@" \
    --gtest_filter='Render.*:RenderPool.*:TileCache.*:TileStore.*:Serve*.*:ServerTest.*:PngEncode.*'
