// The JSON-RPC line codec (mcp/jsonrpc): any text classifies without throwing,
// and whatever we would answer serialises to one line of valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mcp/jsonrpc.h"

namespace {

using orch::mcp::Message;

// What the server sends must be framed by a newline and parse back.
void check_line(const nlohmann::json& message) {
  const std::string line = orch::mcp::serialize(message);
  if (line.find('\n') != std::string::npos) std::abort();
  if (!nlohmann::json::accept(line)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Message message = orch::mcp::parse_message(text);
  if (auto* request = std::get_if<orch::mcp::Request>(&message)) {
    if (!request->params.is_object() || !orch::mcp::is_valid_request_id(request->id)) std::abort();
    check_line(orch::mcp::result_response(request->id, request->params));
    check_line(orch::mcp::error_response(request->id, orch::mcp::kMethodNotFound, request->method));
  } else if (auto* note = std::get_if<orch::mcp::Notification>(&message)) {
    if (!note->params.is_object()) std::abort();
    check_line(orch::mcp::notification_message(note->method, note->params));
  } else if (auto* response = std::get_if<orch::mcp::Response>(&message)) {
    if (response->result.has_value() == response->error.has_value()) std::abort();
    (void)orch::mcp::to_string(response->id);
  } else if (auto* invalid = std::get_if<orch::mcp::Invalid>(&message)) {
    check_line(orch::mcp::error_response(invalid->id, invalid->code, invalid->message));
  }
  return 0;
}
