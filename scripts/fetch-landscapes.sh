#!/usr/bin/env bash
# Builds the landscape photo set from Debian packages (no other network access is needed):
# downloads each package listed in data/landscapes.tsv with `apt-get download`, extracts it with
# `dpkg-deb -x` into a cache, checks sha256 (warns on mismatch: a point release may change a
# file) and links the photos into DEST/train and DEST/eval.
# Usage: scripts/fetch-landscapes.sh [DEST=data-cache/landscapes] [--with-optional]
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-data-cache/landscapes}
with_optional=${2:-}
cache=${IGAN_CACHE:-data-cache}/debs
mkdir -p "$cache" "$dest/train" "$dest/eval"
tsv=data/landscapes.tsv

packages=$(awk -F'\t' -v opt="$with_optional" 'NR > 1 && ($1 != "optional" || opt != "") {print $2}' "$tsv" | sort -u)
missing=()
for p in $packages; do
  ls "$cache/${p}"_*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ] || apt-get update -q
  (cd "$cache" && apt-get download "${missing[@]}")
fi
root="$cache/root"
mkdir -p "$root"
for deb in "$cache"/*.deb; do
  stamp="$root/.$(basename "$deb").done"
  [ -f "$stamp" ] || { dpkg-deb -x "$deb" "$root" && touch "$stamp"; }
done

n=0 warned=0
while IFS=$'\t' read -r split package path size sha; do
  [ "$split" = split ] && continue
  [ "$split" = optional ] && [ -z "$with_optional" ] && continue
  src="$root$path"
  if [ ! -f "$src" ]; then echo "warning: $package does not contain $path" >&2; warned=1; continue; fi
  got=$(sha256sum "$src" | cut -d' ' -f1)
  [ "$got" = "$sha" ] || { echo "warning: sha256 mismatch for $path ($package)" >&2; warned=1; }
  # Unique, shell-safe names: package plus a hash of the path, keeping the extension.
  ext=${path##*.}
  name="${package}-$(printf '%s' "$path" | sha256sum | cut -c1-8).${ext,,}"
  [ "$split" = optional ] && split=train
  ln -sf "$(realpath "$src")" "$dest/$split/$name"
  n=$((n + 1))
done < "$tsv"
echo "$n photos in $dest (train: $(ls "$dest/train" | wc -l), eval: $(ls "$dest/eval" | wc -l))"
[ "$warned" = 0 ] || echo "(see warnings above)" >&2
