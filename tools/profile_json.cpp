#include "tools/profile_json.h"

#include "common/clock.h"
#include "tools/task_json.h"

namespace orch::tools {

namespace {

json str(const char* description) { return {{"type", "string"}, {"description", description}}; }
json integer(const char* description) { return {{"type", "integer"}, {"description", description}}; }

}  // namespace

json profiles_status_to_json(const engine::EngineStats& stats) {
  json profiles = json::array();
  for (const engine::ProfileView& p : stats.profiles) {
    json j{{"name", sanitize_utf8(p.name)},
           {"running", p.running},
           {"queued", p.queued},
           {"breaker", engine::to_string(p.breaker)},
           {"consecutiveFailures", p.consecutive_failures}};
    if (p.max_concurrent > 0) j["maxConcurrent"] = p.max_concurrent;
    if (p.tokens) j["rateTokens"] = *p.tokens;
    if (p.breaker_open_until_ms > 0) j["breakerOpenUntil"] = to_iso8601(p.breaker_open_until_ms);
    if (!p.held.empty()) j["held"] = sanitize_utf8(p.held);
    profiles.push_back(std::move(j));
  }
  json pools = json::array();
  for (const engine::PoolStats& pool : stats.pools) {
    json workers = json::array();
    for (const engine::PoolWorkerView& w : pool.workers) {
      json j{{"pid", w.pid}, {"state", w.state}, {"tasksServed", w.tasks_served}};
      if (w.rss_kb >= 0) j["rssKb"] = w.rss_kb;
      if (!w.task_id.empty()) j["taskId"] = w.task_id;
      workers.push_back(std::move(j));
    }
    pools.push_back({{"profile", sanitize_utf8(pool.profile)},
                     {"min", pool.min},
                     {"max", pool.max},
                     {"workers", std::move(workers)}});
  }
  json admission{{"holding", !stats.admission_hold.empty()}, {"memoryFloorMb", stats.memory_floor_mb}};
  if (!stats.admission_hold.empty()) admission["reason"] = sanitize_utf8(stats.admission_hold);
  return {{"profiles", std::move(profiles)}, {"pools", std::move(pools)}, {"admission", std::move(admission)}};
}

json profiles_status_schema_properties() {
  json profile{{"type", "object"},
               {"properties",
                {{"name", {{"type", "string"}}},
                 {"running", integer("its tasks running now")},
                 {"queued", integer("its tasks queued now")},
                 {"maxConcurrent", integer("its own limit")},
                 {"rateTokens", {{"type", "number"}, {"description", "starts its rate limit allows now"}}},
                 {"breaker", {{"type", "string"}, {"enum", json::array({"closed", "open", "half_open"})}}},
                 {"consecutiveFailures", {{"type", "integer"}}},
                 {"breakerOpenUntil", str("ISO 8601 UTC: when the open breaker lets one task try")},
                 {"held", str("why its queued tasks do not start now")}}},
               {"required", json::array({"name", "running", "queued", "breaker", "consecutiveFailures"})}};
  json worker{{"type", "object"},
              {"properties",
               {{"pid", {{"type", "integer"}}},
                {"state", {{"type", "string"}, {"enum", json::array({"starting", "idle", "busy", "stopping"})}}},
                {"tasksServed", {{"type", "integer"}}},
                {"rssKb", {{"type", "integer"}}},
                {"taskId", str("the task it runs, while busy")}}},
              {"required", json::array({"pid", "state", "tasksServed"})}};
  json pool{{"type", "object"},
            {"properties",
             {{"profile", {{"type", "string"}}},
              {"min", {{"type", "integer"}}},
              {"max", {{"type", "integer"}}},
              {"workers", {{"type", "array"}, {"items", worker}}}}},
            {"required", json::array({"profile", "min", "max", "workers"})}};
  json admission{{"type", "object"},
                 {"properties",
                  {{"holding", {{"type", "boolean"}, {"description", "true while no task starts for lack of memory"}}},
                   {"memoryFloorMb", integer("limits.memoryFloorMb; 0: off")},
                   {"reason", str("why tasks wait to start")}}},
                 {"required", json::array({"holding", "memoryFloorMb"})}};
  return {{"profiles", {{"type", "array"}, {"items", profile}}},
          {"pools", {{"type", "array"}, {"items", pool}, {"description", "process pools and their workers"}}},
          {"admission", admission}};
}

}  // namespace orch::tools
