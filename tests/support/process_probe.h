// Process probes over /proc: does a pid live, which processes are in a group.
// Used to prove that no task process is left behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace orch::test {

// True while the process exists and is not a zombie.
bool process_alive(pid_t pid);
// Live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> processes_in_group(pid_t pgid);
// Live (non-zombie) processes whose parent is `ppid`.
std::vector<pid_t> children_of(pid_t ppid);
// Every live process's pid.
std::vector<pid_t> all_processes();
// The process's NUL-separated command line; empty for a zombie or a process
// that is gone, even one that exits while it is read.
std::string process_cmdline(pid_t pid);

}  // namespace orch::test
