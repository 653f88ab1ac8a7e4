// getStatus: one task, several tasks, or the orchestrator itself (SPEC §3).
#pragma once

#include <string>

#include "engine/engine.h"
#include "tools/tool.h"

namespace orch::tools {

Tool make_get_status_tool(engine::Engine& engine, std::string version);

}  // namespace orch::tools
