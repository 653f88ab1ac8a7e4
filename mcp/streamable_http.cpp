#include "mcp/streamable_http.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "common/random.h"
#include "mcp/jsonrpc.h"
#include "mcp/modern_era.h"
#include "mcp/subscriptions_listen.h"

namespace orch::mcp {

using nlohmann::json;
using transport::EventStream;
using transport::HttpRequest;
using transport::HttpResponse;

namespace {

constexpr std::size_t kSessionIdBytes = 32;
// A request is answered by the dispatcher even when its session closes, so
// this only guards against a bug leaving an HTTP thread waiting for ever.
constexpr std::chrono::hours kReplyWaitLimit{2};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool accepts(const std::string& accept, std::string_view type) {
  const std::string a = lower(accept);
  return a.find(type) != std::string::npos || a.find("*/*") != std::string::npos;
}

std::string sse_event(std::string_view message) {
  std::string event = "event: message\ndata: ";
  event += message;
  event += "\n\n";
  return event;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

HttpResponse rpc_error(int status, const RequestId& id, int code, std::string_view message) {
  return HttpResponse::json(status, serialize(error_response(id, code, message)));
}

}  // namespace

// One POST request waiting for what the session says about it.
struct PendingCall {
  std::mutex mu;
  std::condition_variable arrived;
  std::deque<std::string> early;        // guarded by mu: before the HTTP thread chose JSON or SSE
  bool answered = false;                // guarded by mu: the response is in `early` or was streamed
  std::shared_ptr<EventStream> stream;  // guarded by mu: set once SSE was chosen
  std::string progress_key;             // the request's progressToken, dumped; empty if none
  std::function<void()> on_answered;    // called once, when the response has been delivered

  // `final`: this is the response; nothing follows it.
  void deliver(std::string_view message, bool final) {
    std::unique_lock lock(mu);
    if (answered) return;
    answered = final;
    if (stream) {
      stream->push(sse_event(message));
      if (final) stream->close();
      lock.unlock();
      if (final && on_answered) on_answered();
      return;
    }
    early.emplace_back(message);
    lock.unlock();
    arrived.notify_all();
    if (final && on_answered) on_answered();
  }
};

// One MCP session over HTTP: the mcp::Session plus where its messages go.
struct StreamableHttp::HttpSession {
  std::string id;
  std::unique_ptr<Session> session;
  std::atomic<std::int64_t> last_active_ms{now_ms()};
  std::atomic<int> requests_in_flight{0};

  std::mutex mu;
  std::map<std::string, std::shared_ptr<PendingCall>> calls;  // guarded by mu; by request id, dumped
  std::map<std::string, std::string> progress_calls;          // guarded by mu; token → request id
  std::shared_ptr<EventStream> get_stream;                    // guarded by mu; co-owned with HttpServer

  bool idle(std::int64_t now, std::chrono::milliseconds timeout) {
    std::lock_guard lock(mu);
    bool streaming = get_stream && !get_stream->gone();
    return requests_in_flight.load() == 0 && !streaming && now - last_active_ms.load() >= timeout.count();
  }

  // The session's sink: each outgoing message to the POST it belongs to, or
  // to the GET stream.
  bool route(std::string_view text) {
    json message = json::parse(text, nullptr, false);
    std::shared_ptr<PendingCall> call;
    bool final = false;
    std::shared_ptr<EventStream> stream;
    {
      std::lock_guard lock(mu);
      if (message.is_object() && message.contains("id") && !message.contains("method")) {
        auto it = calls.find(message["id"].dump());
        if (it != calls.end()) {
          call = it->second;
          final = true;
          if (!call->progress_key.empty()) progress_calls.erase(call->progress_key);
          calls.erase(it);
        }
      } else if (message.is_object() && message.value("method", "") == "notifications/progress") {
        auto token = message.find("params");
        if (token != message.end() && token->is_object() && token->contains("progressToken")) {
          auto it = progress_calls.find((*token)["progressToken"].dump());
          if (it != progress_calls.end()) {
            auto c = calls.find(it->second);
            if (c != calls.end()) call = c->second;
          }
        }
      }
      if (!call) stream = get_stream;
    }
    if (call) {
      call->deliver(text, final);
      return true;
    }
    if (stream && stream->push(sse_event(text))) return true;
    spdlog::debug("http: session {}: no stream for a message; dropped: {:.120}", id.substr(0, 8), text);
    return false;
  }
};

struct StreamableHttp::Impl {
  Server& server;
  StreamableHttpOptions options;
  // Stateless 2026-07-28 requests (no session); without auth they share one
  // context, and their task ids are unguessable.
  ListenHub listen;
  ModernEra modern;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<HttpSession>> sessions;  // guarded by mu
  bool closed = false;                                           // guarded by mu
  std::size_t in_flight = 0;                                     // guarded by mu: requests awaiting replies
  std::condition_variable idle;                                  // in_flight dropped to 0

