// ResourceProvider and PromptProvider: what the MCP layer needs from whoever
// serves resources and prompts (MCP-NOTES §10; prompts like tools). mcp/ knows
// these interfaces; tools/ implements them and app/ wires them in.
//
// Errors are Result errors: NotFound (no such resource or prompt; the MCP
// layer answers -32002 with data.uri for a resource in the legacy era, -32602
// for a prompt) and InvalidArgument (a malformed URI or bad arguments: -32602).
// Implementations are thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace orch::mcp {

struct ResourcePage {
  nlohmann::json resources = nlohmann::json::array();  // Resource objects
  std::optional<std::string> next_cursor;
};

// Told the URI of a resource whose content changed. May run on any thread;
// must be quick.
using ResourceUpdated = std::function<void(const std::string& uri)>;

class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;
  // Bad cursor: InvalidArgument.
  virtual Result<ResourcePage> list(const std::string& cursor) = 0;
  // ResourceTemplate objects.
  virtual nlohmann::json templates() = 0;
  // ReadResourceResult.contents for `uri`.
  virtual Result<nlohmann::json> read(const std::string& uri) = 0;
  // Whether `uri` names a resource that can be watched (for resources/subscribe).
  virtual Status check(const std::string& uri) = 0;
  // Where content changes are reported; set before the first session. Once
  // it returns, the previous callback is not running and will not run again
  // (the Server detaches with on_updated({}) when it goes).
  virtual void on_updated(ResourceUpdated updated) = 0;
};

class PromptProvider {
 public:
  virtual ~PromptProvider() = default;
  // Prompt objects {name, title, description, arguments}, in a stable order.
  virtual nlohmann::json list() = 0;
  // GetPromptResult {description, messages}. Unknown name: NotFound; a
  // missing required argument: InvalidArgument.
  virtual Result<nlohmann::json> get(const std::string& name, const nlohmann::json& arguments) = 0;
};

}  // namespace orch::mcp
