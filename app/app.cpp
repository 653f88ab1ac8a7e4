#include "app/app.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <thread>

#include "app/http_service.h"
#include "engine/engine.h"
#include "engine/worker_pool.h"
#include "mcp/server.h"
#include "tools/tool_registry.h"
#include "transport/stdio_transport.h"

namespace orch::app {

namespace {

constexpr std::size_t kLogFileBytes = 5u << 20;
constexpr std::size_t kLogFiles = 3;
// When the default state directory is held by another server (a second
// editor window starts its own stdio server), use the next free slot.
constexpr int kStateSlots = 16;

void setup_logging(const Config& config) {
  auto stderr_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  std::vector<spdlog::sink_ptr> sinks{stderr_sink};
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir / "logs", ec);
  if (!ec) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          (config.state_dir / "logs" / "mcp-orchestrator.log").string(), kLogFileBytes, kLogFiles));
    } catch (const spdlog::spdlog_ex& e) {
      std::fprintf(stderr, "mcp-orchestrator: no log file: %s\n", e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("orch", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%P] %v");
  logger->set_level(spdlog::level::from_str(config.log_level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(2));
}

// The task keeper sits beside the binary (build tree, bin/) or in
// libexec/mcp-orchestrator/ of an installed prefix.
std::string find_task_keeper() {
  static const std::string found = [] {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return std::string();
    const auto dir = self.parent_path();
    for (const auto& candidate : {dir / "mcp-orchestrator-keeper",
                                  dir.parent_path() / "libexec" / "mcp-orchestrator" / "mcp-orchestrator-keeper"}) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    return std::string();
  }();
  return found;
}

engine::EngineOptions engine_options(const Config& c, const std::filesystem::path& state_dir) {
  engine::EngineOptions o;
  o.state_dir = state_dir;
  o.store_file = c.store_file;
  o.max_concurrent = c.max_concurrent;
  o.queue_size = c.queue_size;
  o.stream_cap_bytes = c.stream_cap_bytes;
  o.kill_grace = std::chrono::milliseconds(c.kill_grace_ms);
  o.retention_count = c.retention_count;
  o.retention_age = std::chrono::hours(c.retention_hours);
  o.keeper_path = find_task_keeper();
  o.orphans = c.adopt_orphans ? engine::OrphanPolicy::Adopt : engine::OrphanPolicy::Kill;
  return o;
}

Result<std::unique_ptr<engine::Engine>> open_engine(Config& config, bool state_dir_explicit) {
  auto first = engine::Engine::open(engine_options(config, config.state_dir));
  if (first || first.error().code != ErrorCode::Unavailable || state_dir_explicit ||
      !config.store_file.empty()) {
    return first;
  }
  for (int slot = 2; slot <= kStateSlots; ++slot) {
    auto dir = config.state_dir / "instances" / std::to_string(slot);
    auto next = engine::Engine::open(engine_options(config, dir));
    if (next) {
      spdlog::info("{}; using {}", first.error().message, dir.string());
      config.state_dir = dir;
      return next;
    }
    if (next.error().code != ErrorCode::Unavailable) return next;
  }
  return first;
}

// Keeps fd 1 for the protocol only: a private duplicate goes to the
// transport, and fd 1 points at stderr so a stray print from any library
// lands in the log instead of corrupting JSON-RPC (MCP-NOTES §4).
Result<int> take_protocol_stdout() {
  int out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out < 0) return make_error(ErrorCode::Io, std::string("cannot duplicate stdout: ") + std::strerror(errno));
  if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    ::close(out);
    return make_error(ErrorCode::Io, std::string("cannot redirect stdout: ") + std::strerror(errno));
  }
  return out;
}

}  // namespace

struct App::Impl {
  Config config;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<tools::ToolRegistry> tools;
  std::unique_ptr<mcp::Server> server;
};

