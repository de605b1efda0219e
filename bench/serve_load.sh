#!/usr/bin/env bash
# Load benchmark of igan serve on loopback (not a test): (0) cold tiles one at a time at zoom
# levels 0, -2 and -4 (each a tile nobody asked for: latency p50/p95, and the generator's work
# per tile from /metrics: pixels rendered and their RGB bytes), then wrk with 32 connections for
# 60 s over (1) cached tiles (a pre-rendered set) and (2) uncached tiles (every request a new
# tile), then the server's peak RSS against its --cache-mb bound. Prints one JSON line per phase.
# COARSE=auto|partial|head|student|box is igan serve's --coarse, PREVIEW=true|false its
# --coarse-preview; COLD=N cold tiles per level (z = -4: N/4, at least 2: a box-filtered one
# renders 256 native tiles). Where cold tiles come as previews (a coarse student's tile while the
# exact one is made), the level's line also gives how many did and the seconds until the
# background had made all their exact tiles (refine_s; the next level waits for that).
# SOAK=S adds (3) a soak: S seconds of cached, uncached and /render load at once, RSS sampled
# every second into $SOAK_OUT.csv and plotted in $SOAK_OUT.svg against README's bound (startup
# RSS + --cache-mb + --rgb-cache-mb + workers x passes x pass workspace + /render connections x 6 bytes x
# --max-render-pixels + 4 x 32 MB of glibc slack); its JSON line says whether the peak stayed
# within it.
# Usage: bench/serve_load.sh [igan] [model.safetensors]   (env: DURATION=60 CONNS=32 CACHE_MB=32
#        WARM=64 THREADS=0 WORKERS=1 SOAK=0 SOAK_OUT=bench/serve_soak RENDER_CONNS=2
#        COARSE=auto PREVIEW=true COLD=8 LEVELS="0 -2 -4" RGB_CACHE_MB=32)
set -euo pipefail
IGAN=${1:-build/igan}
MODEL=${2:-models/landscape-tiny.safetensors}
DURATION=${DURATION:-60} CONNS=${CONNS:-32} CACHE_MB=${CACHE_MB:-32} WARM=${WARM:-64}
THREADS=${THREADS:-0} WORKERS=${WORKERS:-1}
SOAK=${SOAK:-0} SOAK_OUT=${SOAK_OUT:-bench/serve_soak} RENDER_CONNS=${RENDER_CONNS:-2}
COARSE=${COARSE:-auto} PREVIEW=${PREVIEW:-true} COLD=${COLD:-8} LEVELS=${LEVELS:-"0 -2 -4"} RGB_CACHE_MB=${RGB_CACHE_MB:-32}
MAX_RENDER_PIXELS=4194304  # igan serve's default --max-render-pixels
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
W=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$W"' EXIT
"$IGAN" serve --model "m=$MODEL" --port 0 --threads "$THREADS" --workers "$WORKERS" \
  --cache-mb "$CACHE_MB" --queue 256 --max-client-connections 1024 --min-zoom -4 \
  --coarse "$COARSE" --coarse-preview "$PREVIEW" --rgb-cache-mb "$RGB_CACHE_MB" >"$W/serve.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 1 600); do
  PORT=$(sed -n 's#^serving on http://127.0.0.1:\([0-9]*\)/$#\1#p' "$W/serve.log"); [ -n "$PORT" ] && break; sleep 0.1
done
[ -n "$PORT" ] || { cat "$W/serve.log"; exit 1; }
B=http://127.0.0.1:$PORT
rss_base=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
# Cold tiles, one at a time, per level; seeds apart per level so that no level reuses another's
# tiles. A first zoomed-out tile of another seed lets --coarse auto measure its levels beforehand.
rendered_px() { curl -s "$B/metrics" | awk '/^igan_rendered_pixels_total/ {s += $2} END {printf "%d", s}'; }
metric() { curl -s "$B/metrics" | awk -v n="$1" '$1 == n {printf "%d", $2}'; }
curl -sf -o /dev/null "$B/tiles/m/99/-1/0/0.png"
for z in $LEVELS; do
  n=$COLD; [ "$z" -le -4 ] && n=$(((COLD + 3) / 4)) && [ "$n" -lt 2 ] && n=2
  px0=$(rendered_px)
  : >"$W/cold.txt"
  errors=0 previews=0
  refined0=$(( $(metric igan_refine_done) + $(metric igan_refine_failed) ))
  t0=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    out=$(curl -s -D "$W/headers.txt" -o /dev/null -w '%{http_code} %{time_total}' "$B/tiles/m/$((200 - z))/$z/$((i * 3))/0.png")
    [ "${out%% *}" = 200 ] || errors=$((errors + 1))
    grep -qi '^x-igan-preview:' "$W/headers.txt" && previews=$((previews + 1))
    echo "${out#* }" >>"$W/cold.txt"
  done
  # Until the background has made the exact tiles of this level's previews.
  while [ "$previews" -gt 0 ] && [ $(( $(metric igan_refine_done) + $(metric igan_refine_failed) - refined0 )) -lt "$previews" ]; do
    sleep 0.05
  done
  refine_s=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
  px1=$(rendered_px)
  python3 - "$W/cold.txt" "$z" "$n" "$errors" "$((px1 - px0))" "$COARSE" "$previews" "$refine_s" <<'PY'
