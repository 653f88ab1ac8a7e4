#include "tools/task_json.h"

#include <gtest/gtest.h>

namespace orch::tools {
namespace {

using engine::EndReason;
using engine::TaskStatus;
using engine::TaskView;

constexpr std::int64_t kSubmitted = 1795467600000;  // 2026-11-23T21:00:00Z

TaskView queued_task() {
  TaskView v;
  v.task.id = "tabcdefghijklmnopqrstuvwxyz";
  v.task.spec.command = "make";
  v.task.submitted_at_ms = kSubmitted;
  v.task.status = TaskStatus::Queued;
  v.queue_position = 3;
  return v;
}

bool has(const json& j, const char* key) { return j.contains(key); }

TEST(TaskJson, QueuedTaskHasOnlyWhatItHas) {
  json j = task_to_json(queued_task(), kSubmitted + 5000);
  EXPECT_EQ(j.at("taskId"), "tabcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(j.at("status"), "queued");
  EXPECT_EQ(j.at("attempt"), 0);
  EXPECT_EQ(j.at("maxAttempts"), 1);
  EXPECT_EQ(j.at("submittedAt"), "2026-11-23T21:00:00.000Z");
  EXPECT_EQ(j.at("queuePosition"), 3);
  EXPECT_EQ(j.at("dependsOn"), json::array());
  EXPECT_EQ(j.at("tags"), json::array());
  for (const char* absent : {"name", "reason", "message", "progress", "exitCode", "signal", "pid",
                             "peakRssKb", "startedAt", "finishedAt", "durationMs", "cancelRequested"}) {
    EXPECT_FALSE(has(j, absent)) << absent;
  }
  for (const auto& [key, value] : j.items()) EXPECT_FALSE(value.is_null()) << key;
}

TEST(TaskJson, RunningTaskHasPidProgressAndGrowingDuration) {
  TaskView v = queued_task();
  v.queue_position.reset();
  v.task.status = TaskStatus::Running;
  v.task.spec.name = "build";
  v.task.spec.tags = {"ci"};
  v.task.attempt = 1;
  v.task.pid = 4242;
  v.task.started_at_ms = kSubmitted + 1000;
  v.task.progress = engine::Progress{2, 3.0, "linking"};
  json j = task_to_json(v, kSubmitted + 13500);
  EXPECT_EQ(j.at("name"), "build");
  EXPECT_EQ(j.at("tags"), json::array({"ci"}));
  EXPECT_EQ(j.at("pid"), 4242);
  EXPECT_EQ(j.at("startedAt"), "2026-11-23T21:00:01.000Z");
  EXPECT_EQ(j.at("durationMs"), 12500);
  EXPECT_EQ(j.at("progress"), (json{{"current", 2}, {"total", 3}, {"message", "linking"}}));
  EXPECT_TRUE(j.at("progress").at("current").is_number_integer());
  EXPECT_FALSE(has(j, "queuePosition"));
  EXPECT_FALSE(has(j, "finishedAt"));
  EXPECT_FALSE(has(j, "exitCode"));
  EXPECT_FALSE(has(j, "reason"));
}

TEST(TaskJson, CancelRequestedShowsWhileRunning) {
  TaskView v = queued_task();
  v.task.status = TaskStatus::Running;
  v.cancel_requested = true;
  EXPECT_EQ(task_to_json(v, kSubmitted).at("cancelRequested"), true);
}

TEST(TaskJson, FinishedTaskHasExitCodeTimesAndNoPid) {
  TaskView v = queued_task();
  v.queue_position.reset();
  v.task.status = TaskStatus::Failed;
  v.task.reason = EndReason::ExitCode;
  v.task.message = "exited with code 2";
  v.task.attempt = 2;
  v.task.spec.retry.max_attempts = 2;
  v.task.exit_code = 2;
  v.task.pid = 4242;
  v.task.peak_rss_kb = 2048;
  v.task.started_at_ms = kSubmitted + 1000;
  v.task.finished_at_ms = kSubmitted + 3250;
  v.task.spec.depends_on = {"tbbbbbbbbbbbbbbbbbbbbbbbbbb"};
  json j = task_to_json(v, kSubmitted + 999999);
  EXPECT_EQ(j.at("status"), "failed");
  EXPECT_EQ(j.at("reason"), "exit_code");
  EXPECT_EQ(j.at("message"), "exited with code 2");
  EXPECT_EQ(j.at("exitCode"), 2);
  EXPECT_EQ(j.at("attempt"), 2);
  EXPECT_EQ(j.at("maxAttempts"), 2);
  EXPECT_EQ(j.at("peakRssKb"), 2048);
  EXPECT_EQ(j.at("finishedAt"), "2026-11-23T21:00:03.250Z");
  EXPECT_EQ(j.at("durationMs"), 2250);  // finished - started, not now - started
  EXPECT_EQ(j.at("dependsOn"), json::array({"tbbbbbbbbbbbbbbbbbbbbbbbbbb"}));
  EXPECT_FALSE(has(j, "pid"));
  EXPECT_FALSE(has(j, "signal"));
}

TEST(TaskJson, CancelledBeforeStartHasNoDuration) {
  TaskView v = queued_task();
  v.queue_position.reset();
  v.task.status = TaskStatus::Cancelled;
  v.task.reason = EndReason::Cancelled;
  v.task.finished_at_ms = kSubmitted + 10;
  json j = task_to_json(v, kSubmitted + 20);
  EXPECT_EQ(j.at("reason"), "cancelled");
  EXPECT_TRUE(has(j, "finishedAt"));
  EXPECT_FALSE(has(j, "startedAt"));
  EXPECT_FALSE(has(j, "durationMs"));
}

TEST(TaskJson, WaitingForRetryShowsNoFinishTime) {
  TaskView v = queued_task();
  v.queue_position.reset();
  v.task.status = TaskStatus::Waiting;
  v.task.attempt = 1;
  v.task.started_at_ms = kSubmitted + 1000;
  v.task.finished_at_ms = kSubmitted + 2000;  // the previous attempt's end
  json j = task_to_json(v, kSubmitted + 3000);
  EXPECT_TRUE(has(j, "startedAt"));
  EXPECT_FALSE(has(j, "finishedAt"));
  EXPECT_FALSE(has(j, "durationMs"));
}

TEST(TaskJson, SchemaRequiresOnlyAlwaysPresentFields) {
  json schema = task_schema();
  json required = schema.at("required");
  for (const char* key : {"taskId", "status", "attempt", "maxAttempts", "submittedAt", "dependsOn", "tags"}) {
    EXPECT_NE(std::find(required.begin(), required.end(), key), required.end()) << key;
  }
  EXPECT_EQ(required.size(), 7u);
  // Every field the renderer can produce is described.
  TaskView v = queued_task();
  v.task.status = TaskStatus::Running;
  v.task.spec.name = "n";
  v.task.reason = EndReason::Signal;
  v.task.message = "m";
  v.task.progress = engine::Progress{1, std::nullopt, ""};
  v.task.exit_code = 1;
  v.task.signal = 9;
  v.task.pid = 1;
  v.task.peak_rss_kb = 1;
  v.task.started_at_ms = kSubmitted;
  v.cancel_requested = true;
  json rendered = task_to_json(v, kSubmitted);
  for (const auto& [key, value] : rendered.items()) {
    EXPECT_TRUE(schema.at("properties").contains(key)) << key;
  }
}

TEST(TaskJson, WindowReportsPagingAndCap) {
  engine::OutputWindow w;
  w.data = "hi\n";
  w.offset = 0;
  w.next_offset = 3;
  w.file_bytes = 3;
  w.more = false;
  json j = window_to_json(w, 3, 1024);
  EXPECT_EQ(j, (json{{"text", "hi\n"}, {"offset", 0}, {"nextOffset", 3}, {"totalBytes", 3},
                     {"truncated", false}, {"capped", false}}));

  w.offset = 1;
  EXPECT_EQ(window_to_json(w, 3, 1024).at("truncated"), true);
  w.offset = 0;
  w.more = true;
  EXPECT_EQ(window_to_json(w, 3, 1024).at("truncated"), true);

  // Past the cap the record counts everything the task printed.
  w.file_bytes = 1024 + 40;
  json capped = window_to_json(w, 5000, 1024);
  EXPECT_EQ(capped.at("capped"), true);
  EXPECT_EQ(capped.at("totalBytes"), 5000);
  // While running the record may lag the file: the file still tells.
  w.file_bytes = 50;
  EXPECT_EQ(window_to_json(w, 10, 1024).at("totalBytes"), 50);
}

TEST(TaskJson, SanitizeUtf8KeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(sanitize_utf8("plain\n"), "plain\n");
  EXPECT_EQ(sanitize_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"), "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(sanitize_utf8("a\xFF" "b"), "a" + fffd + "b");
  // A window that cuts a 3-byte character at its end: one replacement.
  EXPECT_EQ(sanitize_utf8("ok\xE2\x82"), "ok" + fffd);
  // A window that starts inside a character: each stray continuation byte.
  EXPECT_EQ(sanitize_utf8("\x82\xAC!"), fffd + fffd + "!");
  // Overlong, surrogate and beyond-U+10FFFF forms are invalid.
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), fffd + fffd);
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), fffd + fffd + fffd);
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);
  // A NUL byte is valid UTF-8 and stays (JSON escapes it).
  EXPECT_EQ(sanitize_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
  // The result always survives a strict JSON dump.
  std::string junk;
  for (int i = 0; i < 256; ++i) junk.push_back(static_cast<char>(i));
  EXPECT_NO_THROW((void)json(sanitize_utf8(junk + junk)).dump());
}

