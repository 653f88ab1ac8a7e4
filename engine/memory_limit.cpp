#include "engine/memory_limit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace orch::engine {

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool write_text(const fs::path& p, const std::string& text) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

bool has_word(const std::string& list, const std::string& word) {
  std::istringstream in(list);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

// This process's cgroup v2 directory: the mount point of the cgroup2
// filesystem (from mountinfo; it may sit beside v1 hierarchies) joined with
// the "0::" path of /proc/self/cgroup. Empty when there is none.
std::string own_cgroup_dir() {
  std::string rel;
  {
    std::istringstream lines(read_text("/proc/self/cgroup"));
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("0::")) rel = line.substr(3);
    }
  }
  if (rel.empty()) return "";
  std::istringstream lines(read_text("/proc/self/mountinfo"));
  for (std::string line; std::getline(lines, line);) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream after(line.substr(dash + 3));
    std::string fstype;
    after >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream fields(line);
    std::string f, mount;
    for (int i = 0; i < 5 && (fields >> f); ++i) mount = f;
    return (fs::path(mount) / fs::path(rel).relative_path()).lexically_normal().string();
  }
  return "";
}

std::string find_usable_base() {
  const std::string base = own_cgroup_dir();
  if (base.empty()) return "";
  if (!has_word(read_text(fs::path(base) / "cgroup.controllers"), "memory")) return "";
  if (!has_word(read_text(fs::path(base) / "cgroup.subtree_control"), "memory") &&
      !write_text(fs::path(base) / "cgroup.subtree_control", "+memory")) {
    return "";  // our own group has processes in it (the "no internal processes" rule) or is not delegated
  }
  // A trial group proves both the permission and the controller.
  const fs::path probe = fs::path(base) / ("orch-probe-" + std::to_string(::getpid()));
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) return "";
  const bool ok = ::access((probe / "memory.max").c_str(), W_OK) == 0;
  ::rmdir(probe.c_str());
  return ok ? base : "";
}

constexpr std::string_view kOutOfMemoryPhrases[] = {
    "MemoryError",                   // Python
    "std::bad_alloc",                // C++
    "Cannot allocate memory",        // strerror(ENOMEM): C programs, shells
    "JavaScript heap out of memory", // Node
    "Fatal process out of memory",   // V8
    "runtime: out of memory",        // Go
    "memory allocation of",          // Rust ("memory allocation of N bytes failed")
    "Out of memory",
    "out of memory",
};

constexpr std::size_t kStderrTailBytes = 8192;

}  // namespace

std::optional<std::string> find_out_of_memory_message(std::string_view text) {
  for (std::string_view phrase : kOutOfMemoryPhrases) {
    if (text.find(phrase) != std::string_view::npos) return std::string(phrase);
  }
  return std::nullopt;
}

std::unique_ptr<MemoryLimiter> MemoryLimiter::create() {
  auto limiter = std::unique_ptr<MemoryLimiter>(new MemoryLimiter(find_usable_base()));
  spdlog::info("per-task memory limits use {}", limiter->mechanism());
  return limiter;
}

std::unique_ptr<MemoryLimiter> MemoryLimiter::rlimit_only() {
  return std::unique_ptr<MemoryLimiter>(new MemoryLimiter(""));
}

MemoryLimiter::~MemoryLimiter() {
  for (const auto& [id, dir] : groups_) ::rmdir(dir.c_str());
}

std::string MemoryLimiter::mechanism() const {
  return uses_cgroup() ? "cgroup v2 (" + base_ + ")" : "RLIMIT_AS (no cgroup v2 memory controller to delegate)";
}

std::string MemoryLimiter::prepare(const TaskId& id, std::int64_t memory_mb) {
  if (!uses_cgroup()) return "";
  const fs::path dir = fs::path(base_) / ("orch-" + id);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    spdlog::warn("task {}: cannot create cgroup {} ({}); using RLIMIT_AS", id, dir.string(), std::strerror(errno));
    return "";
  }
  if (!write_text(dir / "memory.max", std::to_string(memory_mb << 20))) {
    ::rmdir(dir.c_str());
    return "";
  }
  write_text(dir / "memory.swap.max", "0");  // absent without swap accounting: fine
  write_text(dir / "memory.oom.group", "1");  // the whole task goes, not one random process of it
  std::lock_guard lock(mu_);
  groups_[id] = dir.string();
  return dir.string();
}

std::optional<std::string> MemoryLimiter::judge_end(const TaskId& id, std::int64_t memory_mb,
                                                    std::optional<int> exit_code, std::optional<int> signal,
                                                    const fs::path& stderr_path) {
  std::string group;
  {
    std::lock_guard lock(mu_);
    if (auto it = groups_.find(id); it != groups_.end()) {
      group = it->second;
      groups_.erase(it);
    }
  }
  const std::string limit = std::to_string(memory_mb) + " MiB";
  if (!group.empty()) {
    std::istringstream events(read_text(fs::path(group) / "memory.events"));
    long oom_kills = 0;
    for (std::string key; events >> key;) {
      long value = 0;
      events >> value;
      if (key == "oom_kill") oom_kills = value;
    }
    ::rmdir(group.c_str());
    if (oom_kills > 0) {
      return "killed by the kernel at its memory limit of " + limit + " (cgroup v2 memory.max; " +
             std::to_string(oom_kills) + " oom kill(s))";
    }
    return std::nullopt;
  }
  if (exit_code && *exit_code == 0) return std::nullopt;
  if (!exit_code && !signal) return std::nullopt;
  int fd = ::open(stderr_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::string tail;
  if (::fstat(fd, &st) == 0) {
    const off_t from = st.st_size > static_cast<off_t>(kStderrTailBytes) ? st.st_size - static_cast<off_t>(kStderrTailBytes) : 0;
    tail.resize(static_cast<std::size_t>(st.st_size - from));
    ssize_t n = ::pread(fd, tail.data(), tail.size(), from);
    tail.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  ::close(fd);
  if (auto phrase = find_out_of_memory_message(tail)) {
    return "ran out of memory under its limit of " + limit + " (RLIMIT_AS): its stderr says \"" + *phrase + "\"";
  }
  return std::nullopt;
}

}  // namespace orch::engine
