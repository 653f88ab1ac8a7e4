// The keeper host (protocol and why in engine/keeper_host_protocol.h): one
// long-lived, single-threaded process that forks each task's keeper. It
// keeps no children of its own (each fork is the server's child) and no
// state: it ends when the server closes its socket, by exiting or by
// restarting in place, so it never outlives the server that started it.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "engine/keeper_host_protocol.h"
#include "engine/keeper_program.h"
#include "engine/task_keeper.h"

extern char** environ;

namespace orch::engine {

namespace {

using keeper_host::Report;
using keeper_host::Request;

// Where the forked keepers write their command line: the host's argv strings,
// which the kernel shows as /proc/<pid>/cmdline.
struct ArgArea {
  char* begin = nullptr;
  std::size_t size = 0;
  std::size_t used = 0;  // the host's own arguments before its blank one; NULs after
};

void send_report(int fd, Report record) {
  write_all(fd, reinterpret_cast<const char*>(&record), sizeof record);
}

// In the forked child: becomes what a spawned keeper starts as (the leader of
// a new group, default signals, the descriptors of task_keeper.h, the
// command's environment and directory), then runs the keeper.
[[noreturn]] void become_keeper(Request& request, const int (&fds)[keeper_host::kSentFds], const ArgArea& area) {
  ::setpgid(0, 0);
  // The host was spawned with an empty mask and default dispositions and
  // changed only the stop signals, which run_keeper() sets itself: nothing
  // to reset (a loop over every signal was a visible part of a start).
  // Each source is first lifted above the targets (0-6), which it may occupy.
  int lifted[keeper_host::kSentFds];
  for (int i = 0; i < keeper_host::kSentFds; ++i) lifted[i] = ::fcntl(fds[i], F_DUPFD, 16);
  const int target[keeper_host::kSentFds] = {0, 1, 2, kKeeperStdoutReadFd, kKeeperStderrReadFd, kKeeperReportFd};
  for (int i = 0; i < keeper_host::kSentFds; ++i) {
    if (lifted[i] < 0 || ::dup2(lifted[i], target[i]) < 0) ::_exit(126);
  }
  static_assert(kKeeperLifelineFd == keeper_host::kHostLifelineFd, "the lifeline stays where it is");
  ::syscall(SYS_close_range, kKeeperReportFd + 1, ~0u, 0);
  if (!request.cwd.empty() && ::chdir(request.cwd.c_str()) != 0) {
    send_report(kKeeperReportFd, {static_cast<std::int32_t>(::getpid()), errno});
    ::_exit(127);
  }
  static std::vector<char*> env;
  for (auto& e : request.env) env.push_back(e.data());
  env.push_back(nullptr);
  environ = env.data();
  // The command line over the host's. The host zeroed its blank argument,
  // so what follows is NULs already (touching all of the area would copy
  // each of its pages).
  std::size_t at = 0;
  for (const auto& a : request.keeper_argv) {
    std::memcpy(area.begin + at, a.c_str(), a.size() + 1);
    at += a.size() + 1;
  }
  if (at < area.used) std::memset(area.begin + at, 0, area.used - at);
  static std::vector<char*> argv;
  for (auto& a : request.keeper_argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::_exit(run_keeper(static_cast<int>(argv.size() - 1), argv.data()));
}

// Receives one request; false once the server is gone.
bool serve_one(const ArgArea& area, std::span<char> buffer) {
  int fds[keeper_host::kSentFds];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)];
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(keeper_host::kHostSocketFd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  std::vector<UniqueFd> received;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* data = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (std::size_t i = 0; i < count; ++i) received.emplace_back(data[i]);
  }
  // A request the host cannot serve: its descriptors close, so the server
  // reads EOF on the report pipe and starts the keeper itself.
  if (received.size() != keeper_host::kSentFds || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) return true;
  for (int i = 0; i < keeper_host::kSentFds; ++i) fds[i] = received[static_cast<std::size_t>(i)].get();
  auto request = keeper_host::decode_request(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  if (!request || keeper_host::command_line_bytes(request->keeper_argv) > area.size) return true;

  // fork() cannot make the child the server's: a raw clone with CLONE_PARENT
  // can. The host is single-threaded, so the child may go on in C++.
  const long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) become_keeper(*request, fds, area);
  if (pid < 0) {
    send_report(fds[keeper_host::kSentReport], {0, errno});
  } else {
    send_report(fds[keeper_host::kSentReport], {static_cast<std::int32_t>(pid), keeper_host::kForked});
  }
  return true;
}

}  // namespace

int serve_as_keeper_host(int argc, char** argv) {
  ArgArea area;
  area.begin = argv[0];
  area.size = static_cast<std::size_t>(argv[argc - 1] + std::strlen(argv[argc - 1]) + 1 - argv[0]);
  // The blank argument becomes NULs: the kernel shows what ends in a NUL as
  // NUL-separated arguments, and the last byte must stay NUL, or it reads
  // the area as a setproctitle() string.
  area.used = area.size;
  if (argc >= 3) {
    area.used = static_cast<std::size_t>(argv[argc - 1] - argv[0]);
    std::memset(argv[argc - 1], 0, std::strlen(argv[argc - 1]));
  }
  // The server stops a task by signalling its keeper's group; the host is in
  // a group of its own and ends only with its socket.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);
  // The request buffer is the host's alone: kept out of every fork, its pages
  // are neither copied into each keeper's page tables nor unmapped at its exit.
  void* buffer = ::mmap(nullptr, keeper_host::kMaxRequestBytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return 1;
  ::madvise(buffer, keeper_host::kMaxRequestBytes, MADV_DONTFORK);
  while (serve_one(area, {static_cast<char*>(buffer), keeper_host::kMaxRequestBytes})) {
  }
  return 0;
}

}  // namespace orch::engine
