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
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "app/http_service.h"
#include "app/node_link.h"
#include "app/restart.h"
#include "common/thread_name.h"
#include "engine/engine.h"
#include "engine/store.h"
#include "engine/health.h"
#include "engine/platform.h"
#include "engine/worker_pool.h"
#include "mcp/server.h"
#include "tools/native_tasks.h"
#include "tools/task_lifecycle_log.h"
#include "tools/task_prompts.h"
#include "tools/task_resources.h"
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

engine::EngineOptions engine_options(const Config& c, const engine::AllowList& allow,
                                     const std::filesystem::path& state_dir,
                                     std::vector<engine::RunningProcess> handed_over = {},
                                     engine::Lifeline lifeline = {}) {
  engine::EngineOptions o;
  o.state_dir = state_dir;
  o.store = c.store;
  o.max_concurrent = c.max_concurrent;
  o.queue_size = c.queue_size;
  o.stream_cap_bytes = c.stream_cap_bytes;
  o.kill_grace = std::chrono::milliseconds(c.kill_grace_ms);
  o.retention_count = c.retention_count;
  o.retention_age = std::chrono::hours(c.retention_hours);
  o.keeper_path = find_task_keeper();
  o.orphans = c.adopt_orphans ? engine::OrphanPolicy::Adopt : engine::OrphanPolicy::Kill;
  // Several servers on one store: a dead node's tasks run again elsewhere,
  // so by default its keepers stop them rather than run them twice.
  if (engine::is_postgres_url(c.store) && !c.orphans_configured) o.orphans = engine::OrphanPolicy::Kill;
  o.cluster.node_name = c.cluster_node_name;
  o.cluster.lease = std::chrono::milliseconds(c.cluster_lease_ms);
  o.cluster.heartbeat = std::chrono::milliseconds(c.cluster_heartbeat_ms);
  // What ran on another node is read from it over HTTP (app/node_link.h).
  o.cluster.fetch_output = fetch_node_output;
  o.cluster.fetch_result = fetch_node_result;
  o.profiles = c.profiles;
  o.allow = allow;
  o.memory_floor_mb = c.memory_floor_mb;
  o.handed_over = std::move(handed_over);
  o.inherited_lifeline = lifeline;
  return o;
}

