#include "engine/health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "tests/support/wait_until.h"

namespace orch::engine {
namespace {

using namespace std::chrono_literals;

HealthSample fine() {
  HealthSample s;
  s.rss_kb = 40 * 1024;
  s.dispatcher_idle_ms = 200;
  s.oldest_job_ms = 0;
  return s;
}

const HealthCheck& check(const HealthReport& r, const std::string& name) {
  for (const auto& c : r.checks) {
    if (c.name == name) return c;
  }
  throw std::runtime_error("no check " + name);
}

TEST(Health, AllChecksPassOnAHealthySample) {
  HealthOptions o;
  o.max_rss_kb = 512 * 1024;
  HealthReport r = evaluate_health(o, fine(), 1000);
  EXPECT_TRUE(r.healthy);
  EXPECT_TRUE(r.reason.empty());
  ASSERT_EQ(r.checks.size(), 4u);
  EXPECT_EQ(check(r, "rss").detail, "40.0 MiB of 512.0 MiB");
  EXPECT_EQ(r.checked_at_ms, 1000);
}

TEST(Health, RssOverTheLimitIsUnhealthy) {
  HealthOptions o;
  o.max_rss_kb = 32 * 1024;
  HealthReport r = evaluate_health(o, fine(), 0);
  EXPECT_FALSE(r.healthy);
  EXPECT_FALSE(check(r, "rss").ok);
  EXPECT_EQ(r.reason, "rss: 40.0 MiB over the limit of 32.0 MiB");
}

TEST(Health, NoRssLimitMeansRssIsNotJudged) {
  HealthOptions o;  // max_rss_kb 0
  HealthSample s = fine();
  s.rss_kb = 1 << 30;
  EXPECT_TRUE(evaluate_health(o, s, 0).healthy);
}

TEST(Health, StalledDispatcherIsUnhealthy) {
  HealthOptions o;
  o.dispatcher_stall = 10s;
  HealthSample s = fine();
  s.dispatcher_idle_ms = 10'000;
  EXPECT_TRUE(evaluate_health(o, s, 0).healthy) << "at the limit is still fine";
  s.dispatcher_idle_ms = 10'001;
  HealthReport r = evaluate_health(o, s, 0);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason.rfind("dispatcher: stuck", 0), 0u) << r.reason;
}

TEST(Health, WorkerJobPastTheLimitIsUnhealthy) {
  HealthOptions o;
  o.worker_stall = 60s;
  HealthSample s = fine();
  s.oldest_job_ms = 61'000;
  HealthReport r = evaluate_health(o, s, 0);
  EXPECT_FALSE(r.healthy);
  EXPECT_FALSE(check(r, "workers").ok);
  EXPECT_NE(r.reason.find("61.0 s"), std::string::npos) << r.reason;
}

TEST(Health, FailedStoreProbeIsUnhealthyWithItsMessage) {
  HealthOptions o;
  HealthSample s = fine();
  s.store = make_error(ErrorCode::Io, "disk I/O error");
  HealthReport r = evaluate_health(o, s, 0);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.reason, "store: disk I/O error");
}

TEST(RestartBudget, AllowsTheLimitPerWindowThenRefuses) {
  RestartBudget b(3, 60s);
  EXPECT_TRUE(b.try_take(1'000));
  EXPECT_TRUE(b.try_take(2'000));
  EXPECT_TRUE(b.try_take(3'000));
  EXPECT_TRUE(b.exhausted(3'500));
  EXPECT_FALSE(b.try_take(4'000));
  // The first leaves the window at 61 s.
  EXPECT_FALSE(b.try_take(60'999));
  EXPECT_TRUE(b.try_take(61'001));
  EXPECT_EQ(b.recent(61'001), (std::vector<std::int64_t>{2'000, 3'000, 61'001}));
}

TEST(RestartBudget, KeepsTheTimesItWasGiven) {
  RestartBudget b(2, 60s, {5'000, 1'000});
  EXPECT_TRUE(b.exhausted(10'000));
  EXPECT_EQ(b.recent(10'000), (std::vector<std::int64_t>{1'000, 5'000}));
  EXPECT_FALSE(b.exhausted(61'500));
}

struct Recorder {
  std::mutex mu;
  std::vector<std::string> reasons;
  void add(const std::string& r) {
    std::lock_guard lock(mu);
    reasons.push_back(r);
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return reasons.size();
  }
};

TEST(HealthMonitor, AsksForOneRestartPerImageWhenUnhealthy) {
  ManualClock clock;
  HealthOptions o;
  o.max_rss_kb = 1024;
  Recorder restarts;
  HealthMonitor m(o, [] { return fine(); }, RestartBudget(5, 10min), clock,
                  [&](const std::string& reason) { restarts.add(reason); });
  HealthView v = m.check_now();
  EXPECT_FALSE(v.report.healthy);
  EXPECT_EQ(std::string(v.status()), "degraded");
  EXPECT_FALSE(v.restart_limited);
  EXPECT_EQ(v.recent_restarts, 1u);
  m.check_now();
  EXPECT_EQ(restarts.size(), 1u) << "a restart is already on its way";
  EXPECT_EQ(restarts.reasons.front(), "rss: 40.0 MiB over the limit of 1.0 MiB");
}

TEST(HealthMonitor, StaysUpDegradedPastTheRestartLimit) {
  ManualClock clock;
  HealthOptions o;
  o.max_rss_kb = 1024;
  o.restart_limit = 2;
  const std::int64_t now = to_unix_ms(clock.wall_now());
  Recorder restarts;
  // Two automatic restarts already happened in earlier images.
  HealthMonitor m(o, [] { return fine(); }, RestartBudget(2, 10min, {now - 2000, now - 1000}), clock,
                  [&](const std::string& reason) { restarts.add(reason); });
  HealthView v = m.check_now();
  EXPECT_TRUE(v.restart_limited);
  EXPECT_EQ(restarts.size(), 0u);
  EXPECT_EQ(v.recent_restarts, 2u);
  // Once the window has passed, a restart is allowed again.
  clock.advance(10min);
  v = m.check_now();
  EXPECT_FALSE(v.restart_limited);
  EXPECT_EQ(restarts.size(), 1u);
}

TEST(HealthMonitor, ThreadRunsRoundsUntilStopped) {
  ManualClock clock;
  HealthOptions o;
  o.interval = 10ms;
  std::atomic<int> rounds{0};
  std::atomic<int> reports{0};
  HealthMonitor m(
      o,
      [&] {
        ++rounds;
        return fine();
      },
      RestartBudget(5, 10min), clock, [](const std::string&) {}, [&](const HealthView& v) {
        if (v.report.healthy) ++reports;
      });
  m.start();
  EXPECT_TRUE(test::wait_until([&] { return reports.load() >= 3; }, 5s));
  m.stop();
  const int after = rounds.load();
  EXPECT_TRUE(m.view().report.healthy);
  m.stop();  // idempotent
  EXPECT_EQ(rounds.load(), after);
}

}  // namespace
}  // namespace orch::engine
