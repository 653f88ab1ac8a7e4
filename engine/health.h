// Health: the server's periodic check of itself (SPEC §4 Health) and the
// decision "unhealthy → restart in place", with a rate limit so a condition a
// restart cannot fix does not become a restart loop.
//
// Each round takes one HealthSample (what the monitor's sampler reads: own
// RSS, how long ago the dispatcher thread last ran its loop, how long the
// oldest worker job has been running, a store probe) and evaluates it
// (evaluate_health, a pure function) into four checks:
//   rss         RSS at or under max_rss_kb (not checked when 0)
//   dispatcher  the dispatcher loop ran within dispatcher_stall (it runs at
//               least once a second while alive)
//   workers     no worker job has run longer than worker_stall (a long-poll is
//               capped at 50 s, so a job past the limit is stuck)
//   store       a cheap read of the store succeeded
// Unhealthy when any fails. Then the monitor asks its owner to restart
// (on_restart, once until the process restarts), if the RestartBudget allows:
// at most `restart_limit` automatic restarts per `restart_window`. Past the
// limit it stays up, reports itself degraded and logs it once.
//
// Threads: HealthMonitor owns one thread (start() to stop()/destructor) that
// runs a round every `interval`. check_now() and view() are thread-safe.
// The sampler and callbacks run on the monitor's thread (or check_now's
// caller) without the monitor's lock held; they must not call stop().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace orch::engine {

struct HealthOptions {
  std::int64_t max_rss_kb = 0;  // 0: not checked
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds dispatcher_stall{60000};
  std::chrono::milliseconds worker_stall{300000};
  int restart_limit = 5;  // automatic restarts per window; 0: never restart automatically
  std::chrono::milliseconds restart_window{std::chrono::minutes(10)};
};

struct HealthSample {
  std::int64_t rss_kb = -1;             // -1: unknown (then not judged)
  std::int64_t dispatcher_idle_ms = 0;  // since the dispatcher's loop last ran
  std::int64_t oldest_job_ms = 0;       // the longest-running worker job; 0: none
  Status store;                         // the store probe
};

struct HealthCheck {
  std::string name;    // "rss", "dispatcher", "workers", "store"
  bool ok = true;
  std::string detail;  // for people: "38 MiB of 512 MiB", or what is wrong
};

struct HealthReport {
  bool healthy = true;
  std::vector<HealthCheck> checks;
  std::string reason;  // the first failing check, "rss: 612 MiB over the limit of 512 MiB"; empty when healthy
  std::int64_t checked_at_ms = 0;  // Unix ms; 0: not checked yet
};

// What getStatus, /healthz and /metrics show.
struct HealthView {
  HealthReport report;
  bool restart_limited = false;  // unhealthy, and the restart limit is reached: staying up degraded
  int restart_limit = 0;
  std::int64_t restart_window_ms = 0;
  std::size_t recent_restarts = 0;  // automatic restarts within the window
  // "ok" when healthy; "degraded" when not (restarting, or limited).
  const char* status() const { return report.healthy ? "ok" : "degraded"; }
};

HealthReport evaluate_health(const HealthOptions& options, const HealthSample& sample, std::int64_t now_ms);

// At most `limit` restarts in any `window`. Not thread-safe (the monitor
// guards it). The times are Unix ms so they survive a restart in place.
class RestartBudget {
 public:
  RestartBudget(int limit, std::chrono::milliseconds window, std::vector<std::int64_t> recent_ms = {});
  // Records a restart at `now_ms` and returns true while under the limit.
  bool try_take(std::int64_t now_ms);
  bool exhausted(std::int64_t now_ms) const;
  // The restart times still inside the window, oldest first.
  std::vector<std::int64_t> recent(std::int64_t now_ms) const;

 private:
  int limit_;
  std::chrono::milliseconds window_;
  std::vector<std::int64_t> times_;
};

class HealthMonitor {
 public:
  using Sampler = std::function<HealthSample()>;
  using OnRestart = std::function<void(const std::string& reason)>;
  using OnReport = std::function<void(const HealthView&)>;

  HealthMonitor(HealthOptions options, Sampler sampler, RestartBudget budget, Clock& clock,
                OnRestart on_restart, OnReport on_report = {});
  ~HealthMonitor();  // stop()
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  void start();
  // Ends the thread and joins it. Idempotent.
  void stop();
  // One round now: sample, evaluate, maybe ask for a restart. Returns the view.
  HealthView check_now();
  HealthView view() const;
  // Automatic restart times still inside the window, for the hand-over.
  std::vector<std::int64_t> recent_restarts() const;

 private:
  void run(std::stop_token stop);
  HealthView view_locked() const;

  const HealthOptions options_;
  const Sampler sampler_;
  Clock& clock_;
  const OnRestart on_restart_;
  const OnReport on_report_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  RestartBudget budget_;           // guarded by mu_
  HealthReport last_;              // guarded by mu_
  bool limited_ = false;           // guarded by mu_
  bool restart_requested_ = false; // guarded by mu_: asked once per process image
  std::jthread thread_;            // declared last: stopped and joined first
};

}  // namespace orch::engine
