// TaskResources: task output as MCP resources (SPEC §3, MCP-NOTES §10):
// task://<id>/stdout and task://<id>/stderr, listed for the newest tasks,
// described by two URI templates, read in windows, and reported as updated
// when the task writes more or ends.
//
// A read takes the window from the URI's query: `?offset=N&maxBytes=M` (from
// byte N, at most M bytes, default 0 and 65536) or `?tail=M` (the last M bytes);
// M is at most 1 MiB. The content is text/plain (invalid UTF-8 becomes U+FFFD)
// and its _meta says where the window lies: offset, nextOffset, totalBytes,
// truncated, capped (as getResult's windows). An unknown task is NotFound; a
// URI that is not one of ours, or a bad query, InvalidArgument.
//
// Thread-safe. One watcher thread follows the engine's change feed. The
// engine must outlive this object.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "mcp/resource_provider.h"

namespace orch::tools {

// A parsed task:// URI.
struct TaskResourceUri {
  engine::TaskId task_id;
  engine::StreamKind stream = engine::StreamKind::Stdout;
  engine::ReadRequest window;
};
Result<TaskResourceUri> parse_task_uri(const std::string& uri);

class TaskResources final : public mcp::ResourceProvider {
 public:
  explicit TaskResources(engine::Engine& engine);
  ~TaskResources() override;  // stops the watcher
  TaskResources(const TaskResources&) = delete;
  TaskResources& operator=(const TaskResources&) = delete;

  Result<mcp::ResourcePage> list(const std::string& cursor) override;
  nlohmann::json templates() override;
  Result<nlohmann::json> read(const std::string& uri) override;
  Status check(const std::string& uri) override;
  // Once on_updated({}) has returned, the previous callback is not running
  // and will not run again.
  void on_updated(mcp::ResourceUpdated updated) override;

 private:
  void watch(std::stop_token stop);

  engine::Engine& engine_;
  std::mutex mu_;
  mcp::ResourceUpdated updated_;  // guarded by mu_
  std::jthread watcher_;          // declared last: stopped and joined first
};

}  // namespace orch::tools
