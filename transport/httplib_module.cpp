// The HTTP module's entry point (transport/http_module.h).
#include "transport/http_module.h"
#include "transport/httplib_backend.h"

namespace orch::transport {

extern "C" __attribute__((visibility("default"))) const HttpModule* orch_http_module() {
  static const HttpModule module{ORCH_HTTP_MODULE_VERSION, sizeof(HttpServerOptions), sizeof(HttpClientOptions),
                                 &listen_with_httplib, &open_httplib_client};
  return &module;
}

}  // namespace orch::transport
