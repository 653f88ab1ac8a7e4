// mcp-orchestrator-keeper: leads one task's process group and runs the task's
// command as its child (contract in engine/task_keeper.h, design in
// docs/RECOVERY.md).
//
// While the server lives the keeper only waits: the command writes straight
// into the server's pipes, and the keeper's exit mirrors the command's (same
// code, same signal), so the server's wait4 sees what it would have seen
// without a keeper. What the keeper adds shows when the server dies (its
// lifeline pipe reads EOF): with --orphans adopt it drains the command's
// pipes into the spool files, so the command neither blocks nor dies of
// SIGPIPE, and it records the command's end in the status file for the next
// server; with --orphans kill it stops the group, so nothing outlives the
// server unnoticed.
//
// It links nothing but libc and starts in well under a millisecond: it is on
// the path of every task start. Most keepers are not even started: they are
// forks of the keeper host (engine/keeper_host_main.cpp), which calls
// run_keeper() in each child; main() below serves both modes.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "engine/keeper_host_protocol.h"
#include "engine/keeper_program.h"
#include "engine/spool.h"
#include "engine/task_keeper.h"

extern char** environ;

namespace {

using orch::engine::KeeperArgs;
using orch::engine::KeeperStatus;
using orch::engine::OrphanPolicy;
using orch::write_all;

constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE};
constexpr std::size_t kChunk = 64 * 1024;
// Without a pidfd (kernel < 5.3) the command's exit is polled at this pace.
constexpr int kExitPollMs = 50;

std::int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// One record appended to the spool's status log, without fsync: it must
// survive a crash of the server, not of the machine. No file of the task's
// own: creating and deleting inodes is what a burst of short tasks costs
// most (ext4's inode allocator).
void write_status(const KeeperArgs& args, const KeeperStatus& status) {
  const std::string spool_dir = args.task_dir.substr(0, args.task_dir.rfind('/'));
  orch::engine::append_status_record(spool_dir, args.task_id, args.attempt, status);
}

// One output stream spooled by the keeper once the server is gone; the same
// cap and marker as the server's SpoolWriter, counting what the file holds.
struct Drain {
  int pipe_fd = -1;
  int file_fd = -1;
  std::uint64_t stored = 0;
  bool capped = false;

  void open_file(const std::string& path, std::uint64_t cap) {
    file_fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    struct stat st {};
    if (file_fd >= 0 && ::fstat(file_fd, &st) == 0) stored = static_cast<std::uint64_t>(st.st_size);
    capped = stored > cap;  // the server wrote the marker already
    if (capped) stored = cap;
  }

  // Reads once; false at EOF or error (then the pipe is closed).
  bool pump(std::uint64_t cap, char* buffer) {
    ssize_t n;
    do {
      n = ::read(pipe_fd, buffer, kChunk);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) {
      ::close(pipe_fd);
      pipe_fd = -1;
      return false;
    }
    if (capped || file_fd < 0) return true;
    const auto size = static_cast<std::uint64_t>(n);
    const std::uint64_t keep = std::min(size, cap - stored);
    if (write_all(file_fd, buffer, keep)) stored += keep;
    if (keep < size) {
      capped = true;
      const std::string marker = orch::engine::truncation_marker(cap);
      write_all(file_fd, marker.data(), marker.size());
    }
    return true;
  }
};

[[noreturn]] void exit_like(const KeeperStatus& status) {
  if (status.kind == KeeperStatus::Kind::Signaled) {
    // Die of the same signal, so the server's wait4 reports it; no core file
    // of ours stands in for the command's.
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::signal(status.value, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, status.value);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(status.value);
    ::_exit(128 + status.value);
  }
  if (status.kind == KeeperStatus::Kind::Exited) ::_exit(status.value);
  ::_exit(127);
}

