// Profiles (SPEC §5): a named command line with the rules its tasks run
// under. The app reads them from the config file; the engine expands one
// into a TaskSpec at submit and applies its limits when scheduling.
// Plain values and pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/task.h"

namespace orch::engine {

// Starts allowed per minute, as a token bucket holding at most `burst`.
struct RateLimit {
  double per_minute = 0;  // 0: no limit
  int burst = 0;          // bucket size; 0: ceil(per_minute)
};

// After `failures` consecutive failed attempts the profile starts nothing
// for `cooldown_ms`; then one task may try (half-open).
struct BreakerSettings {
  int failures = 0;  // 0: no breaker
  std::int64_t cooldown_ms = 60000;
};

// A pool profile's long-lived workers (SPEC §6).
struct PoolSettings {
  int min = 0;                          // kept running even when idle
  int max = 4;                          // at most this many at once
  int max_tasks_per_worker = 1000;      // then it is replaced
  std::int64_t max_worker_rss_mb = 0;   // above this, measured between tasks, it is replaced; 0: never
  std::int64_t idle_timeout_ms = 300000;  // a worker above `min` idle this long exits
};

enum class ProfileMode { Process, Pool };

struct Profile {
  std::string name;
  ProfileMode mode = ProfileMode::Process;
  std::vector<std::string> argv;          // {placeholders} allowed for Process profiles
  std::map<std::string, std::string> env;
  std::string cwd;                        // absolute; empty: the server's
  int max_concurrent = 0;                 // 0: only the global limit
  std::optional<std::int64_t> timeout_ms;
  std::optional<RetryPolicy> retry;
  RateLimit rate_limit;
  BreakerSettings breaker;
  TaskLimits limits;                      // memory_mb is also a pool worker's hard RSS limit
  PoolSettings pool;
};

// What limits a profile's starts (SPEC §4 Scheduler): its own concurrency,
// a token bucket and a circuit breaker.
struct ProfileRules {
  int max_concurrent = 0;  // 0: only the global limit
  RateLimit rate_limit;
  BreakerSettings breaker;
};

enum class BreakerState { Closed, Open, HalfOpen };
const char* to_string(BreakerState s);

// A profile's live scheduling state, for getStatus.
struct ProfileView {
  std::string name;
  int running = 0;
  int max_concurrent = 0;
  std::size_t queued = 0;           // its tasks queued now
  std::optional<double> tokens;     // rate-limited profiles: starts available now
  BreakerState breaker = BreakerState::Closed;
  int consecutive_failures = 0;
  std::int64_t breaker_open_until_ms = 0;  // while open
  std::string held;                 // why its queued tasks do not start; empty: they may
};

// The names of the {placeholders} in `argv`, each once, in order of first
// use. "{{" and "}}" stand for literal braces. Error for an unclosed brace or
// a name that is not [A-Za-z_][A-Za-z0-9_-]*, naming the element.
Result<std::vector<std::string>> argv_placeholders(const std::vector<std::string>& argv);

// The task a submit of `profile` asks for: argv with every placeholder
// replaced by its param, element by element (never through a shell), and
// the profile's env, cwd, timeout, retry and limits. A missing param, a
// param the profile does not take, params for a pool profile or input for a
// process profile are InvalidArgument errors saying how to fix the call.
// `input_json` is the pool input as JSON text (nullopt: not given).
Result<TaskSpec> expand_profile(const Profile& profile, const std::map<std::string, std::string>& params,
                                const std::optional<std::string>& input_json);

}  // namespace orch::engine
