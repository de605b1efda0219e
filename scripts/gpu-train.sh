#!/usr/bin/env bash
# A training run of N minutes on the GPU machine (docs/gpu.md): builds igan as
# scripts/gpu-check.sh does, trains on the photos scripts/gpu-prep.sh --with-photos shrank into
# gpu-carry/train with the packages of gpu-carry/train-debs (carry those two: with the debs of
# scripts/gpu-check.sh too they would not fit the 64 MiB), and brings the run back in $OUT:
# run.tar.gz (the last checkpoint, which resumes on CPU or CUDA, samples, log.jsonl,
# losses.svg), steps.txt and logs.tar.gz.
#   scripts/gpu-train.sh N [igan train options...]     e.g. 8 --config tiny --batch 32
# The run stops after N minutes (SIGTERM: igan train writes its checkpoint and exits), so leave
# the command about two minutes more than N for building and packing.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: $0 MINUTES [igan train options...]}
shift
export IGAN_GPU_DEBS=${IGAN_GPU_DEBS:-gpu-carry/train-debs}
source scripts/gpu-env.sh
data=${IGAN_GPU_PHOTOS:-gpu-carry/train}
ls "$data"/*.jpg >/dev/null 2>&1 || { echo "no photos in $data: scripts/gpu-prep.sh --with-photos" >&2; exit 1; }
log "unpack"
gpu_unpack
log "configure"
gpu_configure -DIGAN_BUILD_TESTS=OFF -DIGAN_BUILD_SERVER=OFF -DIGAN_BUILD_EXPORT=OFF \
    -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
# IGAN_GPU_DRY_RUN=1: here, check that those packages configure, then stop.
[ "${IGAN_GPU_DRY_RUN:-0}" = 1 ] && { log "dry run: configured"; exit 0; }
log "build"
gpu_build igan
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
run=/tmp/igan-gpu-run
rm -rf "$run"
log "train for $minutes min"
timeout --signal=TERM --kill-after=60 "$((minutes * 60))" "$build/igan" train --device cuda \
    --data "$data" --out "$run" --iters 100000000 --checkpoint-every 2000 --sample-every 1000 \
    --keep 1 -q "$@" 2>&1 | tee "$out/train.txt"
rc=${PIPESTATUS[0]}
log "train rc $rc (124 or 143: stopped at the time limit)"
tail -3 "$run/log.jsonl" 2>/dev/null | tee -a "$out/train.txt"
tar -C "$(dirname "$run")" -czf "$results/run.tar.gz" "$(basename "$run")"
# Files come back up to 16 MB each: a larger run (paper's checkpoints) comes back in parts,
# joined here with `cat run.tar.gz.part* > run.tar.gz`.
if [ "$(stat -c %s "$results/run.tar.gz")" -gt $((15 << 20)) ]; then
  split -b 15M -d "$results/run.tar.gz" "$results/run.tar.gz.part" && rm "$results/run.tar.gz"
fi
