#include "transport/httplib_backend.h"

// GCC 12 reports a false -Wmaybe-uninitialized inside <regex>'s automaton when
// optimising with sanitizers (GCC bug 105562); the routes' regexes are ours.
// Clang has no such warning (and would warn about the unknown name).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

#include "common/random.h"
#include "common/thread_name.h"
#include "common/unique_fd.h"
#include "transport/head_timed_stream.h"
#include "transport/http_text.h"
#include "transport/http_thread_pool.h"

namespace orch::transport {

namespace {

constexpr int kListenBacklog = 4096;
// How long a streamed response waits for its source before looking again at
// the server's state and the peer: bounds how long stop() waits for streams.
constexpr std::chrono::milliseconds kStreamPoll{200};

// httplib owns the TaskQueue it gets; ours must outlive it for stats().
// httplib calls shutdown() once its accept loop has ended, which is how a
// restart in place learns that no connection will be accepted any more.
class PoolHandle final : public httplib::TaskQueue {
 public:
  PoolHandle(HttpThreadPool& pool, std::function<void()> on_accept_end)
      : pool_(pool), on_accept_end_(std::move(on_accept_end)) {}
  void enqueue(std::function<void()> fn) override { pool_.enqueue(std::move(fn)); }
  void shutdown() override {
    on_accept_end_();
    pool_.shutdown();
  }

 private:
  HttpThreadPool& pool_;
  std::function<void()> on_accept_end_;
};

// httplib::Server serving a socket we made (or inherited): svr_sock_ is
// protected, and listen_after_bind() serves whatever it holds (BUILD-NOTES).
// halt() makes the accept loop and idle keep-alive connections end without
// closing the socket (httplib's stop() closes it, which a later restart in
// place must not have); the owner closes it after the listen thread ended.
class SocketServer final : public httplib::Server {
 public:
  bool serve(int fd) {
    {
      std::lock_guard lock(mu_);
      if (halted_) return true;
      svr_sock_ = fd;
    }
    return listen_after_bind();
  }
  void halt() {
    std::lock_guard lock(mu_);
    halted_ = true;
    svr_sock_ = INVALID_SOCKET;
  }
  // Restart in place (RESTART-NOTES): an unbound socket in place of the
  // listener makes accept() fail with EINVAL, so the loop ends (httplib
  // closes the dummy) while the real listener and its queue of connections
  // stay untouched. Connections already accepted are still served, kept-alive
  // ones included, because svr_sock_ is not INVALID.
  bool swap_in_dummy() {
    int dummy = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (dummy < 0) return false;
    std::lock_guard lock(mu_);
    halted_ = true;
    svr_sock_ = dummy;
    return true;
  }
  // Then, once every accepted connection has started: INVALID makes each
  // kept-alive connection close after the request it is serving.
  void end_keep_alive() {
    std::lock_guard lock(mu_);
    svr_sock_ = INVALID_SOCKET;
  }
  // Before serve(): how long a request's head may take to arrive.
  void set_head_timeout(std::chrono::milliseconds timeout) { head_timeout_ = timeout; }

