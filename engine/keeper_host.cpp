#include "engine/keeper_host.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "engine/process_spawn.h"

namespace orch::engine {

Result<std::unique_ptr<KeeperHost>> KeeperHost::start(const std::string& keeper_path, int lifeline_read) {
#ifdef __linux__
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return make_error(ErrorCode::Unavailable, std::string("cannot start the keeper host: socketpair: ") +
                                                  std::strerror(errno));
  }
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  LaunchSpec spec;
  spec.argv = {keeper_path, keeper_host::kHostFlag, std::string(keeper_host::kArgAreaBytes, ' ')};
  spec.cwd = "/";
  auto plan = prepare_spawn(spec);
  if (!plan) return plan.error();
  // The host prints nothing but a failure of its own, to the server's stderr.
  UniqueFd err(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
  if (!err) err.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  UniqueFd null_out(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  const int passed[2] = {lifeline_read, theirs.get()};
  static_assert(keeper_host::kHostLifelineFd == 3 && keeper_host::kHostSocketFd == 4, "passed in this order");
  auto pid = spawn_process(spec, std::move(*plan), std::move(null_out), std::move(err), passed);
  if (!pid) return pid.error();
  return std::unique_ptr<KeeperHost>(new KeeperHost(*pid, std::move(ours)));
#else
  (void)keeper_path;
  (void)lifeline_read;
  return make_error(ErrorCode::Unavailable, "no keeper host on this platform");
#endif
}

KeeperHost::~KeeperHost() { stop(); }

bool KeeperHost::fits(const std::vector<std::string>& keeper_argv) {
  return keeper_host::command_line_bytes(keeper_argv) <= keeper_host::kArgAreaBytes;
}

Status KeeperHost::send(const keeper_host::Request& request, std::span<const int, keeper_host::kSentFds> fds) {
  if (gone_.load(std::memory_order_relaxed)) return make_error(ErrorCode::Unavailable, "the keeper host is gone");
  const std::string bytes = keeper_host::encode_request(request);
  if (bytes.size() > keeper_host::kMaxRequestBytes) {
    return make_error(ErrorCode::InvalidArgument, "the request is too large for the keeper host");
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * keeper_host::kSentFds)] = {};
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * keeper_host::kSentFds);
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * keeper_host::kSentFds);
  ssize_t n;
  do {
    n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(bytes.size())) return {};
  const int err = errno;
  if (err == EPIPE || err == ECONNRESET) gone_.store(true, std::memory_order_relaxed);
  return make_error(ErrorCode::Unavailable, std::string("cannot reach the keeper host: ") + std::strerror(err));
}

void KeeperHost::stop() {
  if (!socket_) return;
  socket_.reset();
  // Every request sent has been answered (send()'s caller reads its report),
  // so nothing is lost if the host is killed rather than left to read EOF.
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace orch::engine
