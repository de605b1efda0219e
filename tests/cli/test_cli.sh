#!/usr/bin/env bash
# CLI contract: exit codes (0 ok, 1 failure, 2 usage), clear one-line errors, no partial outputs,
# the PNG record, seeds. Usage: test_cli.sh path/to/igan
. "$(dirname "$0")/lib.sh" "$@"
M=$W/tiny.safetensors
expect 0 "init" -- "$IGAN" init --config tiny --seed 1 --out "$M"
expect 0 "version" -- "$IGAN" --version
grep -q "BLAS" "$W/out" && ok || bad "--version does not name the BLAS"
# git describe at build time (a tag, or the commit's hash), never "unknown"
grep -qE '^igan (v[0-9]|[0-9a-f]{7})' "$W/out" && ok || bad "--version: $(head -1 "$W/out")"
expect 0 "help" -- "$IGAN" generate --help
G="$IGAN generate --model $M --quiet"
expect 0 "generate" -- $G --seed 3 --width 40 --height 24 --out "$W/a.png"
[ -s "$W/a.png" ] && ok || bad "no PNG written"
grep -aq '"seed":3' "$W/a.png" && ok || bad "PNG lacks the generation record"
grep -aqE '"igan_version":"(v[0-9]|[0-9a-f]{7})' "$W/a.png" && ok || bad "PNG record lacks the version"
expect 0 "json record" -- $G --seed 3 --width 40 --height 24 --json --out "$W/b.png"
grep -q '"model_sha256"' "$W/out" && ok || bad "--json does not print the record"
cmp -s "$W/a.png" "$W/b.png" && ok || bad "same request, different bytes"
# --precision: fp32 is the default's bytes; bf16 runs on the CPU and its record says so; tf32 and
# fp16 need CUDA (exit 2, naming the fix).
expect 0 "precision fp32" -- $G --seed 3 --width 40 --height 24 --precision fp32 --out "$W/f32.png"
cmp -s "$W/a.png" "$W/f32.png" && ok || bad "--precision fp32 changed the bytes"
expect 0 "precision bf16" -- $G --seed 3 --width 40 --height 24 --precision bf16 --out "$W/bf16.png"
grep -aq '"precision":"bf16"' "$W/bf16.png" && ok || bad "the bf16 record lacks its precision"
for p in tf32 fp16; do
  expect 2 "precision $p on the CPU" -- $G --width 16 --height 16 --precision $p --out "$W/n.png"
  grep -q "needs --device cuda" "$W/err" && ok || bad "--precision $p: $(tail -1 "$W/err")"
done
expect 2 "unknown precision" -- $G --width 16 --height 16 --precision fp64 --out "$W/n.png"
expect 0 "psi" -- $G --seed 3 --width 40 --height 24 --psi 0.7 --out "$W/p1.png"
expect 0 "trunc, psi's older name" -- $G --seed 3 --width 40 --height 24 --trunc 0.7 --out "$W/p2.png"
cmp -s "$W/p1.png" "$W/p2.png" && ok || bad "--trunc is not --psi"
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
# A --config that is not a config is a usage error, like any bad option value.
expect 2 "unknown config" -- "$IGAN" init --config nosuch --out "$W/x.safetensors"
expect 2 "config not JSON" -- $G --config /etc/passwd --width 16 --height 16 --out "$W/n.png"
expect 2 "config device" -- timeout 20 $G --config /dev/zero --width 16 --height 16 --out "$W/n.png"

# Bad options: exit 2.
expect 2 "negative width" -- $G --width -5 --height 16 --out "$W/n.png"
expect 2 "absurd size" -- $G --width 1000000 --height 1000000 --out "$W/n.png"
expect 2 "bad tile" -- $G --width 16 --height 16 --tile 100000 --out "$W/n.png"
expect 2 "bad workers" -- $G --width 16 --height 16 --workers -1 --out "$W/n.png"
expect 2 "unknown flag" -- $G --width 16 --height 16 --bogus --out "$W/n.png"
expect 2 "missing dir" -- $G --width 16 --height 16 --out "$W/nodir/n.png"
expect 2 "bad seed list" -- $G --seeds 5-x --outdir "$W" --width 16 --height 16
expect 2 "no out" -- $G --width 16 --height 16
# An output directory that cannot take the file: a regular file (also as root), read-only
# (root bypasses permissions).
expect 2 "dir is a file" -- $G --width 16 --height 16 --out "$W/a.png/n.png"
mkdir "$W/ro" && chmod a-w "$W/ro"
if [ "$(id -u)" != 0 ]; then
  expect 2 "read-only dir" -- $G --width 16 --height 16 --out "$W/ro/n.png"
fi
[ -z "$(ls "$W" | grep -E '^n\.png|\.tmp')" ] && ok || bad "partial files left: $(ls "$W")"

