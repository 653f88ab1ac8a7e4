// runTask: run one command to its end as an MCP native task (taskSupport
// "required"). It takes submitTask's arguments and its result is getResult's
// answer for the ended task, so a tasks-aware client (the Inspector, the TS
// SDK's callToolStream) gets the outcome without polling tools itself.
//
// Called without a task (a revision before 2025-11-25 has no native tasks, so
// the MCP layer cannot insist), it queues the task and waits up to
// kMaxWaitSec, then answers like getResult: the outcome, or status running and
// the output so far.
#pragma once

#include "tools/tool.h"

namespace orch::tools {

// `submit` and `get_result` are the registry's own tools; they must outlive
// the returned tool.
Tool make_run_task_tool(const Tool& submit, const Tool& get_result);

}  // namespace orch::tools
