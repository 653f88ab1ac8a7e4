// ProcessPool: the long-lived workers of one pool profile (SPEC §4, §6).
//
// Each worker is a process started with posix_spawn in its own process
// group, fed one JSON line per task on stdin and answering on stdout with
// progress lines and then exactly one result or error line. A worker runs
// one task at a time. Between tasks it is replaced after
// max_tasks_per_worker tasks or when its RSS is above max_worker_rss_mb;
// during a task it is killed at once above the hard limit (the profile's
// memoryLimitMb), which fails the attempt with reason memory_limit. A worker
// that exits mid-task or prints a line that is not the protocol fails the
// attempt and is replaced. Workers above `min` exit after idle_timeout.
// Its stderr goes to the current task's stderr spool (between tasks it is
// discarded).
//
// Threads: one per worker, owned by the pool and joined by it. Callbacks
// (on_progress, on_done) run on a worker's thread without pool locks held;
// they may call stop_task() and run(). Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/process_runner.h"
#include "engine/profile.h"
#include "engine/spool.h"
#include "engine/task.h"

namespace orch::engine {

struct PoolOutcome {
  enum class Kind {
    Result,       // the worker answered with a result (result_json)
    Error,        // the worker answered with an error (message)
    Crashed,      // the worker exited or closed stdout mid-task
    Malformed,    // the worker printed a line that is not the protocol
    MemoryLimit,  // killed above the hard RSS limit during the task
    SpawnError,   // no worker could be started
    Stopped,      // stop_task() or the pool's shutdown killed it
  };
  Kind kind = Kind::Crashed;
  std::string result_json;
  std::string message;            // one line: what happened
  std::optional<int> exit_code;   // the worker's, when it ended
  std::optional<int> signal;
  std::int64_t peak_rss_kb = 0;   // the worker's RSS, highest seen during the task
  std::uint64_t stderr_bytes = 0;
  pid_t worker_pid = 0;
};

struct PoolRequest {
  TaskId task_id;
  std::string input_json;  // the request's "input", as JSON text
  std::function<void(pid_t)> on_started;          // the worker that took it; may be empty
  std::function<void(const Progress&)> on_progress;  // may be empty
  std::function<void(const PoolOutcome&)> on_done;   // exactly once
};

struct PoolWorkerView {
  pid_t pid = 0;
  std::string state;       // "starting", "idle", "busy", "stopping"
  int tasks_served = 0;
  std::int64_t rss_kb = -1;
  TaskId task_id;          // while busy
};

struct PoolStats {
  std::string profile;
  int min = 0;
  int max = 0;
  std::vector<PoolWorkerView> workers;
};

class ProcessPool {
 public:
  struct Options {
    std::string name;                 // the profile's, for messages
    PoolSettings settings;
    LaunchSpec worker;                // argv, env, cwd (task_id unused)
    std::int64_t hard_rss_mb = 0;     // 0: none
    std::chrono::milliseconds stop_grace{2000};  // SIGTERM → SIGKILL when a worker is stopped
    std::chrono::milliseconds rss_check{100};    // how often RSS is read during a task
  };

  // Starts `min` workers.
  ProcessPool(Options options, Spool& spool);
  // Kills every worker (SIGKILL to its group), reaps them and joins their
  // threads; a task still running gets on_done(Stopped).
  ~ProcessPool();
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  // Hands the request to an idle worker, or starts one when fewer than `max`
  // run, or queues it for the next free worker. Unavailable once stopping
  // (then on_done is never called).
  Status run(PoolRequest request);
  // Stops the worker running this task (SIGTERM to its group, SIGKILL after
  // stop_grace), or marks it when it still waits for a worker; its on_done
  // reports Stopped, later and on a worker's thread (never from this call).
  // False when the pool does not have it.
  bool stop_task(const TaskId& id);
  std::vector<PoolWorkerView> workers() const;
  const std::string& name() const;
  // As the destructor, but the object stays (run() refuses afterwards).
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::engine
