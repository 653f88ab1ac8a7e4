// The task keeper's contract: the program mcp-orchestrator-keeper
// (engine/task_keeper_main.cpp) leads each task's process group, runs the
// task's command as its child, and outlives the server when the server dies,
// so that the next server can follow the task to its true end
// (docs/RECOVERY.md). This header is what the runner and the keeper share:
// the descriptors the keeper is started with, its command line, and the
// record it leaves when the command ends.
//
// The records go to one log in the spool directory, <spool>/exits.log, one
// line per attempt appended with a single write (O_APPEND), so no task costs
// a file of its own: creating and deleting an inode per task was most of
// what a burst of short tasks cost on ext4 (docs/PERFORMANCE.md). The runner
// rotates the log (exits.log.<n>) and deletes a rotated log once every end
// it can hold is in the store. A reader takes a record only when its line is
// whole (newline included), so a torn write reads as no record. Older
// keepers wrote <spool>/<id>/exit instead; it is still read. No state;
// thread-safe. Parsing never throws: a damaged file or command line reads as
// an error value.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/task.h"

namespace orch::engine {

inline constexpr const char* kKeeperStatusLog = "exits.log";   // in the spool directory
inline constexpr const char* kKeeperStatusFile = "exit";       // in a task's directory: older keepers

// Descriptors the keeper starts with, besides 0-2 (the command's stdio).
inline constexpr int kKeeperLifelineFd = 3;      // reads EOF once every server copy of the write end is gone
inline constexpr int kKeeperStdoutReadFd = 4;    // the stdout pipe's read end: drained once orphaned
inline constexpr int kKeeperStderrReadFd = 5;    // the stderr pipe's read end
inline constexpr int kKeeperReportFd = 6;        // a keeper_host::Report {pid, 0 or posix_spawn's errno}, then closed
inline constexpr int kKeeperPassedFds = 4;       // 3..6

// What a keeper does when the server that started it dies.
enum class OrphanPolicy {
  Adopt,  // keep the command running, spool its output, record its end for the next server
  Kill,   // stop the command's group (SIGTERM, then SIGKILL after the grace) and record that
};

struct KeeperArgs {
  std::string task_id;
  int attempt = 0;               // recorded with the end: a retry is never taken for its predecessor
  std::string task_dir;          // the task's spool directory (absolute): stdout, stderr, the status file
  std::uint64_t cap_bytes = 0;   // per-stream cap while the keeper spools
  OrphanPolicy orphans = OrphanPolicy::Adopt;
  int grace_ms = 2000;           // SIGTERM → SIGKILL when the keeper stops the group
  TaskLimits limits;             // set on the command before it starts (0: none)
  std::string cgroup;            // join this cgroup v2 directory first; then memory is not an rlimit
  std::string exe;               // resolved program
  std::vector<std::string> argv; // the command's argv
};

// The keeper's argv for `args`: keeper_exe, options, "--", exe, argv...
std::vector<std::string> keeper_command_line(const std::string& keeper_exe, const KeeperArgs& args);
// Parses what keeper_command_line() built; nullopt with `error` set otherwise.
std::optional<KeeperArgs> parse_keeper_command_line(int argc, const char* const* argv, std::string& error);
// The task a process's /proc cmdline (NUL-separated) keeps, when it is a
// keeper's; nullopt for any other process.
std::optional<std::string> keeper_task_of(std::string_view cmdline);
// True when a process's /proc cmdline is a keeper of `task_id`: how a new
// server tells a surviving keeper from a stranger that reused its pid.
bool is_keeper_of(std::string_view cmdline, std::string_view task_id);

struct KeeperStatus {
  enum class Kind {
    Exited,        // value: the exit code
    Signaled,      // value: the signal that killed the command
    SpawnError,    // value: the errno of posix_spawn
    OrphanKilled,  // the server died and re-adoption was off: the keeper killed the group
  };
  Kind kind = Kind::Exited;
  int value = 0;
  std::int64_t peak_rss_kb = 0;  // the command's, from wait4
};

// Puts process `pid` (0: the caller) under `limits`: into `cgroup` when it
// is set (writing its pid to cgroup.procs; memory is then the cgroup's, not
// an rlimit), RLIMIT_AS for memory otherwise, RLIMIT_CPU (soft at the limit,
// SIGXCPU; hard a second later, SIGKILL) and RLIMIT_NOFILE. Soft and hard
// limits are both set, so the task cannot raise them again. Returns 0 or
// the errno of the first call that failed.
int apply_task_limits(pid_t pid, const TaskLimits& limits, const std::string& cgroup);

// "v1 exit 3 rss 1234\n", "v1 signal 9 rss 1234\n", "v1 spawn-error 2 rss 0\n",
// "v1 orphan-killed 0 rss 0\n": an older keeper's status file.
std::string format_keeper_status(const KeeperStatus& status);
std::optional<KeeperStatus> parse_keeper_status(std::string_view text);

// A status log's record: "v1 <task id> <attempt> exit 3 rss 1234\n".
std::string format_status_record(std::string_view task_id, int attempt, const KeeperStatus& status);
// The status of `task_id`'s `attempt` in one log's text; the last whole
// record of that attempt wins. Damaged lines are skipped.
std::optional<KeeperStatus> find_status_record(std::string_view log, std::string_view task_id, int attempt);
// The paths of <spool_dir>/exits.log and its rotations, the current log first.
std::vector<std::filesystem::path> status_logs(const std::filesystem::path& spool_dir);
// How `task_id`'s `attempt` ended as its keeper recorded it: in the status
// logs of `spool_dir`, else in an older keeper's <spool_dir>/<id>/exit.
// nullopt when nothing (whole) is recorded. Reads every log: for recovery,
// not a hot path.
std::optional<KeeperStatus> read_keeper_status(const std::filesystem::path& spool_dir, const std::string& task_id,
                                               int attempt);
// Appends one record to <spool_dir>/exits.log (created if missing) with a
// single write. False when it could not (errno set).
bool append_status_record(const std::string& spool_dir, std::string_view task_id, int attempt,
                          const KeeperStatus& status);

}  // namespace orch::engine