Result<std::unique_ptr<engine::Engine>> open_engine(Config& config, bool state_dir_explicit,
                                                    std::vector<engine::RunningProcess> handed_over,
                                                    engine::Lifeline lifeline) {
  const char* server_path = std::getenv("PATH");
  auto allowed = engine::AllowList::create(config.security.allow_commands, config.security.allowed_dirs,
                                           server_path ? server_path : "/usr/local/bin:/usr/bin:/bin");
  if (!allowed) return make_error(allowed.error().code, "security: " + allowed.error().message);
  const engine::AllowList& allow = *allowed;
  // After a restart in place the state directory is the one the previous
  // image used (config.state_dir was set from the hand-over).
  if (!handed_over.empty() || lifeline.write_fd >= 0) {
    return engine::Engine::open(engine_options(config, allow, config.state_dir, std::move(handed_over), lifeline));
  }
  auto first = engine::Engine::open(engine_options(config, allow, config.state_dir));
  if (first || first.error().code != ErrorCode::Unavailable || state_dir_explicit ||
      !config.store.empty()) {
    return first;
  }
  for (int slot = 2; slot <= kStateSlots; ++slot) {
    auto dir = config.state_dir / "instances" / std::to_string(slot);
    auto next = engine::Engine::open(engine_options(config, allow, dir));
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

// ORCH_DEBUG_HOLD_MB=N (tests only, see docs/RESTART.md): the server holds N
// MiB of touched memory, so a test can push RSS over --max-rss-mb. Read once
// and removed from the environment, so the image a restart makes does not
// hold it again.
std::vector<char> debug_hold_memory() {
  const char* value = std::getenv("ORCH_DEBUG_HOLD_MB");
  if (!value) return {};
  long mb = std::strtol(value, nullptr, 10);
  ::unsetenv("ORCH_DEBUG_HOLD_MB");
  if (mb <= 0 || mb > 4096) return {};
  std::vector<char> held(static_cast<std::size_t>(mb) << 20, '\1');
  spdlog::warn("ORCH_DEBUG_HOLD_MB: holding {} MiB (a test knob)", mb);
  return held;
}

}  // namespace

struct App::Impl {
  Config config;
  std::optional<restart::HandOver> handed;  // set when this image is a restart in place
  std::vector<char> held_memory;            // ORCH_DEBUG_HOLD_MB
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<tools::ToolRegistry> tools;
  std::unique_ptr<tools::NativeTasks> native_tasks;  // before server: sessions hold these by reference
  std::unique_ptr<tools::TaskResources> resources;
  tools::TaskPrompts prompts;
  std::unique_ptr<mcp::Server> server;
};

App::App(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

App::~App() = default;

Result<std::unique_ptr<App>> App::create(Config config, bool state_dir_explicit) {
  auto taken = restart::take_from_environment();
  if (!taken) return make_error(taken.error().code, "restart in place failed: " + taken.error().message);
  std::optional<restart::HandOver> handed = std::move(*taken);
  if (handed && !handed->state_dir.empty()) config.state_dir = handed->state_dir;
  setup_logging(config);
  if (find_task_keeper().empty()) {
    spdlog::warn("mcp-orchestrator-keeper not found beside the binary: tasks run without a keeper, so a "
                 "crash of the server loses the running ones (they are retried per their policy)");
  }
  // Before the engine opens: it reads the environment its tasks inherit once.
  std::vector<char> held_memory = debug_hold_memory();
  auto engine = open_engine(config, state_dir_explicit || handed.has_value(),
                            handed ? std::move(handed->processes) : std::vector<engine::RunningProcess>{},
                            handed ? handed->lifeline : engine::Lifeline{});
  if (!engine) return engine.error();
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  impl->handed = std::move(handed);
  impl->held_memory = std::move(held_memory);
  impl->engine = std::move(*engine);
  if (impl->handed) impl->engine->set_restart_info(impl->handed->restarts);
  tools::ToolRegistryOptions tool_options;
  engine::Engine& engine_ref = *impl->engine;
  tool_options.profiles = [&engine_ref](const std::string& name, const std::map<std::string, std::string>& params,
                                        const std::optional<nlohmann::json>& input) {
    return engine_ref.expand_profile(name, params, input ? std::optional<std::string>(input->dump()) : std::nullopt);
  };
  impl->tools = std::make_unique<tools::ToolRegistry>(*impl->engine, std::move(tool_options));
  mcp::ServerInfo info{"mcp-orchestrator", "MCP Orchestrator", ORCH_VERSION,
                       tools::ToolRegistry::server_instructions()};
  engine::WorkerPool& pool = impl->engine->workers();
  mcp::Executor executor = [&pool](std::function<void()> job) {
    return pool.post([job = std::move(job)](std::stop_token) { job(); });
  };
  impl->native_tasks = std::make_unique<tools::NativeTasks>(*impl->engine, *impl->tools);
  impl->server = std::make_unique<mcp::Server>(std::move(info), *impl->tools, std::move(executor));
  impl->server->serve_tasks(*impl->native_tasks);
  impl->resources = std::make_unique<tools::TaskResources>(*impl->engine);
  impl->server->serve_resources(*impl->resources);
  impl->server->serve_prompts(impl->prompts);
  if (!impl->config.profiles.empty()) {
    std::string names;
    for (const auto& p : impl->config.profiles) names += (names.empty() ? "" : ", ") + p.name;
    spdlog::info("profiles: {}", names);
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

// Runs a restart in place from the main thread once the serving loop has
// returned: drains each layer in order, then execs (docs/RESTART.md). Returns
// only when the exec failed; by then nothing is served any more.
int restart_in_place(const std::string& reason, const Config& config, engine::Engine& engine,
                     engine::HealthMonitor& monitor, HttpService* http, transport::StdioTransport* stdio,
                     mcp::Session* session, int out_fd) {
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + std::chrono::seconds(10);
  auto before = engine.stats().restarts;
  restart::HandOver h;
  h.restarts.count = before.count + 1;
  h.restarts.last_reason = reason;
  h.restarts.last_at_ms = to_unix_ms(std::chrono::system_clock::now());
  h.state_dir = config.state_dir.string();
  monitor.stop();
  h.automatic_ms = monitor.recent_restarts();
  spdlog::warn("restart in place #{} ({}): draining", h.restarts.count, reason);
  // Long-polls (stdio and HTTP) answer now with the task's current state.
  engine.begin_drain();
  if (http) {
    auto released = http->release_for_restart(deadline);
    if (!released) {
      spdlog::critical("restart in place: {}", released.error().message);
      return 1;
    }
    h.listen_fd = released->listen_fd;
    h.http_sessions = std::move(released->sessions);
  }
  if (session) {
    // Reading stopped before this; every request already read is answered.
    session->close();
    h.stdio = true;
    h.stdio_session = session->snapshot();
    std::string unread = stdio->take_unread();
    if (!unread.empty()) {
      auto fd = restart::make_memfd("orch-stdin", unread);
      if (!fd) {
        spdlog::critical("restart in place: the unread stdin bytes cannot be kept: {}", fd.error().message);
        return 1;
      }
      h.stdin_fd = *fd;
    }
  }
  h.processes = engine.hand_over();
  h.lifeline = engine.release_lifeline();
  spdlog::info("restart in place #{}: drained in {} ms ({} running tasks, {} HTTP sessions{}); exec", h.restarts.count,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count(),
               h.processes.size(), h.http_sessions.size(), h.stdin_fd >= 0 ? ", unread stdin bytes" : "");
  spdlog::default_logger()->flush();
  // The protocol's stdout goes back to fd 1 for the new image (which moves
  // it aside again); our replies were written with write(2), nothing is buffered.
  if (out_fd >= 0 && ::dup2(out_fd, STDOUT_FILENO) < 0) {
    spdlog::critical("restart in place: cannot restore stdout: {}", std::strerror(errno));
    return 1;
  }
  Error failed = restart::exec_self(h);
  spdlog::critical("restart in place failed: {}; the server stops", failed.message);
  return 1;
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
  if (im.handed && im.handed->stdin_fd >= 0) {
    auto unread = restart::read_and_close(im.handed->stdin_fd);
    if (unread) options.initial_input = std::move(*unread);
    else spdlog::error("restart: the unread stdin bytes were lost: {}", unread.error().message);
  }
  transport::StdioTransport stdio(STDIN_FILENO, out_fd, options);

  // A stop (SIGTERM, SIGINT, stdin EOF) or a restart in place (SIGHUP, POST
  // /admin/restart, the health check): whichever comes first wins.
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;  // guarded by stop_mu
  std::string restart_reason;   // guarded by stop_mu; non-empty: restart instead of stopping
  auto request = [&](std::string reason) {
    {
      std::lock_guard lock(stop_mu);
      if (stop_requested) return false;
      stop_requested = true;
      restart_reason = std::move(reason);
    }
    stop_cv.notify_all();
    stdio.stop();
    return true;
  };
  auto request_restart = [&](const std::string& reason) {
    if (auto ready = restart::preflight(); !ready) {
      spdlog::error("{}", ready.error().message);
      return false;
    }
    return request(reason);
  };

  std::unique_ptr<HttpService> http;
  if (!im.config.http_listen.empty()) {
    HttpServiceHooks hooks;
    if (im.handed) {
      hooks.adopt_fd = im.handed->listen_fd;
      hooks.sessions = im.handed->http_sessions;
    }
    hooks.request_restart = request_restart;
    auto started = HttpService::start(im.config, *im.engine, *im.server, std::move(hooks));
    if (!started) {
      spdlog::critical("{}", started.error().message);
      im.engine->shutdown(std::chrono::milliseconds(0));
      if (out_fd >= 0) ::close(out_fd);
      spdlog::shutdown();
      return 1;
    }
    http = std::move(*started);
    if (!im.handed) print_http_banner(*http, im.config.state_dir);
    // Other nodes read what runs here through this URL, with this token.
    if (im.engine->clustered()) {
      im.engine->advertise(advertised_url(http->base_url(), this_host_name()), http->token());
    }
  }

  // SIGTERM and SIGINT stop in order; SIGHUP restarts in place. They are
  // blocked in every thread (main() did so before any thread started); this
  // thread takes them synchronously. `scripts/run` keeps its server out of
  // the terminal's session and turns the terminal's SIGHUP into SIGTERM.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);  // our own wake-up at exit
  std::atomic<bool> done{false};
  // A signal that arrives once a restart is under way is raised again and left
  // pending (it stays blocked): it survives the exec, and the new image acts on it.
  std::jthread signals([&] {
    name_this_thread("orch-signals");
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (done.load()) {
        if (sig != SIGUSR1) ::kill(::getpid(), sig);
        return;
      }
      if (sig == SIGUSR1) continue;
      if (sig == SIGHUP) spdlog::info("received SIGHUP; restarting in place");
      else spdlog::info("received SIG{}; shutting down", sigabbrev_np(sig));
      if (sig == SIGHUP ? request_restart("SIGHUP") : request("")) continue;
      bool restarting;
      {
        std::lock_guard lock(stop_mu);
        restarting = !restart_reason.empty();
      }
      if (restarting && sig != SIGHUP) {
        ::kill(::getpid(), sig);  // for the next image
        return;
      }
    }
  });

  engine::HealthOptions hopts;
  hopts.max_rss_kb = im.config.max_rss_mb * 1024;
  hopts.interval = std::chrono::milliseconds(im.config.health_interval_ms);
  hopts.dispatcher_stall = std::chrono::seconds(im.config.dispatcher_stall_sec);
  hopts.worker_stall = std::chrono::seconds(im.config.worker_stall_sec);
  hopts.restart_limit = im.config.restart_limit;
  hopts.restart_window = std::chrono::seconds(im.config.restart_window_sec);
  engine::Engine& engine = *im.engine;
  engine::HealthMonitor monitor(
      hopts,
      [&engine] {
        engine::HealthSample sample;
        engine::platform::release_free_memory();  // compare live memory with the limit, not the allocator's cache
        sample.rss_kb = engine.stats().rss_kb;
        auto beat = engine.heartbeat();
        sample.dispatcher_idle_ms = beat.dispatcher_idle_ms;
        sample.oldest_job_ms = beat.oldest_job_ms;
        sample.store = engine.probe_store();
        return sample;
      },
      engine::RestartBudget(hopts.restart_limit, hopts.restart_window,
                            im.handed ? im.handed->automatic_ms : std::vector<std::int64_t>{}),
      SystemClock::instance(), [&](const std::string& reason) { request_restart("health: " + reason); },
      [&engine](const engine::HealthView& view) { engine.record_health(view); });
  engine.record_health(monitor.view());
  monitor.start();

  auto stats = im.engine->stats();
  spdlog::info("mcp-orchestrator {} serving MCP on {} (state {}, store {}, max {} concurrent tasks)", ORCH_VERSION,
               stdio_on && http ? "stdio and HTTP" : (http ? "HTTP" : "stdio"), stats.state_dir, stats.store,
               stats.max_concurrent);
  std::unique_ptr<mcp::Session> session;
  if (stdio_on) {
    session = im.server->open_session(stdio.sink());
    if (im.handed && im.handed->stdio) session->restore(im.handed->stdio_session);
  }
  // Task lifecycle events as MCP log messages, to every session (each filters
  // by the level its client set). Stopped before the sessions close.
  std::optional<tools::TaskLifecycleLog> lifecycle;
  lifecycle.emplace(
      engine,
      [&](mcp::LogLevel level, const nlohmann::json& data) {
        if (session) session->log(level, "tasks", data);
        if (http) http->log(level, "tasks", data);
      },
      [&](mcp::LogLevel level) { return (session && session->hears(level)) || (http && http->hears(level)); });
  if (im.handed) {
    const double ms = static_cast<double>(restart::monotonic_ns() - im.handed->exec_at_ns) / 1e6;
    spdlog::info("restart in place #{} done ({}): exec → serving {:.1f} ms", im.handed->restarts.count,
                 im.handed->restarts.last_reason, ms);
  }
  if (stdio_on) {
    // The requests of one read are a batch: a burst of submits shares one commit.
    auto ended = stdio.run([&](std::string_view line) { session->handle_in_batch(line); },
                           [&](std::size_t bytes) { session->handle_oversized(bytes, stdio.max_message_bytes()); },
                           [&] { session->end_batch(); });
    if (!ended) spdlog::error("stdin: {}", ended.error().message);
    else if (*ended == transport::RunEnd::Eof) spdlog::info("stdin closed; shutting down");
    if (ended && *ended == transport::RunEnd::Eof) request("");
  } else {
    std::unique_lock lock(stop_mu);
    stop_cv.wait(lock, [&] { return stop_requested; });
  }
  std::string reason;
  {
    std::lock_guard lock(stop_mu);
    stop_requested = true;  // a restart asked for after EOF comes too late
    reason = restart_reason;
  }
  done = true;
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  lifecycle.reset();
  if (!reason.empty()) {
    int rc = restart_in_place(reason, im.config, engine, monitor, http.get(), stdio_on ? &stdio : nullptr,
                              session.get(), out_fd);
    im.native_tasks.reset();  // their watchers read the engine
    im.resources.reset();
    im.engine.reset();  // after a hand-over it stops nothing
    if (out_fd >= 0) ::close(out_fd);
    spdlog::shutdown();
    return rc;
  }
  monitor.stop();

  // Sessions first (their requests are answered or cancelled while the
  // engine still runs), then the engine, then the HTTP threads.
  if (http) http->close_sessions();
  if (session) session->close();
  im.engine->shutdown(std::chrono::milliseconds(im.config.shutdown_grace_ms));
  if (http) http->stop();
  session.reset();
  if (out_fd >= 0) ::close(out_fd);
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace orch::app
