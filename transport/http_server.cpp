// The parts of HttpServer that need no HTTP library: requests, responses, the
// loopback test, and listen(), which hands over to the HTTP module.
#include "transport/http_server.h"

#include <arpa/inet.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "transport/http_module.h"
#include "transport/http_text.h"

namespace orch::transport {

bool is_loopback_host(std::string_view host) {
  if (ascii_iequals(host, "localhost") || host == "::1" || host == "[::1]") return true;
  in_addr v4{};
  const std::string text(host);
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return false;
}

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (ascii_iequals(key, name)) return value;
  }
  return "";
}

bool HttpRequest::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return ascii_iequals(h.first, name); });
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(int status, std::string_view message, int code) {
  nlohmann::json body{{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", code}, {"message", message}}}};
  return json(status, json_text(body));
}

Result<std::unique_ptr<HttpServer>> HttpServer::listen(HttpServerOptions options) {
  auto module = http_module();
  if (!module) return module.error();
  return (*module)->listen(std::move(options));
}

}  // namespace orch::transport
