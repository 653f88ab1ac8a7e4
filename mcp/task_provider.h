// TaskProvider: what the MCP layer needs from whoever runs native tasks
// (MCP-NOTES §9). mcp/ knows this interface only; tools/ implements it over
// the engine and app/ wires it in, like ToolProvider.
//
// Every call names the `owner`: the auth context of the request (MCP-NOTES §9a
// security). A task is visible only to the owner that created it; another
// owner's id reads as unknown (NotFound), never as "forbidden", so ids leak
// nothing. Errors are Result errors: NotFound (unknown or expired id),
// InvalidArgument (bad cursor, bad arguments), Conflict (cancel of a task that
// has ended), Unavailable (shutting down); the MCP layer maps them to JSON-RPC
// codes. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "mcp/tool_provider.h"

namespace orch::mcp {

// The states of MCP's task model, named as on the wire.
enum class NativeTaskStatus { Working, InputRequired, Completed, Failed, Cancelled };
const char* to_string(NativeTaskStatus status);
bool is_terminal(NativeTaskStatus status);

// One task as MCP describes it. The MCP layer renders it per era (`ttl` or
// `ttlMs`, ISO 8601 times).
struct NativeTask {
  std::string id;
  NativeTaskStatus status = NativeTaskStatus::Working;
  std::string status_message;          // empty: left out
  std::int64_t created_at_ms = 0;      // Unix ms
  std::int64_t last_updated_at_ms = 0; // Unix ms
  std::optional<std::int64_t> ttl_ms;  // retention from creation; nullopt: unlimited
  std::int64_t poll_interval_ms = 0;   // 0: left out
};

struct NativeTaskPage {
  std::vector<NativeTask> tasks;  // newest first
  std::optional<std::string> next_cursor;
};

// Told the task's new state each time its status changes. May run on any
// thread; must be quick and must not call back into the provider.
using NativeTaskListener = std::function<void(const NativeTask& task)>;

class TaskProvider {
 public:
  virtual ~TaskProvider() = default;

  // Starts `tool` with `arguments` as a task and returns it at once (working).
  // NotFound when the tool does not exist; InvalidArgument (with the tool's
  // message) when the arguments cannot start a task. `ttl_ms` is what the
  // client asked for; the provider may shorten it. `listener` (may be empty)
  // hears status changes until the task ends or the listener's owner goes.
  virtual Result<NativeTask> create(const std::string& owner, const std::string& tool,
                                    const nlohmann::json& arguments, std::optional<std::int64_t> ttl_ms,
                                    NativeTaskListener listener) = 0;
  virtual Result<NativeTask> get(const std::string& owner, const std::string& task_id) = 0;
  // Blocks until the task has ended (or `stop`: Unavailable), then returns what
  // the tools/call would have returned: a CallToolResult.
  virtual Result<nlohmann::json> result(const std::string& owner, const std::string& task_id,
                                        std::stop_token stop) = 0;
  // The CallToolResult of an ended task without waiting; nullopt while it runs.
  virtual Result<std::optional<nlohmann::json>> result_if_done(const std::string& owner,
                                                               const std::string& task_id) = 0;
  // The owner's tasks, newest first. Bad cursor: InvalidArgument.
  virtual Result<NativeTaskPage> list(const std::string& owner, const std::string& cursor) = 0;
  // Marks the task cancelled (before returning) and stops its work.
  virtual Result<NativeTask> cancel(const std::string& owner, const std::string& task_id) = 0;
  // Adds `listener` to the task's status changes (beside the one given to
  // create) until the task ends, and returns its state at that moment: a
  // change after it is heard, one before it is in the answer. NotFound like
  // get(). A provider without watchers says Unavailable.
  virtual Result<NativeTask> watch(const std::string& owner, const std::string& task_id,
                                   NativeTaskListener listener) {
    (void)owner, (void)task_id, (void)listener;
    return make_error(ErrorCode::Unavailable, "this task provider cannot be watched");
  }
};

}  // namespace orch::mcp
