// TaskLifecycleLog: task lifecycle events as MCP log messages (MCP-NOTES §8,
// legacy era: notifications/message at or above each session's level). It
// follows the engine's change feed and reports each task's steps once:
//   debug   queued or waiting        info     started, completed
//   notice  cancelled                warning  failed
// with data {event, taskId, name?, status, reason?, exitCode?, message?} and
// logger "tasks". The sink decides who hears it (app/ sends it to every
// session; each session filters by its level). Messages carry no output, only
// what getStatus shows, so no secrets beyond the task's own name and message.
//
// One watcher thread; the sink runs on it. The engine must outlive this.
#pragma once

#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "mcp/server.h"

namespace orch::tools {

using LifecycleSink = std::function<void(mcp::LogLevel level, const nlohmann::json& data)>;

using LifecycleEvent = std::pair<mcp::LogLevel, nlohmann::json>;

// Whether any listener would hear a message at `level`. Events nobody hears
// are not built: at the sessions' default level (warning) that is every
// start and end, the bulk of a burst of short tasks.
using LifecycleHeard = std::function<bool(mcp::LogLevel level)>;

// The events for a task that moved from `before` (nullopt: first seen) to its
// current state: none when nothing worth saying happened, and its start
// before its end when it ended without being seen running (the watcher reads
// the change feed in batches, and a short task starts and ends within one).
// Only the events `heard` admits (empty: all).
std::vector<LifecycleEvent> lifecycle_events(std::optional<engine::TaskStatus> before, const engine::TaskView& now,
                                             const LifecycleHeard& heard = {});

class TaskLifecycleLog {
 public:
  // `heard` empty: every event goes to the sink.
  TaskLifecycleLog(engine::Engine& engine, LifecycleSink sink, LifecycleHeard heard = {});
  ~TaskLifecycleLog();  // stops the watcher
  TaskLifecycleLog(const TaskLifecycleLog&) = delete;
  TaskLifecycleLog& operator=(const TaskLifecycleLog&) = delete;

 private:
  void watch(std::stop_token stop);

  engine::Engine& engine_;
  const LifecycleSink sink_;
  const LifecycleHeard heard_;
  std::jthread watcher_;  // declared last: stopped and joined first
};

}  // namespace orch::tools
