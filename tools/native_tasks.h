// NativeTasks: MCP native tasks (mcp::TaskProvider) over the engine. A native
// task IS an engine task: the task-augmented call queues it like submitTask,
// the taskId is the engine's id (130 random bits, unguessable), and getStatus,
// listTasks and the dashboard show it like any other (docs/PROTOCOL.md).
//
// What it adds to the engine task lives here, in memory: the owner (auth
// context), the ttl, a cancellation that MCP must report at once, the
// listener for notifications/tasks/status and the watchers of
// subscriptions/listen streams. That binding ends with the ttl (the
// id then reads as unknown to tasks/*; the engine task stays, per retention)
// and with the process (a restart in place forgets it too).
//
// Status: queued, waiting and running are `working`; completed, failed and
// cancelled map to themselves, except that a task cancelled through tasks/cancel
// reads `cancelled` from that moment even while its processes are being stopped.
// The result (tasks/result) is getResult's answer for the ended task (status,
// exit code, the tail of stdout and stderr) with isError unless it completed.
//
// Thread-safe. One watcher thread follows the engine's change feed and calls
// listeners (outside the lock). The engine and the registry must outlive this.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "mcp/task_provider.h"
#include "tools/tool_registry.h"

namespace orch::tools {

struct NativeTaskOptions {
  std::chrono::milliseconds default_ttl{std::chrono::hours(1)};
  std::chrono::milliseconds max_ttl{std::chrono::hours(24)};
  std::chrono::milliseconds poll_interval{1000};
  std::size_t list_page = 100;
};

class NativeTasks final : public mcp::TaskProvider {
 public:
  NativeTasks(engine::Engine& engine, ToolRegistry& tools, NativeTaskOptions options = {});
  ~NativeTasks() override;  // stops the watcher
  NativeTasks(const NativeTasks&) = delete;
  NativeTasks& operator=(const NativeTasks&) = delete;

  Result<mcp::NativeTask> create(const std::string& owner, const std::string& tool, const json& arguments,
                                 std::optional<std::int64_t> ttl_ms, mcp::NativeTaskListener listener) override;
  Result<mcp::NativeTask> get(const std::string& owner, const std::string& task_id) override;
  Result<json> result(const std::string& owner, const std::string& task_id, std::stop_token stop) override;
  Result<std::optional<json>> result_if_done(const std::string& owner, const std::string& task_id) override;
  Result<mcp::NativeTaskPage> list(const std::string& owner, const std::string& cursor) override;
  Result<mcp::NativeTask> cancel(const std::string& owner, const std::string& task_id) override;
  Result<mcp::NativeTask> watch(const std::string& owner, const std::string& task_id,
                                mcp::NativeTaskListener listener) override;

 private:
  struct Entry {
    std::string owner;
    std::int64_t seq = 0;  // creation order, for tasks/list
    std::int64_t created_at_ms = 0;
    std::int64_t ttl_ms = 0;
    std::int64_t updated_at_ms = 0;  // last status change we saw
    bool cancelled = false;
    mcp::NativeTaskStatus last_status = mcp::NativeTaskStatus::Working;
    mcp::NativeTaskListener listener;  // cleared when the task ends
    std::vector<mcp::NativeTaskListener> watchers;  // subscriptions/listen streams; cleared likewise
  };

  // The owner's live entry, or NotFound (also for another owner's id and an
  // expired one, which is dropped). Caller holds mu_.
  Result<Entry*> find_locked(const std::string& owner, const std::string& id, std::int64_t now_ms);
  mcp::NativeTask describe(const engine::TaskView& view, const Entry& entry) const;
  json final_result(const std::string& id, bool cancelled);
  void watch(std::stop_token stop);

  engine::Engine& engine_;
  ToolRegistry& tools_;
  const NativeTaskOptions options_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_; by engine task id
  std::int64_t next_seq_ = 1;             // guarded by mu_
  std::jthread watcher_;                  // declared last: stopped and joined first
};

}  // namespace orch::tools
