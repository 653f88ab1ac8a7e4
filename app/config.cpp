#include "app/config.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace orch::app {

namespace {

using nlohmann::json;

std::filesystem::path home_dir() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::filesystem::path(home) : std::filesystem::path(".");
}

std::filesystem::path xdg_dir(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  if (v && *v == '/') return std::filesystem::path(v);
  return home_dir() / fallback;
}

// Errors carry where they are: "config.json: limits.maxConcurrent: must be ...".
class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  Error error(const std::string& path, const std::string& what) const {
    return make_error(ErrorCode::InvalidArgument, origin_ + ": " + path + ": " + what);
  }

  Status only_keys(const json& obj, const std::string& path, const std::set<std::string>& allowed) const {
    for (const auto& [key, value] : obj.items()) {
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return error(path.empty() ? key : path + "." + key, "unknown key (allowed: " + list + ")");
      }
    }
    return {};
  }

  template <typename T>
  Status integer(const json& obj, const std::string& parent, const char* key, std::int64_t min,
                 std::int64_t max, T& out) const {
    auto it = obj.find(key);
    if (it == obj.end()) return {};
    std::string path = parent + "." + key;
    if (!it->is_number_integer()) return error(path, "must be an integer, got " + it->dump());
    auto v = it->get<std::int64_t>();
    if (v < min || v > max) {
      return error(path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                             ", got " + std::to_string(v));
    }
    out = static_cast<T>(v);
    return {};
  }

 private:
  std::string origin_;
};

}  // namespace

std::filesystem::path default_config_path() {
  return xdg_dir("XDG_CONFIG_HOME", ".config") / "mcp-orchestrator" / "config.json";
}

std::filesystem::path default_state_dir() {
  return xdg_dir("XDG_STATE_HOME", ".local/state") / "mcp-orchestrator";
}