# Applications: fuse, outpaint, inbetween run; bad inputs are usage errors.
expect 0 "fuse" -- "$IGAN" fuse --model "$M" --quiet --styles "1:0:0,2:48:0" --width 64 --height 24 --out "$W/f.png"
[ -s "$W/f.png" ] && ok || bad "fuse wrote nothing"
expect 0 "fuse, older syntax" -- "$IGAN" fuse --model "$M" --quiet --styles "1@0,0;2@48,0" --width 64 --height 24 --out "$W/f2.png"
cmp -s "$W/f.png" "$W/f2.png" && ok || bad "the two style-centre syntaxes rendered differently"
expect 2 "fuse bad styles" -- "$IGAN" fuse --model "$M" --quiet --styles "1@0" --width 64 --height 24 --out "$W/n.png"
expect 2 "fuse shared centre" -- "$IGAN" fuse --model "$M" --quiet --styles "1@0,0;2@0,0" --width 64 --height 24 --out "$W/n.png"
O="$IGAN outpaint --model $M --quiet --steps 3"
expect 0 "outpaint" -- $O --input "$W/a.png" --canvas 72x32+8+4 --samples 2 --out "$W/op.png"
[ -s "$W/op-0.png" ] && [ -s "$W/op-1.png" ] && ok || bad "outpaint samples missing"
# One record builder: an application's record is generate's (model, rectangle, psi) plus its own.
grep -aq '"application":"outpaint"' "$W/op-0.png" && grep -aq '"model_config":"tiny"' "$W/op-0.png" &&
  grep -aq '"width":72' "$W/op-0.png" && ok || bad "outpaint's record lacks generate's fields"
printf 'not an image' > "$W/broken.png"
expect 2 "outpaint broken image" -- $O --input "$W/broken.png" --canvas 72x32+8+4 --out "$W/n.png"
expect 2 "outpaint mask size" -- $O --input "$W/a.png" --mask "$W/f.png" --canvas 72x32+8+4 --out "$W/n.png"
expect 2 "outpaint canvas too small" -- $O --input "$W/a.png" --canvas 48x24+10+0 --out "$W/n.png"
expect 2 "outpaint bad canvas" -- $O --input "$W/a.png" --canvas 72x32 --out "$W/n.png"
expect 0 "inbetween" -- "$IGAN" inbetween --model "$M" --quiet --steps 3 --left "$W/a.png" --right "$W/b.png" --gap 16 --out "$W/ib.png"
[ -s "$W/ib.png" ] && ok || bad "inbetween wrote nothing"
expect 2 "inbetween missing image" -- "$IGAN" inbetween --model "$M" --quiet --left "$W/nosuch.png" --right "$W/b.png" --gap 16 --out "$W/n.png"
[ -z "$(ls "$W" | grep -E '^n\.png|\.tmp')" ] && ok || bad "partial files left: $(ls "$W")"

# Hostile model files: exit 1 at once, naming the problem (devices and sparse files are not
# read whole; NaN weights, overlapping tensors and unknown format versions are refused).
mkfifo "$W/fifo.safetensors"
expect 1 "model /dev/zero" -- timeout 20 "$IGAN" inspect /dev/zero
expect 1 "model FIFO" -- timeout 20 "$IGAN" inspect "$W/fifo.safetensors"
python3 - "$M" "$W" <<'PY'
import json, math, struct, sys
src, w = sys.argv[1:]
raw = open(src, 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]
def write(name, mutate):
    h = json.loads(raw[8:8+n]); data = bytearray(raw[8+n:]); mutate(h, data)
    hdr = json.dumps(h).encode(); hdr += b' ' * (-len(hdr) % 8)
    open(w + '/' + name, 'wb').write(struct.pack('<Q', len(hdr)) + hdr + bytes(data))
