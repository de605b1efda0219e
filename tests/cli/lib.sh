# Harness shared by the CLI tests; source it with the igan path: `. lib.sh "$@"`.
# Gives IGAN, a scratch folder W (removed on exit, after the script's own `cleanup` if it
# defines one), ok/bad counters, expect and summary.
set -u
IGAN=$1
W=$(mktemp -d)
pass=0 failed=0
ok() { pass=$((pass + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# expect CODE DESCRIPTION -- command...: the exit code, and for a failure a message saying error.
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$W/out" 2>"$W/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$what: exit $rc, want $want ($(tail -1 "$W/err"))"; fi
  if [ "$want" != 0 ]; then
    grep -q "error" "$W/err" && ok || bad "$what: no error message"
  fi
}
on_exit() {
  if declare -F cleanup >/dev/null; then cleanup; fi
  chmod -R u+w "$W"; rm -rf "$W"
}
trap on_exit EXIT
# summary NAME: prints the counts; the script's exit status is whether all passed.
summary() {
  echo "$1: $pass passed, $failed failed"
  [ "$failed" = 0 ]
}
