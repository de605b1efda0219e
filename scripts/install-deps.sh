#!/usr/bin/env bash
# Installs igan's build and test dependencies from Debian 12 packages (run as root).
set -euo pipefail
packages=(
  build-essential cmake git pkg-config
  libtorch-dev            # LibTorch: tensors, convolutions (oneDNN), autograd, optimisers
  libopenblas0-pthread    # fast BLAS for LibTorch (Debian's reference BLAS is ~30x slower)
  libdnnl-dev             # oneDNN's sgemm for the up layers (optional: else LibTorch's BLAS)
  libpng-dev libjpeg-dev  # image I/O (PNG streaming writer, PNG/JPEG datasets)
  libwebp-dev             # WebP tiles in igan serve (optional: else PNG only)
  zlib1g-dev              # PNG image data compressed by several threads (src/io/png_encode.cpp)
  libssl-dev              # SHA-256 of model files (OpenSSL EVP)
  libcli11-dev            # command-line parsing
  nlohmann-json3-dev      # configs, safetensors headers, JSON output
  libgloo-dev             # optional: c10d Gloo headers (data-parallel CPU training)
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and micro-benchmarks
  libcpp-httplib-dev      # igan serve: HTTP server (and the client in its tests)
  libjs-leaflet           # igan serve: the web viewer's map, embedded at build time
  libtiff-dev             # igan export --format bigtiff
  chromium                # the viewer's headless browser test (CTest label browser)
  curl wrk                # serve tests and bench/serve_load.sh
  ca-certificates openssl # scripts/fetch-pmtiles.sh: HTTPS to the npm registry, integrity check
  python3                 # acceptance helpers (standard library only)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