import json, sys
t = sorted(float(v) for v in open(sys.argv[1]) if v.strip())
z, n, errors, px, coarse = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
previews, refine_s = int(sys.argv[7]), float(sys.argv[8])
pct = lambda q: t[min(len(t) - 1, int(q * (len(t) - 1) + 0.5))]
line = {"phase": "cold", "z": z, "coarse": coarse, "tiles": n, "p50_ms": round(1e3 * pct(0.5), 1),
        "p95_ms": round(1e3 * pct(0.95), 1), "errors": errors,
        "rendered_px_per_tile": px // n, "rgb_bytes_per_tile": 3 * px // n}
if previews:
    line.update(previews=previews, refine_s=refine_s)
print(json.dumps(line))
PY
done
# Warm WARM tiles (an 8-wide block) sequentially.
side=8
for i in $(seq 0 $((WARM - 1))); do
  curl -sf -o /dev/null "$B/tiles/m/7/0/$((i % side))/$((i / side)).png"
done
rss_warm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)  # model + render workspace + warm tiles
cache_after_warm=$(curl -s "$B/metrics" | awk '/^igan_(tile|rgb)_cache_bytes / {s += $2} END {printf "%d", s}')
cat >"$W/cached.lua" <<LUA
math.randomseed(os.time())
request = function()
  local i = math.random(0, $WARM - 1)
  return wrk.format("GET", "/tiles/m/7/0/" .. (i % $side) .. "/" .. math.floor(i / $side) .. ".png")
