// HttpServer: the HTTP listener every HTTP endpoint shares (/mcp, /healthz,
// /metrics, the dashboard), on cpp-httplib in the HTTP module
// (transport/http_module.h), with the security rules applied
// before any handler runs (SPEC §7, MCP-NOTES §5a):
//
//   1. Host must name this server: 127.0.0.1, localhost or [::1] (with or
//      without our port), or the bound address when it is not loopback.
//      Anything else is 403: a DNS-rebinding page reaches us with its own host
//      name.
//   2. Origin, when present, must be http:// or https:// plus an allowed host
//      (as above); anything else ("null", a foreign site) is 403.
//   3. Routes registered with Access::Token need `Authorization: Bearer <token>`
//      when a token is configured; missing or wrong is 401 with
//      `WWW-Authenticate: Bearer`. The comparison is constant-time.
//   4. A body longer than max_body_bytes is 413 before it is read whole.
//   5. A request whose head (request line and headers) has not arrived
//      within head_timeout is dropped with its connection (slowloris), and
//      one over httplib's limits (8 KiB a header line) is refused.
// Every error the server produces itself (403, 401, 404, 405, 413, 500, 503)
// has a JSON body {"jsonrpc":"2.0","id":null,"error":{"code":-32000|…,
// "message":"…"}} and never HTML: /mcp clients parse it as a JSON-RPC error,
// and the dashboard and the command-line client read error.message.
//
// Threads: connections are served by a pool of at most max_threads threads,
// started on demand and retired when idle, with at most max_pending accepted
// connections waiting for one; past that the accept loop pauses and new
// connections wait in the kernel's listen queue (backlog 4096). A connection
// holds its thread while it is kept alive and while a handler blocks or a
// response streams, so long-polls and SSE streams count against max_threads;
// size it above the number of streams expected (the integration test holds
// 64 long-polls while ping still answers).
//
// Streams: a handler that returns a response with `stream` set gets a chunked
// response fed from that EventSource; when the source is idle for
// keepalive_interval the keepalive_chunk is written, which is also how a
// departed peer is noticed (EventSource::mark_gone). stop() ends every stream
// (the source is marked gone) within about a second.
//
// The listening socket is created here, not by httplib: SO_REUSEADDR without
// SO_REUSEPORT (a second server on a busy port must fail, not share it), and a
// backlog of 4096 (Debian's httplib is compiled with 5). An inherited
// listening socket (adopt_fd, for restart in place) is served as it is.
//
// route() only before start(); after that every method is thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "transport/event_stream.h"

namespace orch::transport {

struct HttpRequest {
  std::string method;  // "GET", "POST", "DELETE", …
  std::string path;    // without the query string
  std::map<std::string, std::string> query;  // decoded; the first value of a repeated key
  std::vector<std::string> captures;         // the route pattern's groups, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in arrival order
  std::string body;
  std::string remote_addr;

  // The first value of a header (name in any case), or empty.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Set: the body is ignored and the response is streamed from here
  // (Transfer-Encoding: chunked) until the source ends.
  std::shared_ptr<EventSource> stream;  // co-owned by the handler's producer and the transport
  std::chrono::milliseconds keepalive_interval{0};  // 0: never
  std::string keepalive_chunk;                       // e.g. ": keepalive\n\n" for SSE

  // A JSON body.
  static HttpResponse json(int status, std::string body);
  // The error body described above; `code` defaults to -32000 (server error).
  static HttpResponse error(int status, std::string_view message, int code = -32000);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest& request)>;

enum class Access {
  Public,  // no token needed (the dashboard page itself, /healthz)
  Token,   // the bearer token when one is configured
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // address to bind; loopback unless told otherwise
  int port = 0;                    // 0: any free port (see HttpServer::port())
  int adopt_fd = -1;               // >= 0: serve this already listening socket instead of binding
  std::string token;               // empty: Access::Token routes are open (--no-auth)
  std::size_t max_body_bytes = 4u << 20;
  std::size_t max_threads = 128;
  std::size_t max_pending = 1024;
  std::chrono::seconds keep_alive_timeout{5};
  std::chrono::seconds read_timeout{30};   // each read of a request
  // The whole head (request line and headers) of each request: a client
  // that trickles it in is cut off here instead of holding a thread.
  std::chrono::milliseconds head_timeout{10000};
  std::chrono::seconds write_timeout{30};
};

class HttpServer {
 public:
  // Creates (or adopts) the listening socket; the port is bound when this
  // returns, so a test or the app can print it before start(). Errors: the
  // HTTP module cannot be loaded (transport/http_module.h), the address does
  // not parse or resolve, the port is in use, permission denied.
  static Result<std::unique_ptr<HttpServer>> listen(HttpServerOptions options);
  virtual ~HttpServer() = default;  // an implementation's destructor stop()s
  HttpServer() = default;
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `pattern` is an ECMAScript regex matched against the whole path, e.g.
  // "/api/tasks/([^/]+)/cancel"; its groups arrive in HttpRequest::captures.
  // A path that matches some route but not for this method gets 405 with an
  // Allow header; a path that matches none gets 404.
  virtual void route(std::string method, std::string pattern, Access access, HttpHandler handler) = 0;

  // Serves on a background thread; returns at once.
  virtual void start() = 0;
  // Stops accepting, ends every stream, waits for connections in progress to
  // finish and joins every thread. Idempotent.
  virtual void stop() = 0;

  // --- restart in place (RESTART-NOTES) -------------------------------------
  // Stops accepting without closing the listening socket: new connections
  // wait in its kernel queue for the next image. Connections in progress go
  // on. False if the swap could not be made (no socket for the dummy).
  virtual bool stop_accepting() = 0;
  // Ends every streamed response (their sources are marked gone: what they
  // still buffer is not written).
  virtual void end_streams() = 0;
  // Until no streamed response is in progress, or `deadline`; true if none is.
  virtual bool wait_streams_ended(std::chrono::steady_clock::time_point deadline) = 0;
  // After stop_accepting(): waits (until `deadline`) for accepted connections
  // to start, makes kept-alive ones close after their current request, joins
  // the listener and pool threads, and returns the listening socket, which
  // the caller now owns (still listening, its queue intact). The server is
  // stopped afterwards.
  virtual Result<int> release_listener(std::chrono::steady_clock::time_point deadline) = 0;

  virtual const std::string& host() const = 0;
  virtual int port() const = 0;
  virtual int listening_fd() const = 0;
  // "http://host:port", with IPv6 hosts in brackets.
  virtual std::string base_url() const = 0;

  struct Stats {
    std::size_t threads = 0;       // pool threads alive
    std::size_t busy = 0;          // serving a connection
    std::size_t pending = 0;       // accepted, waiting for a thread
    std::size_t open_streams = 0;  // streamed responses in progress
  };
  virtual Stats stats() const = 0;
};

// True for 127.0.0.0/8, ::1 and "localhost": the addresses --no-auth allows.
bool is_loopback_host(std::string_view host);

}  // namespace orch::transport
