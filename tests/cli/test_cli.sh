#!/usr/bin/env bash
# CLI contract: exit codes (0 ok, 1 failure, 2 usage), clear one-line errors, no partial outputs,
# the PNG record, seeds. Usage: test_cli.sh path/to/igan
. "$(dirname "$0")/lib.sh" "$@"
M=$W/tiny.safetensors
expect 0 "init" -- "$IGAN" init --config tiny --seed 1 --out "$M"
expect 0 "version" -- "$IGAN" --version
grep -q "BLAS" "$W/out" && ok || bad "--version does not name the BLAS"
expect 0 "help" -- "$IGAN" generate --help
G="$IGAN generate --model $M --quiet"
expect 0 "generate" -- $G --seed 3 --width 40 --height 24 --out "$W/a.png"
[ -s "$W/a.png" ] && ok || bad "no PNG written"
grep -aq '"seed":3' "$W/a.png" && ok || bad "PNG lacks the generation record"
expect 0 "json record" -- $G --seed 3 --width 40 --height 24 --json --out "$W/b.png"
grep -q '"model_sha256"' "$W/out" && ok || bad "--json does not print the record"
cmp -s "$W/a.png" "$W/b.png" && ok || bad "same request, different bytes"
for k in 1 3; do
  expect 0 "workers $k" -- "$IGAN" --threads 2 generate --model "$M" --quiet --seed 3 \
    --width 40 --height 24 --tile 8 --workers $k --out "$W/w$k.png"
done
cmp -s "$W/w1.png" "$W/w3.png" && ok || bad "--workers 3 changed the bytes"
expect 0 "random seed" -- "$IGAN" generate --model "$M" --seed -1 --width 16 --height 16 --out "$W/r.png"
grep -q "seed: [0-9]" "$W/err" && ok || bad "--seed -1 does not print the seed"
expect 0 "seed list" -- $G --seeds 2-4,9 --outdir "$W" --width 16 --height 16
for s in 0002 0003 0004 0009; do [ -f "$W/seed$s.png" ] && ok || bad "missing seed$s.png"; done

# Bad model files: exit 1, nothing written.
head -c 1000 "$M" > "$W/trunc.safetensors"
printf 'garbage' > "$W/garbage.safetensors"
"$IGAN" init --config golden --out "$W/golden.safetensors" >/dev/null 2>&1
python3 - "$W/golden.safetensors" "$W/wrongshape.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8+n])
cfg = json.loads(h['__metadata__']['igan.config']); cfg['generator']['local_latent_dim'] = 16
h['__metadata__']['igan.config'] = json.dumps(cfg)
hdr = json.dumps(h).encode(); hdr += b' ' * (-len(hdr) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hdr)) + hdr + raw[8+n:])
PY
for f in missing trunc garbage wrongshape; do
  expect 1 "model $f" -- "$IGAN" generate --model "$W/$f.safetensors" --quiet --seed 1 \
    --width 16 --height 16 --out "$W/bad-$f.png"
  [ ! -e "$W/bad-$f.png" ] && ok || bad "model $f left an output file"
done
grep -q "wrong shape" "$W/err" && ok || bad "shape mismatch not named"
expect 1 "unknown config" -- "$IGAN" init --config nosuch --out "$W/x.safetensors"

# Bad options: exit 2.
expect 2 "negative width" -- $G --width -5 --height 16 --out "$W/n.png"
expect 2 "absurd size" -- $G --width 1000000 --height 1000000 --out "$W/n.png"
expect 2 "bad tile" -- $G --width 16 --height 16 --tile 100000 --out "$W/n.png"
expect 2 "bad workers" -- $G --width 16 --height 16 --workers -1 --out "$W/n.png"
expect 2 "unknown flag" -- $G --width 16 --height 16 --bogus --out "$W/n.png"
expect 2 "missing dir" -- $G --width 16 --height 16 --out "$W/nodir/n.png"
expect 2 "bad seed list" -- $G --seeds 5-x --outdir "$W" --width 16 --height 16
expect 2 "no out" -- $G --width 16 --height 16
mkdir "$W/ro" && chmod a-w "$W/ro"
if [ "$(id -u)" != 0 ]; then
  expect 2 "read-only dir" -- $G --width 16 --height 16 --out "$W/ro/n.png"
fi
[ -z "$(ls "$W" | grep -E '^n\.png|\.tmp')" ] && ok || bad "partial files left: $(ls "$W")"

# Applications: fuse, outpaint, inbetween run; bad inputs are usage errors.
expect 0 "fuse" -- "$IGAN" fuse --model "$M" --quiet --styles "1@0,0;2@48,0" --width 64 --height 24 --out "$W/f.png"
[ -s "$W/f.png" ] && ok || bad "fuse wrote nothing"
expect 2 "fuse bad styles" -- "$IGAN" fuse --model "$M" --quiet --styles "1@0" --width 64 --height 24 --out "$W/n.png"
expect 2 "fuse shared centre" -- "$IGAN" fuse --model "$M" --quiet --styles "1@0,0;2@0,0" --width 64 --height 24 --out "$W/n.png"
O="$IGAN outpaint --model $M --quiet --steps 3"
expect 0 "outpaint" -- $O --input "$W/a.png" --canvas 72x32+8+4 --samples 2 --out "$W/op.png"
[ -s "$W/op-0.png" ] && [ -s "$W/op-1.png" ] && ok || bad "outpaint samples missing"
printf 'not an image' > "$W/broken.png"
expect 2 "outpaint broken image" -- $O --input "$W/broken.png" --canvas 72x32+8+4 --out "$W/n.png"
expect 2 "outpaint mask size" -- $O --input "$W/a.png" --mask "$W/f.png" --canvas 72x32+8+4 --out "$W/n.png"
expect 2 "outpaint canvas too small" -- $O --input "$W/a.png" --canvas 48x24+10+0 --out "$W/n.png"
expect 2 "outpaint bad canvas" -- $O --input "$W/a.png" --canvas 72x32 --out "$W/n.png"
expect 0 "inbetween" -- "$IGAN" inbetween --model "$M" --quiet --steps 3 --left "$W/a.png" --right "$W/b.png" --gap 16 --out "$W/ib.png"
[ -s "$W/ib.png" ] && ok || bad "inbetween wrote nothing"
expect 2 "inbetween missing image" -- "$IGAN" inbetween --model "$M" --quiet --left "$W/nosuch.png" --right "$W/b.png" --gap 16 --out "$W/n.png"
[ -z "$(ls "$W" | grep -E '^n\.png|\.tmp')" ] && ok || bad "partial files left: $(ls "$W")"

summary "CLI contract"
