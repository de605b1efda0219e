#!/usr/bin/env bash
# Training throughput (not a test): a fresh run of ITERS iterations per config at batch 16 on
# the landscape photos, reporting steady-state iterations/s from the run's log.jsonl (the first
# logged interval, which includes warm-up, is skipped). Prints one JSON line per config.
# Usage: bench/train_speed.sh [igan] [data dir]   (env: CONFIGS="tiny paper" BATCH=16 THREADS=2
#        ITERS_tiny=40 ITERS_paper=4)
set -euo pipefail
IGAN=${1:-build/igan}
DATA=${2:-data-cache/landscapes/train}
CONFIGS=${CONFIGS:-tiny paper} BATCH=${BATCH:-16} THREADS=${THREADS:-2}
[ -d "$DATA" ] || { echo "no photos in $DATA: run scripts/fetch-landscapes.sh" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for config in $CONFIGS; do
  var=ITERS_$config; iters=${!var:-$([ "$config" = paper ] && echo 4 || echo 40)}
  every=$(( iters / 4 > 0 ? iters / 4 : 1 ))
  start=$(date +%s%N)
  "$IGAN" train --data "$DATA" --config "$config" --batch "$BATCH" --threads "$THREADS" --seed 1 \
    --iters "$iters" --log-every "$every" --sample-every 1000000 --checkpoint-every 1000000 \
    --out "$W/$config" --quiet >/dev/null
  wall=$(( ($(date +%s%N) - start) / 1000000 ))
  python3 - "$W/$config/log.jsonl" "$config" "$BATCH" "$THREADS" "$iters" "$wall" <<'PY'
import json, sys
path, config, batch, threads, iters, wall = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
steady = [r["it_per_s"] for r in rows[1:]] or [r["it_per_s"] for r in rows]
print(json.dumps({"config": config, "batch": int(batch), "threads": int(threads),
                  "iters": int(iters), "it_per_s": sum(steady) / len(steady),
                  "wall_s_including_startup": float(wall) / 1000}))
PY
done
