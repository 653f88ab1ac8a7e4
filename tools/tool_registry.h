// ToolRegistry: the five task tools over one Engine, as the MCP layer's
// ToolProvider (SPEC §3). Thread-safe: the tools hold no state of their own
// besides the engine reference, and the Engine is thread-safe. The engine
// must outlive the registry.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "mcp/tool_provider.h"
#include "tools/submit_task.h"
#include "tools/tool.h"

namespace orch::tools {

struct ToolRegistryOptions {
  ProfileResolver profiles;  // empty: no profiles configured
  std::string version;       // for getStatus; empty: the build's version
};

class ToolRegistry final : public mcp::ToolProvider {
 public:
  explicit ToolRegistry(engine::Engine& engine, ToolRegistryOptions options = {});
  // runTask refers to its sibling tools: a copy would point into the original.
  ToolRegistry(const ToolRegistry&) = delete;
  ToolRegistry& operator=(const ToolRegistry&) = delete;

  // [Tool objects] in a stable order: submitTask, getStatus, getResult,
  // cancelTask, listTasks, runTask.
  json list_tools() const override;
  // A CallToolResult, or nullopt for an unknown name. Arguments that are
  // absent or null read as {}; anything else that is not an object is an
  // isError result. Library exceptions become isError results here.
  std::optional<json> call_tool(const std::string& name, const json& arguments,
                                mcp::ToolCallContext& ctx) override;
  // submitTask in a batch is answered at end_batch(), when one commit has
  // stored the batch's submits; the other tools answer at once.
  void call_tool_in_batch(const std::string& name, const json& arguments, mcp::ToolCallContext& ctx,
                          ToolReply reply) override;
  void end_batch() override;
  bool answers_at_once(const std::string& name) const override;
  std::string task_support(const std::string& name) const override;

  const Tool* find(std::string_view name) const;
  const std::vector<Tool>& tools() const { return tools_; }

  // The MCP `instructions` text: how a model should use these tools.
  static std::string server_instructions();

 private:
  // Null when the arguments are fine; else the isError result they earn.
  std::optional<json> refuse_arguments(const std::string& name, const json& arguments) const;

  engine::Engine& engine_;
  std::vector<Tool> tools_;
};

}  // namespace orch::tools
