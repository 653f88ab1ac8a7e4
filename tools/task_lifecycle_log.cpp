#include "tools/task_lifecycle_log.h"

#include <spdlog/spdlog.h>

#include <array>
#include <map>

#include "common/thread_name.h"
#include "tools/change_feed.h"
#include "tools/tool.h"

namespace orch::tools {

using nlohmann::json;
using engine::TaskStatus;

std::vector<LifecycleEvent> lifecycle_events(std::optional<TaskStatus> before, const engine::TaskView& now,
                                             const LifecycleHeard& heard) {
  const engine::TaskRecord& t = now.task;
  std::vector<LifecycleEvent> out;
  if (before && *before == t.status) return out;
  auto is_heard = [&](mcp::LogLevel level) { return !heard || heard(level); };
  if (engine::is_terminal(t.status) && t.started_at_ms > 0 && before != TaskStatus::Running &&
      is_heard(mcp::LogLevel::Info)) {
    json started{{"event", "task.started"}, {"taskId", t.id}, {"status", engine::to_string(TaskStatus::Running)}};
    if (!t.spec.name.empty()) started["name"] = t.spec.name;
    out.emplace_back(mcp::LogLevel::Info, std::move(started));
  }
  mcp::LogLevel level = mcp::LogLevel::Info;
  const char* event = nullptr;
  switch (t.status) {
    case TaskStatus::Queued: event = "task.queued"; level = mcp::LogLevel::Debug; break;
    case TaskStatus::Waiting: event = "task.waiting"; level = mcp::LogLevel::Debug; break;
    case TaskStatus::Running: event = "task.started"; break;
    case TaskStatus::Completed: event = "task.completed"; break;
    case TaskStatus::Failed: event = "task.failed"; level = mcp::LogLevel::Warning; break;
    case TaskStatus::Cancelled: event = "task.cancelled"; level = mcp::LogLevel::Notice; break;
  }
  if (!is_heard(level)) return out;
  json data{{"event", event}, {"taskId", t.id}, {"status", engine::to_string(t.status)}};
  if (!t.spec.name.empty()) data["name"] = t.spec.name;
  if (t.reason != engine::EndReason::None) data["reason"] = engine::to_string(t.reason);
  if (t.exit_code) data["exitCode"] = *t.exit_code;
  if (t.status == TaskStatus::Running && t.pid) data["pid"] = *t.pid;
  if (!t.message.empty()) data["message"] = t.message;
  out.emplace_back(level, std::move(data));
  return out;
}

TaskLifecycleLog::TaskLifecycleLog(engine::Engine& engine, LifecycleSink sink, LifecycleHeard heard)
    : engine_(engine), sink_(std::move(sink)), heard_(std::move(heard)) {
  watcher_ = std::jthread([this](std::stop_token stop) {
    name_this_thread("orch-watch-log");
    watch(std::move(stop));
  });
}

TaskLifecycleLog::~TaskLifecycleLog() {
  watcher_.request_stop();
  if (watcher_.joinable()) watcher_.join();
}

void TaskLifecycleLog::watch(std::stop_token stop) {
  std::map<engine::TaskId, TaskStatus> last;  // tasks not yet ended
  engine::TaskChanges first =
      engine_.changes_since(0, engine_clock(engine_).now(), stop, engine::OnDrain::Return, engine::ViewDetail::State);
  // What existed before we started is not news; only its later steps are.
  for (const engine::TaskView& v : first.changed) {
    if (!engine::is_terminal(v.task.status)) last[v.task.id] = v.task.status;
  }
  follow_changes(engine_, first.cursor, stop, [&](const engine::TaskChanges& changes) {
    // Asked once a batch: the sessions' levels change rarely, and asking
    // HTTP walks its sessions.
    std::array<std::optional<bool>, 8> heard_at;
    const LifecycleHeard heard = [&](mcp::LogLevel level) {
      std::optional<bool>& known = heard_at[static_cast<std::size_t>(level)];
      if (!known) known = !heard_ || heard_(level);
      return *known;
    };
    for (const engine::TaskView& v : changes.changed) {
      auto it = last.find(v.task.id);
      std::optional<TaskStatus> before;
      if (it != last.end()) before = it->second;
      else if (changes.snapshot) continue;  // a snapshot after a gap: ended tasks would be old news
      if (engine::is_terminal(v.task.status)) last.erase(v.task.id);
      else last[v.task.id] = v.task.status;
      for (const auto& [level, data] : lifecycle_events(before, v, heard)) {
        try {
          sink_(level, data);
        } catch (const std::exception& e) {
          spdlog::error("task lifecycle log: {}", e.what());
        }
      }
    }
    for (const engine::TaskId& id : changes.removed) last.erase(id);
  });
}

}  // namespace orch::tools
