#include "tools/task_json.h"

#include "tools/profile_json.h"

#include <algorithm>
#include <cmath>

#include "common/clock.h"

namespace orch::tools {

namespace {

// Progress values are doubles in the engine; `3` reads better than `3.0`.
json number_json(double v) {
  if (std::isfinite(v) && std::trunc(v) == v && std::fabs(v) < 9e15) {
    return static_cast<std::int64_t>(v);
  }
  return v;
}

json prop(const char* type, const char* description) {
  return {{"type", type}, {"description", description}};
}

json string_array_schema(const char* description) {
  return {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", description}};
}

json status_enum() {
  return json::array({"queued", "waiting", "running", "completed", "failed", "cancelled"});
}

json reason_enum() {
  return json::array({"exit_code", "signal", "timeout", "cancelled", "dependency_failed",
                      "spawn_error", "worker_crashed", "memory_limit", "lost", "worker_error"});
}

}  // namespace

json progress_to_json(const engine::Progress& progress) {
  json j{{"current", number_json(progress.current)}};
  if (progress.total) j["total"] = number_json(*progress.total);
  if (!progress.message.empty()) j["message"] = progress.message;
  return j;
}

json progress_schema() {
  return {{"type", "object"},
          {"description", "the task's own progress, from `::progress <current>[/<total>] [message]` lines"},
          {"properties",
           {{"current", {{"type", "number"}}},
            {"total", {{"type", "number"}}},
            {"message", {{"type", "string"}}}}},
          {"required", json::array({"current"})}};
}

json task_to_json(const engine::TaskView& view, std::int64_t now_ms) {
  const engine::TaskRecord& t = view.task;
  const bool terminal = engine::is_terminal(t.status);
  json j;
  j["taskId"] = t.id;
  if (!t.spec.name.empty()) j["name"] = t.spec.name;
  j["status"] = engine::to_string(t.status);
  if (t.reason != engine::EndReason::None) j["reason"] = engine::to_string(t.reason);
  if (!t.message.empty()) j["message"] = t.message;
  if (t.progress) j["progress"] = progress_to_json(*t.progress);
  j["attempt"] = t.attempt;
  j["maxAttempts"] = t.spec.retry.max_attempts;
  if (t.exit_code) j["exitCode"] = *t.exit_code;
  if (t.signal) j["signal"] = *t.signal;
  // A pid is only meaningful while its process runs; afterwards the number
  // may already belong to someone else.
  if (t.pid && t.status == engine::TaskStatus::Running) j["pid"] = *t.pid;
  if (t.peak_rss_kb > 0) j["peakRssKb"] = t.peak_rss_kb;
  j["submittedAt"] = to_iso8601(t.submitted_at_ms);
  if (t.started_at_ms > 0) j["startedAt"] = to_iso8601(t.started_at_ms);
  // During a retry back-off finished_at_ms belongs to the previous attempt;
  // only a task that has ended has a finish time.
  if (terminal && t.finished_at_ms > 0) j["finishedAt"] = to_iso8601(t.finished_at_ms);
  if (t.started_at_ms > 0) {
    if (terminal && t.finished_at_ms >= t.started_at_ms) {
      j["durationMs"] = t.finished_at_ms - t.started_at_ms;
    } else if (t.status == engine::TaskStatus::Running) {
      j["durationMs"] = std::max<std::int64_t>(0, now_ms - t.started_at_ms);
    }
  }
  if (view.queue_position) j["queuePosition"] = *view.queue_position;
  j["dependsOn"] = t.spec.depends_on;
  j["tags"] = t.spec.tags;
  if (view.cancel_requested && !terminal) j["cancelRequested"] = true;
  if (!t.node.empty()) j["node"] = t.node;
  return j;
}

json task_schema() {
  json props{
      {"taskId", prop("string", "id to pass to getStatus, getResult and cancelTask")},
      {"name", prop("string", "the name given at submit")},
      {"status", {{"type", "string"}, {"enum", status_enum()}}},
      {"reason", {{"type", "string"}, {"enum", reason_enum()}, {"description", "why the task ended"}}},
      {"message", prop("string", "one line: why it waits, how it ended")},
      {"progress", progress_schema()},
      {"attempt", prop("integer", "attempts started so far")},
      {"maxAttempts", prop("integer", "attempts allowed by the retry policy")},
      {"exitCode", prop("integer", "exit code of the last attempt")},
      {"signal", prop("integer", "signal that ended the last attempt")},
      {"pid", prop("integer", "process (and process group) id while running")},
      {"peakRssKb", prop("integer", "peak resident memory of the task's process, KiB")},
      {"submittedAt", prop("string", "ISO 8601 UTC")},
      {"startedAt", prop("string", "ISO 8601 UTC, latest attempt")},
      {"finishedAt", prop("string", "ISO 8601 UTC")},
      {"durationMs", prop("integer", "run time of the latest attempt; grows while running")},
      {"queuePosition", prop("integer", "1-based position among queued tasks")},
      {"dependsOn", string_array_schema("task ids this task waits for")},
      {"tags", string_array_schema("tags given at submit")},
      {"cancelRequested", prop("boolean", "true while a cancelled task's process is being stopped")},
      {"node", prop("string", "several servers on one store: the one that holds (runs or ran) the task")},
  };
  return {{"type", "object"},
          {"properties", std::move(props)},
          {"required", json::array({"taskId", "status", "attempt", "maxAttempts", "submittedAt", "dependsOn", "tags"})}};
}

json window_to_json(engine::OutputWindow window, std::uint64_t produced_bytes, std::uint64_t cap_bytes) {
  // The spool writes a marker line once a stream passes its cap, so a file
  // longer than the cap means capped even if the record's count lags.
  const bool capped = produced_bytes > cap_bytes || window.file_bytes > cap_bytes;
  std::uint64_t total = std::max(produced_bytes, capped ? cap_bytes + 1 : window.file_bytes);
  return {{"text", sanitize_utf8_owned(std::move(window.data))},
          {"offset", window.offset},
          {"nextOffset", window.next_offset},
          {"totalBytes", total},
          {"truncated", window.offset > 0 || window.more},
          {"capped", capped}};
}

json window_schema() {
  return {{"type", "object"},
          {"properties",
           {{"text", prop("string", "the window's bytes as UTF-8; invalid sequences become U+FFFD")},
            {"offset", prop("integer", "byte offset of the window's start")},
            {"nextOffset", prop("integer", "pass as offset to read on from here")},
            {"totalBytes", prop("integer", "bytes the task wrote on this stream so far")},
            {"truncated", prop("boolean", "output exists before offset or after nextOffset")},
            {"capped", prop("boolean", "the stream passed its size cap; later output was not kept")}}},
          {"required", json::array({"text", "offset", "nextOffset", "totalBytes", "truncated", "capped"})}};
}

json restarts_to_json(const engine::EngineStats& stats) {
  const engine::HealthView& h = stats.health;
  json j{{"count", stats.restarts.count},
         {"lastReason", stats.restarts.last_reason},
         {"limit", h.restart_limit},
         {"windowSec", h.restart_window_ms / 1000},
         {"recentAutomatic", h.recent_restarts},
         {"limited", h.restart_limited}};
  if (stats.restarts.last_at_ms > 0) j["lastAt"] = to_iso8601(stats.restarts.last_at_ms);
  return j;
}

json health_to_json(const engine::HealthView& view) {
  json checks = json::array();
  for (const auto& c : view.report.checks) {
    checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", sanitize_utf8(c.detail)}});
  }
  json j{{"status", view.status()}, {"checks", std::move(checks)}};
  if (!view.report.reason.empty()) j["reason"] = sanitize_utf8(view.report.reason);
  if (view.report.checked_at_ms > 0) j["checkedAt"] = to_iso8601(view.report.checked_at_ms);
  return j;
}

json orchestrator_to_json(const engine::EngineStats& stats, std::string_view version) {
  json counts = json::object();
  for (auto s : {engine::TaskStatus::Queued, engine::TaskStatus::Waiting, engine::TaskStatus::Running,
                 engine::TaskStatus::Completed, engine::TaskStatus::Failed,
                 engine::TaskStatus::Cancelled}) {
    auto it = stats.by_status.find(s);
    counts[engine::to_string(s)] = it == stats.by_status.end() ? 0 : it->second;
  }
  json memory{{"rssKb", stats.rss_kb}, {"peakRssKb", stats.peak_rss_kb}};
  if (stats.mem_available_kb >= 0) memory["systemAvailableKb"] = stats.mem_available_kb;
  json out{{"tasks", std::move(counts)},
          {"queueDepth", stats.queue_depth},
          {"queueLimit", stats.queue_limit},
          {"running", stats.running},
          {"maxConcurrent", stats.max_concurrent},
          {"workers",
           {{"threads", stats.workers.threads},
            {"busy", stats.workers.busy},
            {"idle", stats.workers.idle},
            {"maxThreads", stats.workers.max_threads},
            {"queuedJobs", stats.workers.queued_jobs}}},
          {"memory", std::move(memory)},
          {"uptimeMs", stats.uptime_ms},
          {"startedAt", to_iso8601(stats.started_at_ms)},
          {"restarts", restarts_to_json(stats)},
          {"health", health_to_json(stats.health)},
          {"version", version},
          {"stateDir", sanitize_utf8(stats.state_dir)},
          {"tasksSubmitted", stats.tasks_submitted},
          {"spawnErrors", stats.spawn_errors}};
  out.update(profiles_status_to_json(stats));
  // Only in a cluster: a server alone has no node rows.
  if (!stats.nodes.empty()) {
    json nodes = json::array();
    for (const auto& n : stats.nodes) {
      // The token stays out: getStatus and the dashboard are read by clients,
      // and the token is what lets one node into another.
      nodes.push_back({{"name", sanitize_utf8(n.name)},
                       {"url", sanitize_utf8(n.url)},
                       {"alive", n.alive},
                       {"heartbeatAgeMs", n.heartbeat_age_ms},
                       {"running", n.running},
                       {"maxConcurrent", n.max_concurrent},
                       {"health", sanitize_utf8(n.health)},
                       {"pid", n.pid}});
    }
    out["node"] = sanitize_utf8(stats.node_name);
    out["nodes"] = std::move(nodes);
  }
  return out;
}

json orchestrator_schema() {
  json count{{"type", "integer"}};
  json counts{{"type", "object"},
              {"properties",
               {{"queued", count}, {"waiting", count}, {"running", count},
                {"completed", count}, {"failed", count}, {"cancelled", count}}},
              {"required", json::array({"queued", "waiting", "running", "completed", "failed", "cancelled"})}};
  json workers{{"type", "object"},
               {"properties",
                {{"threads", count}, {"busy", count}, {"idle", count},
                 {"maxThreads", count}, {"queuedJobs", count}}},
               {"required", json::array({"threads", "busy", "idle", "maxThreads", "queuedJobs"})}};
  json memory{{"type", "object"},
              {"properties",
               {{"rssKb", count}, {"peakRssKb", count},
                {"systemAvailableKb", prop("integer", "MemAvailable of the machine, KiB")}}},
              {"required", json::array({"rssKb", "peakRssKb"})}};
  json restarts{{"type", "object"},
                {"properties",
                 {{"count", prop("integer", "restarts in place since the first start (same pid)")},
                  {"lastReason", prop("string", "why the last one happened; empty before the first")},
                  {"lastAt", prop("string", "ISO 8601 UTC")},
                  {"limit", prop("integer", "automatic (health) restarts allowed per window")},
                  {"windowSec", count},
                  {"recentAutomatic", prop("integer", "automatic restarts inside the window")},
                  {"limited", prop("boolean", "unhealthy but at the limit: staying up, degraded")}}},
                {"required", json::array({"count", "lastReason"})}};
  json check{{"type", "object"},
             {"properties", {{"name", {{"type", "string"}}}, {"ok", {{"type", "boolean"}}},
                             {"detail", {{"type", "string"}}}}},
             {"required", json::array({"name", "ok", "detail"})}};
  json health{{"type", "object"},
              {"properties",
               {{"status", prop("string", "ok, or degraded when a check fails")},
                {"checks", {{"type", "array"}, {"items", check}}},
                {"reason", prop("string", "the first failing check")},
                {"checkedAt", prop("string", "ISO 8601 UTC of the last round")}}},
              {"required", json::array({"status", "checks"})}};
  json properties{{"tasks", counts},
            {"queueDepth", prop("integer", "tasks not yet running (queued + waiting)")},
            {"queueLimit", prop("integer", "submits are refused beyond this depth")},
            {"running", count},
            {"maxConcurrent", count},
            {"workers", workers},
            {"memory", memory},
            {"uptimeMs", count},
            {"startedAt", prop("string", "ISO 8601 UTC")},
            {"restarts", restarts},
            {"health", health},
            {"version", {{"type", "string"}}},
            {"stateDir", {{"type", "string"}}},
            {"tasksSubmitted", prop("integer", "since this server process started")},
            {"spawnErrors", count}};
  json node{{"type", "object"},
            {"properties",
             {{"name", prop("string", "the node's name (cluster.nodeName)")},
              {"url", prop("string", "its HTTP base URL; empty when it serves no HTTP")},
              {"alive", prop("boolean", "renewed its lease within the lease time")},
              {"heartbeatAgeMs", prop("integer", "since its last heartbeat, by the database's clock")},
              {"running", count},
              {"maxConcurrent", count},
              {"health", prop("string", "ok, or what its health check says is wrong")},
              {"pid", count}}},
            {"required",
             json::array({"name", "url", "alive", "heartbeatAgeMs", "running", "maxConcurrent", "health", "pid"})}};
  properties["node"] = prop("string", "in a cluster: this server's node name");
  properties["nodes"] = {{"type", "array"},
                         {"description", "in a cluster: every node sharing the store, alive or not, by name"},
                         {"items", std::move(node)}};
  properties.update(profiles_status_schema_properties());
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", json::array({"tasks", "queueDepth", "queueLimit", "running", "maxConcurrent", "workers",
                        "memory", "uptimeMs", "startedAt", "restarts", "version", "stateDir",
                        "tasksSubmitted", "spawnErrors"})}};
}

}  // namespace orch::tools
