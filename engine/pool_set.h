// PoolSet: the process pools of every pool profile, and the translation of
// a pool's answer into an attempt's outcome (SPEC §6). The engine starts a
// pool task here instead of in the process runner. A worker's result is
// saved as <spool>/<task>/result.json before the attempt is reported, so
// getResult can return it after a restart too.
//
// Thread-safety: thread-safe. Callbacks run on a pool's worker thread
// without PoolSet locks held.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/process_pool.h"
#include "engine/profile.h"
#include "engine/scheduler.h"
#include "engine/spool.h"

namespace orch::engine {

inline constexpr const char* kResultFile = "result.json";

class PoolSet {
 public:
  // One pool per pool profile, each starting its `min` workers. `env` is
  // the server's environment ("KEY=value") under each profile's env.
  PoolSet(const std::vector<Profile>& profiles, const std::vector<std::string>& server_env, Spool& spool,
          std::chrono::milliseconds stop_grace);
  ~PoolSet();

  bool has(const std::string& profile) const { return pools_.count(profile) > 0; }
  // NotFound when the task's profile has no pool (the config changed since
  // it was queued), Unavailable when the pool is stopping.
  Status start(const TaskRecord& task, std::function<void(pid_t)> on_started,
               std::function<void(const Progress&)> on_progress, std::function<void(const AttemptOutcome&)> on_end);
  // Stops the worker running the task; false when no pool has it.
  bool stop(const TaskId& id);
  std::vector<PoolStats> stats() const;
  // Kills every worker; later starts are Unavailable.
  void shutdown();

 private:
  Spool& spool_;
  std::map<std::string, std::unique_ptr<ProcessPool>> pools_;  // fixed after construction
  std::map<std::string, PoolSettings> settings_;
};

// The worker's result saved for a task, as JSON text; nullopt when none.
std::optional<std::string> read_pool_result(const std::filesystem::path& task_dir);

}  // namespace orch::engine
