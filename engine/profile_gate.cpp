#include "engine/profile_gate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/clock.h"

namespace orch::engine {

const char* to_string(BreakerState s) {
  switch (s) {
    case BreakerState::Closed: return "closed";
    case BreakerState::Open: return "open";
    case BreakerState::HalfOpen: return "half_open";
  }
  return "closed";
}

void ProfileGate::set_rules(std::map<std::string, ProfileRules> rules) {
  std::map<std::string, State> next;
  for (auto& [name, r] : rules) {
    next[name].rules = r;
    if (const State* old = find(name)) next[name].running = old->running;
  }
  profiles_ = std::move(next);
}

ProfileGate::State* ProfileGate::find(const std::string& name) {
  auto it = profiles_.find(name);
  return it == profiles_.end() ? nullptr : &it->second;
}

const ProfileGate::State* ProfileGate::find(const std::string& name) const {
  auto it = profiles_.find(name);
  return it == profiles_.end() ? nullptr : &it->second;
}

double ProfileGate::bucket_size(const RateLimit& r) {
  return r.burst > 0 ? r.burst : std::max(1.0, std::ceil(r.per_minute));
}

// Refilled continuously, so a burst is spread evenly after it is spent.
double ProfileGate::tokens_now(const State& s, std::int64_t now_ms) {
  const RateLimit& r = s.rules.rate_limit;
  if (s.refilled_at_ms < 0) return bucket_size(r);
  double gained = static_cast<double>(std::max<std::int64_t>(0, now_ms - s.refilled_at_ms)) * r.per_minute / 60000.0;
  return std::min(bucket_size(r), s.tokens + gained);
}

std::string ProfileGate::hold(const std::string& name, std::int64_t now_ms, std::int64_t* retry_at_ms) const {
  const State* s = find(name);
  return s ? hold(*s, now_ms, retry_at_ms) : "";
}

std::string ProfileGate::hold(const State& s, std::int64_t now_ms, std::int64_t* retry_at_ms) {
  const ProfileRules& r = s.rules;
  if (r.max_concurrent > 0 && s.running >= r.max_concurrent) {
    return "its profile runs " + std::to_string(s.running) + " of at most " + std::to_string(r.max_concurrent) +
           " tasks at once";
  }
  if (s.breaker == BreakerState::Open && now_ms < s.open_until_ms) {
    if (retry_at_ms) *retry_at_ms = s.open_until_ms;
    return "its profile's circuit breaker is open after " + std::to_string(s.consecutive_failures) +
           " consecutive failures; one task tries again at " + to_iso8601(s.open_until_ms);
  }
  if (s.breaker != BreakerState::Closed && s.trial_running) {
    return "its profile's circuit breaker is half-open: one trial task runs, the rest wait for its result";
  }
  if (r.rate_limit.per_minute > 0) {
    const double tokens = tokens_now(s, now_ms);
    if (tokens < 1.0) {
      const auto wait_ms = std::max<std::int64_t>(
          1, static_cast<std::int64_t>(std::ceil((1.0 - tokens) * 60000.0 / r.rate_limit.per_minute)));
      if (retry_at_ms) *retry_at_ms = now_ms + wait_ms;
      char rate[32];
      std::snprintf(rate, sizeof rate, "%g", r.rate_limit.per_minute);
      return std::string("its profile's rate limit (") + rate + " starts per minute) is used up; the next start is at " +
             to_iso8601(now_ms + wait_ms);
    }
  }
  return "";
}

void ProfileGate::started(const std::string& name, std::int64_t now_ms) {
  State* s = find(name);
  if (!s) return;
  if (s->rules.rate_limit.per_minute > 0) {
    s->tokens = tokens_now(*s, now_ms) - 1.0;
    s->refilled_at_ms = now_ms;
  }
  if (s->breaker == BreakerState::Open && now_ms >= s->open_until_ms) s->breaker = BreakerState::HalfOpen;
  if (s->breaker == BreakerState::HalfOpen) s->trial_running = true;
}

void ProfileGate::count_running(const std::string& name, int delta) {
  if (State* s = find(name)) s->running += delta;
}

void ProfileGate::ended(const std::string& name, bool failed, bool counts, std::int64_t now_ms) {
  State* s = find(name);
  if (!s || s->rules.breaker.failures <= 0) return;
  s->trial_running = false;
  if (!counts) return;
  if (!failed) {
    s->consecutive_failures = 0;
    s->breaker = BreakerState::Closed;
    return;
  }
  ++s->consecutive_failures;
  if (s->breaker == BreakerState::HalfOpen || s->consecutive_failures >= s->rules.breaker.failures) {
    s->breaker = BreakerState::Open;
    s->open_until_ms = now_ms + s->rules.breaker.cooldown_ms;
  }
}

std::vector<ProfileView> ProfileGate::views(std::int64_t now_ms, const std::map<std::string, std::size_t>& queued) const {
  std::vector<ProfileView> out;
  for (const auto& [name, s] : profiles_) {
    ProfileView v;
    v.name = name;
    v.running = s.running;
    v.max_concurrent = s.rules.max_concurrent;
    auto q = queued.find(name);
    v.queued = q == queued.end() ? 0 : q->second;
    if (s.rules.rate_limit.per_minute > 0) v.tokens = std::max(0.0, tokens_now(s, now_ms));
    v.breaker = s.breaker == BreakerState::Open && now_ms >= s.open_until_ms ? BreakerState::HalfOpen : s.breaker;
    v.consecutive_failures = s.consecutive_failures;
    if (s.breaker == BreakerState::Open) v.breaker_open_until_ms = s.open_until_ms;
    v.held = hold(s, now_ms, nullptr);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace orch::engine
