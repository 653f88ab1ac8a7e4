// What the HTTP module (transport/http_module.h) is made of: HttpServer and
// HttpClient on cpp-httplib. Only the module's own files include this.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "transport/http_client.h"
#include "transport/http_server.h"

namespace orch::transport {

Result<std::unique_ptr<HttpServer>> listen_with_httplib(HttpServerOptions options);
Result<std::unique_ptr<HttpClient>> open_httplib_client(const std::string& base_url, const HttpClientOptions& options);

}  // namespace orch::transport
