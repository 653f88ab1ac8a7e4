#include "app/node_link.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <climits>
#include <initializer_list>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/json_text.h"
#include "transport/http_client.h"

namespace orch::app {

namespace {

using nlohmann::json;
using transport::Access;
using transport::HttpRequest;
using transport::HttpResponse;

constexpr std::size_t kMaxTaskIdBytes = 256;
// A full window in base64 plus the JSON around it, with room to spare: a
// reply past this is not one of ours, and is not parsed.
constexpr std::size_t kMaxReplyBytes = 4 * kMaxNodeWindowBytes;
constexpr std::chrono::seconds kNodeTimeout{5};

HttpResponse error_reply(int status, const std::string& message) {
  return HttpResponse::json(status, json_text(json{{"error", sanitize_utf8(message)}}));
}

HttpResponse engine_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::InvalidArgument: return error_reply(400, e.message);
    case ErrorCode::NotFound: return error_reply(404, e.message);
    case ErrorCode::Unavailable: return error_reply(503, e.message);
    default: return error_reply(500, e.message);
  }
}

// --- server side --------------------------------------------------------------

Status only_keys(const HttpRequest& req, std::initializer_list<std::string_view> keys, const char* usage) {
  for (const auto& [key, value] : req.query) {
    bool known = false;
    for (auto k : keys) known = known || key == k;
    if (!known) {
      return make_error(ErrorCode::InvalidArgument,
                        "unknown query parameter '" + sanitize_utf8(key.substr(0, 40)) + "'; use " + usage);
    }
  }
  return {};
}

Result<engine::TaskId> task_param(const HttpRequest& req) {
  auto it = req.query.find("task");
  if (it == req.query.end() || it->second.empty()) {
    return make_error(ErrorCode::InvalidArgument, "task is required: the id of the task to read");
  }
  if (it->second.size() > kMaxTaskIdBytes) {
    return make_error(ErrorCode::InvalidArgument,
                      "task must be a task id of at most " + std::to_string(kMaxTaskIdBytes) + " bytes");
  }
  return it->second;
}

Result<std::uint64_t> number_param(const HttpRequest& req, const std::string& key, std::uint64_t fallback,
                                   std::uint64_t min, std::uint64_t max) {
  auto it = req.query.find(key);
  if (it == req.query.end()) return fallback;
  const std::string& text = it->second;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    return make_error(ErrorCode::InvalidArgument, key + " must be a whole number from " + std::to_string(min) +
                                                      " to " + std::to_string(max) + " (got '" +
                                                      sanitize_utf8(text.substr(0, 40)) + "')");
  }
  return value;
}

struct OutputQuery {
  engine::TaskId id;
  engine::StreamKind stream = engine::StreamKind::Stdout;
  engine::ReadRequest read;
};

Result<OutputQuery> parse_output_query(const HttpRequest& req) {
  constexpr const char* kUsage = "task=ID, stream=stdout|stderr, offset=N, maxBytes=N and tail=0|1";
  if (auto known = only_keys(req, {"task", "stream", "offset", "maxBytes", "tail"}, kUsage); !known) {
    return known.error();
  }
  OutputQuery q;
  auto id = task_param(req);
  if (!id) return id.error();
  q.id = std::move(*id);
  if (auto it = req.query.find("stream"); it != req.query.end()) {
    if (it->second == "stderr") {
      q.stream = engine::StreamKind::Stderr;
    } else if (it->second != "stdout") {
      return make_error(ErrorCode::InvalidArgument,
                        "stream must be stdout or stderr (got '" + sanitize_utf8(it->second.substr(0, 40)) + "')");
    }
  }
  auto offset = number_param(req, "offset", 0, 0, UINT64_MAX / 2);
  if (!offset) return offset.error();
  auto max_bytes = number_param(req, "maxBytes", engine::ReadRequest{}.max_bytes, 1, kMaxNodeWindowBytes);
  if (!max_bytes) return max_bytes.error();
  auto tail = number_param(req, "tail", 0, 0, 1);
  if (!tail) return make_error(ErrorCode::InvalidArgument, "tail must be 0 or 1");
  q.read.offset = *offset;
  q.read.max_bytes = *max_bytes;
  q.read.tail = *tail == 1;
  return q;
}

HttpResponse serve_output(const NodeReads& reads, const HttpRequest& req) {
  auto q = parse_output_query(req);
  if (!q) return engine_error(q.error());
  auto window = reads.output(q->id, q->stream, q->read);
  if (!window) return engine_error(window.error());
  json body{{"data", base64_encode(window->data)},
            {"offset", window->offset},
            {"nextOffset", window->next_offset},
            {"fileBytes", window->file_bytes},
            {"more", window->more}};
  return HttpResponse::json(200, json_text(body));
}

HttpResponse serve_result(const NodeReads& reads, const HttpRequest& req) {
  if (auto known = only_keys(req, {"task"}, "task=ID"); !known) return engine_error(known.error());
  auto id = task_param(req);
  if (!id) return engine_error(id.error());
  auto result = reads.result(*id);
  if (!result) return engine_error(result.error());
  json body{{"result", nullptr}};
  if (*result) {
    // The worker's result is JSON text already checked when it arrived; it
    // travels as JSON, not as a string, so a reader sees what getResult shows.
    json parsed = json::parse(**result, nullptr, false);
    if (parsed.is_discarded()) return error_reply(500, "the stored result of task " + *id + " is not JSON");
    body["result"] = std::move(parsed);
  }
  return HttpResponse::json(200, json_text(body));
}

// --- client side --------------------------------------------------------------

bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (unreserved(c)) {
      out += c;
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

std::string where(const engine::NodeInfo& node) { return "node " + node.name + " (" + node.url + ")"; }

// GET `path` on the node; the JSON object it answered with 200, or the error
// its status means.
Result<json> node_get(const engine::NodeInfo& node, const std::string& path) {
  if (node.url.empty()) {
    return make_error(ErrorCode::Unavailable,
                      "node " + node.name + " serves no HTTP (start it with --http), so what it ran cannot be read "
                      "from here; ask that node");
  }
  auto client = transport::HttpClient::open(
      node.url, {.connect_timeout = kNodeTimeout, .read_timeout = kNodeTimeout, .keep_alive = false});
  if (!client) return make_error(ErrorCode::Unavailable, where(node) + ": " + client.error().message);
  transport::HttpHeaders headers;
  if (!node.token.empty()) headers.emplace_back("Authorization", "Bearer " + node.token);
  auto reply = (*client)->get(path, headers);
  if (!reply) {
    return make_error(ErrorCode::Unavailable, where(node) + " cannot be reached: " + reply.error().message +
                                                  "; it may be down (its tasks are given to other nodes once its "
                                                  "lease runs out)");
  }
  if (reply->body.size() > kMaxReplyBytes) {
    return make_error(ErrorCode::Unavailable, where(node) + " answered " + std::to_string(reply->body.size()) +
                                                  " bytes, more than a node ever sends");
  }
  json body = json::parse(reply->body, nullptr, false);
  std::string message;
  if (body.is_object()) {
    if (auto e = body.find("error"); e != body.end()) {
      // Ours ({"error": "…"}) or the HTTP server's own ({"error": {"message": "…"}}).
      if (e->is_string()) message = e->get<std::string>();
      if (e->is_object() && e->contains("message") && e->at("message").is_string()) {
        message = e->at("message").get<std::string>();
      }
    }
  }
  const int status = reply->status;
  if (status == 200 && body.is_object()) return body;
  if (message.empty()) message = "HTTP " + std::to_string(status);
  if (status == 404) return make_error(ErrorCode::NotFound, where(node) + ": " + message);
  if (status == 401 || status == 403) {
    return make_error(ErrorCode::Unavailable, where(node) + " refused the token it advertised (HTTP " +
                                                  std::to_string(status) + "): " + message);
  }
  if (status == 200) return make_error(ErrorCode::Unavailable, where(node) + " answered something that is not JSON");
  return make_error(ErrorCode::Unavailable,
                    where(node) + " answered HTTP " + std::to_string(status) + ": " + message);
}

Result<std::uint64_t> count_field(const engine::NodeInfo& node, const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_number_unsigned()) {
    return make_error(ErrorCode::Unavailable,
                      where(node) + " answered an output window without a whole number '" + key + "'");
  }
  return it->get<std::uint64_t>();
}

}  // namespace

void add_node_routes(transport::HttpServer& http, NodeReads reads) {
  http.route("GET", "/nodes/output", Access::Token,
             [reads](const HttpRequest& req) { return serve_output(reads, req); });
  http.route("GET", "/nodes/result", Access::Token,
             [reads](const HttpRequest& req) { return serve_result(reads, req); });
}

std::string advertised_url(const std::string& base_url, const std::string& host_name) {
  for (std::string_view wildcard : {"http://0.0.0.0:", "http://[::]:"}) {
    if (base_url.rfind(wildcard, 0) == 0) {
      return "http://" + host_name + ":" + base_url.substr(wildcard.size());
    }
  }
  return base_url;
}

std::string this_host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

Result<engine::OutputWindow> fetch_node_output(const engine::NodeInfo& node, const engine::TaskId& id,
                                               engine::StreamKind stream, const engine::ReadRequest& req) {
  const std::uint64_t max_bytes = std::min(std::max<std::uint64_t>(req.max_bytes, 1), kMaxNodeWindowBytes);
  const std::string path = "/nodes/output?task=" + percent_encode(id) + "&stream=" + engine::to_string(stream) +
                           "&offset=" + std::to_string(req.offset) + "&maxBytes=" + std::to_string(max_bytes) +
                           "&tail=" + (req.tail ? "1" : "0");
  auto body = node_get(node, path);
  if (!body) return body.error();
  auto data = body->find("data");
  std::optional<std::string> bytes;
  if (data != body->end() && data->is_string()) bytes = base64_decode(data->get_ref<const std::string&>());
  if (!bytes) return make_error(ErrorCode::Unavailable, where(node) + " answered an output window without base64 data");
  auto more = body->find("more");
  if (more == body->end() || !more->is_boolean()) {
    return make_error(ErrorCode::Unavailable, where(node) + " answered an output window without 'more'");
  }
  engine::OutputWindow window;
  window.data = std::move(*bytes);
  auto offset = count_field(node, *body, "offset");
  if (!offset) return offset.error();
  auto next = count_field(node, *body, "nextOffset");
  if (!next) return next.error();
  auto file_bytes = count_field(node, *body, "fileBytes");
  if (!file_bytes) return file_bytes.error();
  window.offset = *offset;
  window.next_offset = *next;
  window.file_bytes = *file_bytes;
  window.more = more->get<bool>();
  if (window.next_offset < window.offset || window.next_offset - window.offset != window.data.size()) {
    return make_error(ErrorCode::Unavailable, where(node) + " answered an output window whose offsets do not match "
                                              "its data");
  }
  return window;
}

Result<std::optional<std::string>> fetch_node_result(const engine::NodeInfo& node, const engine::TaskId& id) {
  auto body = node_get(node, "/nodes/result?task=" + percent_encode(id));
  if (!body) return body.error();
  auto result = body->find("result");
  if (result == body->end()) return make_error(ErrorCode::Unavailable, where(node) + " answered without 'result'");
  if (result->is_null()) return std::optional<std::string>();
  return std::optional<std::string>(json_text(*result));
}

}  // namespace orch::app
