#!/usr/bin/env bash
# Load benchmark of igan serve on loopback (not a test): wrk with 32 connections for 60 s over
# (1) cached tiles (a pre-rendered set) and (2) uncached tiles (every request a new tile), then
# the server's peak RSS against its --cache-mb bound. Prints one JSON line per phase.
# Usage: bench/serve_load.sh [igan] [model.safetensors]   (env: DURATION=60 CONNS=32 CACHE_MB=32
#        WARM=64 THREADS=0 WORKERS=1)
set -euo pipefail
IGAN=${1:-build/igan}
MODEL=${2:-models/landscape-tiny.safetensors}
DURATION=${DURATION:-60} CONNS=${CONNS:-32} CACHE_MB=${CACHE_MB:-32} WARM=${WARM:-64}
THREADS=${THREADS:-0} WORKERS=${WORKERS:-1}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
W=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$W"' EXIT
"$IGAN" serve --model "m=$MODEL" --port 0 --threads "$THREADS" --workers "$WORKERS" \
  --cache-mb "$CACHE_MB" --queue 256 --max-client-connections 1024 >"$W/serve.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 1 600); do
  PORT=$(sed -n 's#^serving on http://127.0.0.1:\([0-9]*\)/$#\1#p' "$W/serve.log"); [ -n "$PORT" ] && break; sleep 0.1
done
[ -n "$PORT" ] || { cat "$W/serve.log"; exit 1; }
B=http://127.0.0.1:$PORT
rss_base=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
# Warm WARM tiles (an 8-wide block) sequentially.
side=8
for i in $(seq 0 $((WARM - 1))); do
  curl -sf -o /dev/null "$B/tiles/m/7/0/$((i % side))/$((i / side)).png"
done
rss_warm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)  # model + render workspace + warm tiles
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
hwm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
cache_bytes=$(curl -s "$B/metrics" | awk '/^igan_tile_cache_bytes / {print $2}')
rendered=$(curl -s "$B/metrics" | awk '/^igan_tiles_rendered_total / {print $2}')
echo "{\"rss_model_loaded_mb\":$((rss_base / 1024)),\"peak_rss_after_warmup_mb\":$((rss_warm / 1024)),\"peak_rss_mb\":$((hwm / 1024)),\"cache_mb\":$CACHE_MB,\"cache_bytes\":${cache_bytes:-0},\"tiles_rendered\":${rendered:-0}}"
kill -TERM $PID; wait $PID || true; PID=""
