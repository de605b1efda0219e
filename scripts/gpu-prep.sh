#!/usr/bin/env bash
# Run here, on Debian 12 with network access, before a GPU check: gathers what igan's build needs
# on the GPU machine, which has PyTorch but no -dev packages and no network, into gpu-carry/
# (ignored by git; name it in the device run's `carry`):
#   gpu-carry/debs/   the Debian packages of every header and library igan builds against besides
#                     LibTorch, unpacked there by scripts/gpu-check.sh (dpkg -x, never into /);
#   gpu-carry/train/  the training photos for scripts/gpu-train.sh, with --with-photos.
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
packages=(
  libpng-dev libpng16-16 zlib1g-dev             # PNG
  libjpeg62-turbo-dev libjpeg62-turbo           # JPEG: headers and library of one version
  libssl-dev libssl3                            # SHA-256 (OpenSSL EVP)
  libcli11-dev nlohmann-json3-dev               # header-only
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  libcpp-httplib-dev libcpp-httplib0.11 libbrotli-dev libbrotli1
  libtiff-dev libtiff6 libtiffxx6 libjbig0 libdeflate0 liblerc4 libwebp7 libzstd1
  liblzma5
  pkgconf pkgconf-bin libpkgconf3               # pkg-config for cpp-httplib
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
  # The loader keeps a photo's short side at ceil(full_size * max_scale) = 152 px for tiny's
  # 101 px at the default --max-scale 1.5: copies that small lose little of what it reads, and
  # fit the device's 64-MiB working tree (1.5 MB instead of 25).
  [ -d data-cache/landscapes/train ] || bash scripts/fetch-landscapes.sh
  tool=$(mktemp -d)/shrink_photos
  g++ -O2 -std=c++17 -Isrc -Iinclude scripts/shrink_photos.cpp src/io/png.cpp \
      src/io/png_encode.cpp src/io/atomic_file.cpp -lpng -ljpeg -lz -o "$tool"
  rm -rf gpu-carry/train
  "$tool" data-cache/landscapes/train gpu-carry/train 152
  rm -rf "$(dirname "$tool")"
  echo "$(ls gpu-carry/train | wc -l) photos, $(du -sh gpu-carry/train | cut -f1) in gpu-carry/train"
fi