names = sorted(k for k in json.loads(raw[8:8+n]) if k != '__metadata__')
def nan(h, d): b = h[names[0]]['data_offsets'][0]; d[b:b+4] = struct.pack('<f', math.nan)
def huge(h, d):
    for k in names:
        b, e = h[k]['data_offsets']; d[b:e] = struct.pack('<f', 1e38) * ((e - b) // 4)
def overlap(h, d): h[names[1]]['data_offsets'] = [x - 4 for x in h[names[1]]['data_offsets']]
def version(h, d): h['__metadata__']['igan.format_version'] = '99'
def sparse(h, d): d.extend(bytes(64 << 20))
for name, f in [('nan', nan), ('huge', huge), ('overlap', overlap), ('v99', version),
                ('sparse', sparse)]:
    write(name + '.safetensors', f)
PY
for f in nan overlap v99 sparse; do
  expect 1 "model $f" -- "$IGAN" inspect "$W/$f.safetensors"
done
grep -q "after the last tensor" "$W/err" && ok || bad "trailing bytes not named"
expect 1 "NaN weights" -- "$IGAN" generate --quiet --model "$W/nan.safetensors" --width 16 --height 16 --out "$W/n.png"
grep -q "NaN or infinite values (structure_synthesizer" "$W/err" && ok || bad "NaN tensor not named"
expect 1 "overflowing weights" -- "$IGAN" generate --quiet --model "$W/huge.safetensors" --width 16 --height 16 --out "$W/n.png"
grep -q "NaN or infinite pixels" "$W/err" && ok || bad "overflow not named"
expect 1 "format version" -- "$IGAN" generate --quiet --model "$W/v99.safetensors" --width 16 --height 16 --out "$W/n.png"

# Outputs that are not regular files (a FIFO here; /dev/null as root) are refused, not replaced.
mkfifo "$W/fifo.png"
expect 2 "FIFO output" -- $G --seed 1 --width 16 --height 16 --out "$W/fifo.png"
[ -p "$W/fifo.png" ] && ok || bad "the FIFO was replaced by a file"
grep -q "it is a FIFO" "$W/err" && ok || bad "FIFO output not named"

# Numbers: seed lists and seeds are parsed strictly, without wrapping or expanding first.
for spec in "-5--1" "-2--1" "0-100000" "1-2,x"; do
  expect 2 "seeds $spec" -- timeout 20 $G --seeds="$spec" --outdir "$W/s" --width 16 --height 16
done
for s in 99999999999999999999999 18446744073709551615 -5; do
  expect 2 "seed $s" -- $G --seed "$s" --width 16 --height 16 --out "$W/n.png"
  grep -q "9223372036854775807" "$W/err" && ok || bad "seed $s: valid range not given"
done
expect 0 "seed 010 is decimal" -- $G --seed 010 --width 16 --height 16 --json --out "$W/d.png"
grep -q '"seed":10,' "$W/out" && ok || bad "--seed 010 was not read as 10"
expect 2 "absurd threads" -- "$IGAN" --threads 2147483647 generate --model "$M" --width 16 --height 16 --out "$W/n.png"
expect 2 "width beyond int64" -- $G --width 99999999999999999999 --height 16 --out "$W/n.png"
expect 0 "outdir created" -- $G --seeds 1 --outdir "$W/new/dir" --width 16 --height 16
[ -f "$W/new/dir/seed0001.png" ] && ok || bad "--outdir was not created"

# Signals: the temporary output goes, the exit status is 128 + n.
for sig in TERM INT HUP; do
  # A background job ignores SIGINT unless reset.
  env --default-signal=INT "$IGAN" --threads 1 generate --model "$M" --quiet --seed 1 \
    --width 4096 --height 2048 --out "$W/sig.png" 2>"$W/err" &
  pid=$!
  for _ in $(seq 1 400); do ls "$W"/sig.png.tmp-* >/dev/null 2>&1 && break; sleep 0.05; done
  ls "$W"/sig.png.tmp-* >/dev/null 2>&1 && ok || bad "SIG$sig: no temporary file seen"
  kill -s "$sig" "$pid"; wait "$pid"; rc=$?
  want=$((128 + $(kill -l "$sig")))
  [ "$rc" = "$want" ] && ok || bad "SIG$sig: exit $rc, want $want"
  [ -z "$(ls "$W" | grep '^sig\.png')" ] && ok || bad "SIG$sig left $(ls "$W" | grep '^sig')"
done

# Inversion inputs: slivers and extreme aspect ratios are refused before any work (exit 2);
# inputs that are not images are usage errors like any bad input (docs/cli.md, exit codes).
$G --seed 1 --width 2000 --height 1 --out "$W/wide.png" && $G --seed 1 --width 1 --height 2000 --out "$W/tall.png"
for f in wide tall; do
  expect 2 "inbetween $f" -- timeout 60 "$IGAN" inbetween --model "$M" --quiet --steps 2 --left "$W/$f.png" --right "$W/b.png" --gap 8 --out "$W/n.png"
  grep -q "aspect ratio" "$W/err" && ok || bad "inbetween $f: no reason given"
  expect 2 "outpaint $f" -- timeout 60 "$IGAN" outpaint --model "$M" --quiet --steps 2 --input "$W/$f.png" --canvas 2100x2100+0+0 --out "$W/n.png"
done
expect 2 "inbetween broken image" -- "$IGAN" inbetween --model "$M" --quiet --left "$W/broken.png" --right "$W/b.png" --gap 16 --out "$W/n.png"
expect 2 "outpaint broken mask" -- $O --input "$W/a.png" --mask "$W/broken.png" --canvas 72x32+8+4 --out "$W/n.png"
expect 2 "outpaint device input" -- timeout 20 $O --input /dev/zero --canvas 72x32+8+4 --out "$W/n.png"
mkdir "$W/ev" && cp "$W/a.png" "$W/ev/a.png" && cp "$W/broken.png" "$W/ev/z.png"
expect 2 "eval corrupt image" -- "$IGAN" eval --fake "$W/ev" --real "$W/ev"
grep -q "z.png" "$W/err" && ok || bad "eval does not name the corrupt image"
expect 2 "eval fp16 on the CPU" -- "$IGAN" eval --model "$M" --real "$W/ev" --precision fp16
grep -q "needs --device cuda" "$W/err" && ok || bad "eval --precision fp16: $(tail -1 "$W/err")"
[ -z "$(ls "$W" | grep -E '^n\.png|\.tmp')" ] && ok || bad "partial files left: $(ls "$W")"

summary "CLI contract"
