// What the MCP fuzz targets call into: the server the binary builds (tools,
// native tasks, resources, prompts) over a real Engine in a temporary state
// directory, made safe to fuzz:
//   - no task ever starts: the memory floor is out of reach, so a fuzzed
//     command is checked and queued but never run;
//   - so no long-poll can hold the fuzzer either: getResult's waitSec and
//     tasks/result wait on a task id, and ids are random (130 bits), which
//     no mutation guesses; libFuzzer's -timeout catches one that would;
//   - requests run inline on the calling thread, so an input's replies are
//     all out when handle() returns.
// One fixture per process, made on first use, removed at exit.
#pragma once

#include <string_view>

#include "mcp/server.h"

namespace orch::fuzz {

mcp::Server& mcp_server();

// Aborts (a fuzz finding) unless `message` is one line of valid JSON: what
// every transport frames and every client parses.
void check_outgoing(std::string_view message);

}  // namespace orch::fuzz
