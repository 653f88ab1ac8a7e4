#include "tools/list_tasks.h"

#include "tools/args.h"
#include "tools/task_json.h"

namespace orch::tools {

namespace {

constexpr std::string_view kAllowed[] = {"status", "tag", "name", "limit", "cursor"};
constexpr std::string_view kStatuses[] = {"queued", "waiting", "running", "completed", "failed", "cancelled"};
constexpr std::int64_t kMaxLimit = 200;
constexpr std::int64_t kDefaultLimit = 50;

json call(engine::Engine& engine, const json& args) {
  if (auto ok = check_object(args, "listTasks arguments", kAllowed); !ok) return error_result(ok.error());
  engine::ListFilter filter;
  if (const json* v = find_arg(args, "status")) {
    auto s = read_enum(*v, "status", kStatuses);
    if (!s) return error_result(s.error());
    filter.status = engine::parse_task_status(*s);
  }
  if (const json* v = find_arg(args, "tag")) {
    auto s = read_string(*v, "tag", {.max_bytes = 100});
    if (!s) return error_result(s.error());
    filter.tag = *s;
  }
  if (const json* v = find_arg(args, "name")) {
    auto s = read_string(*v, "name", {.max_bytes = 200});
    if (!s) return error_result(s.error());
    filter.name_contains = *s;
  }
  std::int64_t limit = kDefaultLimit;
  if (const json* v = find_arg(args, "limit")) {
    auto n = read_integer(*v, "limit", 1, kMaxLimit);
    if (!n) return error_result(n.error());
    limit = *n;
  }
  std::string cursor;
  if (const json* v = find_arg(args, "cursor")) {
    auto s = read_string(*v, "cursor", {.max_bytes = 256});
    if (!s) return error_result(s.error());
    cursor = *s;
  }
  auto page = engine.list(filter, static_cast<std::size_t>(limit), cursor);
  // The engine's cursor message already says how to fix it.
  if (!page) return error_result(page.error());
  const std::int64_t now_ms = to_unix_ms(engine_clock(engine).wall_now());
  json tasks = json::array();
  for (const engine::TaskView& view : page->tasks) tasks.push_back(task_to_json(view, now_ms));
  json out{{"tasks", std::move(tasks)}};
  if (page->next_cursor) out["nextCursor"] = *page->next_cursor;
  return success_result(std::move(out));
}

}  // namespace

Tool make_list_tasks_tool(engine::Engine& engine) {
  Tool tool;
  tool.name = "listTasks";
  tool.title = "List tasks";
  tool.description =
      "List tasks newest first, to find a task id or see what is queued, running or done. "
      "Filter by `status`, `tag` or `name` (substring). Returns at most `limit` tasks (default "
      "50, max 200); when there are more, pass the returned `nextCursor` as `cursor` for the next "
      "page. Use getResult to read a task's output.";
  tool.input_schema = {
      {"type", "object"},
      {"properties",
       {{"status", {{"type", "string"}, {"enum", json::array({"queued", "waiting", "running", "completed", "failed", "cancelled"})}}},
        {"tag", {{"type", "string"}, {"description", "only tasks carrying this tag"}}},
        {"name", {{"type", "string"}, {"description", "only tasks whose name contains this text"}}},
        {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", kMaxLimit}, {"default", kDefaultLimit}}},
        {"cursor", {{"type", "string"}, {"description", "nextCursor from the previous page"}}}}},
      {"additionalProperties", false}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"tasks", {{"type", "array"}, {"items", task_schema()}}},
        {"nextCursor", {{"type", "string"}, {"description", "present when more tasks follow"}}}}},
      {"required", json::array({"tasks"})}};
  tool.annotations = {{"readOnlyHint", true}, {"idempotentHint", true}, {"openWorldHint", false}};
  tool.call = [&engine](const json& args, mcp::ToolCallContext&) { return call(engine, args); };
  return tool;
}

}  // namespace orch::tools
