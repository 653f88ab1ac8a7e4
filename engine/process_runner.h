// ProcessRunner: starts task processes and watches them to their end.
//
// Every process is started with posix_spawn (never fork: SPEC §4, a plain
// fork from a large server costs 24-118x more) as the leader of its own
// process group, stdin from a file or /dev/null, stdout/stderr on pipes.
// One reactor thread (epoll) owns all pipes and pidfds: it copies output into
// the task's spool files, parses "::progress" lines, and reaps exits with
// wait4 (for exit status and peak RSS). So hundreds of running tasks cost two
// pipes and one pidfd each, not a thread each.
//
// When the leader exits, the rest of its group gets SIGTERM at once (a task's
// background jobs must not outlive it) and SIGKILL after straggler_grace if
// the pipes are still open, or if the group still has members then.
//
// Thread-safety: all public methods are thread-safe. Callbacks run on the
// reactor thread; they must not block and must not call back into the runner
// while holding their own locks that the runner's callers hold. They may call
// start() and terminate(). An exception from a callback is logged and dropped.
//
// The spawn step is engine/process_spawn.h, the "::progress" format is
// engine/progress_line.h, and platform calls (epoll, pidfd, pipe2, closefrom)
// go through engine/platform.h.
// Where pidfd_open fails (kernel < 5.3, or out of descriptors) that child's
// exit is found by polling waitid(WNOWAIT) every 20 ms instead.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "engine/spool.h"
#include "engine/task.h"
#include "engine/task_keeper.h"

namespace orch::engine {

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] without '/' is searched in env's PATH
  std::string cwd;                // empty: inherit
  std::vector<std::string> env;   // the child's whole environment, "KEY=value"
  std::optional<std::filesystem::path> stdin_path;  // nullopt: /dev/null
  TaskId task_id;                 // where output is spooled
};

struct ExitInfo {
  std::optional<int> exit_code;   // set when the leader exited normally
  std::optional<int> signal;      // set when the leader was killed by a signal
  std::int64_t peak_rss_kb = 0;   // from wait4's rusage (leader and reaped children)
  std::int64_t duration_ms = 0;
  std::uint64_t stdout_bytes = 0; // produced, counted past the cap
  std::uint64_t stderr_bytes = 0;
  bool stdout_capped = false;
  bool stderr_capped = false;
  std::string error;              // spool write failure, if any
  bool lost = false;              // an adopted process ended and nothing recorded how
  bool killed_as_orphan = false;  // its keeper stopped it when an earlier server died
};

struct ProcessCallbacks {
  std::function<void(const Progress&)> on_progress;  // may be empty
  // Called exactly once, after the leader was reaped, the rest of its group
  // was killed and both pipes reached EOF (or were given up on).
  std::function<void(const ExitInfo&)> on_exit;
};

class ProcessRunner {
 public:
  struct Options {
    // After the leader exits, how long leftover group members get between
    // SIGTERM and SIGKILL before the pipes are closed regardless.
    std::chrono::milliseconds straggler_grace{2000};
    // The task keeper program (engine/task_keeper.h). When set, every process
    // is started under a keeper that leads its group, so that it can outlive
    // a crash of the server (per `orphans`) and be adopted by the next one.
    // Empty: processes are started directly and die with their pipes' reader.
    std::string keeper_path;
    OrphanPolicy orphans = OrphanPolicy::Adopt;
    std::chrono::milliseconds orphan_grace{2000};  // a keeper's SIGTERM → SIGKILL
  };

  // Starts the reactor thread. If its poller cannot be created, every
  // start() returns an Unavailable error saying why.
  ProcessRunner(Spool& spool, Options options);
  // Kills every running group (SIGKILL), joins the reactor and reaps the
  // leaders (waiting at most 5 s for them), so no zombie or orphan is left.
  // on_exit is not called once destruction has begun; a call already under
  // way finishes first.
  ~ProcessRunner();
  ProcessRunner(const ProcessRunner&) = delete;
  ProcessRunner& operator=(const ProcessRunner&) = delete;

  // Spawns the process, spooling into freshly truncated stdout/stderr files.
  // On failure (no such file, bad cwd, missing stdin file, ...) nothing runs
  // and no callback is ever called; the error says what failed and how to fix
  // it. (The spool files may have been truncated already.)
  Result<pid_t> start(const LaunchSpec& spec, ProcessCallbacks callbacks);

  // Follows a task process that an earlier server of this state directory
  // started under a keeper and that outlived it: `pid` must still be that
  // task's keeper (checked against its command line, so a reused pid is
  // refused). It is not our child, so its end comes from the keeper's status
  // file (lost when there is none); output is spooled by the keeper, and
  // live_bytes() reads the files' sizes. NotFound when it is not running.
  Status adopt_orphan(pid_t pid, const TaskId& task_id, ProcessCallbacks callbacks);

  // SIGTERM to the whole group now, SIGKILL to the group after `grace` if the
  // leader still runs. No-op for an unknown or finished pid.
  void terminate(pid_t pid, std::chrono::milliseconds grace);
  // Kills every group at once (SIGKILL); used at shutdown.
  void kill_all();

  // Processes started and not yet reported (a process stops counting just
  // before its on_exit is called).
  std::size_t running() const;
  // Live {stdout, stderr} byte counts, counted past the cap, for a process
  // not yet reported (nullopt from just before its on_exit, or for an unknown pid).
  std::optional<std::pair<std::uint64_t, std::uint64_t>> live_bytes(pid_t pid) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::engine
