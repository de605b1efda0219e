#!/usr/bin/env bash
# An archive of `igan export --format pmtiles` in the web viewer (?pmtiles=URL), read by the
# pmtiles JavaScript package over HTTP range requests from a static server, in headless
# Chromium: the native-resolution view's screenshot equals `igan generate`'s pixels for the same
# rectangle, and a coarse zoom loads without errors. Exit 77 (CTest: skipped) without Chromium
# or without pmtiles.js (scripts/fetch-pmtiles.sh; the test itself never touches the network).
# Usage: test_pmtiles.sh path/to/igan [repo root]
set -u
IGAN=$1
ROOT=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
PMTILES_JS=${IGAN_PMTILES_JS:-${IGAN_CACHE:-$ROOT/data-cache}/web/pmtiles-4.4.0/pmtiles.js}
LEAFLET=${IGAN_LEAFLET_DIR:-/usr/share/javascript/leaflet}
CHROME=""
for c in chromium chromium-browser google-chrome; do
  command -v "$c" >/dev/null 2>&1 && { CHROME=$(command -v "$c"); break; }
done
[ -n "$CHROME" ] || { echo "SKIP: no chromium on PATH"; exit 77; }
[ -f "$PMTILES_JS" ] || { echo "SKIP: $PMTILES_JS missing (run scripts/fetch-pmtiles.sh)"; exit 77; }
[ -f "$LEAFLET/leaflet.js" ] || { echo "SKIP: no Leaflet in $LEAFLET"; exit 77; }
W=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The site as igan serve lays it out, plus the archive and pmtiles.js.
S=$W/site
mkdir -p "$S/leaflet" "$S/pmtiles"
cp "$ROOT/web/index.html" "$S/index.html"
cp "$ROOT/web/viewer.js" "$S/viewer.js"
cp "$LEAFLET/leaflet.js" "$LEAFLET/leaflet.css" "$S/leaflet/"
cp "$PMTILES_JS" "$S/pmtiles/pmtiles.js"
"$IGAN" init --config tiny --seed 1 --out "$W/tiny.safetensors" >/dev/null 2>&1 || fail "init"
AREA="--model $W/tiny.safetensors --seed 5 --x 0 --y -160 --width 512 --height 320 --quiet"
"$IGAN" export $AREA --format pmtiles -o "$S/area.pmtiles" >/dev/null || fail "export"
# The same archive with lossless WebP tiles, where the build has libwebp: the viewer must show
# the same pixels.
ARCHIVES=area
if "$IGAN" export $AREA --format pmtiles --tile-format webp --webp-quality lossless \
    -o "$S/area-webp.pmtiles" >/dev/null 2>"$W/webp.err"; then
  ARCHIVES="area area-webp"
else
  grep -q "without libwebp" "$W/webp.err" || fail "export with WebP tiles: $(cat "$W/webp.err")"
  echo "note: built without libwebp, the WebP archive is not checked"
fi
"$IGAN" generate $AREA -o "$W/ref.png" >/dev/null || fail "generate"

# A static server with byte ranges (what S3 or any CDN offers), as PMTiles readers need.
python3 - "$S" >"$W/http.log" 2>&1 <<'PY' &
import functools, http.server, io, os, re, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        m = re.fullmatch(r'bytes=(\d+)-(\d*)', self.headers.get('Range', ''))
        path = self.translate_path(self.path)
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(m.group(1))
        end = min(size - 1, int(m.group(2)) if m.group(2) else size - 1)
        with open(path, 'rb') as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, size))
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        return io.BytesIO(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(
    ('127.0.0.1', 0), functools.partial(Handler, directory=sys.argv[1]))
print('port', server.server_address[1], flush=True)
server.serve_forever()
PY
PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$W/http.log")
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || fail "the static server did not start: $(cat "$W/http.log")"

chrome() {
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$W/profile" --window-size=800,600 \
    --force-device-scale-factor=1 --hide-scrollbars --virtual-time-budget=30000 "$@" \
    2>>"$W/chrome.log"
}
for NAME in $ARCHIVES; do
  echo "archive: $NAME.pmtiles"
  # Zoom 0 is the native resolution, centred on the rectangle's centre: the whole rectangle in view.
  URL="http://127.0.0.1:$PORT/?pmtiles=/$NAME.pmtiles#0/256/160"
  chrome --dump-dom "$URL" >"$W/dom.html" || fail "chromium --dump-dom failed"
  status=$(grep -o '<span id="status"[^>]*>' "$W/dom.html")
  echo "status: $status"
  echo "$status" | grep -q 'data-state="ready"' || fail "$NAME: the archive did not load: $status"
  tiles=$(echo "$status" | sed -n 's/.*data-tiles="\([0-9]*\)".*/\1/p')
  [ "${tiles:-0}" = 4 ] || fail "${tiles:-0} tiles arrived, not the 4 native ones"
  echo "$status" | grep -q 'data-errors="0"' || fail "tile errors: $status"
  chrome --dump-dom "http://127.0.0.1:$PORT/?pmtiles=/$NAME.pmtiles#-1/256/160" >"$W/coarse.html" ||
    fail "chromium --dump-dom of zoom -1 failed"
  grep -q 'data-state="ready"' "$W/coarse.html" && grep -q 'data-errors="0"' "$W/coarse.html" ||
    fail "zoom -1: $(grep -o '<span id="status"[^>]*>' "$W/coarse.html")"
  chrome --screenshot="$W/$NAME.png" "$URL" >/dev/null || fail "chromium --screenshot failed"
  # Where the rectangle lies on the screen depends on the window Chromium really gives the page:
  # find the view centre's pixels, then compare the whole rectangle.
  PYTHONPATH=$(dirname "$0") python3 - "$W/$NAME.png" "$W/ref.png" <<'PY' || fail "$NAME: the viewer's pixels differ from igan generate's"
import sys
import png_rows
sw, sh, sbpp, shot = png_rows.read(sys.argv[1])
rw, rh, _, ref = png_rows.read(sys.argv[2])
shot = [bytes(v for i, v in enumerate(row) if i % sbpp < 3) for row in shot]
needle = bytes(ref[160][3 * 256:3 * 272])
found = [(y, row.find(needle)) for y, row in enumerate(shot) if row.find(needle) % 3 == 0]
if len(found) != 1:
    sys.exit('the view centre appears %d times on the screen' % len(found))
dy, dx = found[0][0] - 160, found[0][1] // 3 - 256
compared = differing = 0
for y in range(max(40, dy), min(sh, dy + rh)):  # below the toolbar
    for x in range(max(0, dx), min(sw, dx + rw)):
        if x < 50 and y < 130:  # the zoom buttons
            continue
        compared += 1
        differing += shot[y][3 * x:3 * x + 3] != bytes(ref[y - dy][3 * (x - dx):3 * (x - dx) + 3])
print('compared %d pixels (the rectangle at %d,%d on a %dx%d screen): %d differ'
      % (compared, dx, dy, sw, sh, differing))
sys.exit(0 if differing == 0 and compared == rw * rh else 1)
PY
done
echo "ok: the PMTiles archives ($ARCHIVES) opened in the viewer and show igan generate's pixels"
