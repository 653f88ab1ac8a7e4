#include <httplib.h>

#include "transport/httplib_backend.h"

namespace orch::transport {

namespace {

class HttplibClient final : public HttpClient {
 public:
  HttplibClient(const std::string& base_url, const HttpClientOptions& options) : http_(base_url) {
    http_.set_connection_timeout(options.connect_timeout);
    http_.set_read_timeout(options.read_timeout);
    http_.set_keep_alive(options.keep_alive);
  }

  bool valid() const { return http_.is_valid(); }

  Result<HttpReply> get(const std::string& path, const HttpHeaders& headers) override {
    return reply(http_.Get(path, to_httplib(headers)));
  }

  Result<HttpReply> post(const std::string& path, const HttpHeaders& headers, const std::string& body,
                         const std::string& content_type) override {
    return reply(http_.Post(path, to_httplib(headers), body, content_type));
  }

  Result<HttpReply> del(const std::string& path, const HttpHeaders& headers) override {
    return reply(http_.Delete(path, to_httplib(headers)));
  }

 private:
  static httplib::Headers to_httplib(const HttpHeaders& headers) { return {headers.begin(), headers.end()}; }

  static Result<HttpReply> reply(const httplib::Result& r) {
    if (!r) return make_error(ErrorCode::Unavailable, httplib::to_string(r.error()));
    HttpReply out;
    out.status = r->status;
    out.headers.assign(r->headers.begin(), r->headers.end());
    out.body = r->body;
    return out;
  }

  httplib::Client http_;
};

}  // namespace

Result<std::unique_ptr<HttpClient>> open_httplib_client(const std::string& base_url, const HttpClientOptions& options) {
  auto client = std::make_unique<HttplibClient>(base_url, options);
  if (!client->valid()) return make_error(ErrorCode::InvalidArgument, "not an http:// URL: " + base_url);
  return std::unique_ptr<HttpClient>(std::move(client));
}

}  // namespace orch::transport
