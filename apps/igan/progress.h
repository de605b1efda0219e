#pragma once
// Progress on stderr: a redrawn bar on a terminal, a plain line every few seconds otherwise.
#include <igan/igan.h>

#include <string>

namespace igan::cli {

class ProgressBar {
public:
    // total_pixels > 0: show MP/s; otherwise `unit`s per second.
    ProgressBar(std::string label, bool quiet, int64_t total_pixels = 0,
                std::string unit = "tiles");
    void update(const Progress& p);
    void finish();

private:
    std::string label_;
    bool quiet_, tty_;
    double last_print_ = -1;
    bool drawn_ = false;
    int64_t total_pixels_ = 0;
    std::string unit_;
};

}  // namespace igan::cli