pid_t spawn_command(const KeeperArgs& args, int& err) {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_init(&actions);
  // The command starts as the server would have started it: default
  // dispositions and an empty mask, in the keeper's (its task's) group.
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : kStopSignals) sigaddset(&defaults, sig);
  sigaddset(&defaults, SIGCHLD);
  sigset_t empty;
  sigemptyset(&empty);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  ::posix_spawnattr_setsigdefault(&attr, &defaults);
  ::posix_spawnattr_setsigmask(&attr, &empty);
  ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> argv;
  for (const std::string& a : args.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  err = ::posix_spawn(&pid, args.exe.c_str(), &actions, &attr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  return err == 0 ? pid : -1;
}

// One record, so the server learns the pid as well when a keeper host forked
// this keeper.
void report(int err) {
  const orch::engine::keeper_host::Report record{static_cast<std::int32_t>(::getpid()), err};
  write_all(orch::engine::kKeeperReportFd, reinterpret_cast<const char*>(&record), sizeof record);
  ::close(orch::engine::kKeeperReportFd);
}

KeeperStatus status_of(int wait_status, const rusage& usage) {
  KeeperStatus s;
  s.peak_rss_kb = usage.ru_maxrss;
  if (WIFSIGNALED(wait_status)) {
    s.kind = KeeperStatus::Kind::Signaled;
    s.value = WTERMSIG(wait_status);
  } else {
    s.kind = KeeperStatus::Kind::Exited;
    s.value = WEXITSTATUS(wait_status);
  }
  return s;
}

// Children of this keeper outside its process group. As a child subreaper it
// inherits a process that left the group (setsid, a daemon's double fork)
// when that process's parent ends, instead of init inheriting it.
std::vector<pid_t> escaped_children() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  const pid_t group = ::getpgrp();
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (const dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const std::string path = std::string("/proc/") + entry->d_name + "/stat";
    orch::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char stat[512];
    const ssize_t n = fd ? ::read(fd.get(), stat, sizeof stat - 1) : -1;
    if (n <= 0) continue;
    stat[n] = '\0';
    const char* after_name = std::strrchr(stat, ')');  // the name may hold spaces and parentheses
    char state = 0;
    int ppid = 0, pgrp = 0;
    if (!after_name || std::sscanf(after_name + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
    if (ppid == self && pgrp != group && state != 'Z') out.push_back(static_cast<pid_t>(std::atoi(entry->d_name)));
  }
  ::closedir(proc);
  return out;
}

// A daemon the task left behind is still the task's: SIGTERM, the grace, then
// SIGKILL, as for the group (SPEC §1: no orphaned process trees). Its own
// children come here in turn when it dies; all are reaped.
void stop_escaped_children(std::int64_t grace_ms) {
  // Most tasks leave nothing: with no child at all, skip the walk of /proc
  // (which reads every process's stat, on every task's end).
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  if (::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD) return;
  std::vector<pid_t> escaped = escaped_children();
  if (escaped.empty()) return;
  for (pid_t pid : escaped) ::kill(pid, SIGTERM);
  const std::int64_t kill_at = now_ms() + grace_ms;
  for (;;) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    escaped = escaped_children();
    if (escaped.empty()) return;
    if (now_ms() >= kill_at) {
      for (pid_t pid : escaped) ::kill(pid, SIGKILL);
    }
    ::poll(nullptr, 0, 20);  // the pace of the checks: a daemon gets no exit watch
  }
}

}  // namespace