end
LUA
cat >"$W/uncached.lua" <<'LUA'
local counter, id = 0, 0
local threads = {}
setup = function(thread) thread:set("id", #threads + 1); table.insert(threads, thread) end
init = function() id = tonumber(wrk.thread:get("id")) end
request = function()
  counter = counter + 1
  return wrk.format("GET", "/tiles/m/9/0/" .. (1000 * id + counter) .. "/" .. (-7 * id) .. ".png")
end
LUA
cat >"$W/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"seconds":%.1f,"req_per_s":%.1f,"p50_ms":%.1f,"p90_ms":%.1f,"p99_ms":%.1f,"max_ms":%.1f,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.status, e.timeout))
end
LUA
phase() {
  local name=$1 script=$2
  cat "$script" "$W/report.lua" >"$W/run.lua"
  wrk -t 4 -c "$CONNS" -d "${DURATION}s" --timeout 120s -s "$W/run.lua" "$B" >"$W/$name.out" 2>&1
  echo "{\"phase\":\"$name\",\"connections\":$CONNS,$(tail -1 "$W/$name.out" | sed 's/^{//')"
}
phase cached "$W/cached.lua"
phase uncached "$W/uncached.lua"
if [ "$SOAK" -gt 0 ]; then
  # /render at the pixel cap (2048x2048), each request somewhere new.
  cat >"$W/render.lua" <<'LUA'
request = function()
  return wrk.format("GET", "/render?w=2048&h=2048&y=0&x=" .. math.random(0, 100000000) .. "&seed=" .. math.random(1, 1000000))
end
LUA
  : >"$SOAK_OUT.csv"
  ( t0=$(date +%s); while kill -0 $PID 2>/dev/null; do
      echo "$(($(date +%s) - t0)),$(awk '/VmRSS/ {print int($2 / 1024)}' /proc/$PID/status)" >>"$SOAK_OUT.csv"
      sleep 1
    done ) &
  SAMPLER=$!
  cat "$W/cached.lua" "$W/report.lua" >"$W/soak_cached.lua"
  cat "$W/uncached.lua" "$W/report.lua" >"$W/soak_uncached.lua"
  cat "$W/render.lua" "$W/report.lua" >"$W/soak_render.lua"
  wrk -t 2 -c 8 -d "${SOAK}s" --timeout 300s -s "$W/soak_cached.lua" "$B" >"$W/soak_cached.out" 2>&1 &
  A=$!
  wrk -t 2 -c 8 -d "${SOAK}s" --timeout 300s -s "$W/soak_uncached.lua" "$B" >"$W/soak_uncached.out" 2>&1 &
  U=$!
  wrk -t 1 -c "$RENDER_CONNS" -d "${SOAK}s" --timeout 300s -s "$W/soak_render.lua" "$B" >"$W/soak_render.out" 2>&1
  wait $A $U
  # Renders still queued when wrk stopped finish before the last samples.
  for _ in $(seq 1 600); do
    curl -s "$B/metrics" | grep -q '^igan_renders_active 0' && curl -s "$B/metrics" | grep -q '^igan_renders_waiting 0' && break
    sleep 1
  done
  sleep 3
  kill $SAMPLER 2>/dev/null
  for name in cached uncached render; do
    echo "{\"phase\":\"soak_$name\",$(tail -1 "$W/soak_$name.out" | sed 's/^{//')"
  done
  # README's bound. One pass's workspace is what the warm-up (single-tile renders) added beyond
  # the warm tiles; a /render runs one pass per thread; glibc may keep 4 arenas x 32 MB free.
  warm_cache_mb=$((${cache_after_warm:-0} / 1048576))
  workspace=$(((rss_warm - rss_base) / 1024 - warm_cache_mb))
  passes=$THREADS; [ "$passes" -gt 0 ] || passes=$(nproc)
  bound=$((rss_base / 1024 + CACHE_MB + RGB_CACHE_MB + WORKERS * passes * workspace +
           RENDER_CONNS * 6 * MAX_RENDER_PIXELS / 1048576 + 4 * 32))
  python3 - "$SOAK_OUT.csv" "$SOAK_OUT.svg" "$bound" <<'PY'
import json, sys
csv, svg, bound = sys.argv[1], sys.argv[2], int(sys.argv[3])
pts = [tuple(map(int, line.split(','))) for line in open(csv) if line.strip()]
t_max = max(t for t, _ in pts) or 1
y_max = max(max(r for _, r in pts), bound) * 1.1
W, H, L, B = 720, 360, 60, 40
x = lambda t: L + (W - L - 20) * t / t_max
y = lambda r: H - B - (H - B - 20) * r / y_max
line = ' '.join(f'{x(t):.1f},{y(r):.1f}' for t, r in pts)
peak = max(r for _, r in pts)
ticks = ''.join(f'<text x="{L - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
                f'<line x1="{L}" x2="{W - 20}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                for v in range(0, int(y_max), max(50, int(y_max / 8) // 50 * 50)))
open(svg, 'w').write(
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">'
    f'<rect width="{W}" height="{H}" fill="white"/>{ticks}'
    f'<line x1="{L}" x2="{W - 20}" y1="{y(bound):.1f}" y2="{y(bound):.1f}" stroke="#c33" stroke-dasharray="6 4"/>'
    f'<text x="{W - 24}" y="{y(bound) - 6:.1f}" text-anchor="end" fill="#c33">bound {bound} MB</text>'
    f'<polyline points="{line}" fill="none" stroke="#236" stroke-width="1.5"/>'
    f'<text x="{L}" y="14">igan serve RSS (MB) under mixed load; peak {peak} MB</text>'
    f'<text x="{(L + W) / 2:.0f}" y="{H - 8}" text-anchor="middle">seconds</text>'
    f'<text x="{W - 20}" y="{H - B + 16}" text-anchor="end">{t_max}</text>'
    f'<text x="{L}" y="{H - B + 16}" text-anchor="middle">0</text></svg>\n')
print(json.dumps({"soak_seconds": t_max, "soak_peak_rss_mb": peak,
                  "soak_final_rss_mb": pts[-1][1], "bound_mb": bound, "within": peak <= bound}))
PY
fi
hwm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
cache_bytes=$(curl -s "$B/metrics" | awk '/^igan_tile_cache_bytes / {print $2}')
rendered=$(curl -s "$B/metrics" | awk '/^igan_tiles_rendered_total / {print $2}')
echo "{\"rss_model_loaded_mb\":$((rss_base / 1024)),\"peak_rss_after_warmup_mb\":$((rss_warm / 1024)),\"peak_rss_mb\":$((hwm / 1024)),\"cache_mb\":$CACHE_MB,\"cache_bytes\":${cache_bytes:-0},\"tiles_rendered\":${rendered:-0}}"
kill -TERM $PID; wait $PID || true; PID=""