 private:
  // httplib's keep-alive loop for one connection (the same rules: up to
  // keep_alive_max_count_ requests, each after at most the keep-alive
  // timeout of idleness, none once svr_sock_ is INVALID), reading each
  // request through a HeadTimedStream, so a slow client cannot hold a pool
  // thread past head_timeout_ (slowloris).
  bool process_and_close_socket(socket_t sock) override {
    using std::chrono::milliseconds;
    using std::chrono::seconds;
    const milliseconds read_timeout = seconds(read_timeout_sec_) + milliseconds(read_timeout_usec_ / 1000);
    const milliseconds write_timeout = seconds(write_timeout_sec_) + milliseconds(write_timeout_usec_ / 1000);
    bool ok = false;
    for (std::size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
      pollfd p{sock, POLLIN, 0};
      int ready;
      do {
        ready = ::poll(&p, 1, static_cast<int>(keep_alive_timeout_sec_ * 1000));
      } while (ready < 0 && errno == EINTR);
      if (ready <= 0) break;
      HeadTimedStream stream(sock, read_timeout, write_timeout, head_timeout_);
      bool connection_closed = false;
      ok = process_request(stream, left == 1, connection_closed, nullptr);
      // A head cut off (too slow, too long) leaves the rest of it unread:
      // nothing after it on this connection can be framed.
      if (!ok || connection_closed || !stream.head_done()) break;
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  std::mutex mu_;
  bool halted_ = false;  // guarded by mu_
  std::chrono::milliseconds head_timeout_{10000};
};

std::string error_body(std::string_view message, int code) { return HttpResponse::error(0, message, code).body; }

std::string status_message(int status) {
  switch (status) {
    case 400: return "Bad Request: the request could not be read";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 500: return "Internal Server Error";
    default: return "HTTP error " + std::to_string(status);
  }
}

Result<UniqueFd> make_listener(const std::string& host, int port) {
  std::string name = host == "localhost" ? "127.0.0.1" : host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(name.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return make_error(ErrorCode::InvalidArgument, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last_error = std::strerror(errno);
      continue;
    }
    // SO_REUSEADDR lets a restarted server bind past TIME_WAIT; SO_REUSEPORT
    // is left off so a second server on a busy port fails instead of sharing.
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // httplib writes a response's headers and body separately; with Nagle on,
    // the body waits for the client's delayed ACK (40 ms a round trip).
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux.
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), kListenBacklog) != 0) {
      last_error = std::strerror(errno);
      if (errno == EADDRINUSE) last_error = "the address is in use (another server on this port?)";
      continue;
    }
    return fd;
  }
  return make_error(ErrorCode::Io, "cannot listen on " + host + ":" + service + ": " + last_error);
}

int socket_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

std::string bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

struct ServerState {
  struct Route {
    std::string method;
    std::regex pattern;
    Access access;
    HttpHandler handler;
  };

