#include "app/cli.h"

#include <CLI/CLI.hpp>

#include "transport/http_server.h"

namespace orch::app {

namespace {

const char* kDescription =
    "mcp-orchestrator: a Model Context Protocol server that runs builds, test suites and AI-agent\n"
    "CLIs in the background and in parallel, and keeps every task in an embedded store.\n"
    "With no transport flag it serves MCP over stdio, which is how editors start it.\n";

const char* kFooter =
    "Tools: submitTask, getStatus, getResult, cancelTask, listTasks.\n"
    "Files: the config file (default $XDG_CONFIG_HOME/mcp-orchestrator/config.json) and the state\n"
    "directory (default $XDG_STATE_HOME/mcp-orchestrator: tasks.db, spool/, logs/).\n"
    "Register with an editor (prints the entry; --write merges it into the editor's config):\n"
    "  mcp-orchestrator install claude-code|cursor|vscode|claude-desktop [--scope user|project] [--http] [--write]\n"
    "A running HTTP server (--http) is also driven from the shell:\n"
    "  mcp-orchestrator submit|status|result|cancel|list|logs|restart ...   (each with --help)\n";

}  // namespace

Result<ListenAddress> parse_listen_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return make_error(ErrorCode::InvalidArgument,
                      "expected ADDR:PORT such as 127.0.0.1:8765 (port 0 picks a free one), got \"" + text + "\"");
  }
  ListenAddress out;
  out.host = text.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  const std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return make_error(ErrorCode::InvalidArgument, "the port must be a number from 0 to 65535, got \"" + port + "\"");
  }
  out.port = std::stoi(port);
  return out;
}

CommandLine parse_command_line(int argc, char** argv, const std::string& version) {
  CommandLine cl;
  CLI::App cli{kDescription, "mcp-orchestrator"};
  cli.footer(kFooter);
  cli.set_version_flag("--version", "mcp-orchestrator " + version);

  bool stdio = false;
  std::string config_path;
  std::string state_dir;
  std::string store;
  std::string node_name;
  std::string http;
  int max_concurrent = 0;
  std::int64_t max_rss_mb = -1;
  std::string log_level;
  std::size_t max_message_bytes = 0;
  std::int64_t shutdown_grace_sec = -1;
  std::int64_t kill_grace_sec = -1;
  std::string orphans;

  bool print_default_config = false;
  cli.add_flag("--print-default-config", print_default_config,
               "Print the config file with every key at its default, and exit");
  cli.add_flag("--stdio", stdio, "Serve MCP over stdin/stdout (the default)");
  bool no_auth = false;
  cli.add_option("--http", http,
                 "Serve Streamable HTTP on ADDR:PORT (/mcp, /healthz, /metrics, dashboard at /); "
                 "port 0 picks a free one. Alone it serves HTTP only; add --stdio for both");
  cli.add_flag("--no-auth", no_auth, "HTTP without the bearer token (only on a loopback address)");
  cli.add_option("--config", config_path, "JSON config file (profiles, limits, security)");
  cli.add_option("--state-dir", state_dir, "Directory for the task store, output spool and logs");
  cli.add_option("--store", store, "Task store: a SQLite file (path or sqlite://path; default <state-dir>/tasks.db) or a postgresql:// URL");
  cli.add_option("--node-name", node_name, "This server's name among the servers sharing a PostgreSQL store (default <hostname>-<hash of the state directory>)");
  cli.add_option("--max-concurrent", max_concurrent, "Task processes running at once")
      ->check(CLI::Range(1, 4096));
  cli.add_option("--max-rss-mb", max_rss_mb, "The server's own memory limit: above it the health check restarts the server in place (0: none)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 24));
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  cli.add_option("--max-message-bytes", max_message_bytes, "Largest accepted JSON-RPC message")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));
  cli.add_option("--shutdown-grace-sec", shutdown_grace_sec,
                 "At exit, how long running tasks may finish before they are stopped")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3600}));
  cli.add_option("--kill-grace-sec", kill_grace_sec,
                 "On cancel or timeout, seconds between SIGTERM and SIGKILL")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{600}));

  cli.add_option("--orphans", orphans,
                 "When the server dies, running tasks: adopt (keep running; the next start follows them "
                 "to their end, the default) or kill")
      ->check(CLI::IsMember({"adopt", "kill"}));

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    cl.exit_code = cli.exit(e, out, err);
    cl.output = out.str() + err.str();
    cl.action = CommandLine::Action::Exit;
    return cl;
  }

  auto usage_error = [&](const std::string& message) {
    cl.action = CommandLine::Action::Exit;
    cl.exit_code = 2;
    cl.output = "mcp-orchestrator: " + message + "\n";
    return cl;
  };
  if (print_default_config) {
    cl.action = CommandLine::Action::Exit;
    cl.output = config_file_text(Config{});
    return cl;
  }
  if (no_auth && http.empty()) return usage_error("--no-auth applies to --http only");

  Config config;
  bool explicit_config = !config_path.empty();
  std::filesystem::path path = explicit_config ? std::filesystem::path(config_path) : default_config_path();
  if (auto st = load_config_file(path, explicit_config, config); !st) {
    return usage_error("bad config: " + st.error().message);
  }
  if (!state_dir.empty()) {
    config.state_dir = state_dir;
    cl.state_dir_explicit = true;
  } else {
    config.state_dir = default_state_dir();
  }
  if (!store.empty()) config.store = store;
  if (!node_name.empty()) config.cluster_node_name = node_name;
  if (max_concurrent > 0) config.max_concurrent = max_concurrent;
  if (max_rss_mb >= 0) config.max_rss_mb = max_rss_mb;
  if (!log_level.empty()) config.log_level = log_level;
  if (max_message_bytes > 0) config.max_message_bytes = max_message_bytes;
  if (shutdown_grace_sec >= 0) config.shutdown_grace_ms = shutdown_grace_sec * 1000;
  if (kill_grace_sec >= 0) config.kill_grace_ms = kill_grace_sec * 1000;
  if (!orphans.empty()) config.adopt_orphans = orphans == "adopt";
  if (!http.empty()) {
    auto endpoint = parse_listen_address(http);
    if (!endpoint) return usage_error("--http: " + endpoint.error().message);
    if (no_auth && !transport::is_loopback_host(endpoint->host)) {
      return usage_error("--no-auth is allowed only on a loopback address (127.0.0.1, ::1, localhost); " +
                         endpoint->host + " is reachable from other machines");
    }
    config.http_listen = http;
    config.no_auth = no_auth;
    config.serve_stdio = stdio;
  }
  cl.config = std::move(config);
  return cl;
}

}  // namespace orch::app
