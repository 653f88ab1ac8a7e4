// Restart in place (SPEC §4 Health, docs/RESTART.md): the server execs its
// own binary (/proc/self/exe) with the same pid and arguments, and the new
// image goes on where the old one stopped. This unit holds what crosses the
// exec and the exec itself; app.cpp decides when, and drains the layers first.
//
// What crosses (HandOver):
//   - restarts: count, last reason and time, the automatic ones' times (for
//     the rate limit), and when exec was called (exec → serving time);
//   - the state directory in use (it may be an instance slot);
//   - stdio: the bytes read from stdin but not yet handled, in a memfd, and
//     the stdio session's agreed state (protocol version, initialized, log
//     level); fds 0-2 themselves simply stay open;
//   - HTTP: the listening socket (still listening, its queue intact) and the
//     open sessions (ids and their agreed state);
//   - the running task processes: pids, their pipe read ends and pidfds,
//     and how far each spool got (engine::RunningProcess).
// The HandOver is JSON in a memfd whose number is in ORCH_RESTART_STATE.
// Every other descriptor is closed by the exec (close_range CLOEXEC).
//
// Not thread-safe; the app's main thread uses it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/engine.h"
#include "mcp/server.h"
#include "mcp/streamable_http.h"

namespace orch::app::restart {

inline constexpr const char* kStateEnv = "ORCH_RESTART_STATE";

struct HandOver {
  engine::RestartInfo restarts;
  std::vector<std::int64_t> automatic_ms;  // automatic restarts inside the rate-limit window
  std::int64_t exec_at_ns = 0;             // CLOCK_MONOTONIC just before execve
  std::string state_dir;
  bool stdio = false;
  int stdin_fd = -1;  // memfd: stdin bytes read and not handled; -1: none
  mcp::SessionState stdio_session;
  int listen_fd = -1;  // -1: no HTTP
  std::vector<mcp::HttpSessionState> http_sessions;
  std::vector<engine::RunningProcess> processes;
  engine::Lifeline lifeline;  // the task keepers' lifeline pipe; -1s without keepers
};

std::string encode(const HandOver& h);
// InvalidArgument with what is wrong when the text is not a hand-over of this version.
Result<HandOver> decode(std::string_view text);

// A memfd (close-on-exec) holding `bytes`, positioned at 0.
Result<int> make_memfd(const char* name, std::string_view bytes);
// All of a file's bytes from offset 0; closes the fd.
Result<std::string> read_and_close(int fd);

// In a new image: the hand-over that ORCH_RESTART_STATE names (the variable
// is then removed and the memfd closed), or nullopt on an ordinary start.
Result<std::optional<HandOver>> take_from_environment();

// The descriptors that must stay open across the exec.
std::vector<int> fds_to_keep(const HandOver& h);

// Checks that an exec can work (the binary is readable, a memfd can be made)
// before anything is drained.
Status preflight();

// Writes the hand-over to a memfd, makes every descriptor from 3 up
// close-on-exec except fds_to_keep(h) and the memfd, and execs
// /proc/self/exe with this process's arguments and environment (plus
// ORCH_RESTART_STATE). Returns only when the exec failed, with why.
Error exec_self(HandOver& h);

// CLOCK_MONOTONIC in ns (exec → serving is measured across images with it).
std::int64_t monotonic_ns();

}  // namespace orch::app::restart
