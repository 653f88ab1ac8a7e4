// The two modes of the mcp-orchestrator-keeper program: one task's keeper
// (engine/task_keeper_main.cpp) and the keeper host that forks them
// (engine/keeper_host_main.cpp, protocol in engine/keeper_host_protocol.h).
#pragma once

namespace orch::engine {

// Runs one task's keeper from its command line (keeper_command_line()), with
// the descriptors of task_keeper.h in place; returns or exits with the
// command's end.
int run_keeper(int argc, char** argv);

// Serves keeper_host requests on kHostSocketFd until the server closes it.
// `argv` is the host's own: its argument area is where each forked keeper
// writes its command line.
int serve_as_keeper_host(int argc, char** argv);

}  // namespace orch::engine
