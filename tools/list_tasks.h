// listTasks: tasks newest first, filtered by status, tag and name, with
// cursor pagination (SPEC §3).
#pragma once

#include "engine/engine.h"
#include "tools/tool.h"

namespace orch::tools {

Tool make_list_tasks_tool(engine::Engine& engine);

}  // namespace orch::tools
