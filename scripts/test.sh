#!/usr/bin/env bash
# The README's test command: install dependencies, build Release, run the CTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
cd build && ctest --output-on-failure -j"$(nproc)" -LE "slow|gpu" "$@"
