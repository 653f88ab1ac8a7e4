#include "common/clock.h"

#include <ctime>
#include <cstdio>

namespace orch {

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

ManualClock::ManualClock()
    : steady_base_(std::chrono::steady_clock::now()), wall_base_(std::chrono::system_clock::now()) {}

SteadyTime ManualClock::now() const {
  return steady_base_ + std::chrono::nanoseconds(offset_ns_.load());
}

WallTime ManualClock::wall_now() const {
  return wall_base_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          std::chrono::nanoseconds(offset_ns_.load()));
}

void ManualClock::advance(std::chrono::nanoseconds by) { offset_ns_ += by.count(); }

std::int64_t to_unix_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

WallTime from_unix_ms(std::int64_t ms) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(ms)));
}

std::string to_iso8601(std::int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

}  // namespace orch
