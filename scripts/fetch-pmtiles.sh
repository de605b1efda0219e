#!/usr/bin/env bash
# The pmtiles JavaScript package (BSD-3-Clause, github.com/protomaps/PMTiles), with which the
# viewer opens archives of `igan export --format pmtiles` (web/viewer.js, ?pmtiles=URL) and the
# browser test tests/browser/test_pmtiles.sh reads them: fetches pmtiles 4.4.0 from the npm
# registry, checks its pinned sha512 integrity and extracts its browser bundle to
# DEST/pmtiles.js. Uses npm when present, else curl from the same registry; safe to rerun
# (nothing is fetched again once present).
# Usage: scripts/fetch-pmtiles.sh [DEST=data-cache/web/pmtiles-4.4.0]
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.4.0
integrity=sha512-tCLI1C5134MR54i8izUWhse0QUtO/EC33n9yWp1N5dYLLvyc197U0fkF5gAJhq1TdWO9Tvl+9hgvFvM0fR27Zg==
dest=${1:-${IGAN_CACHE:-data-cache}/web/pmtiles-$version}
tgz=$dest/pmtiles-$version.tgz

mkdir -p "$dest"
if [ ! -f "$tgz" ]; then
  echo "fetching pmtiles@$version from the npm registry" >&2
  if command -v npm >/dev/null; then
    (cd "$dest" && npm pack "pmtiles@$version" --silent >/dev/null)
  else
    registry=${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}
    curl -fsSL --retry 3 -o "$tgz.part" "${registry%/}/pmtiles/-/pmtiles-$version.tgz"
    mv "$tgz.part" "$tgz"
  fi
fi
# npm's integrity string: the algorithm, a dash, the base64 digest of the tarball.
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  mv "$tgz" "$tgz.bad"
  echo "error: $tgz does not match the pinned integrity (moved to $tgz.bad)" >&2
  exit 1
fi
if [ ! -f "$dest/pmtiles.js" ] || [ "$tgz" -nt "$dest/pmtiles.js" ]; then
  tar -xzmf "$tgz" -C "$dest" --strip-components=2 package/dist/pmtiles.js
  tar -xzmf "$tgz" -C "$dest" --strip-components=1 package/package.json
fi
echo "$dest/pmtiles.js"
