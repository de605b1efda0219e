#pragma once
// The web viewer's files (web/ and Leaflet from Debian's libjs-leaflet), embedded at build time
// by cmake/embed_assets.cmake, so the binary serves them without touching the file system.
#include <cstddef>
#include <string>

namespace igan::web {

struct Asset {
    const char* path;  // URL path, e.g. "/" or "/leaflet/leaflet.js"
    const char* mime;
    const unsigned char* data;
    std::size_t size;
};

// Exact match only; nullptr when absent.
const Asset* find_asset(const std::string& path);

}  // namespace igan::web
