// ProfileGate: the per-profile start rules of the scheduler (SPEC §4):
// concurrency per profile, a token bucket per rate-limited profile and a
// circuit breaker per profile. It only answers "may a task of this profile
// start now, and if not, why and until when" and records starts and ends;
// the Scheduler decides what to start. Time comes in as Unix ms.
// Not thread-safe (used under the Scheduler's caller's lock).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/profile.h"

namespace orch::engine {

class ProfileGate {
 public:
  // Replaces the rules; a profile without rules is never held.
  void set_rules(std::map<std::string, ProfileRules> rules);
  bool has(const std::string& name) const { return profiles_.count(name) > 0; }

  // "" when a task of `name` may start now; else why not, and in
  // `*retry_at_ms` (when not null and the hold ends by time alone) when.
  std::string hold(const std::string& name, std::int64_t now_ms, std::int64_t* retry_at_ms) const;
  // A task of `name` starts: takes a token; a half-open breaker's trial.
  void started(const std::string& name, std::int64_t now_ms);
  // A task of `name` entered (+1) or left (-1) the running state.
  void count_running(const std::string& name, int delta);
  // An attempt of `name` ended. `counts`: false for a cancellation, which
  // says nothing about the profile's health.
  void ended(const std::string& name, bool failed, bool counts, std::int64_t now_ms);

  // Every profile with rules, `queued` giving its queued tasks by name.
  std::vector<ProfileView> views(std::int64_t now_ms, const std::map<std::string, std::size_t>& queued) const;

 private:
  struct State {
    ProfileRules rules;
    int running = 0;
    double tokens = 0;
    std::int64_t refilled_at_ms = -1;  // -1: never taken from (the bucket starts full)
    int consecutive_failures = 0;
    BreakerState breaker = BreakerState::Closed;
    std::int64_t open_until_ms = 0;
    bool trial_running = false;        // half-open: the one trial start is under way
  };
  State* find(const std::string& name);
  const State* find(const std::string& name) const;
  static double bucket_size(const RateLimit& r);
  static double tokens_now(const State& s, std::int64_t now_ms);
  static std::string hold(const State& s, std::int64_t now_ms, std::int64_t* retry_at_ms);

  std::map<std::string, State> profiles_;
};

}  // namespace orch::engine
