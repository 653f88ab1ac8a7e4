// Strict JSON-RPC 2.0 codec (MCP-NOTES §1, §2): classifies one received text
// and builds the messages we send. Pure functions; thread-safe; never throws.
//
// Rules for received text:
//   - invalid JSON                          -> Invalid -32700, id null
//   - nesting deeper than kMaxJsonDepth     -> Invalid -32600, id null (protects the stack)
//   - a JSON array (a batch)                -> Invalid -32600 "batch requests are not supported", id null
//   - not an object                         -> Invalid -32600, id null
//   - "jsonrpc" not exactly "2.0"           -> Invalid -32600
//   - "method" present but not a string     -> Invalid -32600
//   - "method" together with result/error   -> Invalid -32600
//   - request "id" not a string or integer  -> Invalid -32600, id null (null, 1.5, true, {} ...)
//   - "params" an array                     -> Invalid -32602: JSON-RPC allows positional params,
//                                              but every MCP method takes an object
//   - "params" any other non-object         -> Invalid -32600 (JSON-RPC requires a structured value)
//   - a response (result or error, no method) with a bad id, both result and
//     error, or an error that is not {code: integer, message: string} -> Invalid -32600
// An Invalid carries the id to answer with: the message's id when it could be
// read as a string or integer, else null. Every Invalid is meant to be
// answered, even one that looked like a notification: a message we cannot
// classify is not a valid notification.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace orch::mcp {

// JSON-RPC error codes (MCP-NOTES §2).
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;

inline constexpr std::size_t kMaxJsonDepth = 128;

// A request id is a JSON string or integer; null only in replies to messages
// whose id could not be read.
using RequestId = nlohmann::json;

struct Request {
  RequestId id;
  std::string method;
  nlohmann::json params;  // always an object ({} when absent)
};

struct Notification {
  std::string method;
  nlohmann::json params;  // always an object ({} when absent)
};

// A response from the peer to a request we sent. Exactly one of result and
// error is set; an error is an object with an integer code and a string message.
struct Response {
  RequestId id;  // null allowed: the peer could not read our request's id
  std::optional<nlohmann::json> result;
  std::optional<nlohmann::json> error;
};

// A text that cannot be processed, with the error reply it deserves.
struct Invalid {
  RequestId id;  // string, integer, or null
  int code = kInvalidRequest;
  std::string message;
};

using Message = std::variant<Request, Notification, Response, Invalid>;

Message parse_message(std::string_view text);

// True for a string or an integer (signed or unsigned), the legal request ids.
bool is_valid_request_id(const nlohmann::json& id);

// The id as it appears on the wire, for log lines and error messages.
std::string to_string(const RequestId& id);

// {"jsonrpc":"2.0","id":id,"result":result}
nlohmann::json result_response(const RequestId& id, nlohmann::json result);
// {"jsonrpc":"2.0","id":id,"error":{"code","message","data"?}}
nlohmann::json error_response(const RequestId& id, int code, std::string_view message,
                              std::optional<nlohmann::json> data = std::nullopt);
// {"jsonrpc":"2.0","method":method,"params":params}
nlohmann::json notification_message(std::string_view method, nlohmann::json params);

// Compact single-line JSON. Invalid UTF-8 in strings becomes U+FFFD instead of
// throwing, and control characters are escaped, so the text never holds a raw
// newline and can be framed by a line.
std::string serialize(const nlohmann::json& message);

}  // namespace orch::mcp
