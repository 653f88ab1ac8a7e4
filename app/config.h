// Config: the JSON config file (SPEC §5) and the command line merged into
// plain structs. Loading never half-succeeds: a bad file is refused with the
// file, the JSON path and what is wrong (SPEC §8).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "app/profile_config.h"
#include "common/result.h"
#include "engine/profile.h"

namespace orch::app {

struct Config {
  // limits
  int max_concurrent = 8;
  std::size_t queue_size = 10000;
  std::size_t max_message_bytes = 4u << 20;
  std::uint64_t stream_cap_bytes = 64ull << 20;
  // memory admission: no task starts while the system has less available (0: off)
  std::int64_t memory_floor_mb = 256;
  // retention of finished tasks
  std::size_t retention_count = 1000;
  std::int64_t retention_hours = 24 * 7;
  // stopping
  std::int64_t kill_grace_ms = 5000;      // SIGTERM → SIGKILL on cancel and timeout
  std::int64_t shutdown_grace_ms = 0;     // how long running tasks may finish at exit
  // health
  std::int64_t max_rss_mb = 0;            // 0: no limit
  std::int64_t health_interval_ms = 5000;  // how often the health check runs
  std::int64_t dispatcher_stall_sec = 60;  // the dispatcher loop silent this long: stuck
  std::int64_t worker_stall_sec = 300;     // one worker job running this long: stuck
  int restart_limit = 5;                   // automatic restarts per window (0: never)
  std::int64_t restart_window_sec = 600;
  // recovery: what task keepers do with running tasks when the server dies
  bool adopt_orphans = true;              // false: "kill" (stop them; the next start marks them lost)
  bool orphans_configured = false;        // the file set recovery.orphans (else a cluster defaults to "kill")
  // transports
  bool serve_stdio = true;                // false when only --http was asked for
  std::string http_listen;                // "ADDR:PORT"; empty: no HTTP
  bool no_auth = false;                   // HTTP without the bearer token (loopback only)
  std::size_t http_max_threads = 128;     // connections served at once (streams included)
  std::size_t http_max_sessions = 256;    // open MCP sessions over HTTP
  int http_header_timeout_sec = 10;       // a request's head must arrive within this (slowloris)
  // where
  std::filesystem::path state_dir;
  // The task store: a SQLite file (path or sqlite://path) or a postgresql://
  // URL (docs/STORE.md). Empty: <state_dir>/tasks.db.
  std::string store;
  // several servers on one PostgreSQL store (docs/CLUSTER.md)
  std::string cluster_node_name;          // empty: <hostname>-<hash of the state directory>
  std::int64_t cluster_lease_ms = 30000;  // a node silent this long is dead; its tasks go to others
  std::int64_t cluster_heartbeat_ms = 5000;  // lease renewal, rescue and poll interval
  std::string log_level = "info";
  // profiles and allow lists (SPEC §5, §7)
  std::vector<engine::Profile> profiles;
  SecurityConfig security;
};

// $XDG_CONFIG_HOME/mcp-orchestrator/config.json (or ~/.config/...).
std::filesystem::path default_config_path();
// $XDG_STATE_HOME/mcp-orchestrator (or ~/.local/state/...).
std::filesystem::path default_state_dir();

// Reads `path` into `config` (fields absent from the file keep their values).
// `required`: a missing file is an error (an explicit --config); otherwise a
// missing file means defaults.
Status load_config_file(const std::filesystem::path& path, bool required, Config& config);
// The config file's keys holding the values of `config`, as JSON text in the
// file's own shape (2-space indent, newline at the end). With a default
// Config these are the code's defaults: `--print-default-config` prints
// them, and docs/CONFIG.md is checked against them. profiles and security
// are left out (they have no defaults).
std::string config_file_text(const Config& config);
// Same, from text already read (for tests and fuzzing); `origin` names it.
Status parse_config_text(const std::string& text, const std::string& origin, Config& config);

}  // namespace orch::app
