#!/usr/bin/env bash
# The README's run command: install dependencies, build Release, generate a landscape with the
# model shipped in models/. Configured as test.sh configures build/, so running one after the
# other rebuilds nothing that is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target igan
model=$(ls models/*.safetensors | head -1)
out=${1:-landscape.png}
./build/igan generate --model "$model" --seed 2 --width 1024 --height 256 --out "$out"
echo "landscape written to $(realpath "$out")"
