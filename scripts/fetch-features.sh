#!/usr/bin/env bash
# The pretrained feature networks (docs/features.md): fetches the npm package nsfwjs 4.4.0 (MIT),
# checks it against its pinned sha512 integrity, extracts it and converts two of its TF.js models
# with `igan convert --from tfjs`: MobileNetV2 (blocks 0-10, which keep their ImageNet weights) to
# DEST/mobilenetv2.safetensors and InceptionV3 (input to mixed5, likewise) to
# DEST/inceptionv3-mixed5.safetensors. Needs npm and a built igan; safe to rerun (nothing is
# fetched or converted again unless missing or out of date).
# Usage: scripts/fetch-features.sh [DEST=data-cache/features]   (IGAN=path/to/igan to override)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-${IGAN_CACHE:-data-cache}/features}
igan=${IGAN:-build/igan}
package=nsfwjs
version=4.4.0
integrity=sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA==
tgz=$dest/$package-$version.tgz
root=$dest/$package-$version

# npm's integrity string: the algorithm, a dash, the base64 digest of the tarball.
integrity_of() { echo "sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

mkdir -p "$dest"
if [ ! -f "$tgz" ]; then
  command -v npm >/dev/null || { echo "error: npm is needed (apt install npm)" >&2; exit 1; }
  echo "fetching $package@$version from the npm registry" >&2
  (cd "$dest" && npm pack "$package@$version" --silent >/dev/null)
fi
got=$(integrity_of "$tgz")
if [ "$got" != "$integrity" ]; then
  mv "$tgz" "$tgz.bad"
  echo "error: $tgz does not match the pinned integrity" >&2
  echo "  expected $integrity" >&2
  echo "  got      $got" >&2
  echo "  (moved to $tgz.bad; rerun to fetch it again)" >&2
  exit 1
fi
if [ ! -f "$root/.extracted" ] || [ "$tgz" -nt "$root/.extracted" ]; then
  rm -rf "$root"
  mkdir -p "$root"
  tar -xzf "$tgz" -C "$root" package/LICENSE package/package.json package/dist/models
  touch "$root/.extracted"
fi

[ -x "$igan" ] || { echo "error: $igan not found: build igan first (or set IGAN=)" >&2; exit 1; }
for pair in mobilenet_v2:mobilenetv2 inception_v3:inceptionv3-mixed5; do
  out=$dest/${pair#*:}.safetensors
  if [ ! -f "$out" ] || [ "$root/.extracted" -nt "$out" ] || [ "$igan" -nt "$out" ]; then
    "$igan" convert --from tfjs "$root/package/dist/models/${pair%%:*}" "$out" >/dev/null
  fi
  echo "$out"
done
