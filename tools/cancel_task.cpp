#include "tools/cancel_task.h"

#include "tools/args.h"
#include "tools/task_json.h"

namespace orch::tools {

namespace {

constexpr std::string_view kAllowed[] = {"taskId", "all", "tag"};

json cancel_one(engine::Engine& engine, const std::string& id) {
  auto view = engine.cancel(id);
  if (!view) {
    // The engine's Conflict message already says how the task ended.
    if (view.error().code == ErrorCode::NotFound) return error_result(unknown_task_message(id));
    return error_result(view.error());
  }
  const std::int64_t now_ms = to_unix_ms(engine_clock(engine).wall_now());
  return success_result({{"cancelled", json::array({id})}, {"task", task_to_json(*view, now_ms)}});
}

json call(engine::Engine& engine, const json& args) {
  if (auto ok = check_object(args, "cancelTask arguments", kAllowed); !ok) return error_result(ok.error());
  const json* id = find_arg(args, "taskId");
  const json* all = find_arg(args, "all");
  const json* tag = find_arg(args, "tag");
  if (id && all) {
    return error_result("give taskId (one task) or all: true (every live task), not both");
  }
  if (id) {
    if (tag) return error_result("tag filters only all: true; to cancel one task give just taskId");
    auto s = read_string(*id, "taskId", {.min_bytes = 1, .max_bytes = 256});
    if (!s) return error_result(s.error());
    return cancel_one(engine, *s);
  }
  if (!all) {
    return error_result("cancelTask needs taskId (to cancel one task) or all: true (to cancel every "
                        "queued, waiting and running task; add tag to cancel only tasks with that tag)");
  }
  auto every = read_bool(*all, "all");
  if (!every) return error_result(every.error());
  if (!*every) {
    return error_result("all: false cancels nothing; pass all: true to cancel every live task, "
                        "or taskId to cancel one");
  }
  std::string filter;
  if (tag) {
    auto t = read_string(*tag, "tag", {.min_bytes = 1, .max_bytes = 100});
    if (!t) return error_result(t.error());
    filter = *t;
  }
  json ids = engine.cancel_all(filter);
  return success_result({{"cancelled", std::move(ids)}});
}

}  // namespace

Tool make_cancel_task_tool(engine::Engine& engine) {
  Tool tool;
  tool.name = "cancelTask";
  tool.title = "Cancel tasks";
  tool.description =
      "Cancel one task (`taskId`) or every live task (`all: true`, optionally only those with "
      "`tag`). Queued and waiting tasks end at once; a running task's whole process group gets "
      "SIGTERM, then SIGKILL after a grace period, so nothing it started is left behind. Tasks "
      "that depend on a cancelled task are cancelled too. A finished task cannot be cancelled.";
  tool.input_schema = {
      {"type", "object"},
      {"properties",
       {{"taskId", {{"type", "string"}, {"description", "the task to cancel"}}},
        {"all", {{"type", "boolean"}, {"const", true}, {"description", "cancel every queued, waiting and running task"}}},
        {"tag", {{"type", "string"}, {"description", "with all: only tasks carrying this tag"}}}}},
      {"additionalProperties", false}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"cancelled", {{"type", "array"}, {"items", {{"type", "string"}}},
                       {"description", "ids of the tasks cancelled (running ones are being stopped)"}}},
        {"task", task_schema()}}},
      {"required", json::array({"cancelled"})}};
  tool.annotations = {{"readOnlyHint", false}, {"destructiveHint", true},
                      {"idempotentHint", true}, {"openWorldHint", false}};
  tool.call = [&engine](const json& args, mcp::ToolCallContext&) { return call(engine, args); };
  return tool;
}

}  // namespace orch::tools
