#!/usr/bin/env bash
# Builds the landscape photo set from Debian packages (no other network access is needed):
# downloads the packages listed in data/landscapes.tsv with one `apt-get download`, extracts them
# with `dpkg-deb -x` into a cache, checks sha256 and links the photos into DEST/train and
# DEST/eval. Problems that a Debian point release or a mirror can cause (a package gone, a path
# moved, a changed sha256) are warnings: those photos are skipped or kept, the rest still built.
# A photo whose sha256 is listed in data/reserved-sha256.txt is held out for evaluation and never
# linked, whatever its split says.
# Usage: scripts/fetch-landscapes.sh [DEST=data-cache/landscapes] [--with-optional]
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data-cache/landscapes
with_optional=
for arg in "$@"; do
  case $arg in
    --with-optional) with_optional=1 ;;
    -*) echo "usage: $0 [DEST] [--with-optional]" >&2; exit 2 ;;
    *) dest=$arg ;;
  esac
done
cache=${IGAN_CACHE:-data-cache}/debs
root="$cache/root"
tsv=data/landscapes.tsv
reserved=data/reserved-sha256.txt
mkdir -p "$cache" "$root" "$dest/train" "$dest/eval"
warned=0
warn() { echo "warning: $*" >&2; warned=1; }

# Rows to build: split, package, path, size, sha256 (the header and, unless asked, optional ones
# dropped).
rows=$(awk -F'\t' -v opt="$with_optional" 'NR > 1 && NF && ($1 != "optional" || opt != "")' "$tsv")
packages=$(cut -f2 <<<"$rows" | sort -u)
deb_of() { ls "$cache/$1"_*.deb 2>/dev/null | tail -1 || true; }

# One download for every package not cached yet. apt-get refuses the whole call when it cannot
# locate one name, so names unknown to apt are warned about and left out first.
missing=()
for p in $packages; do [ -n "$(deb_of "$p")" ] || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' 2>/dev/null)" ]; then
    apt-get update -q || warn "apt-get update failed"
  fi
  known=()
  for p in "${missing[@]}"; do
    if apt-cache show --no-all-versions "$p" >/dev/null 2>&1; then known+=("$p")
    else warn "package $p is not known to apt; its photos are skipped"; fi
  done
  if [ ${#known[@]} -gt 0 ]; then
    (cd "$cache" && apt-get download -q "${known[@]}") ||
      warn "apt-get download failed for some of: ${known[*]}"
  fi
fi

# Extract each package once; a stamp file marks a finished extraction.
for p in $packages; do
  deb=$(deb_of "$p")
  [ -n "$deb" ] || continue
  stamp="$root/.$(basename "$deb").done"
  [ -f "$stamp" ] || { dpkg-deb -x "$deb" "$root" && touch "$stamp"; } ||
    warn "could not extract $deb"
done

declare -A held_out=() linked=()
if [ -f "$reserved" ]; then
  while read -r h; do held_out[$h]=1; done < <(grep -o -E '^[0-9a-f]{64}' "$reserved")
fi
skipped=0
is_reserved() { [ -n "$1" ] && [ -n "${held_out[$1]:-}" ]; }
while IFS=$'\t' read -r split package path _size sha; do
  [ -n "$split" ] || continue
  src="$root$path"
  if [ ! -f "$src" ]; then
    # A package that could not be fetched was warned about above.
    if [ -n "$(deb_of "$package")" ]; then warn "$package does not contain $path"; fi
    skipped=$((skipped + 1)); continue
  fi
  got=$(sha256sum "$src" | cut -d' ' -f1)
  if is_reserved "$sha" || is_reserved "$got"; then
    echo "note: $path ($package) is reserved for held-out evaluation; skipped" >&2
    skipped=$((skipped + 1)); continue
  fi
  [ "$got" = "$sha" ] ||
    warn "sha256 mismatch for $path ($package); a point release may have changed it"
  # Unique, shell-safe names: package plus a hash of the path, keeping the extension.
  ext=${path##*.}
  name="${package}-$(printf '%s' "$path" | sha256sum | cut -c1-8).${ext,,}"
  [ "$split" = optional ] && split=train
  ln -sfn "$(realpath "$src")" "$dest/$split/$name"
  linked[$dest/$split/$name]=1
done <<<"$rows"
# A link into the cache that no row made any more (a row removed, moved to another split or
# newly reserved) goes; other files in DEST are left alone.
real_root=$(realpath "$root")
while IFS= read -r -d '' link; do
  [ -n "${linked[$link]:-}" ] || rm -f "$link"
done < <(find "$dest/train" "$dest/eval" -maxdepth 1 -type l -lname "$real_root/*" -print0)
echo "$(ls "$dest/train" | wc -l) train and $(ls "$dest/eval" | wc -l) eval photos in $dest" \
     "($skipped listed photos skipped)"
[ "$warned" = 0 ] || echo "(see warnings above)" >&2
