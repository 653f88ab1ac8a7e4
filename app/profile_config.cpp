#include "app/profile_config.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace orch::app {

namespace {

using nlohmann::json;

class Section {
 public:
  explicit Section(std::string where) : where_(std::move(where)) {}

  Error error(const std::string& path, const std::string& what) const {
    return make_error(ErrorCode::InvalidArgument, where_ + path + ": " + what);
  }

  Status only_keys(const json& obj, const std::string& path, const std::set<std::string>& allowed) const {
    for (const auto& [key, value] : obj.items()) {
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return error(path + "." + key, "unknown key (allowed: " + list + ")");
      }
    }
    return {};
  }

  template <typename T>
  Status integer(const json& obj, const std::string& path, const char* key, std::int64_t min, std::int64_t max,
                 T& out) const {
    auto it = obj.find(key);
    if (it == obj.end()) return {};
    if (!it->is_number_integer()) return error(path + "." + key, "must be an integer, got " + it->dump());
    auto v = it->get<std::int64_t>();
    if (v < min || v > max) {
      return error(path + "." + key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                                         ", got " + std::to_string(v));
    }
    out = static_cast<T>(v);
    return {};
  }

  // A positive number of seconds, as milliseconds.
  Status seconds(const json& obj, const std::string& path, const char* key, double max, std::int64_t& out_ms) const {
    auto it = obj.find(key);
    if (it == obj.end()) return {};
    if (!it->is_number() || it->get<double>() <= 0 || it->get<double>() > max) {
      return error(path + "." + key, "must be a number of seconds above 0 and at most " +
                                         std::to_string(static_cast<long long>(max)) + ", got " + it->dump());
    }
    out_ms = std::max<std::int64_t>(1, std::llround(it->get<double>() * 1000));
    return {};
  }

  Result<std::vector<std::string>> strings(const json& value, const std::string& path, bool allow_empty_list) const {
    if (!value.is_array()) return error(path, "must be an array of strings");
    if (!allow_empty_list && value.empty()) return error(path, "must not be empty");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (!value[i].is_string()) return error(path + "[" + std::to_string(i) + "]", "must be a string, got " + value[i].dump());
      const std::string s = value[i].get<std::string>();
      if (s.find('\0') != std::string::npos) return error(path + "[" + std::to_string(i) + "]", "must not contain NUL");
      out.push_back(s);
    }
    return out;
  }

 private:
  std::string where_;
};

