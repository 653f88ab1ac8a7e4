#include "tools/tool_registry.h"

#include <spdlog/spdlog.h>

#include "tools/cancel_task.h"
#include "tools/get_result.h"
#include "tools/get_status.h"
#include "tools/list_tasks.h"
#include "tools/run_task.h"

#ifndef ORCH_VERSION
#define ORCH_VERSION "0.0.0"
#endif

namespace orch::tools {

ToolRegistry::ToolRegistry(engine::Engine& engine, ToolRegistryOptions options) : engine_(engine) {
  std::string version = options.version.empty() ? ORCH_VERSION : std::move(options.version);
  tools_.push_back(make_submit_task_tool(engine, std::move(options.profiles)));
  tools_.push_back(make_get_status_tool(engine, std::move(version)));
  tools_.push_back(make_get_result_tool(engine));
  tools_.push_back(make_cancel_task_tool(engine));
  tools_.push_back(make_list_tasks_tool(engine));
  // As a task, submitTask's result is the task's outcome rather than its id
  // (docs/PROTOCOL.md); the other four answer at once, so they stay forbidden.
  tools_.front().task_support = kTaskOptional;
  // Reserved up front: runTask keeps references to its siblings.
  tools_.reserve(tools_.size() + 1);
  const Tool& submit = tools_[0];
  const Tool& get_result = tools_[2];
  tools_.push_back(make_run_task_tool(submit, get_result));
}

json ToolRegistry::list_tools() const {
  json out = json::array();
  for (const Tool& tool : tools_) out.push_back(tool.descriptor());
  return out;
}

const Tool* ToolRegistry::find(std::string_view name) const {
  for (const Tool& tool : tools_) {
    if (tool.name == name) return &tool;
  }
  return nullptr;
}

std::string ToolRegistry::task_support(const std::string& name) const {
  const Tool* tool = find(name);
  return tool ? tool->task_support : std::string();
}

bool ToolRegistry::answers_at_once(const std::string& name) const {
  const Tool* tool = find(name);
  return tool && tool->answers_at_once;
}

namespace {

const json& or_empty(const json& arguments) {
  static const json kEmpty = json::object();
  return arguments.is_null() ? kEmpty : arguments;
}

json internal_error(const std::string& name, const std::exception& e) {
  spdlog::error("tool {} failed: {}", name, e.what());
  return error_result("internal error in " + name + ": " + e.what());
}

}  // namespace

std::optional<json> ToolRegistry::refuse_arguments(const std::string& name, const json& arguments) const {
  if (or_empty(arguments).is_object()) return std::nullopt;
  return error_result("arguments of " + name + " must be a JSON object, e.g. {\"taskId\": \"t...\"}");
}

std::optional<json> ToolRegistry::call_tool(const std::string& name, const json& arguments,
                                            mcp::ToolCallContext& ctx) {
  const Tool* tool = find(name);
  if (!tool) return std::nullopt;
  if (auto refused = refuse_arguments(name, arguments)) return refused;
  // The boundary for library exceptions (STYLE.md Errors): a bug in a
  // handler becomes one isError result, not a dropped request.
  try {
    return tool->call(or_empty(arguments), ctx);
  } catch (const std::exception& e) {
    return internal_error(name, e);
  }
}

void ToolRegistry::call_tool_in_batch(const std::string& name, const json& arguments, mcp::ToolCallContext& ctx,
                                      ToolReply reply) {
  const Tool* tool = find(name);
  if (!tool || !tool->call_in_batch) {
    reply(call_tool(name, arguments, ctx));
    return;
  }
  if (auto refused = refuse_arguments(name, arguments)) {
    reply(std::move(refused));
    return;
  }
  // A handler that throws has not handed its reply on (the ones here throw
  // only while reading their arguments).
  auto answer = std::make_shared<ToolReply>(std::move(reply));
  try {
    tool->call_in_batch(or_empty(arguments), ctx, [answer](json result) { (*answer)(std::move(result)); });
  } catch (const std::exception& e) {
    (*answer)(internal_error(name, e));
  }
}

void ToolRegistry::end_batch() { engine_.commit_submits(); }

std::string ToolRegistry::server_instructions() {
  return "This server runs commands in the background and keeps their output, so long work never "
         "blocks the conversation.\n"
         "- Use submitTask instead of running a command inline when it may take more than about 10 "
         "seconds (builds, test suites, linters, agent CLIs such as `claude -p`) or when several "
         "things should run at once. It returns a taskId at once; keep talking with the user "
         "while it runs.\n"
         "- To wait for a task: getResult with taskId and waitSec (at most 50). It returns the "
         "moment the task ends, or after waitSec with status \"running\" and the output so far; "
         "call it again to keep waiting. Do not poll getStatus in a loop.\n"
         "- Output is paged by bytes. Each stream window has text, nextOffset and totalBytes: "
         "pass offset: nextOffset to read on, or tail: true with maxBytes to read the end (start "
         "there for long logs).\n"
         "- Status completed means exit code 0; failed carries a reason (exit_code, signal, "
         "timeout, spawn_error, dependency_failed). getStatus checks tasks without output; "
         "listTasks finds them (newest first, by status, tag or name); cancelTask stops a task "
         "and every process it started.\n"
         "- A client with MCP native tasks can call runTask (or submitTask as a task) and receive "
         "the outcome as the task's result.\n"
         "- Tasks live on the server, not in this conversation: they keep running between calls "
         "and can be found again by id or with listTasks.";
}

}  // namespace orch::tools
