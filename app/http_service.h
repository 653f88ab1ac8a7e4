// HttpService: the server's HTTP side (SPEC §7), wired from the layers: the
// listener (transport/http_server), the MCP endpoint /mcp
// (mcp/streamable_http), /healthz, /metrics (engine/metrics), the
// dashboard (app/dashboard) and, in a cluster, the routes other nodes read
// output from (app/node_link).
//
// It also owns two files in the state directory:
//   http-token  the bearer token, made on first start (32 random bytes, hex),
//               mode 0600, reused by later starts so editors keep working;
//   http.json   {"url","mcp","pid"} while serving, so `mcp-orchestrator
//               submit …` and scripts can find the server; removed on stop.
//
// Threads: start() and stop() belong to the app's main thread; the rest is
// thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <vector>
#include <memory>
#include <string>

#include "app/config.h"
#include "common/result.h"
#include "engine/engine.h"
#include "engine/metrics.h"
#include "mcp/server.h"
#include "mcp/streamable_http.h"

namespace orch::app {

// How the app takes part: restart in place.
struct HttpServiceHooks {
  int adopt_fd = -1;                                // >= 0: serve this inherited listening socket
  std::vector<mcp::HttpSessionState> sessions;      // sessions to re-open (same ids)
  // POST /admin/restart (token required): asks for a restart in place; false
  // when one is already under way or the server is stopping.
  std::function<bool(const std::string& reason)> request_restart;
};

class HttpService {
 public:
  // Binds `config.http_listen` (or adopts hooks.adopt_fd) and starts serving.
  // Errors are start-up messages (address in use, bad address, unwritable
  // token file).
  static Result<std::unique_ptr<HttpService>> start(const Config& config, engine::Engine& engine,
                                                    mcp::Server& server, HttpServiceHooks hooks = {});
  ~HttpService();  // stop()
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  // Ends every MCP session: requests in flight are cancelled and answered.
  // First step of shutdown, before the engine stops.
  void close_sessions();
  // notifications/message to every MCP session that asked for `level` or more.
  void log(mcp::LogLevel level, std::string_view logger, const nlohmann::json& data);
  bool hears(mcp::LogLevel level) const;
  // Stops serving, joins the HTTP threads and removes http.json. Idempotent.
  void stop();

  // Restart in place (see app/restart.h): stops accepting (connections wait
  // in the socket's queue), lets the requests in flight be answered (the
  // engine is draining, so long-polls answer at once), ends the streams, and
  // returns the listening socket and the open sessions. http.json stays: the
  // next image has the same pid and address.
  struct Released {
    int listen_fd = -1;
    std::vector<mcp::HttpSessionState> sessions;
  };
  Result<Released> release_for_restart(std::chrono::steady_clock::time_point deadline);

  std::string base_url() const;
  const std::string& token() const;  // empty with --no-auth
  engine::ProcessFacts facts() const;

 private:
  struct Impl;
  explicit HttpService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads the token from `path`, or makes one and writes it there (0600).
// A file readable by others is tightened to 0600 with a warning.
Result<std::string> load_or_create_token(const std::filesystem::path& path);

}  // namespace orch::app
