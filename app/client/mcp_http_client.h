// McpHttpClient: the command-line client's side of Streamable HTTP. One MCP
// session with a running server: initialize, keep Mcp-Session-Id, call tools,
// end the session with DELETE. Replies may be JSON or SSE; progress
// notifications found in an SSE reply are handed to a callback.
//
// Errors are values with a message for the person at the terminal (server
// unreachable, token missing or wrong, the server refused the call). Not
// thread-safe: one command, one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace orch::app::client {

// The JSON-RPC messages in an SSE body (the "data:" lines of each event).
std::vector<nlohmann::json> parse_sse(const std::string& body);

class McpHttpClient {
 public:
  // `base_url` like "http://127.0.0.1:8765"; `token` may be empty.
  McpHttpClient(std::string base_url, std::string token, std::string token_origin);
  ~McpHttpClient();  // ends the session when one is open

  Status connect();
  // tools/call → the CallToolResult (isError results included).
  Result<nlohmann::json> call_tool(const std::string& name, const nlohmann::json& arguments,
                                   const std::function<void(const nlohmann::json&)>& on_progress = nullptr);

 private:
  Result<nlohmann::json> request(const std::string& method, nlohmann::json params,
                                 const std::function<void(const nlohmann::json&)>& on_progress);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::app::client
