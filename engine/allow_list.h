// Allow lists (SPEC §7): which programs tasks may run and in which
// directories. Built once from the config; no tool call can change them, and
// Engine::submit checks every task against them, profiles included.
//
// Programs are compared as the files they really are: each allowed name is
// resolved on the server's PATH when the list is built, and each task's
// program is resolved the way the spawn will (on the task's own PATH,
// relative to its cwd) and then through every symlink and "..". So an
// absolute path, a "./" path, a PATH in the task's env or a placeholder value
// cannot reach a program the list does not name. The `command` form runs
// /bin/sh and is allowed only when the shell is. With a restricted list a
// task may not set LD_* or DYLD_* variables (they load code into an allowed
// program). Thread-safe after construction (const).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/task.h"

namespace orch::engine {

class AllowList {
 public:
  // Everything allowed (no security section in the config).
  AllowList() = default;

  // `commands`: "*" (any), bare names resolved on `server_path` (a PATH
  // value) or absolute paths. `dirs`: absolute directories (a task's cwd must
  // be one of them or below); empty means any. A name found nowhere is kept
  // by name only and matches nothing, so a later install does not widen the
  // list silently; Error for an entry that is neither name nor absolute path.
  static Result<AllowList> create(const std::vector<std::string>& commands, const std::vector<std::string>& dirs,
                                  const std::string& server_path);

  // OK, or Forbidden saying what is not allowed and what is.
  // `env` is the task's whole environment ("KEY=value"); `server_cwd` the
  // directory a task without cwd runs in.
  Status check(const TaskSpec& spec, const std::vector<std::string>& env, const std::string& server_cwd) const;

  bool any_command() const { return any_command_; }

 private:
  bool any_command_ = true;
  std::set<std::string> programs_;       // real paths
  std::vector<std::string> names_;       // as configured, for messages
  std::vector<std::string> dirs_;        // real paths
};

}  // namespace orch::engine
