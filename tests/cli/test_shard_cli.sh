#!/usr/bin/env bash
# Sharded rendering: n shards (igan generate --shard i/n) merged by igan merge equal one render
# byte for byte; bad shard specs and incomplete or mixed part sets are usage errors.
# Usage: test_shard_cli.sh path/to/igan
. "$(dirname "$0")/lib.sh" "$@"
M=$W/tiny.safetensors
expect 0 "init" -- "$IGAN" init --config tiny --seed 1 --out "$M"
G="$IGAN generate --model $M --quiet --threads 2"

# 200x300 in 64-px tiles: 5 tile rows, 4 columns (the last ones partial).
A="--seed 5 --x -37 --width 200 --height 300 --tile 64 --batch 2"
expect 0 "one render" -- $G $A --out "$W/full.png"
for n in 2 7; do
  parts=()
  for ((i = n - 1; i >= 0; i--)); do
    expect 0 "shard $i/$n" -- $G $A --shard $i/$n --out "$W/p$i-of-$n.part"
    parts+=("$W/p$i-of-$n.part")
  done
  expect 0 "merge $n" -- "$IGAN" merge -q -o "$W/merged$n.png" "${parts[@]}"
  cmp -s "$W/full.png" "$W/merged$n.png" && ok || bad "$n shards merged differ from one render"
done

# Narrower than a tile: the last shard is shorter than a tile and must keep the render's tile.
B="--seed 9 --width 40 --height 150 --tile 64"
expect 0 "narrow render" -- $G $B --out "$W/narrow.png"
for i in 0 1 2; do expect 0 "narrow shard $i" -- $G $B --shard $i/3 --out "$W/n$i.part"; done
expect 0 "narrow merge" -- "$IGAN" merge -q -o "$W/narrow-merged.png" "$W"/n[012].part
cmp -s "$W/narrow.png" "$W/narrow-merged.png" && ok || bad "narrow shards differ"

# torchrun's environment.
for r in 0 1; do
  expect 0 "auto shard $r" -- env RANK=$r WORLD_SIZE=2 $G $A --shard auto --out "$W/t$r.part"
done
expect 0 "merge auto" -- "$IGAN" merge -q -o "$W/auto.png" "$W/t0.part" "$W/t1.part"
cmp -s "$W/full.png" "$W/auto.png" && ok || bad "torchrun shards differ"

# Errors: exit 2 and no output.
expect 2 "bad spec" -- $G $A --shard 2/2 --out "$W/x.part"
expect 2 "bad spec text" -- $G $A --shard one/two --out "$W/x.part"
expect 2 "missing part" -- "$IGAN" merge -o "$W/m.png" "$W/p0-of-7.part" "$W/p2-of-7.part"
grep -q "missing" "$W/err" && ok || bad "missing part not named"
expect 2 "repeated part" -- "$IGAN" merge -o "$W/m.png" "$W/t0.part" "$W/t0.part"
expect 2 "mixed renders" -- "$IGAN" merge -o "$W/m.png" "$W/t0.part" "$W/n1.part"
expect 2 "not a part" -- "$IGAN" merge -o "$W/m.png" "$W/full.png"
[ ! -e "$W/m.png" ] && ok || bad "a failed merge left an output"

summary "shard CLI"
