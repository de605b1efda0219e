#!/usr/bin/env bash
# igan serve and igan export from the command line: startup, tiles, hostile requests, graceful
# SIGTERM with a request in flight; export formats and usage errors. Usage: test_serve_cli.sh igan
. "$(dirname "$0")/lib.sh" "$@"
PID=""
cleanup() { [ -n "$PID" ] && kill $PID 2>/dev/null; }
M=$W/tiny.safetensors
"$IGAN" init --config tiny --seed 1 --out "$M" >/dev/null 2>&1 || { echo "FAIL: init"; exit 1; }

"$IGAN" serve --model "land=$M" --port 0 --tile-size 64 >"$W/serve.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's#^serving on http://127.0.0.1:\([0-9]*\)/$#\1#p' "$W/serve.log")
  [ -n "$PORT" ] && break; sleep 0.1
done
[ -n "$PORT" ] && ok || { bad "serve did not start: $(cat "$W/serve.log")"; exit 1; }
B=http://127.0.0.1:$PORT
code() { curl -s -o "${2:-/dev/null}" -w '%{http_code}' --max-time 60 "$@" 2>/dev/null | tail -c 3; }
c() { curl -s -o "${2:-/dev/null}" -w '%{http_code}' --max-time 60 ${3:-} "$B$1"; }
[ "$(c /healthz)" = 200 ] && ok || bad "/healthz"
curl -s "$B/api/info" | grep -q '"name":"land"' && ok || bad "/api/info lacks the model name"
[ "$(c /tiles/land/1/0/0/0.png "$W/t.png")" = 200 ] && ok || bad "tile"
head -c 8 "$W/t.png" | od -c | grep -q 'P   N   G' && ok || bad "tile is not a PNG"
[ "$(c /tiles/land/1/-2/0/0.png)" = 200 ] && ok || bad "zoom -2 tile"
[ "$(c /tiles/land/1/-4/0/0.png)" = 200 ] && ok || bad "zoom -4 tile (the default --min-zoom)"
# WebP by Accept (libwebp is a build dependency here), TileJSON 3.0.0 with the xyz template.
curl -s -H 'Accept: image/webp,*/*' -D "$W/h.txt" -o "$W/t.webp" "$B/tiles/land/1/0/0/0"
head -c 12 "$W/t.webp" | od -c | grep -q 'R   I   F   F' && grep -qi '^vary: accept' "$W/h.txt" &&
  ok || bad "negotiated tile is not a WebP with Vary: Accept"
curl -s "$B/tiles/land/1/tilejson.json" | grep -q '"tilejson":"3.0.0".*"tiles":\["http://127.0.0.1:'"$PORT"'/tiles/land/1/xyz/{z}/{x}/{y}"\]' &&
  ok || bad "tilejson"
for p in "/tiles/land/1/0/../../etc/passwd" "/tiles/land/x/0/0/0.png" \
         "/tiles/land/1/0/99999999999999999999999/0.png" "/tiles/nosuch/1/0/0/0.png" \
         "/render?x=0&y=0&w=999999999&h=999999999" "/tiles/land/1/-9/0/0.png"; do
  r=$(c "$p"); case "$r" in 4??) ok ;; *) bad "$p -> $r" ;; esac
  r=$(c "$p" /dev/null --path-as-is); case "$r" in 4??) ok ;; *) bad "$p (as is) -> $r" ;; esac
done
curl -s "$B/metrics" | grep -q '^igan_tiles_served_total 4' && ok || bad "/metrics tiles served"
# Memory is returned after large /render requests (it stayed: +210 MB after three of these).
rss() { awk '/VmRSS/ {print int($2 / 1024)}' /proc/$PID/status; }
before=$(rss)
for x in 1 2 3; do c "/render?x=$x&y=0&w=1024&h=1024" >/dev/null; done
sleep 0.5
after=$(rss)
[ $((after - before)) -lt 64 ] && ok || bad "RSS grew from $before to $after MB over three 1024x1024 renders"
# SIGTERM with a render in flight: the render completes, then the server exits 0.
curl -s -o "$W/r.png" -w '%{http_code}' --max-time 60 "$B/render?x=0&y=0&w=512&h=256" >"$W/r.code" &
CURL=$!
for _ in $(seq 1 200); do curl -s "$B/metrics" | grep -q '^igan_renders_active 1' && break; sleep 0.02; done
kill -TERM $PID
wait $CURL
[ "$(cat "$W/r.code")" = 200 ] && ok || bad "in-flight render cut off by SIGTERM: $(cat "$W/r.code")"
wait $PID; rc=$?; PID=""
[ $rc = 0 ] && ok || bad "serve exit code $rc after SIGTERM"
grep -q "shutting down" "$W/serve.log" && ok || bad "no shutdown message"

