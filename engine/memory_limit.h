// MemoryLimiter: per-task memory limits and the truthful verdict on whether
// a task ended because of one (SPEC §4, reason memory_limit).
//
// Two mechanisms, chosen once at start:
// - cgroup v2, when the server's own cgroup lets it create sub-groups with
//   the memory controller (a delegated subtree, or the root of a container's
//   cgroup namespace). Each limited task gets <cgroup>/orch-<task id> with
//   memory.max and memory.swap.max = 0; its keeper joins it before starting
//   the command. The kernel kills the group at the limit, and memory.events
//   (oom_kill) says so: that is the verdict.
// - RLIMIT_AS otherwise: the command's address space is capped, so an
//   allocation past the limit fails inside the program, which then exits or
//   aborts on its own. Nothing outside the process sees the failed
//   allocation, so the verdict is read from what the program printed: a
//   failed attempt whose stderr tail names an out-of-memory error
//   (MemoryError, std::bad_alloc, "Cannot allocate memory", ...). A program
//   that dies silently is reported by its exit, not as memory_limit.
// docs/PROFILES.md states these limits for users.
//
// Thread-safety: thread-safe.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/task.h"

namespace orch::engine {

class MemoryLimiter {
 public:
  // Probes cgroup v2 (see above); never fails: RLIMIT_AS is the fallback.
  static std::unique_ptr<MemoryLimiter> create();
  // A limiter that never uses cgroups (tests of the fallback).
  static std::unique_ptr<MemoryLimiter> rlimit_only();
  ~MemoryLimiter();

  bool uses_cgroup() const { return !base_.empty(); }
  // "cgroup v2 (<dir>)" or "RLIMIT_AS", for logs and getStatus.
  std::string mechanism() const;

  // The cgroup directory the task's keeper must join, created with its
  // limit; empty when the task runs under RLIMIT_AS instead.
  std::string prepare(const TaskId& id, std::int64_t memory_mb);
  // After the task's attempt ended: why it was its memory limit, or nullopt.
  // Removes the task's cgroup.
  std::optional<std::string> judge_end(const TaskId& id, std::int64_t memory_mb, std::optional<int> exit_code,
                                       std::optional<int> signal, const std::filesystem::path& stderr_path);

 private:
  explicit MemoryLimiter(std::string base) : base_(std::move(base)) {}
  std::string base_;  // the cgroup v2 directory holding task groups; empty: RLIMIT_AS
  std::mutex mu_;
  std::map<TaskId, std::string> groups_;  // guarded by mu_: task → its cgroup
};

// The out-of-memory phrase in `text` (a stderr tail), or nullopt.
std::optional<std::string> find_out_of_memory_message(std::string_view text);

}  // namespace orch::engine
