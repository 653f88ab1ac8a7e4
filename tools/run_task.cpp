#include "tools/run_task.h"

#include "tools/get_result.h"

namespace orch::tools {

Tool make_run_task_tool(const Tool& submit, const Tool& get_result) {
  Tool tool;
  tool.name = "runTask";
  tool.title = "Run a command as a native MCP task";
  tool.description =
      "Run one command to its end as an MCP native task: the call returns a task at once and the "
      "client fetches the outcome (status, exit code, the tail of stdout and stderr) when it ends. "
      "Takes the same arguments as submitTask. Needs a client with MCP tasks (2025-11-25); "
      "otherwise use submitTask, then getResult with waitSec.";
  tool.input_schema = submit.input_schema;
  tool.output_schema = get_result.output_schema;
  tool.annotations = submit.annotations;
  tool.task_support = kTaskRequired;
  tool.call = [&submit, &get_result](const json& args, mcp::ToolCallContext& ctx) -> json {
    json queued = submit.call(args, ctx);
    if (queued.value("isError", false)) return queued;
    const json& id = queued.at("structuredContent").at("taskId");
    json outcome = get_result.call({{"taskId", id}, {"waitSec", kMaxWaitSec}, {"tail", true}}, ctx);
    if (outcome.value("isError", false)) return outcome;
    const std::string status = outcome.at("structuredContent").value("status", "");
    if (status == "failed" || status == "cancelled") outcome["isError"] = true;
    return outcome;
  };
  return tool;
}

}  // namespace orch::tools
