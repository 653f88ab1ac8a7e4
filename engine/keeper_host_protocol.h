// The keeper host's protocol: what the server and `mcp-orchestrator-keeper
// --host` (engine/keeper_host_main.cpp) say to each other.
//
// Starting a task's keeper with posix_spawn costs an exec per task, and the
// keeper's exec costs as much as the task's own: glibc's start-up runs
// `cpuid`, which traps to the hypervisor on a VM (docs/PERFORMANCE.md). The
// host is one keeper process started once; for each task it forks a keeper
// instead (a fork of a small static process: no loader, no `cpuid`), with
// CLONE_PARENT, so that the keeper is the server's child as a spawned one
// would be: wait4, the exit watch, restart in place and adoption stay as
// they are.
//
// The server sends one SOCK_SEQPACKET message per task: the keeper's command
// line, the command's environment and working directory (encode_request),
// with the descriptors of SentFd attached (SCM_RIGHTS). The answer comes on
// the report descriptor, never on the socket, so concurrent starts need no
// matching: the host writes {pid, kForked} once it has forked, the keeper
// {pid, 0 or errno} once it has started the command (or failed to), each an
// 8-byte record in one write. A host that cannot fork writes {0, errno}.
// No state; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orch::engine::keeper_host {

inline constexpr const char* kHostFlag = "--host";
// The host's descriptors besides 0-2: the lifeline (as a keeper's), the socket.
inline constexpr int kHostLifelineFd = 3;
inline constexpr int kHostSocketFd = 4;
// The host starts with a blank argument of this size, so that a forked
// keeper can write its own command line over the host's (a new server finds
// surviving keepers by their /proc cmdline); a longer one is spawned instead.
inline constexpr std::size_t kArgAreaBytes = 32 * 1024;
inline constexpr std::size_t kMaxRequestBytes = 64 * 1024;

// The descriptors attached to a request, in this order.
enum SentFd : int {
  kSentStdin,       // the command's stdin
  kSentStdout,      // the stdout pipe's write end
  kSentStderr,      // the stderr pipe's write end
  kSentStdoutRead,  // the pipes' read ends, drained by the keeper once orphaned
  kSentStderrRead,
  kSentReport,      // the report pipe's write end
  kSentFds,
};

// One record on the report pipe.
struct Report {
  std::int32_t pid = 0;
  std::int32_t err = 0;  // kForked, 0 (the command runs) or an errno
};
inline constexpr std::int32_t kForked = -1;

struct Request {
  std::vector<std::string> keeper_argv;  // keeper_command_line()
  std::vector<std::string> env;          // the command's, "KEY=value"
  std::string cwd;                       // empty: the host's
};

// "<argc>\0<envc>\0<cwd>\0<argv...>\0<env...>\0"
std::string encode_request(const Request& request);
// nullopt for anything encode_request() did not build.
std::optional<Request> decode_request(std::string_view bytes);
// The size of a command line in the argument area: each argument and its NUL.
std::size_t command_line_bytes(const std::vector<std::string>& argv);

}  // namespace orch::engine::keeper_host
