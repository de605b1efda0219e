#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace igan::cli {

ProgressBar::ProgressBar(std::string label, bool quiet, int64_t total_pixels)
    : label_(std::move(label)), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0),
      total_pixels_(total_pixels) {}

void ProgressBar::update(const Progress& p) {
    if (quiet_ || p.total <= 0) return;
    const bool last = p.done >= p.total;
    if (!last && p.elapsed_s - last_print_ < (tty_ ? 0.1 : 5.0)) return;
    last_print_ = p.elapsed_s;
    const double frac = double(p.done) / double(p.total);
    const double eta = p.done > 0 ? p.elapsed_s * (1 - frac) / frac : 0;
    const double mps = p.elapsed_s > 0 ? frac * double(total_pixels_) * 1e-6 / p.elapsed_s : 0;
    if (tty_) {
        constexpr int kWidth = 30;
        const int filled = int(frac * kWidth);
        std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld tiles  %.2f MP/s  ETA %.0fs ",
                     label_.c_str(), filled, "##############################", kWidth - filled, "",
                     (long long)p.done, (long long)p.total, mps, eta);
        drawn_ = true;
    } else {
        std::fprintf(stderr, "%s: %lld/%lld tiles, %.2f MP/s, ETA %.0fs\n", label_.c_str(),
                     (long long)p.done, (long long)p.total, mps, eta);
    }
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
}

}  // namespace igan::cli
