#include "engine/task_keeper.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

namespace orch::engine {

namespace {

constexpr std::string_view kKeeperName = "mcp-orchestrator-keeper";

constexpr std::string_view kind_word(KeeperStatus::Kind kind) {
  switch (kind) {
    case KeeperStatus::Kind::Exited: return "exit";
    case KeeperStatus::Kind::Signaled: return "signal";
    case KeeperStatus::Kind::SpawnError: return "spawn-error";
    case KeeperStatus::Kind::OrphanKilled: return "orphan-killed";
  }
  return "exit";
}

// Takes the next space-separated word off `text`.
std::string_view next_word(std::string_view& text) {
  std::size_t start = text.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    text = {};
    return {};
  }
  text.remove_prefix(start);
  std::size_t end = text.find(' ');
  std::string_view word = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end);
  return word;
}

template <typename Int>
bool parse_int(std::string_view word, Int& out) {
  if (word.empty()) return false;
  auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), out);
  return ec == std::errc() && ptr == word.data() + word.size();
}

void append_status_words(std::string& line, const KeeperStatus& status) {
  line += kind_word(status.kind);
  line += ' ';
  line += std::to_string(status.value);
  line += " rss ";
  line += std::to_string(status.peak_rss_kb);
  line += '\n';
}

// "<kind> <value> rss <kb>", the end of both forms of a record.
std::optional<KeeperStatus> parse_status_words(std::string_view text) {
  KeeperStatus status;
  const std::string_view kind = next_word(text);
  if (kind == "exit") status.kind = KeeperStatus::Kind::Exited;
  else if (kind == "signal") status.kind = KeeperStatus::Kind::Signaled;
  else if (kind == "spawn-error") status.kind = KeeperStatus::Kind::SpawnError;
  else if (kind == "orphan-killed") status.kind = KeeperStatus::Kind::OrphanKilled;
  else return std::nullopt;
  if (!parse_int(next_word(text), status.value)) return std::nullopt;
  if (next_word(text) != "rss" || !parse_int(next_word(text), status.peak_rss_kb)) return std::nullopt;
  if (!next_word(text).empty()) return std::nullopt;
  return status;
}

