// cancelTask: cancel one task by id, or every live task (optionally by tag).
// Running tasks get SIGTERM to their whole process group, then SIGKILL after
// the grace period (SPEC §3).
#pragma once

#include "engine/engine.h"
#include "tools/tool.h"

namespace orch::tools {

Tool make_cancel_task_tool(engine::Engine& engine);

}  // namespace orch::tools
