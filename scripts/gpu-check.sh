#!/usr/bin/env bash
# The GPU checks in one run (docs/gpu.md), designed for <= 4 minutes on the GPU machine as it is
# (PyTorch in python3, CMake, ninja, g++, no -dev packages, no network): unpacks the Debian
# packages scripts/gpu-prep.sh gathered into gpu-carry/debs (carry that folder), builds igan
# against python3's LibTorch, runs the gpu-labelled tests, resumes the shipped checkpoint on the
# device, renders the 8192x8192 paper-config canvas (goal: <= 3 s on one H200), benchmarks both
# configs, each form of the up layers (IGAN_CUDA_UP) and each --precision, and the PNG encoder. Results: $OUT/steps.txt (each step's seconds and exit status) and
# $OUT/logs.tar.gz (every step's output; $OUT defaults to ./gpu-out).
#   IGAN_GPU_DRY_RUN=1  here, without a GPU: unpack, configure against the LibTorch CMake finds
#                       and compile the files that read the unpacked headers; nothing runs.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
start=$(date +%s)
log "unpack"
gpu_unpack
log "configure"
gpu_configure

if [ "${IGAN_GPU_DRY_RUN:-0}" = 1 ]; then
  # The objects that read the unpacked headers of PNG, JPEG and zlib (io/png) and OpenSSL
  # (io/hash), without precompiled headers so that nothing else is built first. (The others are
  # checked above: each found under $deps.)
  cmake "$build" -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON >>"$out/configure.log" 2>&1
  for obj in igan_io.dir/src/io/png.cpp.o igan_io.dir/src/io/hash.cpp.o; do
    log "compile $obj"
    cmake --build "$build" -j1 --target "CMakeFiles/$obj" >>"$out/build.log" 2>&1 ||
        { tail -30 "$out/build.log"; exit 1; }
  done
  log "dry run done in $(( $(date +%s) - start )) s"
  exit 0
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
log "build"
gpu_build igan igan_gpu_tests igan_png_bench
status=0
run() {  # run NAME SECONDS CMD...: output in $out/NAME.txt; a failure is recorded, not fatal
  local name=$1 limit=$2 t0 rc=0
  shift 2
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1 || rc=$?
  log "$name: rc $rc, $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s"
  [ $rc = 0 ] || status=1
}
# In order of importance; once the budget (IGAN_GPU_BUDGET_S, default 230 s from the start) is
# spent, the optional steps are skipped and say so.
within_budget() {
  [ $(( $(date +%s) - start )) -lt "${IGAN_GPU_BUDGET_S:-230}" ] && return 0
  log "skipped $1: budget spent"
  return 1
}
run ctest-gpu 120 ctest --test-dir "$build" -L gpu --output-on-failure
# The crash of issue 17: --resume of the shipped (LibTorch 1.13) checkpoint on CUDA.
rm -rf /tmp/igan-resume /tmp/igan-photos
cp -r models/landscape-tiny-run /tmp/igan-resume
mkdir -p /tmp/igan-photos
"$build/igan" generate -m models/landscape-tiny.safetensors --seed 3 --width 512 --height 256 \
    -o /tmp/igan-photos/a.png >/dev/null 2>&1
step=$(ls /tmp/igan-resume/checkpoints | sed 's/step-0*//' | sort -n | tail -1)
run resume-shipped 60 "$build/igan" train --device cuda --resume --data /tmp/igan-photos \
    --out /tmp/igan-resume --batch 8 --iters $((step + 20)) --log-every 10 -q
tail -2 /tmp/igan-resume/log.jsonl >>"$out/resume-shipped.txt" 2>/dev/null
# The headline figure: an 8192x8192 paper-config canvas, PNG included (a random-weight model
# costs exactly what a trained one does).
"$build/igan" init --config paper -o /tmp/paper.safetensors
run paper-8192-tile1024 120 "$build/igan" generate -m /tmp/paper.safetensors --device cuda \
    --seed 1 --width 8192 --height 8192 --tile 1024 -o /tmp/paper-8192.png
within_budget bench-paper && run bench-paper-cuda 90 "$build/igan" bench --device cuda \
    --config paper --tile 1024 --no-rss --profile --json
# The up layers' other forms (bench-paper-cuda ran the default, phases): which one the default
# should be, from each run's "profile" (the "ts* up" layers) and fraction_of_peak.
for form in transpose taps; do
  within_budget "bench-paper-up-$form" && run "bench-paper-up-$form" 60 env IGAN_CUDA_UP=$form \
      "$build/igan" bench --device cuda --config paper --tile 1024 --no-rss --profile \
      --repetitions 2 --json
done
# Reduced precision: speed (its peak measured in the same precision) and the headline render.
for precision in tf32 bf16 fp16; do
  within_budget "bench-paper-$precision" && run "bench-paper-$precision" 60 "$build/igan" bench \
      --device cuda --config paper --tile 1024 --no-rss --profile --repetitions 2 \
      --precision $precision --json
done
for precision in tf32 bf16; do
  within_budget "paper-8192-tile1024-$precision" && run "paper-8192-tile1024-$precision" 120 \
      "$build/igan" generate -m /tmp/paper.safetensors --device cuda --precision $precision \
      --seed 1 --width 8192 --height 8192 --tile 1024 -o /tmp/paper-8192-$precision.png
done
within_budget png-bench && run png-bench 60 "$build/igan_png_bench" \
    --benchmark_filter='/(1|2|16)/' --benchmark_min_time=0.5
within_budget bench-tiny && run bench-tiny-cuda 60 "$build/igan" bench --device cuda \
    --config tiny --tile 1024 --no-rss --json
within_budget paper-8192-tile2048 && run paper-8192-tile2048 120 "$build/igan" generate \
    -m /tmp/paper.safetensors --device cuda --seed 1 --width 8192 --height 8192 --tile 2048 \
    -o /tmp/paper-8192.png
log "done in $(( $(date +%s) - start )) s"
exit $status
