// The command-line client (SPEC §9): `mcp-orchestrator submit|status|result|
// cancel|list|logs …` talks to a running server over Streamable HTTP, as an
// MCP client calling the server's tools, so the server's rules apply
// unchanged.
//
// Finding the server: --url (or ORCH_URL), else the "url" in
// <state-dir>/http.json written by a server started with --http. The token:
// --token (or ORCH_TOKEN), else <state-dir>/http-token. --state-dir defaults
// to the server's default.
//
// Output: human tables by default, JSON with --json. `result --follow`
// streams the task's output as it is produced, with a progress bar on stderr
// when stderr is a terminal; `result --wait` exits with the task's exit code
// (or 1 when it failed without one, 130 when cancelled). Errors print one line
// to stderr and exit 2 (usage) or 1 (the server said no, or is unreachable).
#pragma once

#include <string_view>

namespace orch::app::client {

bool is_client_command(std::string_view word);

// argv[1] is the command. Returns the process exit code.
int run(int argc, char** argv);

}  // namespace orch::app::client
