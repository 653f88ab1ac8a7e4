// The 2026-07-28 ("modern") era: stateless requests that carry their protocol
// version and client capabilities in params._meta (MCP-NOTES §3b, §5b, §9b).
// A dual-era server picks the era per request: an HTTP POST without
// Mcp-Session-Id that is not a legacy initialize (one without the modern
// _meta) is modern; everything in a session (initialize first) stays legacy
// and is untouched by this file. stdio serves the legacy era only.
//
// Checks, in this order, each answered with the request's id:
//   1. params._meta with io.modelcontextprotocol/protocolVersion (string) and
//      .../clientCapabilities (object)                  else -32602, HTTP 400
//   2. over HTTP: MCP-Protocol-Version = that version, Mcp-Method = method,
//      Mcp-Name = params.name|uri|taskId where the method has one
//      (=?base64?…?= values decoded first)             else -32020, HTTP 400
//   3. the version is 2026-07-28                       else -32022 {supported, requested}, 400
//   4. the method exists in this era                    else -32601, HTTP 404
//      (initialize, ping, logging/setLevel, resources/subscribe|unsubscribe,
//      tasks/list, tasks/result are legacy only)
//   5. tasks/* need the client to declare the Tasks extension
//                                                     else -32021 {requiredCapabilities}, 400
// Every result has resultType ("complete", or "task" for a task created by
// tools/call) and _meta["io.modelcontextprotocol/serverInfo"]; cacheable ones
// (server/discover, tools/list, resources/list, resources/templates/list,
// resources/read, prompts/list) have ttlMs and cacheScope. Change
// notifications go only on subscriptions/listen streams (with a ListenHub,
// mcp/subscriptions_listen.h; without one the method does not exist); no
// request gets progress or log messages: those that ask get their plain answer.
//
// Thread-safe; runs the request on the calling thread. The Server must
// outlive it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mcp/jsonrpc.h"
#include "mcp/server.h"
#include "transport/event_stream.h"

namespace orch::mcp {

inline constexpr std::string_view kModernProtocolVersion = "2026-07-28";
inline constexpr int kHeaderMismatch = -32020;
inline constexpr int kMissingRequiredClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;
inline constexpr const char* kTasksExtension = "io.modelcontextprotocol/tasks";

// The HTTP headers the modern era checks; absent for stdio.
struct ModernHeaders {
  std::string protocol_version;  // MCP-Protocol-Version
  std::string method;            // Mcp-Method
  std::string name;              // Mcp-Name
  bool has_name = false;
};

struct ModernReply {
  int http_status = 200;
  nlohmann::json message;  // the JSON-RPC response; null when `stream` answers
  std::shared_ptr<transport::EventStream> stream;  // subscriptions/listen: the SSE response
};

class ListenHub;

// A native task as this era and the Tasks extension show it (tasks/get,
// notifications/tasks), without the inlined result.
nlohmann::json modern_task_json(const NativeTask& task);

// params._meta carries io.modelcontextprotocol/protocolVersion: the request
// asks for the modern era, whatever its method.
bool is_modern_request(const nlohmann::json& params);

// "=?base64?<b64>?=" decoded, anything else as it is (MCP-NOTES §5b).
std::string decode_header_value(std::string_view value);

class ModernEra {
 public:
  // `auth_context` owns the native tasks modern requests create. `listen`
  // (may be null) serves subscriptions/listen and must outlive this.
  ModernEra(Server& server, std::string auth_context, ListenHub* listen = nullptr);

  ModernReply handle(const Request& request, const ModernHeaders* headers);

 private:
  nlohmann::json discover() const;
  nlohmann::json call_tool(const nlohmann::json& params, bool tasks_declared, RpcFault& fault);

  Server& server_;
  const std::string owner_;
  ListenHub* const listen_;
};

}  // namespace orch::mcp
