// HttpPeer and McpHttpSession: the client side of the server's HTTP endpoints
// for integration tests, on cpp-httplib with real sockets to 127.0.0.1.
//
// HttpPeer sends one request and returns everything about the reply (status,
// headers, body), or the connection error. McpHttpSession speaks MCP over
// Streamable HTTP as an editor would: initialize, keep Mcp-Session-Id, send
// MCP-Protocol-Version, accept JSON or SSE replies.
//
// Thread-safety: an HttpPeer may be used by several threads at once (each
// call opens its own connection); an McpHttpSession's request()/call_tool()
// may be called concurrently once initialize() has returned.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace orch::test {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;          // 0: no HTTP answer (see error)
  std::string error;       // the connection error, when there was no answer
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string header(const std::string& lower_name) const;
  // The body as JSON (null when it is not JSON).
  nlohmann::json json() const;
  // The JSON-RPC messages of an SSE body ("data:" lines of each event).
  std::vector<nlohmann::json> sse_messages() const;
};

class HttpPeer {
 public:
  // `token` is sent as a bearer token unless empty.
  HttpPeer(std::string base_url, std::string token = "",
           std::chrono::milliseconds read_timeout = std::chrono::seconds(60));

  // `headers` are added as given; with `with_auth` false no Authorization
  // header is sent. Host is set by httplib unless `headers` carries one.
  HttpReply get(const std::string& path, const Headers& headers = {}, bool with_auth = true) const;
  HttpReply post(const std::string& path, const std::string& body, const Headers& headers = {},
                 bool with_auth = true, const std::string& content_type = "application/json") const;
  HttpReply del(const std::string& path, const Headers& headers = {}, bool with_auth = true) const;
  HttpReply send(const std::string& method, const std::string& path, const std::string& body,
                 const Headers& headers, bool with_auth, const std::string& content_type) const;

  const std::string& base_url() const { return base_url_; }
  const std::string& token() const { return token_; }
  int port() const;

 private:
  std::string base_url_;
  std::string token_;
  std::chrono::milliseconds read_timeout_;
};

// The Accept and Content-Type a Streamable HTTP client sends on POST.
Headers mcp_post_headers();

class McpHttpSession {
 public:
  explicit McpHttpSession(const HttpPeer& peer);

  // initialize + notifications/initialized; returns the initialize response
  // (whole JSON-RPC message) and remembers the session id.
  nlohmann::json initialize(const std::string& protocol_version = "2025-11-25");
  // One request; returns its JSON-RPC response (from a JSON or an SSE body),
  // or null with a test failure. The raw reply is kept in last_reply().
  nlohmann::json request(const std::string& method, nlohmann::json params = nlohmann::json::object());
  // tools/call → the CallToolResult.
  nlohmann::json call_tool(const std::string& name, nlohmann::json arguments = nlohmann::json::object(),
                           std::optional<nlohmann::json> progress_token = std::nullopt);
  // A raw POST of `message` with this session's headers.
  HttpReply post(const nlohmann::json& message, const Headers& extra = {}) const;
  HttpReply end();  // DELETE

  const std::string& session_id() const { return session_id_; }
  HttpReply last_reply() const;
  Headers session_headers() const;

 private:
  const HttpPeer& peer_;
  std::string session_id_;
  std::string protocol_version_;
  std::int64_t next_id_ = 0;  // guarded by mu_
  HttpReply last_;            // guarded by mu_
  mutable std::mutex mu_;
};

}  // namespace orch::test
