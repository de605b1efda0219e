#!/usr/bin/env bash
# The README's test command: install dependencies, build Release with the tests, run the CTest
# suite (all but the slow and gpu labels). Extra arguments go to ctest, e.g. `-L unit`.
# IGAN_BUILD_DIR: the build folder (default build); IGAN_BUILD_TARGETS: what to build (default
# everything).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${IGAN_BUILD_DIR:-build}
bash scripts/install-deps.sh
# pmtiles.js for the viewer's PMTiles browser test (npm registry, pinned integrity); the test
# skips without it.
bash scripts/fetch-pmtiles.sh >/dev/null || echo "warning: pmtiles.js not fetched; browser.pmtiles will skip" >&2
# Tests ON explicitly: a build/ configured with them off (by hand, or an older run.sh) has none.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DIGAN_BUILD_TESTS=ON
targets=()
for t in ${IGAN_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
cd "$build" && ctest --no-tests=error --output-on-failure -j"$(nproc)" -LE "slow|gpu" "$@"