  HttpServerOptions options;
  UniqueFd listener;
  int port = 0;
  std::vector<std::string> allowed_hosts;  // lower-case, without port
  std::vector<Route> routes;               // fixed once start() ran
  std::unique_ptr<HttpThreadPool> pool;
  SocketServer server;
  std::atomic<std::size_t> open_streams{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> accept_ended{false};  // httplib's accept loop has returned
  std::atomic<bool> releasing{false};     // stop_accepting() ran: a restart in place
  std::atomic<bool> released{false};      // release_listener() ran
  std::condition_variable streams_ended;  // open_streams dropped (with streams_mu)
  std::mutex accept_mu;
  std::condition_variable accept_cv;  // accept_ended was set
  std::mutex streams_mu;
  std::vector<std::weak_ptr<EventSource>> streams;  // guarded by streams_mu
  std::thread listen_thread;

  // "127.0.0.1:8765" or "[::1]" → is it us?
  bool host_allowed(std::string_view value) const {
    std::string host = ascii_lower(value);
    std::string port_text;
    if (!host.empty() && host.front() == '[') {
      auto close = host.find(']');
      if (close == std::string::npos) return false;
      if (close + 1 < host.size()) {
        if (host[close + 1] != ':') return false;
        port_text = host.substr(close + 2);
      }
      host = host.substr(0, close + 1);
    } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
      port_text = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    if (!port_text.empty() && port_text != std::to_string(port)) return false;
    return std::find(allowed_hosts.begin(), allowed_hosts.end(), host) != allowed_hosts.end();
  }

  // A server bound to every interface (0.0.0.0, ::) is reached under names
  // it cannot know, so it takes any Host and relies on its token; an Origin
  // must then be the Host itself (a page the server served).
  bool wildcard() const { return options.host == "0.0.0.0" || options.host == "::"; }

  std::optional<HttpResponse> check_origin(const HttpRequest& req) const {
    const std::string where = "use " + bracketed(options.host) + ":" + std::to_string(port);
    if (!wildcard() && req.has_header("host") && !host_allowed(req.header("host"))) {
      return HttpResponse::error(403, "Forbidden: Host " + req.header("host") +
                                          " is not this server (DNS rebinding protection); " + where);
    }
    if (!req.has_header("origin")) return std::nullopt;
    const std::string origin = req.header("origin");
    std::string rest;
    if (origin.rfind("http://", 0) == 0) rest = origin.substr(7);
    else if (origin.rfind("https://", 0) == 0) rest = origin.substr(8);
    const bool same_origin = wildcard() && ascii_iequals(rest, req.header("host"));
    if (rest.empty() || rest.find('/') != std::string::npos || !(host_allowed(rest) || same_origin)) {
      return HttpResponse::error(403, "Forbidden: Origin " + origin +
                                          " may not call this server; only pages it serves itself may");
    }
    return std::nullopt;
  }

  bool token_ok(const HttpRequest& req) const {
    const std::string auth = req.header("authorization");
    constexpr std::string_view kScheme = "bearer ";
    if (auth.size() <= kScheme.size() || !ascii_iequals(std::string_view(auth).substr(0, kScheme.size()), kScheme)) {
      return false;
    }
    std::string_view given = std::string_view(auth).substr(kScheme.size());
    while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
    return constant_time_equal(given, options.token);
  }

  void dispatch(const httplib::Request& hreq, httplib::Response& hres) {
    HttpRequest req;
    req.method = hreq.method;
    req.path = hreq.path;
    req.body = hreq.body;
    req.remote_addr = hreq.remote_addr;
    for (const auto& [key, value] : hreq.params) req.query.emplace(key, value);
    for (const auto& [key, value] : hreq.headers) req.headers.emplace_back(ascii_lower(key), value);

    HttpResponse res = respond(req);
    write(res, hres);
  }

  HttpResponse respond(HttpRequest& req) {
    if (auto refused = check_origin(req)) return *refused;
    std::string allow;
    for (const Route& route : routes) {
      std::smatch match;
      if (!std::regex_match(req.path, match, route.pattern)) continue;
      if (route.method != req.method) {
        if (allow.find(route.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + route.method;
        continue;
      }
      if (route.access == Access::Token && !options.token.empty() && !token_ok(req)) {
        HttpResponse r = HttpResponse::error(
            401, "Unauthorized: send the server's token as \"Authorization: Bearer <token>\" "
                 "(it is in http-token in the server's state directory)");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
      }
      for (std::size_t i = 1; i < match.size(); ++i) req.captures.push_back(match[i].str());
      return route.handler(req);
    }
    if (!allow.empty()) {
      HttpResponse r = HttpResponse::error(405, "Method Not Allowed: " + req.method + " " + req.path +
                                                    " (allowed: " + allow + ")");
      r.headers.emplace_back("Allow", allow);
      return r;
    }
    return HttpResponse::error(404, "Not Found: " + req.path);
  }

  void write(HttpResponse& res, httplib::Response& hres) {
    hres.status = res.status;
    for (const auto& [key, value] : res.headers) hres.set_header(key, value);
    if (!res.stream) {
      hres.set_content(res.body, res.content_type);
      return;
    }
    hres.set_header("Cache-Control", "no-cache, no-transform");
    hres.set_header("X-Accel-Buffering", "no");
    {
      std::lock_guard lock(streams_mu);
      std::erase_if(streams, [](const auto& w) { return w.expired(); });
      streams.push_back(res.stream);
    }
    ++open_streams;
    auto source = res.stream;
    auto keepalive = res.keepalive_interval;
    auto keepalive_chunk = res.keepalive_chunk;
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    hres.set_chunked_content_provider(
        res.content_type,
        [this, source, keepalive, keepalive_chunk, last_write](std::size_t, httplib::DataSink& sink) {
          if (stopping.load() || !sink.is_writable()) {
            source->mark_gone();
            return false;
          }
          std::string chunk;
          switch (source->pull(chunk, kStreamPoll)) {
            case EventSource::Pull::Chunk:
              if (!sink.write(chunk.data(), chunk.size())) {
                source->mark_gone();
                return false;
              }
              *last_write = std::chrono::steady_clock::now();
              return true;
            case EventSource::Pull::Timeout:
              if (keepalive.count() > 0 && !keepalive_chunk.empty() &&
                  std::chrono::steady_clock::now() - *last_write >= keepalive) {
                if (!sink.write(keepalive_chunk.data(), keepalive_chunk.size())) {
                  source->mark_gone();
                  return false;
                }
                *last_write = std::chrono::steady_clock::now();
              }
              return true;
            case EventSource::Pull::End:
              sink.done();
              return true;
          }
          return false;
        },
        [this, source](bool success) {
          if (!success) source->mark_gone();
          {
            std::lock_guard lock(streams_mu);
            --open_streams;
          }
          streams_ended.notify_all();
        });
  }
};

class HttplibServer final : public HttpServer {
 public:
  explicit HttplibServer(std::unique_ptr<ServerState> impl) : impl_(std::move(impl)) {}
  ~HttplibServer() override { stop(); }

  void route(std::string method, std::string pattern, Access access, HttpHandler handler) override;
  void start() override;
  void stop() override;
  bool stop_accepting() override;
  void end_streams() override;
  bool wait_streams_ended(std::chrono::steady_clock::time_point deadline) override;
  Result<int> release_listener(std::chrono::steady_clock::time_point deadline) override;
  const std::string& host() const override;
  int port() const override;
  int listening_fd() const override;
  std::string base_url() const override;
  Stats stats() const override;

 private:
  std::unique_ptr<ServerState> impl_;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> listen_with_httplib(HttpServerOptions options) {
  auto impl = std::make_unique<ServerState>();
  if (options.adopt_fd >= 0) {
    impl->listener.reset(options.adopt_fd);
    // Inherited across exec with CLOEXEC cleared; not for the next one's children.
    ::fcntl(options.adopt_fd, F_SETFD, FD_CLOEXEC);
  } else {
    auto fd = make_listener(options.host, options.port);
    if (!fd) return fd.error();
    impl->listener = std::move(*fd);
  }
  impl->port = socket_port(impl->listener.get());
  if (impl->port < 0) return make_error(ErrorCode::Io, "the listening socket has no port");
  impl->options = std::move(options);
  impl->allowed_hosts = {"127.0.0.1", "localhost", "[::1]"};
  const std::string bound = ascii_lower(bracketed(impl->options.host));
  if (std::find(impl->allowed_hosts.begin(), impl->allowed_hosts.end(), bound) == impl->allowed_hosts.end() &&
      bound != "0.0.0.0" && bound != "[::]") {
    impl->allowed_hosts.push_back(bound);
  }

  ServerState& im = *impl;
  httplib::Server& s = im.server;
  const HttpServerOptions& o = im.options;
  im.pool = std::make_unique<HttpThreadPool>(o.max_threads, o.max_pending);
  s.new_task_queue = [&im] {
    return new PoolHandle(*im.pool, [&im] {
      {
        std::lock_guard lock(im.accept_mu);
        im.accept_ended.store(true);
      }
      im.accept_cv.notify_all();
    });
  };
  s.set_socket_options([](socket_t) {});  // ours are set; httplib's default adds SO_REUSEPORT
  s.set_tcp_nodelay(true);
  // The accept loop looks at svr_sock_ again at least this often: how soon a
  // restart in place's dummy swap takes effect (RESTART-NOTES).
  s.set_idle_interval(0, 20000);
  s.set_keep_alive_timeout(o.keep_alive_timeout.count());
  s.set_read_timeout(o.read_timeout.count(), 0);
  s.set_write_timeout(o.write_timeout.count(), 0);
  s.set_payload_max_length(o.max_body_bytes);
  im.server.set_head_timeout(o.head_timeout);
  auto handler = [&im](const httplib::Request& req, httplib::Response& res) { im.dispatch(req, res); };
  s.Get(".*", handler);
  s.Post(".*", handler);
  s.Put(".*", handler);
  s.Patch(".*", handler);
  s.Delete(".*", handler);
  s.Options(".*", handler);
  const std::size_t cap = o.max_body_bytes;
  s.set_error_handler(httplib::Server::HandlerWithResponse([cap](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = status_message(res.status);
    if (res.status == 413) message += ": the body is over the limit of " + std::to_string(cap) + " bytes";
    res.set_content(error_body(message, -32000), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("http: {} {} failed: {}", req.method, req.path, what);
    res.status = 500;
    res.set_content(error_body("Internal Server Error: " + what, -32603), "application/json");
  });
  return std::unique_ptr<HttpServer>(new HttplibServer(std::move(impl)));
}

void HttplibServer::route(std::string method, std::string pattern, Access access, HttpHandler handler) {
  impl_->routes.push_back(ServerState::Route{std::move(method), std::regex(pattern), access, std::move(handler)});
}

void HttplibServer::start() {
  ServerState& im = *impl_;
  if (im.listen_thread.joinable() || im.stopping.load()) return;
  int fd = im.listener.get();
  spdlog::info("http: listening on {}", base_url());
  im.listen_thread = std::thread([&im, fd] {
    name_this_thread("orch-http-accept");
    // After stop_accepting() the loop ends on the dummy's EINVAL, as designed.
    if (!im.server.serve(fd) && !im.releasing.load()) spdlog::error("http: the listener stopped with an error");
  });
}

void HttplibServer::stop() {
  ServerState& im = *impl_;
  if (im.stopping.exchange(true)) return;
  {
    std::lock_guard lock(im.streams_mu);
    for (auto& weak : im.streams) {
      if (auto s = weak.lock()) s->mark_gone();
    }
  }
  im.server.halt();
  // httplib shuts its task queue down (joining our pool) before listen returns.
  if (im.listen_thread.joinable()) im.listen_thread.join();
  im.pool->shutdown();
  im.listener.reset();
}

bool HttplibServer::stop_accepting() {
  ServerState& im = *impl_;
  if (!im.listen_thread.joinable()) return true;
  im.releasing.store(true);
  return im.server.swap_in_dummy();
}

bool HttplibServer::wait_streams_ended(std::chrono::steady_clock::time_point deadline) {
  ServerState& im = *impl_;
  std::unique_lock lock(im.streams_mu);
  return im.streams_ended.wait_until(lock, deadline, [&] { return im.open_streams.load() == 0; });
}

void HttplibServer::end_streams() {
  ServerState& im = *impl_;
  std::lock_guard lock(im.streams_mu);
  for (auto& weak : im.streams) {
    if (auto s = weak.lock()) s->mark_gone();
  }
}

Result<int> HttplibServer::release_listener(std::chrono::steady_clock::time_point deadline) {
  ServerState& im = *impl_;
  // `stopping` stays false until the threads are joined: a streamed response
  // that is ending (a long-poll's last SSE event) must still be written.
  if (im.stopping.load() || im.released.exchange(true)) {
    return make_error(ErrorCode::Conflict, "the HTTP server was already stopped");
  }
  if (im.listen_thread.joinable()) {
    // Accepted connections waiting for a thread must be read before
    // end_keep_alive(), or httplib would close them unread.
    bool ended;
    {
      std::unique_lock lock(im.accept_mu);
      ended = im.accept_cv.wait_until(lock, deadline, [&] { return im.accept_ended.load(); });
    }
    if (!ended || !im.pool->wait_no_pending(deadline)) {
      spdlog::warn("http: connections were still waiting for a thread when the restart went on");
    }
    im.server.end_keep_alive();
    im.listen_thread.join();  // after the pool served every connection it holds
  }
  im.pool->shutdown();
  im.stopping.store(true);
  return im.listener.release();
}

const std::string& HttplibServer::host() const { return impl_->options.host; }

int HttplibServer::port() const { return impl_->port; }

int HttplibServer::listening_fd() const { return impl_->listener.get(); }

std::string HttplibServer::base_url() const {
  std::string host = impl_->options.host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  return "http://" + bracketed(host) + ":" + std::to_string(impl_->port);
}

HttpServer::Stats HttplibServer::stats() const {
  Stats s;
  auto pool = impl_->pool->stats();
  s.threads = pool.threads;
  s.busy = pool.busy;
  s.pending = pool.pending;
  s.open_streams = impl_->open_streams.load();
  return s;
}

}  // namespace orch::transport
