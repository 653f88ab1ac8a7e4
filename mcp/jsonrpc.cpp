#include "mcp/jsonrpc.h"

#include <utility>

#include "common/json_text.h"

namespace orch::mcp {
namespace {

using nlohmann::json;

Invalid invalid(json id, int code, std::string message) {
  return Invalid{std::move(id), code, std::move(message)};
}

// Reads "params": absent means {}; MCP params are always objects.
std::optional<Invalid> read_params(const json& message, const json& reply_id, json& params) {
  auto it = message.find("params");
  if (it == message.end()) {
    params = json::object();
    return std::nullopt;
  }
  if (it->is_object()) {
    params = *it;
    return std::nullopt;
  }
  if (it->is_array()) {
    return invalid(reply_id, kInvalidParams,
                   "params must be an object with named members, not an array");
  }
  return invalid(reply_id, kInvalidRequest, "params must be an object");
}

Message read_response(const json& message, json reply_id) {
  auto id = message.find("id");
  auto result = message.find("result");
  auto error = message.find("error");
  if (id == message.end() || !(id->is_null() || is_valid_request_id(*id))) {
    return invalid(json(), kInvalidRequest, "a response needs an id that is a string or an integer");
  }
  if (result != message.end() && error != message.end()) {
    return invalid(std::move(reply_id), kInvalidRequest,
                   "a response has either result or error, not both");
  }
  if (result != message.end()) return Response{*id, *result, std::nullopt};
  auto code = error->find("code");
  auto text = error->find("message");
  if (!error->is_object() || code == error->end() || !code->is_number_integer() ||
      text == error->end() || !text->is_string()) {
    return invalid(std::move(reply_id), kInvalidRequest,
                   "error must be an object with an integer code and a string message");
  }
  return Response{*id, std::nullopt, *error};
}

}  // namespace

bool is_valid_request_id(const json& id) { return id.is_string() || id.is_number_integer(); }

std::string to_string(const RequestId& id) { return serialize(id); }

Message parse_message(std::string_view text) {
  if (json_nests_deeper_than(text, kMaxJsonDepth)) {
    return invalid(json(), kInvalidRequest,
                   "the message nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  json message;
  try {
    message = json::parse(text);
  } catch (const json::parse_error& e) {
    return invalid(json(), kParseError,
                   "Parse error: invalid JSON at byte " + std::to_string(e.byte));
  } catch (const json::exception& e) {
    return invalid(json(), kParseError, std::string("Parse error: ") + e.what());
  }

  if (message.is_array()) {
    return invalid(json(), kInvalidRequest,
                   "batch requests are not supported: send one JSON-RPC message at a time");
  }
  if (!message.is_object()) {
    return invalid(json(), kInvalidRequest, "a JSON-RPC message must be a JSON object");
  }

  auto id = message.find("id");
  const bool has_id = id != message.end();
  json reply_id = has_id && is_valid_request_id(*id) ? *id : json();

  auto version = message.find("jsonrpc");
  if (version == message.end() || !version->is_string() || version->get_ref<const std::string&>() != "2.0") {
    return invalid(std::move(reply_id), kInvalidRequest, R"(jsonrpc must be exactly "2.0")");
  }

  auto method = message.find("method");
  const bool has_result = message.contains("result") || message.contains("error");
  if (method == message.end()) {
    if (has_result) return read_response(message, std::move(reply_id));
    return invalid(std::move(reply_id), kInvalidRequest,
                   "the message has no method (nor result or error)");
  }
  if (has_result) {
    return invalid(std::move(reply_id), kInvalidRequest,
                   "a message cannot have both method and result or error");
  }
  if (!method->is_string()) {
    return invalid(std::move(reply_id), kInvalidRequest, "method must be a string");
  }
  if (has_id && !is_valid_request_id(*id)) {
    return invalid(json(), kInvalidRequest, "id must be a string or an integer");
  }
  json params;
  if (auto bad = read_params(message, reply_id, params)) return std::move(*bad);
  if (has_id) return Request{*id, method->get<std::string>(), std::move(params)};
  return Notification{method->get<std::string>(), std::move(params)};
}

json result_response(const RequestId& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json error_response(const RequestId& id, int code, std::string_view message,
                    std::optional<json> data) {
  json error{{"code", code}, {"message", message}};
  if (data) error["data"] = std::move(*data);
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

json notification_message(std::string_view method, json params) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
}

std::string serialize(const json& message) {
  return json_text(message);
}

}  // namespace orch::mcp
