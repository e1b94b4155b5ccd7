// A one-line progress bar with rate and ETA on standard error, drawn only when standard error
// is a terminal (and not for --json), redrawn at most ten times a second.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace docdsa::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled)
      : label_(std::move(label)), total_(total), on_(enabled && isatty(STDERR_FILENO) != 0),
        start_(std::chrono::steady_clock::now()) {}
  ~ProgressBar() { finish(); }

  void set_label(std::string label) { label_ = std::move(label); }
  void set_total(int64_t total) { total_ = total; }
  void update(int64_t done) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    const double sec = std::chrono::duration<double>(now - start_).count();
    const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 0.0;
    const int width = 28;
    const int fill = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(fill), '#');
    bar.resize(width, '.');
    const double rate = sec > 0 ? static_cast<double>(done) / sec : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %3.0f%%  %.0f/s  ETA %s", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), 100.0 * frac, rate, clock(eta).c_str());
    std::fflush(stderr);
  }
  void clear() {
    if (on_ && drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }
  void finish() { clear(); }

  static std::string clock(double s) {
    const long t = static_cast<long>(s + 0.5);
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else std::snprintf(buf, sizeof(buf), "%ld:%02ld", t / 60, t % 60);
    return buf;
  }

 private:
  std::string label_;
  int64_t total_;
  bool on_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

}  // namespace docdsa::cli
