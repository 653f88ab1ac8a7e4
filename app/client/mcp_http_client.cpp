#include "app/client/mcp_http_client.h"

#include <sstream>

#include "transport/http_client.h"

namespace orch::app::client {

using nlohmann::json;

namespace {

constexpr const char* kProtocolVersion = "2025-11-25";

// getResult may hold a request for up to 50 s; leave room above that.
constexpr std::chrono::seconds kReadTimeout{75};

std::string error_text(const std::string& body) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    return parsed["error"].value("message", body);
  }
  return body.substr(0, 300);
}

}  // namespace

std::vector<json> parse_sse(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  std::string line, data;
  auto flush = [&] {
    if (data.empty()) return;
    json message = json::parse(data, nullptr, false);
    if (!message.is_discarded()) out.push_back(std::move(message));
    data.clear();
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      flush();
    } else if (line.rfind("data:", 0) == 0) {
      std::string value = line.substr(5);
      if (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (!data.empty()) data += '\n';
      data += value;
    }
  }
  flush();
  return out;
}

struct McpHttpClient::Impl {
  std::string base_url;
  std::string token;
  std::string token_origin;  // where the token came from, for the 401 message
  Result<std::unique_ptr<transport::HttpClient>> http;
  std::string session_id;
  std::int64_t next_id = 0;

  Impl(std::string url, std::string t, std::string origin)
      : base_url(std::move(url)),
        token(std::move(t)),
        token_origin(std::move(origin)),
        http(transport::HttpClient::open(base_url, {.connect_timeout = std::chrono::seconds(5),
                                                    .read_timeout = kReadTimeout,
                                                    .keep_alive = true})) {}

  transport::HttpHeaders headers() const {
    transport::HttpHeaders h{{"Accept", "application/json, text/event-stream"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    if (!session_id.empty()) {
      h.emplace_back("Mcp-Session-Id", session_id);
      h.emplace_back("MCP-Protocol-Version", kProtocolVersion);
    }
    return h;
  }

  Result<transport::HttpReply> post(const json& message) {
    if (!http) return http.error();
    return (*http)->post("/mcp", headers(), message.dump(), "application/json");
  }

  Error http_error(const Result<transport::HttpReply>& r) const {
    if (!r) {
      return make_error(ErrorCode::Unavailable, "cannot reach the server at " + base_url + " (" + r.error().message +
                                                    "); is `mcp-orchestrator --http` running?");
    }
    if (r->status == 401) {
      return make_error(ErrorCode::Forbidden,
                        "the server refused the token (" +
                            (token.empty() ? std::string("none was found") : "from " + token_origin) +
                            "); pass --token or check the server's http-token file");
    }
    return make_error(ErrorCode::Unavailable,
                      "the server answered HTTP " + std::to_string(r->status) + ": " + error_text(r->body));
  }
};

McpHttpClient::McpHttpClient(std::string base_url, std::string token, std::string token_origin)
    : impl_(std::make_unique<Impl>(std::move(base_url), std::move(token), std::move(token_origin))) {}

McpHttpClient::~McpHttpClient() {
  if (!impl_->session_id.empty() && impl_->http) (void)(*impl_->http)->del("/mcp", impl_->headers());
}

Result<json> McpHttpClient::request(const std::string& method, json params,
                                    const std::function<void(const json&)>& on_progress) {
  Impl& im = *impl_;
  const std::int64_t id = ++im.next_id;
  json message{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
  auto r = im.post(message);
  if (!r || r->status != 200) return im.http_error(r);
  if (method == "initialize") {
    im.session_id = r->header("Mcp-Session-Id");
    if (im.session_id.empty()) return make_error(ErrorCode::Internal, "the server gave no Mcp-Session-Id");
  }
  std::vector<json> messages;
  if (r->header("Content-Type").rfind("text/event-stream", 0) == 0) {
    messages = parse_sse(r->body);
  } else {
    messages.push_back(json::parse(r->body, nullptr, false));
  }
  for (const json& m : messages) {
    if (!m.is_object()) continue;
    if (m.value("method", "") == "notifications/progress" && on_progress) on_progress(m.value("params", json()));
    if (m.contains("id") && m["id"] == id) {
      if (m.contains("error")) {
        return make_error(ErrorCode::InvalidArgument, m["error"].value("message", m["error"].dump()));
      }
      return m.value("result", json::object());
    }
  }
  return make_error(ErrorCode::Internal, "the server's reply to " + method + " had no result");
}

Status McpHttpClient::connect() {
  json params{{"protocolVersion", kProtocolVersion},
              {"capabilities", json::object()},
              {"clientInfo", {{"name", "mcp-orchestrator-cli"}, {"version", ORCH_VERSION}}}};
  auto init = request("initialize", std::move(params), nullptr);
  if (!init) return init.error();
  json note{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}};
  auto r = impl_->post(note);
  if (!r || r->status != 202) return impl_->http_error(r);
  return {};
}

Result<json> McpHttpClient::call_tool(const std::string& name, const json& arguments,
                                      const std::function<void(const json&)>& on_progress) {
  json params{{"name", name}, {"arguments", arguments}};
  if (on_progress) params["_meta"] = {{"progressToken", "cli-" + std::to_string(impl_->next_id + 1)}};
  return request("tools/call", std::move(params), on_progress);
}

}  // namespace orch::app::client