Status parse_config_text(const std::string& text, const std::string& origin, Config& config) {
  Reader r(origin);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    return make_error(ErrorCode::InvalidArgument,
                      origin + ": not valid JSON (byte " + std::to_string(e.byte) + "): " + e.what());
  } catch (const json::exception& e) {
    // A number past a double's range (1e400) is out_of_range, not a parse error.
    return make_error(ErrorCode::InvalidArgument, origin + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) return r.error("$", "the config must be a JSON object");
  if (auto st = r.only_keys(root, "", {"limits", "retention", "output", "health", "recovery", "cluster", "profiles",
                                          "security", "store"}); !st) {
    return st;
  }
  Config next = config;
  if (auto it = root.find("limits"); it != root.end()) {
    if (!it->is_object()) return r.error("limits", "must be an object");
    if (auto st = r.only_keys(*it, "limits", {"maxConcurrent", "queueSize", "maxMessageBytes", "httpThreads",
                                              "httpSessions", "httpHeaderTimeoutSec", "memoryFloorMb"});
        !st) {
      return st;
    }
    if (auto st = r.integer(*it, "limits", "httpThreads", 4, 4096, next.http_max_threads); !st) return st;
    if (auto st = r.integer(*it, "limits", "httpSessions", 1, 100'000, next.http_max_sessions); !st) return st;
    if (auto st = r.integer(*it, "limits", "httpHeaderTimeoutSec", 1, 3600, next.http_header_timeout_sec); !st) {
      return st;
    }
    if (auto st = r.integer(*it, "limits", "maxConcurrent", 1, 4096, next.max_concurrent); !st) return st;
    if (auto st = r.integer(*it, "limits", "queueSize", 1, 10'000'000, next.queue_size); !st) return st;
    if (auto st = r.integer(*it, "limits", "memoryFloorMb", 0, 1 << 24, next.memory_floor_mb); !st) return st;
    if (auto st = r.integer(*it, "limits", "maxMessageBytes", 1024, 1ll << 30, next.max_message_bytes); !st) {
      return st;
    }
  }
  if (auto it = root.find("retention"); it != root.end()) {
    if (!it->is_object()) return r.error("retention", "must be an object");
    if (auto st = r.only_keys(*it, "retention", {"count", "maxAgeHours"}); !st) return st;
    if (auto st = r.integer(*it, "retention", "count", 0, 10'000'000, next.retention_count); !st) return st;
    if (auto st = r.integer(*it, "retention", "maxAgeHours", 0, 24 * 3650, next.retention_hours); !st) return st;
  }
  if (auto it = root.find("output"); it != root.end()) {
    if (!it->is_object()) return r.error("output", "must be an object");
    if (auto st = r.only_keys(*it, "output", {"streamCapMb"}); !st) return st;
    std::int64_t mb = static_cast<std::int64_t>(next.stream_cap_bytes >> 20);
    if (auto st = r.integer(*it, "output", "streamCapMb", 1, 1 << 20, mb); !st) return st;
    next.stream_cap_bytes = static_cast<std::uint64_t>(mb) << 20;
  }
  if (auto it = root.find("health"); it != root.end()) {
    if (!it->is_object()) return r.error("health", "must be an object");
    if (auto st = r.only_keys(*it, "health", {"maxRssMb", "intervalMs", "dispatcherStallSec", "workerStallSec",
                                              "restartLimit", "restartWindowSec"});
        !st) {
      return st;
    }
    if (auto st = r.integer(*it, "health", "maxRssMb", 0, 1 << 24, next.max_rss_mb); !st) return st;
    if (auto st = r.integer(*it, "health", "intervalMs", 50, 3'600'000, next.health_interval_ms); !st) return st;
    if (auto st = r.integer(*it, "health", "dispatcherStallSec", 5, 86'400, next.dispatcher_stall_sec); !st) return st;
    if (auto st = r.integer(*it, "health", "workerStallSec", 60, 86'400, next.worker_stall_sec); !st) return st;
    if (auto st = r.integer(*it, "health", "restartLimit", 0, 1000, next.restart_limit); !st) return st;
    if (auto st = r.integer(*it, "health", "restartWindowSec", 1, 86'400, next.restart_window_sec); !st) return st;
  }
  if (auto it = root.find("recovery"); it != root.end()) {
    if (!it->is_object()) return r.error("recovery", "must be an object");
    if (auto st = r.only_keys(*it, "recovery", {"orphans"}); !st) return st;
    if (auto o = it->find("orphans"); o != it->end()) {
      if (!o->is_string() || (*o != "adopt" && *o != "kill")) {
        return r.error("recovery.orphans", "must be \"adopt\" (tasks outlive a crash and the next start "
                                           "follows them) or \"kill\" (they are stopped with the server)");
      }
      next.adopt_orphans = *o == "adopt";
      next.orphans_configured = true;
    }
  }
  if (auto it = root.find("cluster"); it != root.end()) {
    if (!it->is_object()) return r.error("cluster", "must be an object");
    if (auto st = r.only_keys(*it, "cluster", {"nodeName", "leaseMs", "heartbeatMs"}); !st) return st;
    if (auto n = it->find("nodeName"); n != it->end()) {
      if (!n->is_string()) return r.error("cluster.nodeName", "must be a string (empty: <hostname>-<hash of the state directory>)");
      next.cluster_node_name = n->get<std::string>();
    }
    if (auto st = r.integer(*it, "cluster", "leaseMs", 500, 3'600'000, next.cluster_lease_ms); !st) return st;
    if (auto st = r.integer(*it, "cluster", "heartbeatMs", 50, 600'000, next.cluster_heartbeat_ms); !st) return st;
    if (next.cluster_heartbeat_ms * 2 > next.cluster_lease_ms) {
      return r.error("cluster.heartbeatMs", "must be at most half of cluster.leaseMs (" +
                                                std::to_string(next.cluster_lease_ms) +
                                                "), so that one late heartbeat does not lose the lease");
    }
  }
  if (auto it = root.find("store"); it != root.end()) {
    if (!it->is_string()) return r.error("store", "must be a string: a SQLite file or a postgresql:// URL");
    next.store = it->get<std::string>();
  }
  if (auto it = root.find("profiles"); it != root.end()) {
    if (auto st = parse_profiles(*it, origin + ": ", next.profiles); !st) return st;
  }
  if (auto it = root.find("security"); it != root.end()) {
    if (auto st = parse_security(*it, origin + ": ", next.security); !st) return st;
  }
  config = next;
  return {};
}

std::string config_file_text(const Config& config) {
  nlohmann::ordered_json out;
  out["limits"] = {{"maxConcurrent", config.max_concurrent},
                   {"queueSize", config.queue_size},
                   {"maxMessageBytes", config.max_message_bytes},
                   {"httpThreads", config.http_max_threads},
                   {"httpSessions", config.http_max_sessions},
                   {"httpHeaderTimeoutSec", config.http_header_timeout_sec},
                   {"memoryFloorMb", config.memory_floor_mb}};
  out["output"] = {{"streamCapMb", config.stream_cap_bytes >> 20}};
  out["retention"] = {{"count", config.retention_count}, {"maxAgeHours", config.retention_hours}};
  out["health"] = {{"maxRssMb", config.max_rss_mb},
                   {"intervalMs", config.health_interval_ms},
                   {"dispatcherStallSec", config.dispatcher_stall_sec},
                   {"workerStallSec", config.worker_stall_sec},
                   {"restartLimit", config.restart_limit},
                   {"restartWindowSec", config.restart_window_sec}};
  out["recovery"] = {{"orphans", config.adopt_orphans ? "adopt" : "kill"}};
  out["store"] = config.store;
  out["cluster"] = {{"nodeName", config.cluster_node_name},
                    {"leaseMs", config.cluster_lease_ms},
                    {"heartbeatMs", config.cluster_heartbeat_ms}};
  return out.dump(2) + "\n";
}

Status load_config_file(const std::filesystem::path& path, bool required, Config& config) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (!required) return {};
    return make_error(ErrorCode::NotFound, path.string() + ": config file not found");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::Io, path.string() + ": cannot read the config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config_text(text.str(), path.string(), config);
}

}  // namespace orch::app
