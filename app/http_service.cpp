#include "app/http_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/cli.h"
#include "app/dashboard.h"
#include "app/node_link.h"
#include "common/random.h"
#include "mcp/streamable_http.h"
#include "tools/task_json.h"
#include "transport/http_server.h"

namespace orch::app {

namespace {

using nlohmann::json;

constexpr std::size_t kTokenBytes = 32;
constexpr const char* kTokenFile = "http-token";
constexpr const char* kEndpointFile = "http.json";

bool looks_like_token(const std::string& text) {
  return text.size() == 2 * kTokenBytes &&
         text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Write to a temporary name and rename: a reader never sees half a file.
Status write_file_atomically(const std::filesystem::path& path, const std::string& text, mode_t mode) {
  auto tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return make_error(ErrorCode::Io, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  }
  ::fchmod(fd, mode);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::Io, "cannot write " + path.string() + ": " + std::strerror(err));
  }
  return {};
}

}  // namespace

Result<std::string> load_or_create_token(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    std::ifstream in(path);
    std::string token;
    std::getline(in, token);
    if (looks_like_token(token)) {
      if ((st.st_mode & 077) != 0) {
        spdlog::warn("{} was readable by other users; it is now 0600", path.string());
        ::chmod(path.c_str(), 0600);
      }
      return token;
    }
    spdlog::warn("{} does not hold a token this server made; making a new one", path.string());
  }
  auto token = random_hex(kTokenBytes);
  if (!token) return token.error();
  if (auto written = write_file_atomically(path, *token + "\n", 0600); !written) return written.error();
  spdlog::info("made a new HTTP bearer token in {}", path.string());
  return *token;
}

struct HttpService::Impl {
  std::filesystem::path endpoint_file;
  std::string token;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::unique_ptr<mcp::StreamableHttp> mcp;
  std::unique_ptr<transport::HttpServer> http;  // declared last: stopped first
  std::atomic<bool> stopped{false};

  engine::ProcessFacts facts() const {
    engine::ProcessFacts f;
    auto stats = http->stats();
    f.http_threads = stats.threads;
    f.http_busy = stats.busy;
    f.http_streams = stats.open_streams;
    f.mcp_sessions = mcp->session_count();
    return f;
  }
};

HttpService::HttpService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpService::~HttpService() { stop(); }

