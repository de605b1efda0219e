#!/usr/bin/env bash
# Run here, on Debian 12 with network access, before a GPU check: gathers what igan's build needs
# on the GPU machine, which has PyTorch but no -dev packages and no network, into gpu-carry/
# (ignored by git; name it in the device run's `carry`):
#   gpu-carry/debs/   the Debian packages of every header and library igan builds against besides
#                     LibTorch, unpacked there by scripts/gpu-check.sh (dpkg -x, never into /);
#   gpu-carry/train/  the training photos for scripts/gpu-train.sh, with --with-photos, and
#   gpu-carry/train-debs/  the packages of that run's smaller build (igan alone: no tests,
#                     server or export), so that the photos fit beside them.
# It ends by adding up what each device call would send (64 MiB at most).
# libjpeg: Debian's headers and library come as one pair (libjpeg62-turbo); the GPU image has
# its own jpeglib.h of libjpeg 8, and mixing the two refuses every JPEG at run time.
# Usage: scripts/gpu-prep.sh [--with-photos]
set -euo pipefail
cd "$(dirname "$0")/.."
with_photos=
for arg in "$@"; do
  case $arg in
    --with-photos) with_photos=1 ;;
    *) echo "usage: $0 [--with-photos]" >&2; exit 2 ;;
  esac
done
train_packages=(                                # what igan alone builds against
  libpng-dev libpng16-16 zlib1g-dev             # PNG
  libjpeg62-turbo-dev libjpeg62-turbo           # JPEG: headers and library of one version
  libssl-dev libssl3                            # SHA-256 (OpenSSL EVP)
  libcli11-dev nlohmann-json3-dev               # header-only
  pkgconf pkgconf-bin libpkgconf3               # pkg-config (CMake requires it)
)
packages=(
  "${train_packages[@]}"
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  libcpp-httplib-dev libcpp-httplib0.11 libbrotli-dev libbrotli1
  libtiff-dev libtiff6 libtiffxx6 libjbig0 libdeflate0 liblerc4 libwebp7 libzstd1
  liblzma5
  libjs-leaflet                                 # the viewer's map, embedded at build time
)
dest=gpu-carry/debs
mkdir -p "$dest"
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' 2>/dev/null)" ]; then
  apt-get update -q
fi
(cd "$dest" && rm -f ./*.deb && apt-get download -q "${packages[@]}")
echo "$(ls "$dest"/*.deb | wc -l) packages, $(du -sh "$dest" | cut -f1) in $dest"

if [ -n "$with_photos" ]; then
  rm -rf gpu-carry/train-debs
  mkdir -p gpu-carry/train-debs
  for p in "${train_packages[@]}"; do cp "$dest/${p}_"*.deb gpu-carry/train-debs/; done
  # The loader keeps a photo's short side at ceil(full_size * max_scale) = 152 px for tiny's
  # 101 px at the default --max-scale 1.5: copies that small lose little of what it reads, and
  # fit the device's 64-MiB working tree (300 photos: 4.6 MiB instead of 80).
  [ -d data-cache/landscapes/train ] || bash scripts/fetch-landscapes.sh
  tool=$(mktemp -d)/shrink_photos
  g++ -O2 -std=c++17 -Isrc -Iinclude scripts/shrink_photos.cpp src/io/png.cpp \
      src/io/png_encode.cpp src/io/atomic_file.cpp -lpng -ljpeg -lz -o "$tool"
  rm -rf gpu-carry/train
  "$tool" data-cache/landscapes/train gpu-carry/train 152
  rm -rf "$(dirname "$tool")"
  echo "$(ls gpu-carry/train | wc -l) photos, $(du -sh gpu-carry/train | cut -f1) in gpu-carry/train"
fi

# What a device call sends: tracked and untracked-not-ignored files, plus what it carries.
mib() { du -cb "$@" 2>/dev/null | tail -1 | awk '{printf "%.1f", $1 / 1048576}'; }
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null |
       tail -1 | awk '{printf "%.1f", $1 / 1048576}')
check() {  # check NAME PATHS...
  local name=$1 total
  shift
  total=$(awk -v a="$tree" -v b="$(mib "$@")" 'BEGIN { printf "%.1f", a + b }')
  echo "$name: the working tree $tree MiB + carry $* $(mib "$@") MiB = $total MiB (limit 64)"
  awk -v t="$total" 'BEGIN { exit !(t > 64) }' && echo "warning: over the device's 64 MiB" >&2
  return 0
}
check gpu-check.sh "$dest"
[ -z "$with_photos" ] || check gpu-train.sh gpu-carry/train-debs gpu-carry/train