  Impl(Server& s, StreamableHttpOptions o)
      : server(s),
        options(std::move(o)),
        listen(s, ListenOptions{options.max_listeners, options.stream_buffer_bytes}),
        modern(s, options.auth_context.empty() ? "http-anonymous" : options.auth_context, &listen) {}

  std::shared_ptr<HttpSession> find(const std::string& id) {
    std::lock_guard lock(mu);
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : it->second;
  }

  HttpResponse shutting_down() const {
    return HttpResponse::error(503, "Service Unavailable: the server is shutting down; reconnect in a moment");
  }

  std::shared_ptr<HttpSession> make_session(std::string id) {
    auto s = std::make_shared<HttpSession>();
    s->id = std::move(id);
    std::weak_ptr<HttpSession> weak = s;
    SessionOptions session_options;
    session_options.auth_context =
        options.auth_context.empty() ? "http-session:" + s->id : options.auth_context;
    s->session = server.open_session(
        [weak](std::string_view text) {
          auto alive = weak.lock();
          return alive && alive->route(text);
        },
        std::move(session_options));
    return s;
  }

  // A new session, making room by closing idle ones when the table is full.
  Result<std::shared_ptr<HttpSession>> open() {
    auto id = random_hex(kSessionIdBytes);
    if (!id) return id.error();
    auto s = make_session(std::move(*id));
    std::vector<std::shared_ptr<HttpSession>> expired;
    {
      std::lock_guard lock(mu);
      if (closed) return make_error(ErrorCode::Unavailable, "shutting down");
      if (sessions.size() >= options.max_sessions) {
        const std::int64_t now = now_ms();
        for (auto it = sessions.begin(); it != sessions.end();) {
          if (it->second->idle(now, options.idle_timeout)) {
            expired.push_back(it->second);
            it = sessions.erase(it);
          } else {
            ++it;
          }
        }
      }
      if (sessions.size() >= options.max_sessions) {
        return make_error(ErrorCode::QueueFull, "too many sessions");
      }
      sessions.emplace(s->id, s);
    }
    for (auto& old : expired) {
      spdlog::info("http: closed idle session {}", old->id.substr(0, 8));
      end(*old);
    }
    return s;
  }

  static void end(HttpSession& s) {
    s.session->close();
    std::lock_guard lock(s.mu);
    if (s.get_stream) s.get_stream->close();
  }

  HttpResponse post(const HttpRequest& req) {
    const std::string accept = req.header("accept");
    if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream")) {
      return HttpResponse::error(406, "Not Acceptable: the client must accept both application/json and "
                                      "text/event-stream");
    }
    if (lower(req.header("content-type")).rfind("application/json", 0) != 0) {
      return HttpResponse::error(415, "Unsupported Media Type: send the JSON-RPC message as application/json");
    }
    Message message = parse_message(req.body);
    if (auto* bad = std::get_if<Invalid>(&message)) return rpc_error(400, bad->id, bad->code, bad->message);

    const auto* request = std::get_if<Request>(&message);
    const bool initialize = request && request->method == "initialize";
    std::shared_ptr<HttpSession> s;
    HttpResponse opened;
    const std::string session_id = req.header("mcp-session-id");
    // The era, per request (MCP-NOTES §0): without a session, anything but a
    // legacy initialize is a stateless 2026-07-28 request. An initialize that
    // carries the modern _meta asks for the modern era too (where it is gone).
    const bool modern_initialize = initialize && is_modern_request(request->params);
    if (session_id.empty() && request && (!initialize || modern_initialize)) {
      ModernHeaders headers;
      headers.protocol_version = req.header("mcp-protocol-version");
      headers.method = req.header("mcp-method");
      headers.has_name = req.has_header("mcp-name");
      headers.name = req.header("mcp-name");
      ModernReply reply = modern.handle(*request, &headers);
      if (!reply.stream) return HttpResponse::json(reply.http_status, serialize(reply.message));
      HttpResponse r;  // subscriptions/listen: a long-lived SSE response
      r.content_type = "text/event-stream";
      r.stream = std::move(reply.stream);
      r.headers.emplace_back("X-Accel-Buffering", "no");
      r.keepalive_interval = options.sse_keepalive;
      r.keepalive_chunk = ": keepalive\n\n";
      return r;
    }
    if (session_id.empty()) {
      if (!initialize) {
        return HttpResponse::error(400, "Bad Request: Mcp-Session-Id header is required; send initialize first");
      }
      auto made = open();
      if (!made) {
        if (made.error().code == ErrorCode::Unavailable) return shutting_down();
        return HttpResponse::error(503, "Service Unavailable: " + std::to_string(options.max_sessions) +
                                            " sessions are open and none is idle; end one with DELETE or retry later");
      }
      s = std::move(*made);
    } else {
      s = find(session_id);
      if (!s) {
        return HttpResponse::error(404, "Session not found: " + session_id.substr(0, 16) +
                                            "; it ended or never existed, initialize a new session");
      }
    }
    s->last_active_ms = now_ms();

