#include "tests/support/http_peer.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace orch::test {

using nlohmann::json;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string HttpReply::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

json HttpReply::json() const { return json::parse(body, nullptr, false); }

std::vector<nlohmann::json> HttpReply::sse_messages() const {
  std::vector<nlohmann::json> out;
  std::istringstream in(body);
  std::string line, data;
  auto flush = [&] {
    if (!data.empty()) out.push_back(json::parse(data, nullptr, false));
    data.clear();
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      flush();
    } else if (line.rfind("data:", 0) == 0) {
      std::string value = line.substr(5);
      if (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (!data.empty()) data += "\n";
      data += value;
    }
  }
  flush();
  return out;
}

HttpPeer::HttpPeer(std::string base_url, std::string token, std::chrono::milliseconds read_timeout)
    : base_url_(std::move(base_url)), token_(std::move(token)), read_timeout_(read_timeout) {}

int HttpPeer::port() const {
  auto colon = base_url_.rfind(':');
  return colon == std::string::npos ? 0 : std::stoi(base_url_.substr(colon + 1));
}

HttpReply HttpPeer::send(const std::string& method, const std::string& path, const std::string& body,
                         const Headers& headers, bool with_auth, const std::string& content_type) const {
  httplib::Client client(base_url_);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(read_timeout_);
  client.set_write_timeout(std::chrono::seconds(10));
  httplib::Headers h;
  for (const auto& [name, value] : headers) h.emplace(name, value);
  if (with_auth && !token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = h;
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body = body;
    if (!content_type.empty()) req.headers.emplace("Content-Type", content_type);
  }
  httplib::Result result = client.send(req);
  HttpReply reply;
  if (!result) {
    reply.error = httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.body = result->body;
  for (const auto& [name, value] : result->headers) reply.headers.emplace(lower(name), value);
  return reply;
}

HttpReply HttpPeer::get(const std::string& path, const Headers& headers, bool with_auth) const {
  return send("GET", path, "", headers, with_auth, "");
}

HttpReply HttpPeer::post(const std::string& path, const std::string& body, const Headers& headers,
                         bool with_auth, const std::string& content_type) const {
  return send("POST", path, body, headers, with_auth, content_type);
}

HttpReply HttpPeer::del(const std::string& path, const Headers& headers, bool with_auth) const {
  return send("DELETE", path, "", headers, with_auth, "");
}

Headers mcp_post_headers() { return {{"Accept", "application/json, text/event-stream"}}; }

McpHttpSession::McpHttpSession(const HttpPeer& peer) : peer_(peer) {}

Headers McpHttpSession::session_headers() const {
  Headers h = mcp_post_headers();
  if (!session_id_.empty()) h.emplace_back("Mcp-Session-Id", session_id_);
  if (!protocol_version_.empty()) h.emplace_back("MCP-Protocol-Version", protocol_version_);
  return h;
}

HttpReply McpHttpSession::post(const json& message, const Headers& extra) const {
  Headers h = session_headers();
  h.insert(h.end(), extra.begin(), extra.end());
  return peer_.post("/mcp", message.dump(), h);
}

HttpReply McpHttpSession::last_reply() const {
  std::lock_guard lock(mu_);
  return last_;
}

json McpHttpSession::initialize(const std::string& protocol_version) {
  json init{{"jsonrpc", "2.0"},
            {"id", 0},
            {"method", "initialize"},
            {"params",
             {{"protocolVersion", protocol_version},
              {"capabilities", json::object()},
              {"clientInfo", {{"name", "integration-test"}, {"version", "1"}}}}}};
  HttpReply reply = post(init);
  EXPECT_EQ(reply.status, 200) << reply.error << reply.body;
  session_id_ = reply.header("mcp-session-id");
  EXPECT_FALSE(session_id_.empty()) << "initialize returned no Mcp-Session-Id";
  json response = reply.header("content-type").rfind("text/event-stream", 0) == 0
                      ? (reply.sse_messages().empty() ? json() : reply.sse_messages().back())
                      : reply.json();
  if (response.contains("result")) protocol_version_ = response["result"].value("protocolVersion", "");
  HttpReply initialized = post(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  EXPECT_EQ(initialized.status, 202) << initialized.body;
  return response;
}

json McpHttpSession::request(const std::string& method, json params) {
  std::int64_t id;
  {
    std::lock_guard lock(mu_);
    id = ++next_id_;
  }
  HttpReply reply = post(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
  {
    std::lock_guard lock(mu_);
    last_ = reply;
  }
  if (reply.status != 200) {
    ADD_FAILURE() << method << ": HTTP " << reply.status << " " << reply.error << " " << reply.body;
    return json();
  }
  if (reply.header("content-type").rfind("text/event-stream", 0) == 0) {
    for (const json& message : reply.sse_messages()) {
      if (message.is_object() && message.contains("id") && message["id"] == id) return message;
    }
    ADD_FAILURE() << method << ": the SSE reply has no response with id " << id << ": " << reply.body;
    return json();
  }
  return reply.json();
}

json McpHttpSession::call_tool(const std::string& name, json arguments, std::optional<json> progress_token) {
  json params{{"name", name}, {"arguments", std::move(arguments)}};
  if (progress_token) params["_meta"] = {{"progressToken", *progress_token}};
  json response = request("tools/call", std::move(params));
  if (!response.contains("result")) {
    ADD_FAILURE() << "tools/call " << name << " failed: " << response.dump();
    return response;
  }
  return response["result"];
}

HttpReply McpHttpSession::end() { return peer_.del("/mcp", session_headers()); }

}  // namespace orch::test
