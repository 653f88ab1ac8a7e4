#include "tools/get_status.h"

#include "tools/args.h"
#include "tools/task_json.h"

namespace orch::tools {

namespace {

constexpr std::string_view kAllowed[] = {"taskId", "taskIds"};
constexpr std::size_t kMaxIds = 100;

json call(engine::Engine& engine, const std::string& version, const json& args) {
  if (auto ok = check_object(args, "getStatus arguments", kAllowed); !ok) return error_result(ok.error());
  const json* one = find_arg(args, "taskId");
  const json* many = find_arg(args, "taskIds");
  const std::int64_t now_ms = to_unix_ms(engine_clock(engine).wall_now());
  if (one && many) {
    return error_result("give taskId (one task) or taskIds (several), not both; "
                        "or neither for the orchestrator's own status");
  }
  if (one) {
    auto id = read_string(*one, "taskId", {.min_bytes = 1, .max_bytes = 256});
    if (!id) return error_result(id.error());
    auto view = engine.get(*id);
    if (!view) {
      if (view.error().code == ErrorCode::NotFound) return error_result(unknown_task_message(*id));
      return error_result(view.error());
    }
    return success_result({{"task", task_to_json(*view, now_ms)}});
  }
  if (many) {
    auto ids = read_string_array(*many, "taskIds",
                                 {.min_items = 1, .max_items = kMaxIds, .item = {.min_bytes = 1, .max_bytes = 256}});
    if (!ids) {
      if (many->is_array() && many->size() > kMaxIds) {
        return error_result(ids.error().message + "; ask in batches, or use listTasks");
      }
      return error_result(ids.error());
    }
    json tasks = json::array();
    json unknown = json::array();
    for (const std::string& id : *ids) {
      auto view = engine.get(id);
      if (view) {
        tasks.push_back(task_to_json(*view, now_ms));
      } else if (view.error().code == ErrorCode::NotFound) {
        unknown.push_back(id);
      } else {
        return error_result(view.error());
      }
    }
    return success_result({{"tasks", std::move(tasks)}, {"unknown", std::move(unknown)}});
  }
  return success_result({{"orchestrator", orchestrator_to_json(engine.stats(), version)}});
}

}  // namespace

Tool make_get_status_tool(engine::Engine& engine, std::string version) {
  Tool tool;
  tool.name = "getStatus";
  tool.title = "Task or orchestrator status";
  tool.description =
      "Check tasks without reading their output. With `taskId`: that task's status, reason, "
      "progress, exit code, timings and queue position. With `taskIds` (up to 100): several at "
      "once, plus the ids not found. With no arguments: the orchestrator itself (task counts by "
      "status, queue depth, workers, memory, uptime, version). Returns at once; to wait for a "
      "task to finish and read its output, use getResult with waitSec.";
  tool.input_schema = {
      {"type", "object"},
      {"properties",
       {{"taskId", {{"type", "string"}, {"description", "id returned by submitTask"}}},
        {"taskIds", {{"type", "array"}, {"items", {{"type", "string"}}}, {"minItems", 1},
                     {"maxItems", kMaxIds}, {"description", "several task ids"}}}}},
      {"additionalProperties", false}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"task", task_schema()},
        {"tasks", {{"type", "array"}, {"items", task_schema()}}},
        {"unknown", {{"type", "array"}, {"items", {{"type", "string"}}},
                     {"description", "requested ids that are not known"}}},
        {"orchestrator", orchestrator_schema()}}}};
  tool.annotations = {{"readOnlyHint", true}, {"idempotentHint", true}, {"openWorldHint", false}};
  tool.answers_at_once = true;
  tool.call = [&engine, version = std::move(version)](const json& args, mcp::ToolCallContext&) {
    return call(engine, version, args);
  };
  return tool;
}

}  // namespace orch::tools