    if (!request) {  // a notification or a response: nothing to wait for
      s->session->handle(req.body);
      HttpResponse r;
      r.status = 202;
      r.content_type.clear();
      return r;
    }
    HttpResponse reply = answer(*s, *request, req.body);
    if (initialize && session_id.empty()) reply.headers.emplace_back("Mcp-Session-Id", s->id);
    return reply;
  }

  HttpResponse answer(HttpSession& s, const Request& request, const std::string& body) {
    auto call = std::make_shared<PendingCall>();
    const std::string key = request.id.dump();
    {
      std::lock_guard lock(s.mu);
      if (s.calls.count(key)) {
        return rpc_error(400, request.id, kInvalidRequest,
                         "request id " + to_string(request.id) + " is already in flight; use a new id");
      }
      if (auto meta = request.params.find("_meta"); meta != request.params.end() && meta->is_object()) {
        if (auto token = meta->find("progressToken"); token != meta->end() &&
                                                      (token->is_string() || token->is_number_integer())) {
          call->progress_key = token->dump();
          s.progress_calls[call->progress_key] = key;
        }
      }
      s.calls.emplace(key, call);
    }
    ++s.requests_in_flight;
    {
      std::lock_guard guard(mu);
      ++in_flight;
    }
    // Counted until the response is delivered, also when it streams: a
    // restart in place waits for it (wait_idle).
    call->on_answered = [this] {
      std::lock_guard guard(mu);
      if (--in_flight == 0) idle.notify_all();
    };
    s.session->handle(body);

    std::unique_lock lock(call->mu);
    bool arrived = call->arrived.wait_for(lock, kReplyWaitLimit, [&] { return !call->early.empty(); });
    --s.requests_in_flight;
    s.last_active_ms = now_ms();
    if (!arrived) {
      call->answered = true;
      lock.unlock();
      call->on_answered();
      return rpc_error(504, request.id, kInternalError, "internal error: no reply was produced");
    }
    if (call->answered && call->early.size() == 1) return HttpResponse::json(200, call->early.front());

    // A notification came first: the rest follows on an SSE stream.
    HttpResponse r;
    r.status = 200;
    r.content_type = "text/event-stream";
    r.stream = call->stream = std::make_shared<EventStream>(options.stream_buffer_bytes);
    for (const std::string& m : call->early) call->stream->push(sse_event(m));
    call->early.clear();
    if (call->answered) call->stream->close();
    r.keepalive_interval = options.sse_keepalive;
    r.keepalive_chunk = ": keepalive\n\n";
    return r;
  }

  HttpResponse get(const HttpRequest& req) {
    if (!accepts(req.header("accept"), "text/event-stream")) {
      return HttpResponse::error(406, "Not Acceptable: GET /mcp is an event stream; accept text/event-stream");
    }
    auto s = session_of(req);
    if (!s) return missing_or_unknown(req);
    std::lock_guard lock(s->mu);
    if (s->get_stream && !s->get_stream->gone()) {
      return HttpResponse::error(409, "Conflict: this session already has a GET stream open");
    }
    s->get_stream = std::make_shared<EventStream>(options.stream_buffer_bytes);
    s->last_active_ms = now_ms();
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.stream = s->get_stream;
    r.keepalive_interval = options.sse_keepalive;
    r.keepalive_chunk = ": keepalive\n\n";
    return r;
  }

  HttpResponse del(const HttpRequest& req) {
    auto s = session_of(req);
    if (!s) return missing_or_unknown(req);
    {
      std::lock_guard lock(mu);
      sessions.erase(s->id);
    }
    end(*s);
    spdlog::info("http: session {} ended by the client", s->id.substr(0, 8));
    return HttpResponse::json(200, "{}");
  }

