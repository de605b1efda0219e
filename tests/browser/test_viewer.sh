#!/usr/bin/env bash
# The web viewer in headless Chromium: the page loads, tiles arrive, a pan fetches more, no tile
# errors, a view shared with fusion centres restores them, and the screenshot is not blank. Exit 77 (CTest: skipped) without Chromium.
# Usage: test_viewer.sh path/to/igan
set -u
IGAN=$1
CHROME=""
for c in chromium chromium-browser google-chrome; do
  command -v "$c" >/dev/null 2>&1 && { CHROME=$(command -v "$c"); break; }
done
if [ -z "$CHROME" ]; then
  echo "SKIP: no chromium on PATH (apt-get install chromium; scripts/install-deps.sh does)"
  exit 77
fi
W=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$W/serve.log" ] && tail -5 "$W/serve.log"; exit 1; }

"$IGAN" init --config tiny --seed 1 --out "$W/tiny.safetensors" >/dev/null 2>&1 || fail "init"
"$IGAN" serve --model "$W/tiny.safetensors" --host 127.0.0.1 --port 0 --tile-size 128 \
  >"$W/serve.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's#^serving on http://127.0.0.1:\([0-9]*\)/$#\1#p' "$W/serve.log")
  [ -n "$PORT" ] && break
  kill -0 $PID 2>/dev/null || fail "igan serve exited"
  sleep 0.1
done
[ -n "$PORT" ] || fail "igan serve did not start"
URL="http://127.0.0.1:$PORT/?pan=200,120#tiny/1/0/0/0"
# --virtual-time-budget: the page's clock runs only while no request is pending, so Chromium
# waits for every tile, then runs the page's pan, then waits for the new tiles.
chrome() {
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$W/profile" --window-size=480,360 \
    --virtual-time-budget=30000 "$@" 2>>"$W/chrome.log"
}
chrome --dump-dom "$URL" >"$W/dom.html" || fail "chromium --dump-dom failed ($(tail -2 "$W/chrome.log"))"
status=$(grep -o '<span id="status"[^>]*>' "$W/dom.html")
echo "status: $status"
echo "$status" | grep -q 'data-state="panned"' || fail "the page did not load and pan: $status"
tiles=$(echo "$status" | sed -n 's/.*data-tiles="\([0-9]*\)".*/\1/p')
[ "${tiles:-0}" -ge 6 ] || fail "only ${tiles:-0} tiles arrived"
echo "$status" | grep -q 'data-errors="0"' || fail "tile errors: $status"
# Fusion centres shared through the URL hash: markers placed, tiles requested with them.
FUSED="http://127.0.0.1:$PORT/#tiny/1/0/0/0/5:0:0,9:300:-20@64"
chrome --dump-dom "$FUSED" >"$W/fused.html" || fail "chromium --dump-dom of a fused view failed"
grep -q 'fuse=5:0:0,9:300:-20&amp;band=64' "$W/fused.html" ||
  fail "tiles of a shared fused view do not carry its centres"
markers=$(grep -o 'leaflet-interactive' "$W/fused.html" | wc -l)
[ "$markers" -eq 2 ] || fail "$markers fusion markers for 2 shared centres"
grep -q 'data-errors="0"' "$W/fused.html" || fail "tile errors in the fused view"
# Tiles come from the layer's TileJSON: its xyz template, native zoom 4.
grep -q '/tiles/tiny/1/xyz/4/' "$W/dom.html" || fail "tiles do not follow the TileJSON template"
# 360-degree mode shared through the hash: tiles of the cyclic canvas, the view inside one period.
WRAP="http://127.0.0.1:$PORT/?pan=-300,0#tiny/1/0/100/0/c256"
chrome --dump-dom "$WRAP" >"$W/wrap.html" || fail "chromium --dump-dom of a 360-degree view failed"
grep -q 'cyclic=256' "$W/wrap.html" || fail "tiles of a 360-degree view lack cyclic=256"
grep -q 'data-errors="0"' "$W/wrap.html" || fail "tile errors in the 360-degree view"
grep -q 'data-state="panned"' "$W/wrap.html" || fail "the 360-degree view did not pan"
# The pan left the view at x = 100 - 300 < 0: it wrapped back by one period, so the left edge of
# the 480-px-wide view (the download link's x) is within [-240, 16).
left=$(grep -o 'id="download" href="[^"]*"' "$W/wrap.html" | sed -n 's/.*[?&;]x=\(-\{0,1\}[0-9]*\).*/\1/p')
[ -n "$left" ] && [ "$left" -ge -240 ] && [ "$left" -lt 16 ] ||
  fail "the 360-degree view did not wrap into one period (left edge x=${left:-none})"
