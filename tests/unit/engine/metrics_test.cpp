#include "engine/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

EngineStats sample_stats() {
  EngineStats s;
  s.by_status[TaskStatus::Running] = 2;
  s.by_status[TaskStatus::Completed] = 5;
  s.queue_depth = 3;
  s.queue_limit = 100;
  s.running = 2;
  s.max_concurrent = 8;
  s.workers = {4, 1, 3, 128, 0};
  s.rss_kb = 1024;
  s.peak_rss_kb = 2048;
  s.mem_available_kb = 4096;
  s.uptime_ms = 1500;
  s.started_at_ms = 1'700'000'000'000;
  s.tasks_submitted = 10;
  s.spawn_errors = 1;
  s.durations.bounds_s = {0.1, 1, 10};
  s.durations.counts = {1, 3, 4};
  s.durations.count = 5;
  s.durations.sum_s = 42.5;
  s.restarts.count = 2;
  s.health.report.healthy = false;
  s.health.report.checks = {{"rss", false, "too big"}, {"store", true, "readable"}};
  s.health.restart_limited = true;
  return s;
}

TEST(Metrics, EveryFamilyHasHelpTypeAndSamples) {
  std::string text = prometheus_text(sample_stats(), ProcessFacts{6, 1, 1, 3});
  for (const char* line : {
           "# TYPE orchestrator_tasks gauge",
           "orchestrator_tasks{status=\"queued\"} 0",
           "orchestrator_tasks{status=\"running\"} 2",
           "orchestrator_tasks{status=\"completed\"} 5",
           "orchestrator_tasks{status=\"cancelled\"} 0",
           "orchestrator_queue_depth 3",
           "orchestrator_workers{state=\"busy\"} 1",
           "orchestrator_workers{state=\"idle\"} 3",
           "# TYPE orchestrator_spawn_errors_total counter",
           "orchestrator_spawn_errors_total 1",
           "# TYPE orchestrator_task_duration_seconds histogram",
           "orchestrator_task_duration_seconds_bucket{le=\"0.1\"} 1",
           "orchestrator_task_duration_seconds_bucket{le=\"10\"} 4",
           "orchestrator_task_duration_seconds_bucket{le=\"+Inf\"} 5",
           "orchestrator_task_duration_seconds_sum 42.5",
           "orchestrator_task_duration_seconds_count 5",
           "orchestrator_resident_memory_bytes 1048576",
           "orchestrator_memory_available_bytes 4194304",
           "orchestrator_restarts_total 2",
           "orchestrator_healthy 0",
           "orchestrator_health_check_ok{check=\"rss\"} 0",
           "orchestrator_health_check_ok{check=\"store\"} 1",
           "orchestrator_restart_limited 1",
           "orchestrator_http_threads{state=\"busy\"} 1",
           "orchestrator_http_threads{state=\"idle\"} 5",
           "orchestrator_mcp_sessions 3",
       }) {
    EXPECT_NE(text.find(std::string(line) + "\n"), std::string::npos) << "missing: " << line << "\n" << text;
  }
}

TEST(Metrics, PromtoolAcceptsTheText) {
  if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool is not installed (scripts/setup installs it)";
  test::TempDir dir;
  auto file = dir.path() / "metrics.txt";
  std::ofstream(file) << prometheus_text(sample_stats(), ProcessFacts{});
  std::string command = "/usr/bin/promtool check metrics < '" + file.string() + "' 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  EXPECT_EQ(::pclose(p), 0) << out;
}

}  // namespace
}  // namespace orch::engine
