#!/usr/bin/env bash
# The hostile-input corpus (tests/data/hostile, made by its make.py): every case in cases.tsv
# runs one command on one hostile file and must exit with the listed code (README, "Exit
# codes"), print one error line, finish within 60 s and leave no output behind.
# Usage: test_hostile.sh path/to/igan
. "$(dirname "$0")/lib.sh" "$@"
H=$(cd "$(dirname "$0")/../data/hostile" && pwd)
M=$W/tiny.safetensors
"$IGAN" init --config tiny --seed 1 --out "$M" >/dev/null 2>&1 || { echo "FAIL: init"; exit 1; }
"$IGAN" generate --model "$M" --quiet --seed 1 --width 40 --height 24 --out "$W/good.png" >/dev/null
mkdir "$W/real" && cp "$W/good.png" "$W/real/a.png"

run_case() {  # command file: runs the command on the hostile file
  local f=$H/$2
  case $1 in
    inspect) "$IGAN" inspect "$f" ;;
    generate-model) "$IGAN" generate --model "$f" --quiet --width 16 --height 16 --out "$W/out/o.png" ;;
    serve-model) "$IGAN" serve --model "$f" --port 0 --quiet ;;
    outpaint-input) "$IGAN" outpaint --model "$M" --quiet --steps 2 --input "$f" --canvas 72x32+8+4 --out "$W/out/o.png" ;;
    outpaint-mask) "$IGAN" outpaint --model "$M" --quiet --steps 2 --input "$W/good.png" --mask "$f" --canvas 72x32+8+4 --out "$W/out/o.png" ;;
    inbetween-left) "$IGAN" inbetween --model "$M" --quiet --steps 2 --left "$f" --right "$W/good.png" --gap 8 --out "$W/out/o.png" ;;
    eval-fake) rm -rf "$W/fake" && mkdir "$W/fake" && cp "$W/good.png" "$W/fake/a.png" &&
               cp "$f" "$W/fake/z.${2##*.}" && "$IGAN" eval --fake "$W/fake" --real "$W/real" ;;
    generate-config) "$IGAN" generate --model "$M" --config "$f" --quiet --width 16 --height 16 --out "$W/out/o.png" ;;
    init-config) "$IGAN" init --config "$f" --out "$W/out/o.safetensors" ;;
    *) echo "unknown command $1" >&2; return 99 ;;
  esac
}

mkdir "$W/out"
while IFS=$'\t' read -r command file want; do
  [ "$command" = command ] && continue
  timeout 60 bash -c "$(declare -f run_case); IGAN='$IGAN' H='$H' W='$W' M='$M'; run_case '$command' '$file'" \
    >"$W/stdout" 2>"$W/err"
  rc=$?
  [ "$rc" = "$want" ] && ok || bad "$command $file: exit $rc, want $want ($(tail -1 "$W/err"))"
  [ "$(grep -c 'error' "$W/err")" = 1 ] && ok || bad "$command $file: not one error line: $(head -c 300 "$W/err")"
  [ -z "$(ls -A "$W/out")" ] && ok || bad "$command $file left $(ls "$W/out")"
done <"$H/cases.tsv"
summary "hostile inputs"
