#!/usr/bin/env bash
# README's commands in either order: scripts/test.sh on a build folder configured without tests
# (as run.sh once left build/) must turn them on and run them, not print "No tests were found"
# and exit 0. Configures a scratch build folder twice; builds only the version stamp.
# Usage: test_scripts.sh SOURCE_DIR
set -u
src=$1
B=$(mktemp -d)
trap 'rm -rf "$B"' EXIT
fail() { echo "FAIL: $*"; tail -5 "$B/out" 2>/dev/null; exit 1; }
cmake -S "$src" -B "$B" -DCMAKE_BUILD_TYPE=Release -DIGAN_BUILD_TESTS=OFF >"$B/out" 2>&1 ||
  fail "configure with tests off"
(cd "$B" && ctest --no-tests=error) >"$B/out" 2>&1 && fail "ctest --no-tests=error passed without tests"
IGAN_BUILD_DIR=$B IGAN_BUILD_TARGETS=igan_version bash "$src/scripts/test.sh" -N >"$B/out" 2>&1 ||
  fail "scripts/test.sh -N exited $?"
n=$(grep -oE "Total Tests: [0-9]+" "$B/out" | grep -oE "[0-9]+$")
[ "${n:-0}" -gt 0 ] || fail "scripts/test.sh found no tests"
echo "test_scripts: scripts/test.sh turned the tests on ($n listed)"
