#!/usr/bin/env bash
# data/landscapes.tsv is well formed: a header, then rows of split (train, eval or optional),
# package, absolute path, WxH and a 64-hex sha256; no sha256 or path twice; no sha256 that
# data/reserved-sha256.txt holds out. Offline: reads the two files only.
# Usage: test_landscapes_tsv.sh DATA_DIR
set -u
data=${1:?usage: test_landscapes_tsv.sh DATA_DIR}
pass=0 failed=0
ok() { pass=$((pass + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# check TSV RESERVED: prints one line per problem.
check() {
  # No {64} intervals: mawk, the awk that Debian installs by default, lacks them.
  awk -F'\t' '
    function is_sha(s) { return length(s) == 64 && s !~ /[^0-9a-f]/ }
    FNR == NR { if (is_sha($0)) reserved[$0] = 1; next }
    FNR == 1 {
      if ($0 != "split\tpackage\tpath\twidth_x_height\tsha256") print "line 1: bad header"
      next
    }
    {
      where = "line " FNR
      if (NF != 5) { print where ": " NF " columns, want 5"; next }
      if ($1 !~ /^(train|eval|optional)$/) print where ": bad split " $1
      if ($2 !~ /^[a-z0-9][a-z0-9.+-]+$/) print where ": bad package name " $2
      if ($3 !~ /^\//) print where ": path not absolute"
      if ($4 !~ /^[1-9][0-9]*x[1-9][0-9]*$/) print where ": bad size " $4
      if (!is_sha($5)) print where ": bad sha256"
      if ($5 in reserved) print where ": sha256 is reserved for held-out evaluation"
      if ($5 in seen_sha) print where ": sha256 repeats line " seen_sha[$5]
      if ($3 in seen_path) print where ": path repeats line " seen_path[$3]
      seen_sha[$5] = FNR; seen_path[$3] = FNR
    }' "$2" "$1"
}

problems=$(check "$data/landscapes.tsv" "$data/reserved-sha256.txt")
if [ -z "$problems" ]; then ok; else bad "$problems"; fi

# The checker must catch each kind of fault: a broken copy with one fault per row.
sha_a=$(printf 'a%.0s' {1..64}) sha_r=$(grep -m1 -E '^[0-9a-f]{64}$' "$data/reserved-sha256.txt")
{
  printf 'split\tpackage\tpath\twidth_x_height\tsha256\n'
  printf 'train\tpkg\t/a.jpg\t10x10\t%s\n' "$sha_a"
  printf 'test\tpkg\t/b.jpg\t10x10\t%s\n' "${sha_a/a/b}"
  printf 'train\tpkg\t/c.jpg\t10x10\tnot-a-sha\n'
  printf 'train\tpkg\t/d.jpg\t10x10\t%s\n' "$sha_a"
  printf 'train\tpkg\t/a.jpg\t10x10\t%s\n' "${sha_a/a/c}"
  printf 'train\tpkg\t/e.jpg\t10x10\t%s\n' "$sha_r"
  printf 'train\tpkg\t/f.jpg\t%s\n' "$sha_a"
} > "$W/broken.tsv"
n=$(check "$W/broken.tsv" "$data/reserved-sha256.txt" | wc -l)
if [ "$n" = 6 ]; then ok; else bad "broken TSV gave $n problems, want 6"; fi

echo "landscapes_tsv: $pass passed, $failed failed"
[ "$failed" = 0 ]