bool valid_profile_name(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

Status parse_retry(const Section& s, const json& v, const std::string& path, engine::RetryPolicy& retry) {
  if (!v.is_object()) return s.error(path, "must be an object {maxAttempts, backoff, delayMs, maxDelayMs}");
  if (auto st = s.only_keys(v, path, {"maxAttempts", "backoff", "delayMs", "maxDelayMs"}); !st) return st;
  if (auto st = s.integer(v, path, "maxAttempts", 1, 100, retry.max_attempts); !st) return st;
  if (auto st = s.integer(v, path, "delayMs", 0, 7ll * 24 * 3600 * 1000, retry.delay_ms); !st) return st;
  if (auto st = s.integer(v, path, "maxDelayMs", 0, 7ll * 24 * 3600 * 1000, retry.max_delay_ms); !st) return st;
  if (auto b = v.find("backoff"); b != v.end()) {
    if (!b->is_string() || (*b != "fixed" && *b != "exponential")) {
      return s.error(path + ".backoff", "must be \"fixed\" or \"exponential\"");
    }
    retry.backoff = *b == "fixed" ? engine::Backoff::Fixed : engine::Backoff::Exponential;
  }
  return {};
}

Status parse_one(const Section& s, const std::string& name, const json& v, engine::Profile& p) {
  const std::string path = "profiles." + name;
  if (!valid_profile_name(name)) {
    return s.error(path, "a profile name is 1-200 letters, digits, '-', '_' or '.'");
  }
  if (!v.is_object()) return s.error(path, "must be an object with at least \"argv\"");
  if (auto st = s.only_keys(v, path, {"argv", "mode", "description", "env", "cwd", "maxConcurrent", "timeoutSec",
                                      "retry", "rateLimit", "circuitBreaker", "memoryLimitMb", "cpuLimitSec",
                                      "openFilesLimit", "pool"});
      !st) {
    return st;
  }
  p.name = name;
  auto argv = v.find("argv");
  if (argv == v.end()) return s.error(path, "needs \"argv\": the program and its arguments, e.g. [\"claude\", \"-p\", \"{prompt}\"]");
  auto items = s.strings(*argv, path + ".argv", false);
  if (!items) return items.error();
  if (items->front().empty()) return s.error(path + ".argv[0]", "the program must not be empty");
  p.argv = std::move(*items);
  auto names = engine::argv_placeholders(p.argv);
  if (!names) return s.error(path + ".argv", names.error().message);
  if (auto m = v.find("mode"); m != v.end()) {
    if (!m->is_string() || (*m != "process" && *m != "pool")) {
      return s.error(path + ".mode", "must be \"process\" (one process per task, the default) or \"pool\" "
                                     "(long-lived JSON-lines workers, SPEC §6)");
    }
    p.mode = *m == "pool" ? engine::ProfileMode::Pool : engine::ProfileMode::Process;
  }
  if (auto d = v.find("description"); d != v.end() && !d->is_string()) return s.error(path + ".description", "must be a string");
  if (auto e = v.find("env"); e != v.end()) {
    if (!e->is_object()) return s.error(path + ".env", "must be an object of strings");
    for (const auto& [key, value] : e->items()) {
      if (!value.is_string()) return s.error(path + ".env." + key, "must be a string");
      if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos) {
        return s.error(path + ".env." + key, "is not a valid variable name");
      }
      p.env[key] = value.get<std::string>();
    }
  }
  if (auto c = v.find("cwd"); c != v.end()) {
    if (!c->is_string() || c->get<std::string>().empty()) return s.error(path + ".cwd", "must be a directory path");
    std::string dir = expand_home(c->get<std::string>());
    if (dir.front() != '/') return s.error(path + ".cwd", "must be absolute (or start with ~/)");
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return s.error(path + ".cwd", dir + " is not an existing directory");
    p.cwd = std::filesystem::path(dir).lexically_normal().string();
  }
  if (auto st = s.integer(v, path, "maxConcurrent", 1, 4096, p.max_concurrent); !st) return st;
  std::int64_t timeout_ms = 0;
  if (auto st = s.seconds(v, path, "timeoutSec", 7.0 * 24 * 3600, timeout_ms); !st) return st;
  if (timeout_ms > 0) p.timeout_ms = timeout_ms;
  if (auto r = v.find("retry"); r != v.end()) {
    engine::RetryPolicy retry;
    if (auto st = parse_retry(s, *r, path + ".retry", retry); !st) return st;
    p.retry = retry;
  }
  if (auto r = v.find("rateLimit"); r != v.end()) {
    const std::string rp = path + ".rateLimit";
    if (!r->is_object()) return s.error(rp, "must be an object {perMinute, burst}");
    if (auto st = s.only_keys(*r, rp, {"perMinute", "burst"}); !st) return st;
    auto pm = r->find("perMinute");
    if (pm == r->end() || !pm->is_number() || pm->get<double>() <= 0 || pm->get<double>() > 1e6) {
      return s.error(rp + ".perMinute", "must be a number of starts per minute above 0");
    }
    p.rate_limit.per_minute = pm->get<double>();
    if (auto st = s.integer(*r, rp, "burst", 1, 1'000'000, p.rate_limit.burst); !st) return st;
  }
  if (auto b = v.find("circuitBreaker"); b != v.end()) {
    const std::string bp = path + ".circuitBreaker";
    if (!b->is_object()) return s.error(bp, "must be an object {failures, cooldownSec}");
    if (auto st = s.only_keys(*b, bp, {"failures", "cooldownSec"}); !st) return st;
    if (!b->contains("failures")) return s.error(bp, "needs \"failures\": consecutive failures that open it");
    if (auto st = s.integer(*b, bp, "failures", 1, 1000, p.breaker.failures); !st) return st;
    if (auto st = s.seconds(*b, bp, "cooldownSec", 7.0 * 24 * 3600, p.breaker.cooldown_ms); !st) return st;
  }
  // A few MiB and descriptors are the task keeper's own (it sets the limits on itself first).
  if (auto st = s.integer(v, path, "memoryLimitMb", 16, 1 << 22, p.limits.memory_mb); !st) return st;
  if (auto st = s.integer(v, path, "cpuLimitSec", 1, 7ll * 24 * 3600, p.limits.cpu_sec); !st) return st;
  if (auto st = s.integer(v, path, "openFilesLimit", 16, 1 << 20, p.limits.open_files); !st) return st;
  auto pool = v.find("pool");
  if (p.mode == engine::ProfileMode::Process) {
    if (pool != v.end()) return s.error(path + ".pool", "is only for \"mode\": \"pool\"");
    return {};
  }
  if (!names->empty()) {
    return s.error(path + ".argv", "a pool's workers serve many tasks, so their argv cannot take "
                                   "{placeholders}; pass per-task values in the task's input");
  }
  if (p.limits.cpu_sec > 0 || p.limits.open_files > 0) {
    return s.error(path, "cpuLimitSec and openFilesLimit apply to one process per task; a pool's "
                         "memoryLimitMb is its workers' hard RSS limit, the others are not supported for pools");
  }
  if (pool != v.end()) {
    const std::string pp = path + ".pool";
    if (!pool->is_object()) return s.error(pp, "must be an object {min, max, maxTasksPerWorker, maxWorkerRssMb, idleTimeoutSec}");
    if (auto st = s.only_keys(*pool, pp, {"min", "max", "maxTasksPerWorker", "maxWorkerRssMb", "idleTimeoutSec"}); !st) {
      return st;
    }
    if (auto st = s.integer(*pool, pp, "min", 0, 256, p.pool.min); !st) return st;
    if (auto st = s.integer(*pool, pp, "max", 1, 256, p.pool.max); !st) return st;
    if (auto st = s.integer(*pool, pp, "maxTasksPerWorker", 1, 1'000'000'000, p.pool.max_tasks_per_worker); !st) return st;
    if (auto st = s.integer(*pool, pp, "maxWorkerRssMb", 1, 1 << 22, p.pool.max_worker_rss_mb); !st) return st;
    if (auto st = s.seconds(*pool, pp, "idleTimeoutSec", 7.0 * 24 * 3600, p.pool.idle_timeout_ms); !st) return st;
    if (p.pool.min > p.pool.max) return s.error(pp, "min (" + std::to_string(p.pool.min) + ") is above max (" + std::to_string(p.pool.max) + ")");
  }
  return {};
}

}  // namespace

std::string expand_home(const std::string& path) {
  if (path != "~" && !path.starts_with("~/")) return path;
  const char* home = std::getenv("HOME");
  if (!home || !*home) return path;
  return path == "~" ? std::string(home) : std::string(home) + path.substr(1);
}

Status parse_profiles(const json& section, const std::string& where, std::vector<engine::Profile>& out) {
  Section s(where);
  if (!section.is_object()) return s.error("profiles", "must be an object of named profiles");
  std::vector<engine::Profile> profiles;
  for (const auto& [name, value] : section.items()) {
    engine::Profile p;
    if (auto st = parse_one(s, name, value, p); !st) return st;
    profiles.push_back(std::move(p));
  }
  out = std::move(profiles);
  return {};
}

Status parse_security(const json& section, const std::string& where, SecurityConfig& out) {
  Section s(where);
  if (!section.is_object()) return s.error("security", "must be an object {allowCommands, allowedDirs}");
  if (auto st = s.only_keys(section, "security", {"allowCommands", "allowedDirs"}); !st) return st;
  SecurityConfig next;
  if (auto c = section.find("allowCommands"); c != section.end()) {
    auto items = s.strings(*c, "security.allowCommands", true);
    if (!items) return items.error();
    for (std::size_t i = 0; i < items->size(); ++i) {
      const std::string& e = (*items)[i];
      if (e != "*" && (e.empty() || (e.find('/') != std::string::npos && e.front() != '/'))) {
        return s.error("security.allowCommands[" + std::to_string(i) + "]",
                       "\"" + e + "\" must be \"*\", a program name (found on the server's PATH) or an absolute path");
      }
    }
    next.allow_commands = std::move(*items);
  }
  if (auto d = section.find("allowedDirs"); d != section.end()) {
    auto items = s.strings(*d, "security.allowedDirs", true);
    if (!items) return items.error();
    for (std::size_t i = 0; i < items->size(); ++i) {
      std::string dir = expand_home((*items)[i]);
      if (dir.empty() || dir.front() != '/') {
        return s.error("security.allowedDirs[" + std::to_string(i) + "]", "\"" + (*items)[i] + "\" must be absolute or start with ~");
      }
      next.allowed_dirs.push_back(dir);
    }
    if (next.allowed_dirs.empty()) {
      return s.error("security.allowedDirs", "an empty list would allow no directory at all; leave the key out to allow any");
    }
  }
  out = std::move(next);
  return {};
}

}  // namespace orch::app
