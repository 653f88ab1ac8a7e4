// Process spawning: the step of ProcessRunner::start() that turns a LaunchSpec
// into a running child. Internal to engine/; the runner owns what comes after
// (watching, reaping, signalling).
//
// A child is started with posix_spawn, never fork (SPEC §4: a plain fork from
// a large server costs 24-118x more), as the leader of a new process group,
// with an empty signal mask and default dispositions, stdin from a file or
// /dev/null, stdout/stderr on the given descriptors and no other descriptor
// inherited. Starting one takes three calls, in this order, so that whatever
// can be checked is checked before the caller creates pipes or truncates
// spool files:
//
//   auto plan = prepare_spawn(spec);   // argv, cwd, PATH lookup, stdin file
//   auto out = make_output_pipe();     // once per output stream
//   auto pid = spawn_process(spec, std::move(*plan), std::move(out->write_end), ...);
//
// Thread-safety: the functions keep no state and may be called from any
// thread. Ownership: spawn_process() consumes the plan and the write ends and
// closes them in the parent before it returns, on success and on failure, so
// the pipes reach EOF once the child's side is gone. The caller owns the pid:
// it must reap the child.
//
// Failures are Result values whose message names what failed and how to fix
// it (NotFound for a missing program or cwd, InvalidArgument for one that
// cannot be used, Unavailable when the system is out of processes, memory or
// descriptors, Io otherwise). Nothing is left running after a failure.
#pragma once

#include <sys/types.h>

#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "engine/process_runner.h"

namespace orch::engine {

// What prepare_spawn() found out and opened.
struct SpawnPlan {
  std::string exe;   // argv[0], resolved against the spec's PATH
  UniqueFd stdin_fd; // the stdin file or /dev/null: close-on-exec, above fd 2
};

// Checks that argv is not empty and the working directory is usable, resolves
// argv[0] and opens the child's stdin. Error if any of these fails; then
// nothing was created.
Result<SpawnPlan> prepare_spawn(const LaunchSpec& spec);

// One output stream's pipe: the parent reads, the child writes.
struct OutputPipe {
  UniqueFd read_end;   // non-blocking, close-on-exec
  UniqueFd write_end;  // blocking, close-on-exec, above fd 2
};

// Error (Unavailable or Io) if a pipe cannot be created or set up.
Result<OutputPipe> make_output_pipe();

// Spawns spec.argv with exactly spec.env in spec.cwd, stdin from the plan and
// stdout/stderr on the given write ends; `passed` become the child's
// descriptors 3, 4, ... in that order (the caller keeps its copies). Returns
// the child's pid, which is also its process group id.
Result<pid_t> spawn_process(const LaunchSpec& spec, SpawnPlan plan, UniqueFd stdout_fd, UniqueFd stderr_fd,
                            std::span<const int> passed = {});

// The error for a failed posix_spawn of `exe` (spec.argv[0] as resolved):
// what failed and how to fix it.
Error describe_spawn_error(int err, const LaunchSpec& spec, const std::string& exe);

// Resolves argv[0] against the PATH in `env` ("KEY=value" entries; without
// one, /usr/local/bin:/usr/bin:/bin); a name with '/' is returned as is.
// Relative PATH entries are skipped. Error if no regular, executable file is found.
Result<std::string> resolve_executable(const std::string& name, const std::vector<std::string>& env);

}  // namespace orch::engine
