// The MCP server of the 2025-11-25 ("legacy") era (MCP-NOTES §3a, §7, §8).
//
// Server: what all sessions share — who we are, the tools, the executor.
// Session: one client connection (stdio, or one HTTP session). It owns the
// lifecycle (initialize, notifications/initialized), ping, logging/setLevel,
// tools/list and tools/call, and routes everything through a Dispatcher, so
// every request gets exactly one reply and can be cancelled.
//
// Lifecycle: before initialize only initialize and ping are accepted (others
// get -32600 "send initialize first"); a second initialize gets -32600.
// Requests are accepted once initialize has been answered, even before
// notifications/initialized arrives (the spec only asks the client not to send
// them before the initialize response).
//
// Logging: notifications/message is sent at or above the level the client set
// with logging/setLevel. The default is "warning": a client that never asks
// gets what needs its attention, not a stream of chatter. Nothing is sent
// before initialize (the client has not seen the logging capability yet).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mcp/dispatcher.h"
#include "mcp/outlet.h"
#include "mcp/resource_provider.h"
#include "mcp/resources_api.h"
#include "mcp/task_provider.h"
#include "mcp/tool_provider.h"
#include "transport/connection.h"

namespace orch::mcp {

// RFC 5424 severities, in increasing order, as MCP names them.
enum class LogLevel { Debug, Info, Notice, Warning, Error, Critical, Alert, Emergency };

std::optional<LogLevel> parse_log_level(std::string_view name);
const char* to_string(LogLevel level);

// Protocol revisions we speak, newest first (MCP-NOTES §0).
inline constexpr std::array<std::string_view, 3> kSupportedProtocolVersions = {
    "2025-11-25", "2025-06-18", "2025-03-26"};

// The requested version when we support it, else our newest (MCP-NOTES §3a:
// answer another version rather than fail; the client decides).
std::string_view negotiate_protocol_version(std::string_view requested);

struct ServerInfo {
  std::string name;
  std::string title;
  std::string version;
  std::string instructions;  // for the model; left out of initialize when empty
};

class Session;

// Who a session's client is, as far as tasks are concerned (MCP-NOTES §9a):
// tasks are bound to the auth context that created them.
struct SessionOptions {
  std::string auth_context = "stdio";
};

// What a session has agreed with its client, carried across a restart in
// place so the client need not initialize again.
struct SessionState {
  std::string protocol_version;  // empty: not initialized
  bool initialized = false;      // initialize was answered
  bool ready = false;            // notifications/initialized arrived too
  LogLevel log_level = LogLevel::Warning;
};

// Configured before the first session opens, then immutable; thread-safe.
// Must outlive its sessions; the providers and the executor must outlive the
// server.
class Server {
 public:
  Server(ServerInfo info, ToolProvider& tools, Executor executor);
  // Detaches from the resource provider's updates.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Native tasks (capabilities.tasks, 2025-11-25 sessions only). Without a
  // provider params.task is ignored and no tasks/* method exists.
  void serve_tasks(TaskProvider& tasks) { tasks_ = &tasks; }
  // Resources (with subscriptions) and prompts; without a provider the
  // capability is not declared and the methods do not exist.
  void serve_resources(ResourceProvider& resources);
  void serve_prompts(PromptProvider& prompts) { prompts_ = &prompts; }

  const ServerInfo& info() const { return info_; }
  ToolProvider& tools() const { return tools_; }
  TaskProvider* tasks() const { return tasks_; }
  ResourceProvider* resources() const { return resources_; }
  PromptProvider* prompts() const { return prompts_; }
  ResourceSubscriptions& subscriptions() { return subscriptions_; }
  const Executor& executor() const { return executor_; }

  std::unique_ptr<Session> open_session(transport::MessageSink sink, SessionOptions options = {});

 private:
  const ServerInfo info_;
  ToolProvider& tools_;
  TaskProvider* tasks_ = nullptr;
  ResourceProvider* resources_ = nullptr;
  PromptProvider* prompts_ = nullptr;
  ResourceSubscriptions subscriptions_;
  const Executor executor_;
};

class Session {
 public:
  // `sink` must be thread-safe and usable until close() has returned.
  Session(Server& server, transport::MessageSink sink, SessionOptions options = {});
  // Calls close().
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // One received message. Thread-safe; messages from one thread are handled
  // in order. Cheap requests are answered before this returns; the others run
  // on the executor.
  void handle(std::string_view text);
  // A message of a batch: several read together. Tools that answer at once
  // may answer only at end_batch() (ToolProvider::call_tool_in_batch), which
  // the same thread must call after the batch's last message.
  void handle_in_batch(std::string_view text);
  void end_batch();

  // The transport discarded a message of `bytes` bytes, over its `limit`:
  // replies -32600 with id null.
  void handle_oversized(std::size_t bytes, std::size_t limit);

  // Requests stop on every request in flight and waits until each has been
  // answered and its handler has returned; the executor must keep running.
  // Later messages are refused. Idempotent; never call it from a handler.
  void close();

  // Sends notifications/message {level, logger?, data} if initialize has been
  // answered and `level` is at or above the client's level. Thread-safe.
  bool log(LogLevel level, std::string_view logger, nlohmann::json data);
  // Whether log() would send a message at `level` now.
  bool hears(LogLevel level) const;

  // Restart in place: the agreed state, and taking it over in a new image
  // (before the first message).
  SessionState snapshot() const;
  void restore(const SessionState& state);

  bool initialized() const;
  std::string protocol_version() const;  // empty before initialize
  LogLevel log_level() const { return log_level_.load(); }

 private:
  enum class State { New, Initialized, Ready };

  std::optional<RpcFault> admit(const std::string& method) const;
  bool tasks_negotiated() const;
  // A tools/call inside a batch, whose reply may come at the batch's end.
  void call_tool_in_batch(const std::string& tool, const nlohmann::json& arguments, Responder responder);
  // A tools/call carrying params.task: a CreateTaskResult (MCP-NOTES §9a).
  void call_tool_as_task(const std::string& tool, const nlohmann::json& arguments,
                         const nlohmann::json& task, Responder responder);
  void initialize(const nlohmann::json& params, Responder responder);
  void set_log_level(const nlohmann::json& params, Responder responder);
  void list_tools(Responder responder);
  void call_tool(const nlohmann::json& params, Responder responder);

  Server& server_;
  const SessionOptions options_;
  std::shared_ptr<NotificationOutlet> outlet_;  // co-owned by listeners; closed with the session
  std::atomic<State> state_{State::New};
  std::atomic<LogLevel> log_level_{LogLevel::Warning};
  mutable std::mutex mu_;
  std::string protocol_version_;  // guarded by mu_
  Dispatcher dispatcher_;         // declared last: closed and destroyed first
};

}  // namespace orch::mcp