# SIGTERM with a client dripping one header byte every 0.2 s: shutdown still takes about
# --timeout-ms, not as long as the client likes.
"$IGAN" serve --model "land=$M" --port 0 --timeout-ms 1000 >"$W/serve2.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's#^serving on http://127.0.0.1:\([0-9]*\)/$#\1#p' "$W/serve2.log")
  [ -n "$PORT" ] && break; sleep 0.1
done
( exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GET /healthz HTTP/1.1\r\n' >&3 &&
  for _ in $(seq 1 100); do printf 'X' >&3 || break; sleep 0.2; done ) 2>/dev/null &
DRIP=$!
sleep 0.5
start=$(date +%s%N)
kill -TERM $PID
wait $PID; rc=$?; PID=""
ms=$((($(date +%s%N) - start) / 1000000))
[ $rc = 0 ] && ok || bad "serve exit code $rc after SIGTERM with a slow client"
[ $ms -lt 3000 ] && ok || bad "shutdown took ${ms} ms with a slow client (want about --timeout-ms 1000)"
kill $DRIP 2>/dev/null; wait $DRIP 2>/dev/null

expect 2 "serve without model" -- "$IGAN" serve --port 0
expect 2 "serve duplicate names" -- "$IGAN" serve --model "a=$M" --model "a=$M" --port 0
expect 2 "serve bad zoom" -- "$IGAN" serve --model "$M" --min-zoom -7 --port 0
expect 2 "serve bad webp quality" -- "$IGAN" serve --model "$M" --webp-quality best --port 0
expect 2 "serve webp quality 0" -- "$IGAN" serve --model "$M" --webp-quality 0 --port 0
expect 2 "serve bad coarse" -- "$IGAN" serve --model "$M" --coarse fast --port 0
expect 1 "serve missing model" -- "$IGAN" serve --model "$W/missing.safetensors" --port 0
E="$IGAN export --model $M --quiet --seed 3 --width 100 --height 60"
expect 0 "export dzi" -- $E --format dzi --tile-size 64 -o "$W/v.dzi"
[ -f "$W/v.dzi" ] && [ -f "$W/v_files/7/1_0.png" ] && [ -f "$W/v_files/0/0_0.png" ] && ok || bad "dzi files"
expect 0 "export dzi again (replaces)" -- $E --format dzi --tile-size 64 -o "$W/v.dzi"
expect 0 "export bigtiff" -- $E --format bigtiff -o "$W/v.tif"
head -c 4 "$W/v.tif" | od -An -tx1 | grep -q '49 49 2b 00' && ok || bad "not a BigTIFF"
expect 0 "export pmtiles" -- $E --format pmtiles --tile-size 64 -o "$W/v.pmtiles"
head -c 8 "$W/v.pmtiles" | od -An -c | grep -q 'P   M   T   i   l   e   s 003' && ok || bad "not PMTiles v3"
expect 0 "export cog" -- $E --format cog --tiff-tile 64 -o "$W/c.tif"
$E --format cog --tiff-tile 64 -o "$W/c.tif" --json | grep -q '"levels":2,"tiles":3,' && ok ||
  bad "cog --json: full resolution and one overview expected"
expect 2 "export cog lzw" -- $E --format cog --compression lzw -o "$W/x.tif"
expect 2 "export bad format" -- $E --format jpeg -o "$W/x.dzi"
expect 2 "export dzi name" -- $E --format dzi -o "$W/x.png"
expect 2 "export missing dir" -- $E --format bigtiff -o "$W/nodir/x.tif"
expect 2 "export absurd size" -- "$IGAN" export --model "$M" --width 1000000 --height 1000000 -o "$W/x.tif" --format bigtiff
[ -z "$(ls "$W" | grep -E '^x\.|tmp')" ] && ok || bad "partial files left: $(ls "$W")"
summary "serve CLI"
