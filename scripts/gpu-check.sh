#!/usr/bin/env bash
# The GPU checks in one run, on a machine with an NVIDIA GPU and a CUDA build of PyTorch:
# builds igan against that PyTorch's LibTorch, runs the gpu-labelled tests, benchmarks both
# configs on the GPU and times an 8192x8192 paper-config render (goal: <= 10 s on one H100).
# Everything it measures lands in $OUT (default ./gpu-out).
#   DEPS_ROOT=DIR  a folder where igan's other -dev packages were unpacked (dpkg -x), for
#                  machines that lack them; its usr/ joins CMAKE_PREFIX_PATH.
set -euo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
prefix="$torch_prefix"
if [ -n "${DEPS_ROOT:-}" ]; then
    prefix="$prefix;$DEPS_ROOT/usr"
    # The unpacked .pc files say prefix=/usr: the sysroot moves them to DEPS_ROOT.
    export PKG_CONFIG_SYSROOT_DIR="$DEPS_ROOT"
    export PKG_CONFIG_PATH="$DEPS_ROOT/usr/lib/x86_64-linux-gnu/pkgconfig:$DEPS_ROOT/usr/share/pkgconfig"
    export LD_LIBRARY_PATH="$DEPS_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" --target igan igan_gpu_tests >"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log"; exit 1; }

(cd build-gpu && ctest -L gpu --output-on-failure) 2>&1 | tee "$out/ctest-gpu.log"

for config in tiny paper; do
    build-gpu/igan bench --device cuda --config "$config" --tile 1024 --no-rss --profile --json |
        tee "$out/bench-$config-cuda.json"
done

# The headline figure: an 8192x8192 paper-config canvas, PNG included (a random-weight model
# costs exactly what a trained one does).
build-gpu/igan init --config paper -o /tmp/paper.safetensors
start=$(date +%s.%N)
build-gpu/igan generate -m /tmp/paper.safetensors --device cuda --seed 1 --width 8192 \
    --height 8192 --tile 1024 -o /tmp/paper-8192.png
end=$(date +%s.%N)
echo "paper 8192x8192 on cuda: $(python3 -c "print(round($end - $start, 2))") s" | tee "$out/paper-8192.txt"
