#!/usr/bin/env bash
# The README's test command: install dependencies, build Release, run the CTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Tests ON explicitly: run.sh may have configured the same build/ with them off.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DIGAN_BUILD_TESTS=ON
cmake --build build -j"$(nproc)"
cd build && ctest --output-on-failure -j"$(nproc)" -LE "slow|gpu" "$@"
