// Tool: one MCP tool — what tools/list shows (name, title, description,
// schemas, annotations) and the handler tools/call runs (MCP-NOTES §7).
//
// A handler never throws for expected failures: it answers a CallToolResult,
// either a success (structuredContent plus the same JSON as text) or an error
// result (isError, a message saying how to fix the call). The helpers below
// build both shapes so every tool answers alike. Handlers must be thread-safe:
// several calls may run at once on the worker pool.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "mcp/tool_provider.h"

namespace orch::engine {
class Engine;
}

namespace orch::tools {

using json = nlohmann::json;

// execution.taskSupport values (MCP-NOTES §9a; docs/PROTOCOL.md says which
// tool has which, and why).
inline constexpr const char* kTaskForbidden = "forbidden";
inline constexpr const char* kTaskOptional = "optional";
inline constexpr const char* kTaskRequired = "required";

struct Tool {
  std::string name;
  std::string title;
  std::string description;
  json input_schema;   // type object, additionalProperties false
  json output_schema;  // type object; structuredContent conforms to it
  json annotations;    // readOnlyHint, destructiveHint, idempotentHint, openWorldHint
  std::string task_support = kTaskForbidden;  // shown as execution.taskSupport unless forbidden
  // Reads memory only and never waits: called on the thread that read the
  // request (mcp::ToolProvider::answers_at_once).
  bool answers_at_once = false;
  std::function<json(const json& args, mcp::ToolCallContext& ctx)> call;
  // Optional, for a tool that answers at once: the call inside a batch,
  // whose reply may wait for the batch's end (mcp::ToolProvider::
  // call_tool_in_batch). `reply` must run exactly once.
  std::function<void(const json& args, mcp::ToolCallContext& ctx, std::function<void(json)> reply)> call_in_batch;

  // The Tool object tools/list shows.
  json descriptor() const;
};

// {"content":[{"type":"text","text":<structured, compact>}],"structuredContent":<structured>}
json success_result(json structured);
// {"content":[{"type":"text","text":message}],"isError":true}
json error_result(std::string_view message);
// Maps an engine or argument error to an error result. The message is kept
// as written (it already says what is wrong); the code adds a hint where the
// caller can act on it (e.g. QueueFull: retry later).
json error_result(const Error& error);

// "unknown task id 'x'; list tasks with listTasks", saying also when `id`
// does not even look like a task id.
std::string unknown_task_message(std::string_view id);

// The clock the engine was opened with (the system clock by default), so
// durations and run-at times agree with the engine's.
const Clock& engine_clock(const engine::Engine& engine);

}  // namespace orch::tools
