// The server's side of the keeper host (engine/keeper_host_protocol.h): starts
// `mcp-orchestrator-keeper --host` once and sends it one request per task.
// Internal to engine/: ProcessRunner uses it to start kept tasks and falls
// back to spawning the keeper when a request cannot go (no host on this
// platform, the host is gone, the command line too long for its area).
//
// Thread-safety: send() may be called from any thread at once (each request
// is one atomic message); stop() and the destructor from one thread once no
// send() runs. Ownership: the host process is this object's child; stop()
// closes its socket and reaps it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "engine/keeper_host_protocol.h"

namespace orch::engine {

class KeeperHost {
 public:
  // Starts the host with `lifeline_read` as its fd 3. Error when the platform
  // has no host (not Linux) or it cannot be started.
  static Result<std::unique_ptr<KeeperHost>> start(const std::string& keeper_path, int lifeline_read);
  ~KeeperHost();
  KeeperHost(const KeeperHost&) = delete;
  KeeperHost& operator=(const KeeperHost&) = delete;

  // True when a keeper with this command line can be forked by the host.
  static bool fits(const std::vector<std::string>& keeper_argv);
  // Sends one request with `fds` (in keeper_host::SentFd order; the caller
  // keeps and closes its copies). Error when it could not be sent: then the
  // host has none of the descriptors and the caller spawns the keeper itself.
  Status send(const keeper_host::Request& request, std::span<const int, keeper_host::kSentFds> fds);
  // After a request the host never answered: later sends fail at once.
  void mark_gone() { gone_.store(true, std::memory_order_relaxed); }
  // Closes the socket (the host then exits) and reaps the host.
  void stop();
  pid_t pid() const { return pid_; }

 private:
  KeeperHost(pid_t pid, UniqueFd socket) : pid_(pid), socket_(std::move(socket)) {}
  pid_t pid_;
  UniqueFd socket_;
  std::atomic<bool> gone_{false};
};

}  // namespace orch::engine
