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
#include <string_view>
#include <string>
#include <unordered_map>
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
  int attempt = 0;                // the task's attempt: its keeper records its end under it; the
                                  // first (1) has no earlier output in the spool to remove
  TaskLimits limits;              // applied to the command by its keeper (rlimits)
  std::string memory_cgroup;      // cgroup v2 directory the command runs in; empty: RLIMIT_AS
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

// --- Hand-over (restart in place) -------------------------------------------
// A process the runner watched, handed to the next image of the server (which
// stays its parent: execve keeps the pid). The descriptors are listed by role
// so one more can be added per process without changing the format:
//   "stdout", "stderr"  read ends of the output pipes (absent once at EOF)
//   "exit"              the pidfd (absent where the exit is found by polling)
// They are plain numbers: hand_over() gives up ownership, and whoever receives
// them keeps them open across exec (CLOEXEC cleared) or closes them.
struct HandedFd {
  std::string role;
  int fd = -1;
};

struct StreamProgress {
  std::uint64_t total_bytes = 0;   // produced, counted past the cap
  std::uint64_t stored_bytes = 0;  // kept in the spool file
  bool capped = false;
};

// The keepers' lifeline pipe (engine/task_keeper.h), carried across a
// restart in place: keepers hold the read end and see EOF when no image of
// the server holds the write end any more.
struct Lifeline {
  int read_fd = -1;
  int write_fd = -1;
};

struct RunningProcess {
  TaskId task_id;
  int attempt = 0;  // not handed over: the next image sets it from the store before adopt()
  pid_t pid = 0;  // also the process group id
  std::int64_t elapsed_ms = 0;  // since it started, for its duration
  std::vector<HandedFd> fds;
  StreamProgress stdout_progress;
  StreamProgress stderr_progress;
  bool stop_requested = false;  // a cancel was under way (set by the engine, not the runner)
  bool foreign = false;  // adopted from a crashed server (adopt_orphan): only its pidfd, no pipes

  int fd(std::string_view role) const;  // -1 when absent
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
    // Keepers are forked by one long-lived keeper host (engine/keeper_host.h)
    // rather than spawned, one exec fewer per task; false, or where the host
    // cannot serve a start, each keeper is spawned.
    bool keeper_host = true;
    // The keepers' status log is rotated once it has this many bytes,
    // checked every `status_log_check_every` starts (one stat each time).
    std::uint64_t status_log_rotate_bytes = 1 << 20;
    int status_log_check_every = 256;
    // After a restart in place: the previous image's lifeline, adopted
    // instead of a new pipe (the runner owns both descriptors from then on).
    Lifeline inherited_lifeline;
    // Called on the reactor thread after each round of events in which some
    // on_exit ran: an on_exit may leave its end for this to store, with the
    // round's other ends in one commit (in_reactor_round()). The keepers'
    // records of those ends are kept until it returns.
    std::function<void()> after_exits;
  };

  // True on the reactor thread while it handles a round of events: an
  // on_exit called now may leave its end to Options::after_exits.
  static bool in_reactor_round();

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
  // start() without waiting for the process: the keeper host is handed the
  // request, and `started` runs later on the reactor thread with what start()
  // would have returned, before any callback of the process (rarely, when
  // the report cannot be watched, before start_soon returns: so the caller
  // must not hold a lock `started` takes). False when this start cannot go
  // that way (no keeper host, a command line it cannot take, a spec start()
  // would refuse): then nothing was started and the caller uses start().
  // Saves the thread that would wait for the keeper's report.
  bool start_soon(const LaunchSpec& spec, ProcessCallbacks callbacks, std::function<void(Result<pid_t>)> started);

  // Follows a task process that an earlier server of this state directory
  // started under a keeper and that outlived it: `pid` must still be that
  // task's keeper (checked against its command line, so a reused pid is
  // refused). It is not our child, so its end comes from the keeper's record
  // of `attempt` (lost when there is none); output is spooled by the keeper, and
  // live_bytes() reads the files' sizes. NotFound when it is not running.
  Status adopt_orphan(pid_t pid, const TaskId& task_id, int attempt, ProcessCallbacks callbacks);
  // The running keepers by task, found by their command lines among all
  // processes: for tasks whose pid the earlier server had not recorded yet
  // when it died. One walk of /proc: for recovery, not a hot path.
  static std::unordered_map<TaskId, pid_t> find_orphan_keepers();

  // SIGTERM to the whole group now, SIGKILL to the group after `grace` if the
  // leader still runs. No-op for an unknown or finished pid.
  void terminate(pid_t pid, std::chrono::milliseconds grace);
  // Kills every group at once (SIGKILL); used at shutdown.
  void kill_all();

  // Processes started and not yet reported (a process stops counting just
  // before its on_exit is called).
  std::size_t running() const;
  // Restart in place. Stops the reactor (the runner starts nothing and
  // reports nothing afterwards; only its destructor may follow) and returns
  // every process still running, with the descriptors that watch it and how
  // far each spool got. Output still in the pipes stays there for the next
  // reader. A process already reaped but with pipes still held open by
  // leftover group members is finished first (on_exit is called). Call once.
  std::vector<RunningProcess> hand_over();
  // After hand_over(): gives up the lifeline's descriptors for the next image
  // (CLOEXEC still set; the caller clears it). {-1, -1} without keepers.
  Lifeline release_lifeline();
  // The other half, in the new image: watches a handed-over process again,
  // appending to its spool files from where they stopped, and takes
  // ownership of its descriptors (also on failure, when they are closed and
  // the group is killed and reaped, so nothing is left unwatched).
  Status adopt(const RunningProcess& process, ProcessCallbacks callbacks);

  // Live {stdout, stderr} byte counts, counted past the cap, for a process
  // not yet reported (nullopt from just before its on_exit, or for an unknown pid).
  std::optional<std::pair<std::uint64_t, std::uint64_t>> live_bytes(pid_t pid) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::engine
