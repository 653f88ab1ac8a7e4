// HttpClient: plain HTTP/1.1 requests to one server (the command-line
// client's way to a running mcp-orchestrator, and one node's way to another).
// Like HttpServer it lives in the HTTP module (transport/http_module.h), loaded on first use.
//
// Errors: open() fails when the module cannot be loaded or the URL does not
// parse; a request fails when the server cannot be reached or the connection
// breaks, with the reason ("Connection refused", "Read timed out") as the
// message. Any HTTP status, 4xx and 5xx included, is a reply, not an error.
// Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace orch::transport {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;
  HttpHeaders headers;
  std::string body;

  // The first value of a header (name in any case), or empty.
  std::string header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{30};
  bool keep_alive = false;  // one connection for every request
};

class HttpClient {
 public:
  // `base_url` like "http://127.0.0.1:8765".
  static Result<std::unique_ptr<HttpClient>> open(const std::string& base_url, const HttpClientOptions& options = {});
  virtual ~HttpClient() = default;

  // `path` may carry a query string, already percent-encoded.
  virtual Result<HttpReply> get(const std::string& path, const HttpHeaders& headers) = 0;
  virtual Result<HttpReply> post(const std::string& path, const HttpHeaders& headers, const std::string& body,
                                 const std::string& content_type) = 0;
  virtual Result<HttpReply> del(const std::string& path, const HttpHeaders& headers) = 0;
};

}  // namespace orch::transport
