# Sourced by scripts/gpu-check.sh and scripts/gpu-train.sh (docs/gpu.md): unpacks the Debian
# packages that scripts/gpu-prep.sh gathered, then configures and builds igan against python3's
# PyTorch (or, with IGAN_GPU_DRY_RUN=1, against the LibTorch CMake finds here).
# Sets: deps (the unpacked root), build (the build folder), out (logs, packed into
# $OUT/logs.tar.gz with $OUT/steps.txt on exit).

# Logs collect in $out and come back packed: at most 8 files return from the device's $OUT.
results=${OUT:-gpu-out}
out=${IGAN_GPU_LOGS:-/tmp/igan-gpu-logs}
deps=${IGAN_GPU_DEPS:-/tmp/igan-gpu-deps}
build=${IGAN_GPU_BUILD:-build-gpu}
debs=${IGAN_GPU_DEBS:-gpu-carry/debs}
rm -rf "$out"
mkdir -p "$out" "$results"
log() { echo "[$(date +%T)] $*" | tee -a "$out/steps.txt"; }
pack() {
  cp "$out/steps.txt" "$results/" 2>/dev/null
  tar -C "$out" -czf "$results/logs.tar.gz" .
}
trap pack EXIT
trap 'exit 143' TERM

# Each package into $deps, never into /: the image's own libraries stay as they are.
gpu_unpack() {
  ls "$debs"/*.deb >/dev/null 2>&1 || { echo "no $debs/*.deb: run scripts/gpu-prep.sh here first" >&2; exit 1; }
  rm -rf "$deps"
  mkdir -p "$deps/fill"
  for f in "$debs"/*.deb; do dpkg -x "$f" "$deps"; done
  local lib="$deps/usr/lib/x86_64-linux-gnu" so name
  # Libraries the image lacks (the dependencies of libtiff, say) join the loader's path through
  # fill/; those it has stay its own. igan's direct dependencies come from $lib by RUNPATH.
  for so in "$lib"/lib*.so.*; do
    name=$(basename "$so")
    [[ $name =~ \.so\.[0-9]+$ ]] || continue
    ldconfig -p 2>/dev/null | grep -q " $name " || ln -sf "$so" "$deps/fill/$name"
  done
  export LD_LIBRARY_PATH="$deps/fill${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # pkg-config (for cpp-httplib) reads only the unpacked .pc files, rooted at $deps.
  export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$deps/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$deps"
}

# Headers: ours first (-I precedes the compiler's own /usr/include), so jpeglib.h and jconfig.h
# are libjpeg62-turbo's, the version of the library linked, whatever the image has.
gpu_configure() {
  local prefix torch_dir
  if [ "${IGAN_GPU_DRY_RUN:-0}" = 1 ]; then
    prefix="$deps/usr"  # and the LibTorch CMake finds here
  else
    torch_dir=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
    prefix="$torch_dir;$deps/usr"
  fi
  local lib="$deps/usr/lib/x86_64-linux-gnu"
  local flags="-I$deps/usr/include/x86_64-linux-gnu -I$deps/usr/include"
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_CXX_FLAGS="$flags" -DJPEG_INCLUDE_DIR="$deps/usr/include" \
      -DJPEG_LIBRARY="$lib/libjpeg.so" -DPKG_CONFIG_EXECUTABLE="$deps/usr/bin/pkgconf" \
      -DIGAN_LEAFLET_DIR="$deps/usr/share/javascript/leaflet" "$@" \
      >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  # The trap this guards against: a jpeglib.h of another libjpeg than the one linked.
  local version
  version=$(printf '#include <stdio.h>\n#include <jpeglib.h>\nJPEG_LIB_VERSION\n' |
            ${CXX:-c++} $flags -E -P - | tail -1)
  # Where each dependency was found: CMAKE_PREFIX_PATH comes before the system's folders, so one
  # that is not under $deps is missing from the packages (on the GPU machine: not found at all).
  grep -E "^(PNG_PNG_INCLUDE_DIR|PNG_LIBRARY_RELEASE|ZLIB_INCLUDE_DIR|ZLIB_LIBRARY_RELEASE|JPEG_INCLUDE_DIR|JPEG_LIBRARY|OPENSSL_INCLUDE_DIR|OPENSSL_CRYPTO_LIBRARY|TIFF_INCLUDE_DIR|TIFF_LIBRARY_RELEASE|CLI11_DIR|nlohmann_json_DIR|GTest_DIR|benchmark_DIR|PKG_CONFIG_EXECUTABLE|IGAN_LEAFLET_DIR|HTTPLIB_INCLUDEDIR)[:=]" \
      "$build/CMakeCache.txt" | sed 's/:[A-Z]*=/=/' | sort >"$out/deps.txt"
  grep -E "^(TORCH_LIBRARY|IGAN_C10D_[A-Z]+_COMPILES):" "$build/CMakeCache.txt" >>"$out/deps.txt"
  cat "$out/deps.txt"
  local outside
  outside=$(grep -vE "^(TORCH|IGAN_C10D)" "$out/deps.txt" | grep -v "=$deps/" || true)
  [ -z "$outside" ] || { echo "not from $deps (add the package to scripts/gpu-prep.sh):" >&2; echo "$outside" >&2; exit 1; }
  echo "jpeglib.h JPEG_LIB_VERSION=$version (libjpeg62-turbo: 62)" | tee -a "$out/deps.txt"
  [ "$version" = 62 ] || { echo "jpeglib.h is not libjpeg62-turbo's" >&2; exit 1; }
}

gpu_build() {
  cmake --build "$build" -j"$(nproc)" --target "$@" >"$out/build.log" 2>&1 ||
      { tail -40 "$out/build.log"; exit 1; }
}
