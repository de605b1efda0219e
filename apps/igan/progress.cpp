#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace igan::cli {

ProgressBar::ProgressBar(std::string label, bool quiet, int64_t total_pixels, std::string unit)
    : label_(std::move(label)), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0),
      total_pixels_(total_pixels), unit_(std::move(unit)) {}

void ProgressBar::update(const Progress& p) {
    if (quiet_ || p.total <= 0) return;
    const bool last = p.done >= p.total;
    if (!last && p.elapsed_s - last_print_ < (tty_ ? 0.1 : 5.0)) return;
    last_print_ = p.elapsed_s;
    const double frac = double(p.done) / double(p.total);
    const double eta = p.done > 0 ? p.elapsed_s * (1 - frac) / frac : 0;
    char rate[64];
    if (total_pixels_ > 0) {
        std::snprintf(rate, sizeof rate, "%.2f MP/s",
                      p.elapsed_s > 0 ? frac * double(total_pixels_) * 1e-6 / p.elapsed_s : 0.0);
    } else {
        std::snprintf(rate, sizeof rate, "%.2f %s/s", p.elapsed_s > 0 ? p.done / p.elapsed_s : 0.0,
                      unit_.c_str());
    }
    if (tty_) {
        constexpr int kWidth = 30;
        const int filled = int(frac * kWidth);
        std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld %s  %s  ETA %.0fs %s ", label_.c_str(),
                     filled, "##############################", kWidth - filled, "",
                     (long long)p.done, (long long)p.total, unit_.c_str(), rate, eta,
                     p.detail.c_str());
        drawn_ = true;
    } else {
        std::fprintf(stderr, "%s: %lld/%lld %s, %s, ETA %.0fs%s%s\n", label_.c_str(),
                     (long long)p.done, (long long)p.total, unit_.c_str(), rate, eta,
                     p.detail.empty() ? "" : ", ", p.detail.c_str());
    }
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
}

}  // namespace igan::cli
