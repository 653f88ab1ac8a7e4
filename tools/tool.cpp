#include "tools/tool.h"

#include "common/json_text.h"
#include "engine/engine.h"
#include "engine/task.h"

namespace orch::tools {

json Tool::descriptor() const {
  json d{{"name", name},
         {"title", title},
         {"description", description},
         {"inputSchema", input_schema},
         {"outputSchema", output_schema},
         {"annotations", annotations}};
  // Forbidden is the spec's default: say nothing rather than repeat it.
  if (task_support != kTaskForbidden) d["execution"] = {{"taskSupport", task_support}};
  return d;
}

json success_result(json structured) {
  // Text content carries the same JSON for clients that ignore
  // structuredContent (MCP-NOTES §7). Strings were sanitised upstream;
  // json_text replaces any invalid UTF-8 a bug lets through instead of throwing.
  std::string text = json_text(structured);
  return {{"content", json::array({{{"type", "text"}, {"text", std::move(text)}}})},
          {"structuredContent", std::move(structured)}};
}

json error_result(std::string_view message) {
  return {{"content", json::array({{{"type", "text"}, {"text", std::string(message)}}})},
          {"isError", true}};
}

json error_result(const Error& error) {
  // The one place engine/argument error codes become tool results (STYLE.md
  // Errors). Messages already say what is wrong; add how to act where the
  // caller can.
  switch (error.code) {
    case ErrorCode::InvalidArgument:
    case ErrorCode::NotFound:
    case ErrorCode::QueueFull:
    case ErrorCode::Conflict:
      return error_result(error.message);
    case ErrorCode::Forbidden:
      return error_result(error.message +
                          " (the server's allow lists decide this; a tool call cannot change them)");
    case ErrorCode::Unavailable:
      return error_result(error.message + "; the orchestrator cannot take this now, try again shortly");
    case ErrorCode::Io:
      return error_result("I/O error: " + error.message);
    case ErrorCode::Internal:
      return error_result("internal error in the orchestrator: " + error.message);
  }
  return error_result(error.message);
}

std::string unknown_task_message(std::string_view id) {
  // The id as JSON shows control characters escaped; drop the JSON quotes.
  std::string quoted = json_text(json(std::string(id.substr(0, 60))));
  std::string msg = "unknown task id '";
  msg.append(quoted, 1, quoted.size() - 2);
  msg += "'";
  if (!engine::looks_like_task_id(id)) {
    msg += " (that is not a task id: ids are 't' followed by 26 lowercase letters and digits 2-7, "
           "as returned by submitTask)";
  } else {
    msg += " (it may have finished long ago and been evicted)";
  }
  return msg + "; list tasks with listTasks";
}

const Clock& engine_clock(const engine::Engine& engine) {
  const Clock* clock = engine.options().clock;
  return clock ? *clock : SystemClock::instance();
}

}  // namespace orch::tools
