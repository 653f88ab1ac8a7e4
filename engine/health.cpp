#include "engine/health.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "common/thread_name.h"

namespace orch::engine {

namespace {

std::string mib(std::int64_t kb) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(kb) / 1024.0);
  return buf;
}

std::string seconds(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

HealthReport evaluate_health(const HealthOptions& o, const HealthSample& s, std::int64_t now_ms) {
  HealthReport r;
  r.checked_at_ms = now_ms;

  HealthCheck rss{"rss", true, ""};
  if (s.rss_kb < 0) {
    rss.detail = "unknown (no /proc/self/status)";
  } else if (o.max_rss_kb <= 0) {
    rss.detail = mib(s.rss_kb) + ", no limit";
  } else {
    rss.ok = s.rss_kb <= o.max_rss_kb;
    rss.detail = mib(s.rss_kb) + (rss.ok ? " of " : " over the limit of ") + mib(o.max_rss_kb);
  }
  r.checks.push_back(std::move(rss));

  HealthCheck dispatcher{"dispatcher", s.dispatcher_idle_ms <= o.dispatcher_stall.count(), ""};
  dispatcher.detail = dispatcher.ok ? "ran " + seconds(s.dispatcher_idle_ms) + " ago"
                                    : "stuck: its loop last ran " + seconds(s.dispatcher_idle_ms) + " ago";
  r.checks.push_back(std::move(dispatcher));

  HealthCheck workers{"workers", s.oldest_job_ms <= o.worker_stall.count(), ""};
  if (s.oldest_job_ms == 0) workers.detail = "no job running";
  else if (workers.ok) workers.detail = "oldest job running for " + seconds(s.oldest_job_ms);
  else workers.detail = "stuck: a worker job has run for " + seconds(s.oldest_job_ms) + " (limit " +
                        seconds(o.worker_stall.count()) + ")";
  r.checks.push_back(std::move(workers));

  HealthCheck store{"store", static_cast<bool>(s.store), s.store ? "readable" : s.store.error().message};
  r.checks.push_back(std::move(store));

  for (const HealthCheck& c : r.checks) {
    if (c.ok) continue;
    r.healthy = false;
    r.reason = c.name + ": " + c.detail;
    break;
  }
  return r;
}

RestartBudget::RestartBudget(int limit, std::chrono::milliseconds window, std::vector<std::int64_t> recent_ms)
    : limit_(limit), window_(window), times_(std::move(recent_ms)) {
  std::sort(times_.begin(), times_.end());
}

std::vector<std::int64_t> RestartBudget::recent(std::int64_t now_ms) const {
  std::vector<std::int64_t> out;
  for (std::int64_t t : times_) {
    if (t > now_ms - window_.count() && t <= now_ms) out.push_back(t);
  }
  return out;
}

bool RestartBudget::exhausted(std::int64_t now_ms) const {
  return static_cast<int>(recent(now_ms).size()) >= limit_;
}

bool RestartBudget::try_take(std::int64_t now_ms) {
  times_ = recent(now_ms);
  if (static_cast<int>(times_.size()) >= limit_) return false;
  times_.push_back(now_ms);
  return true;
}

HealthMonitor::HealthMonitor(HealthOptions options, Sampler sampler, RestartBudget budget, Clock& clock,
                             OnRestart on_restart, OnReport on_report)
    : options_(options),
      sampler_(std::move(sampler)),
      clock_(clock),
      on_restart_(std::move(on_restart)),
      on_report_(std::move(on_report)),
      budget_(std::move(budget)) {}

HealthMonitor::~HealthMonitor() { stop(); }

void HealthMonitor::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token st) {
    name_this_thread("orch-health");
    run(st);
  });
}

void HealthMonitor::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  wake_.notify_all();
  thread_.join();
}

void HealthMonitor::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, stop, options_.interval, [] { return false; });
    }
    if (stop.stop_requested()) return;
    try {
      check_now();
    } catch (const std::exception& e) {
      spdlog::error("health: a check failed: {}", e.what());
    }
  }
}

HealthView HealthMonitor::check_now() {
  HealthSample sample = sampler_();
  const std::int64_t now = to_unix_ms(clock_.wall_now());
  HealthReport report = evaluate_health(options_, sample, now);
  bool restart = false;
  bool newly_limited = false;
  HealthView view;
  {
    std::lock_guard lock(mu_);
    last_ = report;
    if (report.healthy) {
      limited_ = false;
    } else if (!restart_requested_) {
      if (options_.restart_limit > 0 && budget_.try_take(now)) {
        restart_requested_ = true;
        restart = true;
        limited_ = false;
      } else if (!limited_) {
        limited_ = true;
        newly_limited = true;
      }
    }
    view = view_locked();
  }
  if (restart) {
    spdlog::warn("health: unhealthy ({}); restarting in place", report.reason);
  } else if (newly_limited) {
    spdlog::error("health: unhealthy ({}), but {} automatic restarts in the last {} s reached the limit; "
                  "staying up, degraded",
                  report.reason, view.recent_restarts, options_.restart_window.count() / 1000);
  }
  if (on_report_) on_report_(view);
  if (restart && on_restart_) on_restart_(report.reason);
  return view;
}

HealthView HealthMonitor::view() const {
  std::lock_guard lock(mu_);
  return view_locked();
}

HealthView HealthMonitor::view_locked() const {
  HealthView v;
  v.report = last_;
  v.restart_limited = limited_;
  v.restart_limit = options_.restart_limit;
  v.restart_window_ms = options_.restart_window.count();
  v.recent_restarts = budget_.recent(to_unix_ms(clock_.wall_now())).size();
  return v;
}

std::vector<std::int64_t> HealthMonitor::recent_restarts() const {
  std::lock_guard lock(mu_);
  return budget_.recent(to_unix_ms(clock_.wall_now()));
}

}  // namespace orch::engine