TEST(TaskJson, OrchestratorCountsEveryStatus) {
  engine::EngineStats s;
  s.by_status[TaskStatus::Running] = 2;
  s.queue_limit = 10000;
  s.max_concurrent = 8;
  s.mem_available_kb = -1;
  s.started_at_ms = kSubmitted;
  s.state_dir = "/state";
  json j = orchestrator_to_json(s, "1.2.3");
  EXPECT_EQ(j.at("tasks"), (json{{"queued", 0}, {"waiting", 0}, {"running", 2}, {"completed", 0},
                                 {"failed", 0}, {"cancelled", 0}}));
  EXPECT_EQ(j.at("version"), "1.2.3");
  EXPECT_EQ(j.at("restarts").at("count"), 0);
  EXPECT_EQ(j.at("restarts").at("lastReason"), "");
  EXPECT_FALSE(j.at("restarts").contains("lastAt"));
  EXPECT_EQ(j.at("health").at("status"), "ok");
  EXPECT_EQ(j.at("startedAt"), "2026-11-23T21:00:00.000Z");
  EXPECT_FALSE(j.at("memory").contains("systemAvailableKb"));
  json schema = orchestrator_schema();
  for (const auto& key : schema.at("required")) {
    EXPECT_TRUE(j.contains(key.get<std::string>())) << key;
  }
}