  std::shared_ptr<HttpSession> session_of(const HttpRequest& req) {
    const std::string id = req.header("mcp-session-id");
    return id.empty() ? nullptr : find(id);
  }

  HttpResponse missing_or_unknown(const HttpRequest& req) {
    const std::string id = req.header("mcp-session-id");
    if (id.empty()) return HttpResponse::error(400, "Bad Request: Mcp-Session-Id header is required");
    return HttpResponse::error(404, "Session not found: " + id.substr(0, 16) + "; initialize a new session");
  }
};

StreamableHttp::StreamableHttp(Server& server, StreamableHttpOptions options)
    : impl_(std::make_unique<Impl>(server, std::move(options))) {}

StreamableHttp::~StreamableHttp() { close_all(); }

HttpResponse StreamableHttp::handle(const HttpRequest& request) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->closed) return impl_->shutting_down();
  }
  const std::string version = request.header("mcp-protocol-version");
  // Without a session a POST may be a stateless 2026-07-28 request, which
  // answers an unknown version itself (-32022).
  const bool stateless_post = request.method == "POST" && request.header("mcp-session-id").empty();
  if (!version.empty() && !stateless_post &&
      std::find(kSupportedProtocolVersions.begin(), kSupportedProtocolVersions.end(), version) ==
          kSupportedProtocolVersions.end()) {
    std::string supported;
    for (auto v : kSupportedProtocolVersions) supported += (supported.empty() ? "" : ", ") + std::string(v);
    return HttpResponse::error(400, "Bad Request: Unsupported protocol version: " + version +
                                        " (supported: " + supported + ")");
  }
  if (request.method == "POST") return impl_->post(request);
  if (request.method == "GET") return impl_->get(request);
  if (request.method == "DELETE") return impl_->del(request);
  HttpResponse r = HttpResponse::error(405, "Method Not Allowed: /mcp takes POST, GET and DELETE");
  r.headers.emplace_back("Allow", "GET, POST, DELETE");
  return r;
}

void StreamableHttp::log(LogLevel level, std::string_view logger, const json& data) {
  std::vector<std::shared_ptr<HttpSession>> all;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, s] : impl_->sessions) all.push_back(s);
  }
  for (auto& s : all) s->session->log(level, logger, data);
}

bool StreamableHttp::hears(LogLevel level) const {
  std::lock_guard lock(impl_->mu);
  for (const auto& [id, s] : impl_->sessions) {
    if (s->session->hears(level)) return true;
  }
  return false;
}

void StreamableHttp::close_all() {
  std::map<std::string, std::shared_ptr<HttpSession>> all;
  {
    std::lock_guard lock(impl_->mu);
    impl_->closed = true;
    all.swap(impl_->sessions);
  }
  impl_->listen.close_all(true);
  for (auto& [id, s] : all) Impl::end(*s);
  // A peer that reads its stream takes the last event within milliseconds;
  // one that does not is cut when the HTTP threads stop.
  impl_->listen.wait_closed(std::chrono::steady_clock::now() + std::chrono::seconds(2));
}

void StreamableHttp::end_get_streams() {
  impl_->listen.close_all(false);  // told notifications/cancelled: the client listens again
  std::vector<std::shared_ptr<HttpSession>> all;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, s] : impl_->sessions) all.push_back(s);
  }
  for (auto& s : all) {
    std::lock_guard lock(s->mu);
    if (s->get_stream) s->get_stream->close();
  }
}

bool StreamableHttp::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(impl_->mu);
  return impl_->idle.wait_until(lock, deadline, [&] { return impl_->in_flight == 0; });
}

std::vector<HttpSessionState> StreamableHttp::snapshot_sessions() const {
  std::lock_guard lock(impl_->mu);
  std::vector<HttpSessionState> out;
  for (const auto& [id, s] : impl_->sessions) out.push_back({id, s->session->snapshot()});
  return out;
}

void StreamableHttp::restore_sessions(const std::vector<HttpSessionState>& sessions) {
  for (const HttpSessionState& st : sessions) {
    auto s = impl_->make_session(st.id);
    s->session->restore(st.state);
    std::lock_guard lock(impl_->mu);
    impl_->sessions.emplace(st.id, std::move(s));
  }
}

std::size_t StreamableHttp::session_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions.size();
}

}  // namespace orch::mcp