// A whole file's text, or empty when it cannot be read.
std::string read_whole(const std::filesystem::path& path) {
  std::string text;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace

std::string format_keeper_status(const KeeperStatus& status) {
  std::string line = "v1 ";
  append_status_words(line, status);
  return line;
}

std::optional<KeeperStatus> parse_keeper_status(std::string_view text) {
  if (text.empty() || text.back() != '\n') return std::nullopt;  // a whole line or nothing
  text.remove_suffix(1);
  if (next_word(text) != "v1") return std::nullopt;
  return parse_status_words(text);
}

std::string format_status_record(std::string_view task_id, int attempt, const KeeperStatus& status) {
  std::string line = "v1 ";
  line += task_id;
  line += ' ';
  line += std::to_string(attempt);
  line += ' ';
  append_status_words(line, status);
  return line;
}

std::optional<KeeperStatus> find_status_record(std::string_view log, std::string_view task_id, int attempt) {
  std::optional<KeeperStatus> found;
  while (!log.empty()) {
    const std::size_t end = log.find('\n');
    if (end == std::string_view::npos) break;  // a torn last line: no record
    std::string_view line = log.substr(0, end);
    log.remove_prefix(end + 1);
    if (next_word(line) != "v1" || next_word(line) != task_id) continue;
    int recorded_attempt = 0;
    if (!parse_int(next_word(line), recorded_attempt) || recorded_attempt != attempt) continue;
    if (auto status = parse_status_words(line)) found = status;
  }
  return found;
}

std::vector<std::filesystem::path> status_logs(const std::filesystem::path& spool_dir) {
  std::vector<std::filesystem::path> logs = {spool_dir / kKeeperStatusLog};
  std::error_code ec;
  const std::string prefix = std::string(kKeeperStatusLog) + ".";
  for (std::filesystem::directory_iterator it(spool_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(prefix)) logs.push_back(it->path());
  }
  return logs;
}

std::optional<KeeperStatus> read_keeper_status(const std::filesystem::path& spool_dir, const std::string& task_id,
                                               int attempt) {
  std::optional<KeeperStatus> found;
  for (const auto& log : status_logs(spool_dir)) {
    const std::string text = read_whole(log);
    if (auto status = find_status_record(text, task_id, attempt)) found = status;
  }
  if (found) return found;
  std::string legacy = read_whole(spool_dir / task_id / kKeeperStatusFile);
  if (legacy.size() > 128) return std::nullopt;
  return parse_keeper_status(legacy);
}

bool append_status_record(const std::string& spool_dir, std::string_view task_id, int attempt,
                          const KeeperStatus& status) {
  const std::string path = spool_dir + "/" + kKeeperStatusLog;
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // One write: appends to one file are not interleaved with other keepers'.
  const std::string line = format_status_record(task_id, attempt, status);
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

std::vector<std::string> keeper_command_line(const std::string& keeper_exe, const KeeperArgs& args) {
  std::vector<std::string> out = {keeper_exe,
                                  "--task", args.task_id,
                                  "--attempt", std::to_string(args.attempt),
                                  "--dir", args.task_dir,
                                  "--cap", std::to_string(args.cap_bytes),
                                  "--orphans", args.orphans == OrphanPolicy::Adopt ? "adopt" : "kill",
                                  "--grace-ms", std::to_string(args.grace_ms)};
  if (args.limits.memory_mb > 0) out.insert(out.end(), {"--memory-mb", std::to_string(args.limits.memory_mb)});
  if (args.limits.cpu_sec > 0) out.insert(out.end(), {"--cpu-sec", std::to_string(args.limits.cpu_sec)});
  if (args.limits.open_files > 0) out.insert(out.end(), {"--open-files", std::to_string(args.limits.open_files)});
  if (!args.cgroup.empty()) out.insert(out.end(), {"--cgroup", args.cgroup});
  out.insert(out.end(), {"--", args.exe});
  out.insert(out.end(), args.argv.begin(), args.argv.end());
  return out;
}

std::optional<KeeperArgs> parse_keeper_command_line(int argc, const char* const* argv, std::string& error) {
  KeeperArgs args;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--") break;
    if (i + 1 >= argc) {
      error = "option " + std::string(flag) + " needs a value";
      return std::nullopt;
    }
    const std::string_view value = argv[++i];
    bool ok = true;
    if (flag == "--task") args.task_id = value;
    else if (flag == "--attempt") ok = parse_int(value, args.attempt) && args.attempt >= 0;
    else if (flag == "--dir") args.task_dir = value;
    else if (flag == "--cap") ok = parse_int(value, args.cap_bytes);
    else if (flag == "--grace-ms") ok = parse_int(value, args.grace_ms) && args.grace_ms >= 0;
    else if (flag == "--memory-mb") ok = parse_int(value, args.limits.memory_mb) && args.limits.memory_mb > 0;
    else if (flag == "--cpu-sec") ok = parse_int(value, args.limits.cpu_sec) && args.limits.cpu_sec > 0;
    else if (flag == "--open-files") ok = parse_int(value, args.limits.open_files) && args.limits.open_files > 0;
    else if (flag == "--cgroup" && !value.empty() && value.front() == '/') args.cgroup = value;
    else if (flag == "--orphans" && value == "adopt") args.orphans = OrphanPolicy::Adopt;
    else if (flag == "--orphans" && value == "kill") args.orphans = OrphanPolicy::Kill;
    else ok = false;
    if (!ok) {
      error = "bad option " + std::string(flag) + " " + std::string(value);
      return std::nullopt;
    }
  }
  // argv[i] is "--"; then the program and at least its argv[0].
  if (i + 2 >= argc) {
    error = "expected -- <program> <argv0> [args...]";
    return std::nullopt;
  }
  if (args.task_id.empty() || args.task_dir.empty() || args.task_dir.front() != '/') {
    error = "--task and an absolute --dir are required";
    return std::nullopt;
  }
  args.exe = argv[i + 1];
  for (int k = i + 2; k < argc; ++k) args.argv.emplace_back(argv[k]);
  return args;
}

int apply_task_limits(pid_t pid, const TaskLimits& limits, const std::string& cgroup) {
  if (!cgroup.empty()) {
    const std::string procs = cgroup + "/cgroup.procs";
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    const std::string text = std::to_string(pid);
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int err = errno;
    ::close(fd);
    if (!ok) return err;
  }
  auto set = [pid](__rlimit_resource resource, rlim_t soft, rlim_t hard) {
    rlimit r{soft, hard};
    return ::prlimit(pid, resource, &r, nullptr) == 0 ? 0 : errno;
  };
  if (limits.memory_mb > 0 && cgroup.empty()) {
    const auto bytes = static_cast<rlim_t>(limits.memory_mb) << 20;
    if (int err = set(RLIMIT_AS, bytes, bytes)) return err;
  }
  if (limits.cpu_sec > 0) {
    const auto sec = static_cast<rlim_t>(limits.cpu_sec);
    if (int err = set(RLIMIT_CPU, sec, sec + 1)) return err;
  }
  if (limits.open_files > 0) {
    const auto n = static_cast<rlim_t>(limits.open_files);
    if (int err = set(RLIMIT_NOFILE, n, n)) return err;
  }
  return 0;
}

std::optional<std::string> keeper_task_of(std::string_view cmdline) {
  const std::size_t first_end = cmdline.find('\0');
  const std::string_view argv0 = cmdline.substr(0, first_end);
  if (argv0.size() < kKeeperName.size() || argv0.substr(argv0.size() - kKeeperName.size()) != kKeeperName) {
    return std::nullopt;
  }
  // The keeper's own options end at "--"; the command's arguments do not count.
  std::string_view options = cmdline.substr(0, cmdline.find(std::string_view("\0--\0", 4)));
  constexpr std::string_view kFlag("\0--task\0", 8);
  const std::size_t at = options.find(kFlag);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view id = options.substr(at + kFlag.size());
  id = id.substr(0, id.find('\0'));
  if (id.empty()) return std::nullopt;
  return std::string(id);
}

bool is_keeper_of(std::string_view cmdline, std::string_view task_id) {
  const auto task = keeper_task_of(cmdline);
  return task && *task == task_id;
}

}  // namespace orch::engine