Result<std::unique_ptr<HttpService>> HttpService::start(const Config& config, engine::Engine& engine,
                                                        mcp::Server& server, HttpServiceHooks hooks) {
  auto address = parse_listen_address(config.http_listen);
  if (!address) return address.error();
  auto impl = std::make_unique<Impl>();
  if (!config.no_auth) {
    auto token = load_or_create_token(config.state_dir / kTokenFile);
    if (!token) return token.error();
    impl->token = std::move(*token);
  }

  transport::HttpServerOptions options;
  options.host = address->host;
  options.port = address->port;
  options.token = impl->token;
  options.max_body_bytes = config.max_message_bytes;
  options.max_threads = config.http_max_threads;
  options.head_timeout = std::chrono::seconds(config.http_header_timeout_sec);
  options.adopt_fd = hooks.adopt_fd;
  // Short, so a restart in place does not wait long for idle connections.
  options.keep_alive_timeout = std::chrono::seconds(2);
  auto http = transport::HttpServer::listen(std::move(options));
  if (!http) return make_error(http.error().code, "--http " + config.http_listen + ": " + http.error().message);
  impl->http = std::move(*http);

  mcp::StreamableHttpOptions mcp_options;
  mcp_options.max_sessions = config.http_max_sessions;
  // Listen streams hold a thread each: a quarter of them at most, so
  // requests always find one.
  mcp_options.max_listeners = std::max<std::size_t>(1, config.http_max_threads / 4);
  if (!impl->token.empty()) mcp_options.auth_context = "http-bearer";
  impl->mcp = std::make_unique<mcp::StreamableHttp>(server, mcp_options);
  impl->mcp->restore_sessions(hooks.sessions);

  Impl& im = *impl;
  for (const char* method : {"POST", "GET", "DELETE"}) {
    im.http->route(method, "/mcp", transport::Access::Token,
                   [&im](const transport::HttpRequest& request) { return im.mcp->handle(request); });
  }
  // Liveness for probes and scripts: public, and it says nothing secret.
  im.http->route("GET", "/healthz", transport::Access::Public, [&engine](const transport::HttpRequest&) {
    auto stats = engine.stats();
    auto store = engine.probe_store();
    const bool ok = store && stats.health.report.healthy;
    json body{{"status", ok ? "ok" : "degraded"},
              {"version", ORCH_VERSION},
              {"pid", ::getpid()},
              {"uptimeMs", stats.uptime_ms},
              {"restarts", tools::restarts_to_json(stats)},
              {"health", tools::health_to_json(stats.health)},
              {"store", store ? json{{"ok", true}} : json{{"ok", false}, {"error", store.error().message}}}};
    return transport::HttpResponse::json(ok ? 200 : 503, body.dump());
  });
  im.http->route("GET", "/metrics", transport::Access::Token, [&im, &engine](const transport::HttpRequest&) {
    transport::HttpResponse response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = engine::prometheus_text(engine.stats(), im.facts());
    return response;
  });
  if (hooks.request_restart) {
    im.http->route("POST", "/admin/restart", transport::Access::Token,
                   [request = hooks.request_restart](const transport::HttpRequest& req) {
                     std::string reason = "admin request";
                     json body = json::parse(req.body, nullptr, false);
                     if (body.is_object() && body.contains("reason") && body["reason"].is_string() &&
                         !body["reason"].get<std::string>().empty()) {
                       reason += ": " + body["reason"].get<std::string>().substr(0, 200);
                     }
                     if (!request(reason)) {
                       return transport::HttpResponse::error(
                           409, "Conflict: a restart or shutdown is already under way; retry in a moment");
                     }
                     return transport::HttpResponse::json(
                         202, json{{"restarting", true}, {"pid", ::getpid()}, {"reason", reason}}.dump());
                   });
  }
  add_dashboard_routes(*im.http, engine, [&im] { return im.facts(); });
  // Other nodes of a cluster read what ran here (app/node_link.h).
  if (engine.clustered()) add_node_routes(*im.http, engine);

  im.endpoint_file = config.state_dir / kEndpointFile;
  const std::string base = im.http->base_url();
  json endpoint{{"url", base}, {"mcp", base + "/mcp"}, {"pid", ::getpid()}, {"auth", !im.token.empty()}};
  if (auto written = write_file_atomically(im.endpoint_file, endpoint.dump(2) + "\n", 0600); !written) {
    return written.error();
  }
  im.http->start();
  return std::unique_ptr<HttpService>(new HttpService(std::move(impl)));
}

void HttpService::close_sessions() { impl_->mcp->close_all(); }

void HttpService::log(mcp::LogLevel level, std::string_view logger, const json& data) {
  impl_->mcp->log(level, logger, data);
}

bool HttpService::hears(mcp::LogLevel level) const { return impl_->mcp->hears(level); }

void HttpService::stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->mcp->close_all();
  impl_->http->stop();
  // Only our own file: a newer server may have taken the directory over.
  std::ifstream in(impl_->endpoint_file);
  std::stringstream text;
  text << in.rdbuf();
  auto written = json::parse(text.str(), nullptr, false);
  if (written.is_object() && written.value("pid", -1) == ::getpid()) {
    std::error_code ec;
    std::filesystem::remove(impl_->endpoint_file, ec);
  }
}

Result<HttpService::Released> HttpService::release_for_restart(std::chrono::steady_clock::time_point deadline) {
  Impl& im = *impl_;
  if (im.stopped.exchange(true)) return make_error(ErrorCode::Conflict, "the HTTP service was already stopped");
  if (!im.http->stop_accepting()) spdlog::warn("http: could not stop accepting cleanly before the restart");
  im.mcp->end_get_streams();
  if (!im.mcp->wait_idle(deadline)) spdlog::warn("http: requests still in flight at the restart deadline");
  // The answers may still be streaming (SSE): let them finish. Dashboard
  // streams end by themselves once the engine drains. Past the deadline, cut.
  if (!im.http->wait_streams_ended(deadline)) {
    spdlog::warn("http: streams still open at the restart deadline; ending them");
    im.http->end_streams();
  }
  auto fd = im.http->release_listener(deadline);
  if (!fd) return fd.error();
  Released out;
  out.listen_fd = *fd;
  out.sessions = im.mcp->snapshot_sessions();
  return out;
}

std::string HttpService::base_url() const { return impl_->http->base_url(); }

const std::string& HttpService::token() const { return impl_->token; }

engine::ProcessFacts HttpService::facts() const { return impl_->facts(); }

}  // namespace orch::app
