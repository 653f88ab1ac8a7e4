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
};

}  // namespace orch::mcp
