// The `claude mcp add …` and `claude mcp add-json …` command lines that
// register a Target with Claude Code, quoted for a POSIX shell. Pure;
// thread-safe.
//
// Over HTTP the header is single-quoted, so the shell leaves `${ORCH_TOKEN}`
// alone and Claude Code stores the reference, not the token, and expands it
// when it connects.
#pragma once

#include <string>

#include "app/install/registration.h"

namespace orch::app::install {

// 'it'\''s' style quoting; words made only of safe characters stay bare.
std::string shell_quote(const std::string& word);

// claude mcp add --scope user orchestrator -- /abs/mcp-orchestrator ARGS…
// claude mcp add --scope user --transport http orchestrator URL --header '…'
std::string claude_mcp_add(const Target& target, Scope scope);
// claude mcp add-json --scope user orchestrator '{"type":"stdio",…}'
std::string claude_mcp_add_json(const Target& target, Scope scope);

}  // namespace orch::app::install
