#!/usr/bin/env bash
# `igan train` from the command line: a run, --resume, SIGINT ends with a checkpoint (exit 0),
# kill -9 leaves a loadable checkpoint, bad input exits 1/2. Usage: test_train_cli.sh igan
. "$(dirname "$0")/lib.sh" "$@"
PID=
cleanup() {
  [ -n "$PID" ] && kill $PID 2>/dev/null
  mountpoint -q "$W/full" 2>/dev/null && umount "$W/full"
}
"$IGAN" init --config tiny --seed 2 --out "$W/m.safetensors" >/dev/null
mkdir "$W/data"
for s in 1 2 3; do
  "$IGAN" generate --model "$W/m.safetensors" --seed $s --width 160 --height 120 --quiet \
    --out "$W/data/$s.png" >/dev/null
done
T="$IGAN train --data $W/data --config tiny --batch 2 --threads 2 --quiet --out $W/run"
$T --iters 2 >"$W/log1" 2>&1 && ok || bad "train --iters 2: $(tail -1 "$W/log1")"
[ -f "$W/run/checkpoints/step-00000002/G_ema.safetensors" ] && ok || bad "no checkpoint at step 2"
[ -s "$W/run/log.jsonl" ] && ok || bad "no log.jsonl"
$T --iters 4 --resume >"$W/log2" 2>&1 && ok || bad "resume: $(tail -1 "$W/log2")"
[ -f "$W/run/checkpoints/step-00000004/trainer_state.json" ] && ok || bad "resume did not reach 4"
grep -q '"step": 4' "$W/run/checkpoints/step-00000004/trainer_state.json" && ok || bad "state step"
# A checkpoint is a model: it generates.
"$IGAN" generate --model "$W/run/checkpoints/step-00000004/G_ema.safetensors" --seed 1 \
  --width 64 --height 32 --quiet --out "$W/g.png" >/dev/null 2>&1 && ok || bad "checkpoint does not generate"

# SIGINT: checkpoint and exit 0.
$T --iters 100000 --resume --checkpoint-every 100000 >"$W/log3" 2>&1 &
PID=$!
sleep 6
kill -INT $PID
wait $PID; rc=$?
[ "$rc" = 0 ] && ok || bad "SIGINT exit $rc"
last=$(ls "$W/run/checkpoints" | grep -v tmp | sort | tail -1)
[ "$last" != step-00000004 ] && ok || bad "SIGINT did not checkpoint (latest $last)"

# kill -9 while checkpointing every step: the latest complete checkpoint still loads.
$T --iters 100000 --resume --checkpoint-every 1 --keep 2 >"$W/log4" 2>&1 &
PID=$!
sleep 6
kill -9 $PID
wait $PID 2>/dev/null
$T --iters $(( $(ls "$W/run/checkpoints" | grep -v tmp | sort | tail -1 | sed 's/step-0*//') + 1 )) \
  --resume >"$W/log5" 2>&1 && ok || bad "resume after kill -9: $(tail -1 "$W/log5")"

# Bad input.
"$IGAN" train --data "$W/nothing" --config tiny --out "$W/r2" --iters 1 >/dev/null 2>"$W/err"
[ $? = 2 ] && ok || bad "missing data folder should exit 2 (a bad input folder is a usage error)"
"$IGAN" train --data "$W/data" --config tiny --batch 3 --out "$W/r3" --iters 1 >/dev/null 2>"$W/err"
[ $? = 2 ] && ok || bad "odd batch should exit 2"
"$IGAN" train --data "$W/data" --config tiny --out "$W/r4" --iters 1 --resume >/dev/null 2>"$W/err"
[ $? = 2 ] && ok || bad "--resume without checkpoint should exit 2"

# A disk that fills while checkpointing (a 6 MB tmpfs, where this user may mount one): exit 1
# with a message, not SIGABRT, and retries do not pile up temporary checkpoint folders.
mkdir "$W/full"
if mount -t tmpfs -o size=6M tmpfs "$W/full" 2>/dev/null; then
  for try in 1 2 3; do
    "$IGAN" train --data "$W/data" --config tiny --batch 2 --threads 2 --quiet --iters 2 \
      --out "$W/full/run" >/dev/null 2>"$W/err"; rc=$?
    [ $rc = 1 ] && ok || bad "disk full, try $try: exit $rc, want 1 ($(tail -1 "$W/err"))"
  done
  grep -q "No space left" "$W/err" && ok || bad "disk full not named: $(tail -1 "$W/err")"
  n=$(ls "$W/full/run/checkpoints" | grep -c tmp)
  [ "$n" -le 1 ] && ok || bad "$n temporary checkpoint folders left after 3 tries"
  umount "$W/full"
fi

summary "train CLI"