int orch::engine::run_keeper(int argc, char** argv) {
  std::string error;
  auto parsed = orch::engine::parse_keeper_command_line(argc, argv, error);
  if (!parsed) {
    std::fprintf(stderr, "mcp-orchestrator-keeper: %s (this program is started by mcp-orchestrator)\n",
                 error.c_str());
    report(EINVAL);
    return 125;
  }
  const KeeperArgs& args = *parsed;
  // The server signals the whole group to stop a task; the command reacts,
  // and the keeper follows it by mirroring its end.
  for (int sig : kStopSignals) ::signal(sig, SIG_IGN);
#ifdef PR_SET_CHILD_SUBREAPER
  // Descendants that leave the group are re-parented here, so they can be
  // stopped with the task (stop_escaped_children). No fallback on macOS.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif

  // Limits are the keeper's own first, so the command inherits them from
  // its first instruction on (a limit applied after the spawn would leave it
  // a moment without). The keeper itself needs a few MiB and descriptors.
  int err = orch::engine::apply_task_limits(0, args.limits, args.cgroup);
  const pid_t child = err == 0 ? spawn_command(args, err) : -1;
  if (child < 0) {
    write_status(args, {KeeperStatus::Kind::SpawnError, err, 0});
    report(err);
    return 127;
  }
  report(0);
  // The keeper needs no stdio; holding the pipes' write ends would keep them
  // open after the command's group is gone.
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd <= 2; ++fd) {
    if (devnull >= 0) ::dup2(devnull, fd);
    else ::close(fd);
  }
  if (devnull > 2) ::close(devnull);

  int exit_watch = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  Drain drains[2];
  drains[0].pipe_fd = orch::engine::kKeeperStdoutReadFd;
  drains[1].pipe_fd = orch::engine::kKeeperStderrReadFd;
  int lifeline = orch::engine::kKeeperLifelineFd;
  bool orphaned = false;
  bool child_done = false;
  KeeperStatus end;
  std::int64_t kill_at = -1;  // SIGKILL the group then
  // Not zero-filled: most keepers never drain, and a forked keeper would
  // fault in every page of it.
  std::unique_ptr<char[]> buffer(new char[kChunk]);

  for (;;) {
    if (child_done && (!orphaned || (drains[0].pipe_fd < 0 && drains[1].pipe_fd < 0))) break;
    pollfd fds[4];
    int n = 0;
    int at_lifeline = -1, at_exit = -1, at_drain[2] = {-1, -1};
    if (!orphaned) {
      at_lifeline = n;
      fds[n++] = {lifeline, POLLIN, 0};
    }
    if (!child_done && exit_watch >= 0) {
      at_exit = n;
      fds[n++] = {exit_watch, POLLIN, 0};
    }
    if (orphaned && args.orphans == OrphanPolicy::Adopt) {
      for (int i = 0; i < 2; ++i) {
        if (drains[i].pipe_fd < 0) continue;
        at_drain[i] = n;
        fds[n++] = {drains[i].pipe_fd, POLLIN, 0};
      }
    }
    int timeout = -1;
    if (!child_done && exit_watch < 0) timeout = kExitPollMs;
    if (kill_at >= 0) {
      const auto left = static_cast<int>(std::max<std::int64_t>(kill_at - now_ms(), 0));
      timeout = timeout < 0 ? left : std::min(timeout, left);
    }
    int ready = ::poll(fds, static_cast<nfds_t>(n), timeout);
    if (ready < 0 && errno != EINTR) break;

    if (kill_at >= 0 && now_ms() >= kill_at) {
      // Grace over: the group goes, this keeper with it (its status is written).
      if (!child_done || args.orphans == OrphanPolicy::Kill) {
        write_status(args, {KeeperStatus::Kind::OrphanKilled, 0, 0});
      }
      ::kill(0, SIGKILL);
    }
    if (at_lifeline >= 0 && fds[at_lifeline].revents != 0) {
      // Nobody writes to the lifeline: readable means EOF, the server is gone.
      orphaned = true;
      ::close(lifeline);
      if (args.orphans == OrphanPolicy::Kill) {
        ::kill(0, SIGTERM);
        kill_at = now_ms() + args.grace_ms;
      } else {
        // The server creates a task's directory with its first output.
        ::mkdir(args.task_dir.c_str(), 0700);
        drains[0].open_file(args.task_dir + "/stdout", args.cap_bytes);
        drains[1].open_file(args.task_dir + "/stderr", args.cap_bytes);
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (at_drain[i] >= 0 && fds[at_drain[i]].revents != 0) drains[i].pump(args.cap_bytes, buffer.get());
    }
    bool exited = at_exit >= 0 && fds[at_exit].revents != 0;
    int wait_status = 0;
    rusage usage{};
    pid_t r = 0;
    if (exited || (exit_watch < 0 && !child_done)) {
      do {
        r = ::wait4(child, &wait_status, WNOHANG, &usage);
      } while (r < 0 && errno == EINTR);
    }
    if (r == child) {
      child_done = true;
      end = status_of(wait_status, usage);
      if (exit_watch >= 0) ::close(exit_watch);
      exit_watch = -1;
      if (orphaned && args.orphans == OrphanPolicy::Kill) {
        write_status(args, {KeeperStatus::Kind::OrphanKilled, 0, 0});
        ::kill(0, SIGKILL);
      }
      write_status(args, end);
      if (orphaned) {
        // What the server does when a leader exits: the rest of the group is
        // asked to stop, and killed once the grace is over.
        ::kill(0, SIGTERM);
        kill_at = now_ms() + args.grace_ms;
      }
    }
  }
  stop_escaped_children(args.grace_ms);
  if (orphaned) {
    // The pipes reached EOF; members that closed them may still run.
    ::kill(0, SIGKILL);
  }
  exit_like(end);
}

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], orch::engine::keeper_host::kHostFlag) == 0) {
    return orch::engine::serve_as_keeper_host(argc, argv);
  }
  return orch::engine::run_keeper(argc, argv);
}
