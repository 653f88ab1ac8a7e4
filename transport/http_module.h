// The HTTP transport is a module of its own, mcp-orchestrator-http.so, that the
// binary loads the first time an HttpServer or HttpClient is asked for. Debian's
// cpp-httplib is built with OpenSSL, zlib and brotli, and linking it into the
// binary would load and initialise them in every stdio server an editor starts
// (3.7 MiB of resident pages and a quarter of start-up's CPU, docs/PERFORMANCE.md)
// though a stdio server never speaks HTTP.
//
// Where the module is looked for: beside the binary (the build tree, an MCPB
// bundle), then in lib/mcp-orchestrator/ of the prefix the binary is installed
// in. A program that links the module's objects itself (the unit tests) uses
// those and loads nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "common/result.h"
#include "transport/http_client.h"
#include "transport/http_server.h"

namespace orch::transport {

struct HttpModule {
  // The loader refuses a module built from another version, or with another
  // layout of the options it is handed (a stale file left beside the binary).
  const char* version;
  std::size_t server_options_size;
  std::size_t client_options_size;
  Result<std::unique_ptr<HttpServer>> (*listen)(HttpServerOptions options);
  Result<std::unique_ptr<HttpClient>> (*open)(const std::string& base_url, const HttpClientOptions& options);
};

// The file name, and the module's one exported symbol.
inline constexpr const char* kHttpModuleFile = "mcp-orchestrator-http.so";
extern "C" const HttpModule* orch_http_module();

// The module, loaded on the first call (thread-safe), or why it cannot be.
Result<const HttpModule*> http_module();

}  // namespace orch::transport
