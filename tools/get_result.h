// getResult: a task's status and a window of its output, optionally after
// long-polling until it ends, with progress notifications while it waits
// (SPEC §3).
#pragma once

#include <chrono>

#include "engine/engine.h"
#include "tools/tool.h"

namespace orch::tools {

// The longest wait one call may ask for: well below editors' 60 s tool
// timeouts, so a long wait is several calls.
inline constexpr int kMaxWaitSec = 50;

// How often a long-poll wakes to send a progress heartbeat when nothing
// changed (keeps editors' idle timers alive).
inline constexpr std::chrono::seconds kWaitSlice{5};

Tool make_get_result_tool(engine::Engine& engine);

}  // namespace orch::tools
