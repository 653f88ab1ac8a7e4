// ToolProvider: what the MCP layer needs from whoever implements tools.
// mcp/ knows this interface only; tools/ implements it and app/ wires it in,
// so the arrow stays tools → mcp (STYLE.md, Layering).
#pragma once

#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>

namespace orch::mcp {

// Per-call services the MCP layer hands to a tool. Valid for the call only.
struct ToolCallContext {
  // Requested when the client cancels the request (notifications/cancelled)
  // or the session ends. Long waits must watch it.
  std::stop_token stop;
  // Sends notifications/progress for this request when it carried a
  // progressToken; a no-op otherwise. Values that do not increase are dropped
  // (the spec requires progress to increase). Thread-safe.
  std::function<void(double progress, std::optional<double> total, const std::string& message)>
      report_progress;
  bool has_progress_token = false;
};

class ToolProvider {
 public:
  virtual ~ToolProvider() = default;
  // The Tool objects for tools/list, in a stable order.
  virtual nlohmann::json list_tools() const = 0;
  // A CallToolResult, or nullopt when no tool has that name (the MCP layer
  // answers -32602 "Unknown tool"). Bad arguments are results with isError.
  virtual std::optional<nlohmann::json> call_tool(const std::string& name,
                                                  const nlohmann::json& arguments,
                                                  ToolCallContext& ctx) = 0;
  // The tool's execution.taskSupport ("forbidden", "optional", "required"),
  // or "" when no tool has that name. By default read from list_tools();
  // asked on every tools/call once tasks are negotiated, so a provider with
  // its tools at hand answers directly.
  virtual std::string task_support(const std::string& name) const;
  // True for a tool that answers at once from memory and never waits (a
  // status read): the MCP layer then runs its calls on the thread that read
  // the request, sparing the hop to a worker thread, as it does for ping.
  virtual bool answers_at_once(const std::string& name) const {
    (void)name;
    return false;
  }

  // A call to a tool that answers at once, made inside a batch: requests
  // read together, on the thread that read them (Session::handle_in_batch).
  // The provider may hold its reply back until end_batch(), so that a burst
  // of calls shares work (a burst of submits shares one store commit). By
  // default it answers at once. `reply` runs exactly once, with what
  // call_tool would have returned.
  using ToolReply = std::function<void(std::optional<nlohmann::json> result)>;
  virtual void call_tool_in_batch(const std::string& name, const nlohmann::json& arguments, ToolCallContext& ctx,
                                  ToolReply reply) {
    reply(call_tool(name, arguments, ctx));
  }
  // The batch has ended, on the thread that read it: every reply held back
  // is given now.
  virtual void end_batch() {}
};

}  // namespace orch::mcp
