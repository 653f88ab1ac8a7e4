// StreamableHttp: the MCP endpoint (/mcp) of the Streamable HTTP transport,
// 2025-11-25 era (MCP-NOTES §5a), on top of the transport's HttpServer types.
// It knows JSON-RPC (which POST carries a request, which outgoing message
// answers it) and keeps the session table; HttpServer has already checked
// Host, Origin, the token and the body size.
//
// POST /mcp
//   - Accept must list application/json and text/event-stream, else 406;
//     Content-Type must be application/json, else 415.
//   - Malformed JSON → 400 with a -32700 error, id null; a batch (array) or a
//     wrong shape → 400 with the codec's error (mcp/jsonrpc.h).
//   - initialize without Mcp-Session-Id opens a session: a new mcp::Session
//     and an id of 32 random bytes in hex, returned in the Mcp-Session-Id
//     header of the response. When max_sessions are open, sessions idle for
//     longer than idle_timeout are closed first; if none is, 503.
//   - Any other message needs Mcp-Session-Id: missing → 400, unknown or ended
//     → 404 (the client then initializes again).
//   - MCP-Protocol-Version, when present, must be one we speak, else 400.
//   - A notification or a response → handed to the session, 202 with no body.
//   - A request → handed to the session; the HTTP thread waits for the first
//     outgoing message that belongs to it. If that is the response, it is
//     the JSON body (application/json). If a notification comes first
//     (notifications/progress for the request's progressToken), the answer
//     becomes an SSE stream (text/event-stream): that notification, later
//     ones, then the response, then the stream ends. SSE events are
//     "event: message\ndata: <json>\n\n".
// GET /mcp (Accept must list text/event-stream, else 406; session required):
//   the session's stream for messages that belong to no request (log
//   notifications). One per session: a second while the first is open → 409.
//   Keep-alive comments every sse_keepalive; the stream ends with the session.
// DELETE /mcp (session required): closes the session (its requests in flight
//   are cancelled and answered), 200; the id answers 404 from then on.
//
// Outgoing messages are routed by what they are: a response goes to the POST
// that carried its request; notifications/progress to the POST whose request
// gave that progressToken; anything else to the GET stream, or is dropped
// (and logged at debug) when none is open. A POST whose client has gone
// keeps its request running (disconnect is not cancellation in this era);
// its later messages are dropped.
//
// Without Mcp-Session-Id, a POST that is not a legacy initialize is a
// stateless 2026-07-28 request (mcp/modern_era.h); subscriptions/listen
// answers with a long-lived SSE stream (mcp/subscriptions_listen.h), ended
// with notifications/cancelled by close_all() and end_get_streams().
//
// Resumability (Last-Event-ID) is not offered: events carry no ids, and a
// GET with Last-Event-ID is served as a fresh stream.
//
// Threads: handle() is called concurrently by HTTP threads and blocks for a
// request's first outgoing message; close_all() from the owner. The Server
// and its executor must outlive this object.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mcp/server.h"
#include "transport/http_server.h"

namespace orch::mcp {

struct StreamableHttpOptions {
  std::size_t max_sessions = 256;
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds sse_keepalive{std::chrono::seconds(15)};
  std::size_t stream_buffer_bytes = transport::kDefaultStreamBufferBytes;
  // Open subscriptions/listen streams at most: each holds an HTTP thread.
  std::size_t max_listeners = 16;
  // The auth context native tasks are bound to (MCP-NOTES §9a). Set when the
  // endpoint checks a bearer token: every session presenting it shares its
  // tasks. Empty (no auth): each session is its own context, so a task is
  // reachable only through the unguessable session id that made it.
  std::string auth_context;
};

// One open session, for a restart in place.
struct HttpSessionState {
  std::string id;
  SessionState state;
};

class StreamableHttp {
 public:
  StreamableHttp(Server& server, StreamableHttpOptions options);
  ~StreamableHttp();  // close_all()
  StreamableHttp(const StreamableHttp&) = delete;
  StreamableHttp& operator=(const StreamableHttp&) = delete;

  // One request to the MCP endpoint: POST, GET or DELETE (anything else 405).
  transport::HttpResponse handle(const transport::HttpRequest& request);

  // Sends notifications/message to every session that asked for `level` or
  // more (MCP logging), on each session's GET stream.
  void log(LogLevel level, std::string_view logger, const nlohmann::json& data);
  // Whether some session would be sent a message at `level` now.
  bool hears(LogLevel level) const;

  // Closes every session (server shutdown): requests in flight are cancelled
  // and answered, streams end, and later requests are refused with 503.
  void close_all();

  std::size_t session_count() const;

  // --- restart in place ---------------------------------------------------------
  // Ends every session's GET stream and every subscriptions/listen stream (the
  // client opens a new one; neither era resumes), so the HTTP side can drain.
  // Sessions stay open.
  void end_get_streams();
  // Until no request is waiting for its reply (its first message), or
  // `deadline`; true if none is.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);
  // The open sessions (ids and what each agreed), and re-opening them with the
  // same ids in a new image before it serves.
  std::vector<HttpSessionState> snapshot_sessions() const;
  void restore_sessions(const std::vector<HttpSessionState>& sessions);

 private:
  struct HttpSession;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::mcp