TEST(TaskJson, OrchestratorShowsRestartsAndHealth) {
  engine::EngineStats s;
  s.restarts = {3, "health: rss: 600.0 MiB over the limit of 512.0 MiB", kSubmitted};
  s.health.report.healthy = false;
  s.health.report.reason = "rss: too big";
  s.health.report.checks = {{"rss", false, "too big"}};
  s.health.restart_limited = true;
  s.health.restart_limit = 5;
  s.health.restart_window_ms = 600'000;
  s.health.recent_restarts = 5;
  json j = orchestrator_to_json(s, "1.2.3");
  EXPECT_EQ(j.at("restarts").at("count"), 3);
  EXPECT_EQ(j.at("restarts").at("lastReason"), "health: rss: 600.0 MiB over the limit of 512.0 MiB");
  EXPECT_EQ(j.at("restarts").at("lastAt"), "2026-11-23T21:00:00.000Z");
  EXPECT_EQ(j.at("restarts").at("limited"), true);
  EXPECT_EQ(j.at("restarts").at("windowSec"), 600);
  EXPECT_EQ(j.at("health").at("status"), "degraded");
  EXPECT_EQ(j.at("health").at("reason"), "rss: too big");
  EXPECT_EQ(j.at("health").at("checks").at(0).at("ok"), false);
}

TEST(TaskJson, OrchestratorShowsNodesOnlyInAClusterAndNeverTheirTokens) {
  engine::EngineStats alone;
  json j = orchestrator_to_json(alone, "1.2.3");
  EXPECT_FALSE(j.contains("node"));
  EXPECT_FALSE(j.contains("nodes"));

  engine::EngineStats s;
  s.node_name = "a";
  engine::NodeInfo a{.name = "a", .url = "http://127.0.0.1:1", .token = "secret-a", .pid = 10,
                     .heartbeat_age_ms = 120, .running = 2, .max_concurrent = 8, .health = "ok", .alive = true};
  engine::NodeInfo b{.name = "b", .url = "", .token = "secret-b", .pid = 11, .heartbeat_age_ms = 45000,
                     .running = 0, .max_concurrent = 4, .health = "rss: too big", .alive = false};
  s.nodes = {a, b};
  j = orchestrator_to_json(s, "1.2.3");
  EXPECT_EQ(j.at("node"), "a");
  ASSERT_EQ(j.at("nodes").size(), 2u);
  EXPECT_EQ(j.at("nodes").at(0), (json{{"name", "a"}, {"url", "http://127.0.0.1:1"}, {"alive", true},
                                       {"heartbeatAgeMs", 120}, {"running", 2}, {"maxConcurrent", 8},
                                       {"health", "ok"}, {"pid", 10}}));
  EXPECT_EQ(j.at("nodes").at(1).at("alive"), false);
  EXPECT_EQ(j.at("nodes").at(1).at("health"), "rss: too big");
  EXPECT_EQ(j.dump().find("secret"), std::string::npos) << j.dump();
  json schema = orchestrator_schema();
  for (const auto& key : schema.at("properties").at("nodes").at("items").at("required")) {
    EXPECT_TRUE(j.at("nodes").at(1).contains(key.get<std::string>())) << key;
  }
}

}  // namespace
}  // namespace orch::tools