App::App(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

App::~App() = default;

Result<std::unique_ptr<App>> App::create(Config config, bool state_dir_explicit) {
  setup_logging(config);
  if (find_task_keeper().empty()) {
    spdlog::warn("mcp-orchestrator-keeper not found beside the binary: tasks run without a keeper, so a "
                 "crash of the server loses the running ones (they are retried per their policy)");
  }
  auto engine = open_engine(config, state_dir_explicit);
  if (!engine) return engine.error();
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  impl->engine = std::move(*engine);
  impl->tools = std::make_unique<tools::ToolRegistry>(*impl->engine);
  mcp::ServerInfo info{"mcp-orchestrator", "MCP Orchestrator", ORCH_VERSION,
                       tools::ToolRegistry::server_instructions()};
  engine::WorkerPool& pool = impl->engine->workers();
  mcp::Executor executor = [&pool](std::function<void()> job) {
    return pool.post([job = std::move(job)](std::stop_token) { job(); });
  };
  impl->server = std::make_unique<mcp::Server>(std::move(info), *impl->tools, std::move(executor));
  if (impl->config.has_profiles) {
    spdlog::warn("the config's \"profiles\" section is not used by this version");
  }
  if (impl->config.has_security) {
    spdlog::warn("the config's \"security\" section is not enforced by this version");
  }
  return std::unique_ptr<App>(new App(std::move(impl)));
}

namespace {

// What the dashboard URL and the editor registrations look like for this
// server; printed to stderr at start, never to stdout (the protocol's).
void print_http_banner(const HttpService& http, const std::filesystem::path& state_dir) {
  const std::string url = http.base_url();
  const std::string& token = http.token();
  std::string text = "\nmcp-orchestrator " ORCH_VERSION " is serving Streamable HTTP\n";
  text += "  MCP endpoint:  " + url + "/mcp\n";
  if (token.empty()) {
    text += "  dashboard:     " + url + "/\n";
    text += "  auth:          none (--no-auth)\n";
    text += "  Claude Code:   claude mcp add --transport http orchestrator " + url + "/mcp\n";
  } else {
    text += "  dashboard:     " + url + "/#token=" + token + "\n";
    text += "  token:         " + token + "  (kept in " + (state_dir / "http-token").string() + ")\n";
    // The token by reference (single quotes keep the shell off it), so that
    // it never lands in an editor's config file.
    text += "  Claude Code:   claude mcp add --transport http orchestrator " + url +
            "/mcp --header 'Authorization: Bearer ${ORCH_TOKEN}'\n";
    text += "                 with ORCH_TOKEN=\"$(cat " + (state_dir / "http-token").string() +
            ")\" in claude's environment\n";
  }
  text += "  other editors: mcp-orchestrator install cursor|vscode|claude-code --http --state-dir " +
          state_dir.string() + "\n";
  text += "  health:        " + url + "/healthz   metrics: " + url + "/metrics\n\n";
  std::fputs(text.c_str(), stderr);
}

}  // namespace

int App::run() {
  Impl& im = *impl_;
  const bool stdio_on = im.config.serve_stdio;
  int out_fd = -1;
  if (stdio_on) {
    auto taken = take_protocol_stdout();
    if (!taken) {
      spdlog::critical("{}", taken.error().message);
      return 1;
    }
    out_fd = *taken;
  }
  transport::StdioOptions options;
  options.max_message_bytes = im.config.max_message_bytes;
  transport::StdioTransport stdio(STDIN_FILENO, out_fd, options);

  std::unique_ptr<HttpService> http;
  if (!im.config.http_listen.empty()) {
    auto started = HttpService::start(im.config, *im.engine, *im.server);
    if (!started) {
      spdlog::critical("{}", started.error().message);
      im.engine->shutdown(std::chrono::milliseconds(0));
      if (out_fd >= 0) ::close(out_fd);
      spdlog::shutdown();
      return 1;
    }
    http = std::move(*started);
    print_http_banner(*http, im.config.state_dir);
  }

  // SIGTERM, SIGINT and SIGHUP (the terminal of `scripts/run` closed) are
  // blocked in every thread (main() did so before any thread started); this
  // thread takes them synchronously and ends the serving loop, so each gets
  // the orderly shutdown: running tasks stopped, nothing orphaned.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);  // our own wake-up at exit
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;  // guarded by stop_mu
  std::atomic<bool> done{false};
  std::jthread signals([&] {
    while (!done.load()) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR1) continue;
      spdlog::info("received SIG{}; shutting down", sigabbrev_np(sig));
      {
        std::lock_guard lock(stop_mu);
        stop_requested = true;
      }
      stop_cv.notify_all();
      stdio.stop();
    }
  });

  auto stats = im.engine->stats();
  spdlog::info("mcp-orchestrator {} serving MCP on {} (state {}, max {} concurrent tasks)", ORCH_VERSION,
               stdio_on && http ? "stdio and HTTP" : (http ? "HTTP" : "stdio"), stats.state_dir,
               stats.max_concurrent);
  std::unique_ptr<mcp::Session> session;
  if (stdio_on) {
    session = im.server->open_session(stdio.sink());
    auto ended = stdio.run([&](std::string_view line) { session->handle(line); },
                           [&](std::size_t bytes) { session->handle_oversized(bytes, stdio.max_message_bytes()); });
    if (!ended) spdlog::error("stdin: {}", ended.error().message);
    else spdlog::info("{}; shutting down", *ended == transport::RunEnd::Eof ? "stdin closed" : "stop requested");
  } else {
    std::unique_lock lock(stop_mu);
    stop_cv.wait(lock, [&] { return stop_requested; });
  }

  // Sessions first (their requests are answered or cancelled while the
  // engine still runs), then the engine, then the HTTP threads.
  if (http) http->close_sessions();
  if (session) session->close();
  im.engine->shutdown(std::chrono::milliseconds(im.config.shutdown_grace_ms));
  if (http) http->stop();
  session.reset();
  done = true;
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  if (out_fd >= 0) ::close(out_fd);
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace orch::app
