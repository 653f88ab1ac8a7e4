// Clock: the one part tests may swap, and only where time is what is tested.
// SystemClock reads the real clocks; ManualClock moves when a test says so.
// Both are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace orch {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;      // for deadlines and durations
  virtual WallTime wall_now() const = 0;   // for timestamps people read
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  WallTime wall_now() const override { return std::chrono::system_clock::now(); }
  static SystemClock& instance();
};

class ManualClock final : public Clock {
 public:
  ManualClock();
  SteadyTime now() const override;
  WallTime wall_now() const override;
  void advance(std::chrono::nanoseconds by);

 private:
  SteadyTime steady_base_;
  WallTime wall_base_;
  std::atomic<std::int64_t> offset_ns_{0};
};

// Milliseconds since the Unix epoch, the form the store and the JSON keep.
std::int64_t to_unix_ms(WallTime t);
WallTime from_unix_ms(std::int64_t ms);
// ISO 8601 UTC with milliseconds, e.g. "2026-11-23T21:04:34.120Z".
std::string to_iso8601(std::int64_t unix_ms);

}  // namespace orch