chrome --screenshot="$W/shot.png" "$URL" >/dev/null || fail "chromium --screenshot failed"
python3 - "$W/shot.png" <<'PY' || fail "the screenshot is blank"
# Decodes the PNG (8-bit RGB/RGBA, standard filters) and checks the map area has varied pixels.
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w = 8, b'', 0
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        assert depth == 8 and ctype in (2, 6), (depth, ctype)
        bpp = 3 if ctype == 2 else 4
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
colours = set()
for y in range(h // 4, h, 7):  # below the toolbar
    for x in range(0, w, 7):
        colours.add(bytes(rows[y][x * bpp:x * bpp + 3]))
print('distinct colours in the map area:', len(colours))
sys.exit(0 if len(colours) > 200 else 1)
PY
kill -TERM $PID; wait $PID; rc=$?
[ $rc = 0 ] || fail "igan serve exited $rc on SIGTERM"
PID=""

# Previews: a model with a coarse student at -3 that --coarse auto does not take (99 dB): the
# zoomed-out view paints the student's tiles at once, marked as previews, and once the server
# has made the exact tiles a second visit with the same browser cache shows no preview (the
# previews' no-cache made the browser revalidate).
"$IGAN" fit-coarse -q -m "$W/tiny.safetensors" --student --student-levels -3 --student-samples 2 \
  --held-out 0 --student-side 4 --student-steps 2 >/dev/null 2>&1 || fail "fit-coarse --student"
"$IGAN" serve --model "$W/tiny.safetensors" --host 127.0.0.1 --port 0 --tile-size 32 \
  --min-zoom -3 --coarse-min-psnr 99 >"$W/serve.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's#^serving on http://127.0.0.1:\([0-9]*\)/$#\1#p' "$W/serve.log")
  [ -n "$PORT" ] && break
  kill -0 $PID 2>/dev/null || fail "igan serve exited"
  sleep 0.1
done
[ -n "$PORT" ] || fail "igan serve did not start"
ZOOMED="http://127.0.0.1:$PORT/#tiny/1/-3/0/0"
chrome --window-size=96,96 --dump-dom "$ZOOMED" >"$W/zoomed.html" || fail "chromium --dump-dom of a zoomed-out view failed"
status=$(grep -o '<span id="status"[^>]*>' "$W/zoomed.html")
previews=$(echo "$status" | sed -n 's/.*data-previews="\([0-9]*\)".*/\1/p')
[ "${previews:-0}" -ge 1 ] || fail "no preview tiles at z = -3: $status"
echo "$status" | grep -q 'data-errors="0"' || fail "tile errors in the zoomed-out view: $status"
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {printf "%d", $2}'; }
for _ in $(seq 1 600); do
  [ "$(metric igan_refine_waiting)" = 0 ] && [ "$(metric igan_refine_done)" -ge "$previews" ] && break
  sleep 0.1
done
[ "$(metric igan_refine_done)" -ge "$previews" ] || fail "the previews were not refined in 60 s"
chrome --window-size=96,96 --dump-dom "$ZOOMED" >"$W/zoomed2.html" || fail "chromium --dump-dom (second visit) failed"
status2=$(grep -o '<span id="status"[^>]*>' "$W/zoomed2.html")
echo "$status2" | grep -q 'data-previews="0"' || fail "previews still shown after refinement: $status2"
echo "$status2" | grep -q 'data-errors="0"' || fail "tile errors on the second visit: $status2"
kill -TERM $PID; wait $PID; rc=$?
[ $rc = 0 ] || fail "igan serve exited $rc on SIGTERM"
PID=""
echo "ok: viewer loaded, panned, $tiles tiles, screenshot not blank; $previews previews at z = -3, refined"

