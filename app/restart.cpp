#include "app/restart.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/json_text.h"

extern char** environ;

namespace orch::app::restart {

namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

json stream_json(const engine::StreamProgress& p) {
  return {{"total", p.total_bytes}, {"stored", p.stored_bytes}, {"capped", p.capped}};
}

engine::StreamProgress stream_from(const json& j) {
  engine::StreamProgress p;
  p.total_bytes = j.at("total").get<std::uint64_t>();
  p.stored_bytes = j.at("stored").get<std::uint64_t>();
  p.capped = j.at("capped").get<bool>();
  return p;
}

json session_json(const mcp::SessionState& s) {
  return {{"protocolVersion", s.protocol_version},
          {"initialized", s.initialized},
          {"ready", s.ready},
          {"logLevel", mcp::to_string(s.log_level)}};
}

mcp::SessionState session_from(const json& j) {
  mcp::SessionState s;
  s.protocol_version = j.at("protocolVersion").get<std::string>();
  s.initialized = j.at("initialized").get<bool>();
  s.ready = j.at("ready").get<bool>();
  auto level = mcp::parse_log_level(j.at("logLevel").get<std::string>());
  if (!level) throw std::invalid_argument("bad logLevel");
  s.log_level = *level;
  return s;
}

}  // namespace

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string encode(const HandOver& h) {
  json processes = json::array();
  for (const auto& p : h.processes) {
    json fds = json::array();
    for (const auto& f : p.fds) fds.push_back({{"role", f.role}, {"fd", f.fd}});
    processes.push_back({{"taskId", p.task_id},
                         {"pid", p.pid},
                         {"elapsedMs", p.elapsed_ms},
                         {"fds", std::move(fds)},
                         {"stdout", stream_json(p.stdout_progress)},
                         {"stderr", stream_json(p.stderr_progress)},
                         {"stopRequested", p.stop_requested},
                         {"foreign", p.foreign}});
  }
  json sessions = json::array();
  for (const auto& s : h.http_sessions) sessions.push_back({{"id", s.id}, {"state", session_json(s.state)}});
  json j{{"version", kFormatVersion},
         {"restarts",
          {{"count", h.restarts.count}, {"lastReason", h.restarts.last_reason}, {"lastAtMs", h.restarts.last_at_ms}}},
         {"automaticMs", h.automatic_ms},
         {"execAtNs", h.exec_at_ns},
         {"stateDir", h.state_dir},
         {"stdio", h.stdio},
         {"stdinFd", h.stdin_fd},
         {"stdioSession", session_json(h.stdio_session)},
         {"listenFd", h.listen_fd},
         {"httpSessions", std::move(sessions)},
         {"processes", std::move(processes)},
         {"lifeline", {{"read", h.lifeline.read_fd}, {"write", h.lifeline.write_fd}}}};
  // Replace, not throw: a reason could carry bytes from a config path.
  return json_text(j);
}

Result<HandOver> decode(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return make_error(ErrorCode::InvalidArgument, "the restart hand-over is not a JSON object");
  try {
    if (j.at("version").get<int>() != kFormatVersion) {
      return make_error(ErrorCode::InvalidArgument,
                        "the restart hand-over has version " + j.at("version").dump() + ", this binary reads " +
                            std::to_string(kFormatVersion));
    }
    HandOver h;
    const json& r = j.at("restarts");
    h.restarts.count = r.at("count").get<std::int64_t>();
    h.restarts.last_reason = r.at("lastReason").get<std::string>();
    h.restarts.last_at_ms = r.at("lastAtMs").get<std::int64_t>();
    h.automatic_ms = j.at("automaticMs").get<std::vector<std::int64_t>>();
    h.exec_at_ns = j.at("execAtNs").get<std::int64_t>();
    h.state_dir = j.at("stateDir").get<std::string>();
    h.stdio = j.at("stdio").get<bool>();
    h.stdin_fd = j.at("stdinFd").get<int>();
    h.stdio_session = session_from(j.at("stdioSession"));
    h.listen_fd = j.at("listenFd").get<int>();
    for (const json& s : j.at("httpSessions")) {
      h.http_sessions.push_back({s.at("id").get<std::string>(), session_from(s.at("state"))});
    }
    for (const json& p : j.at("processes")) {
      engine::RunningProcess rp;
      rp.task_id = p.at("taskId").get<std::string>();
      rp.pid = p.at("pid").get<pid_t>();
      rp.elapsed_ms = p.at("elapsedMs").get<std::int64_t>();
      for (const json& f : p.at("fds")) rp.fds.push_back({f.at("role").get<std::string>(), f.at("fd").get<int>()});
      rp.stdout_progress = stream_from(p.at("stdout"));
      rp.stderr_progress = stream_from(p.at("stderr"));
      rp.stop_requested = p.at("stopRequested").get<bool>();
      rp.foreign = p.at("foreign").get<bool>();
      h.processes.push_back(std::move(rp));
    }
    h.lifeline.read_fd = j.at("lifeline").at("read").get<int>();
    h.lifeline.write_fd = j.at("lifeline").at("write").get<int>();
    return h;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::InvalidArgument, std::string("the restart hand-over is malformed: ") + e.what());
  }
}

Result<int> make_memfd(const char* name, std::string_view bytes) {
  int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::Io, errno_text("memfd_create"));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = make_error(ErrorCode::Io, errno_text("writing a memfd"));
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

Result<std::string> read_and_close(int fd) {
  std::string out;
  char buf[65536];
  off_t at = 0;
  while (true) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = make_error(ErrorCode::Io, errno_text("reading fd " + std::to_string(fd)));
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
  ::close(fd);
  return out;
}

Result<std::optional<HandOver>> take_from_environment() {
  const char* value = std::getenv(kStateEnv);
  if (!value) return std::optional<HandOver>();
  const std::string text(value);
  ::unsetenv(kStateEnv);  // a task started later must not see it
  char* end = nullptr;
  long fd = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || fd < 3 || fd > 1 << 20) {
    return make_error(ErrorCode::InvalidArgument, std::string(kStateEnv) + "=" + text + " is not a descriptor");
  }
  auto bytes = read_and_close(static_cast<int>(fd));
  if (!bytes) return bytes.error();
  auto h = decode(*bytes);
  if (!h) return h.error();
  return std::optional<HandOver>(std::move(*h));
}

std::vector<int> fds_to_keep(const HandOver& h) {
  std::vector<int> keep;
  if (h.stdin_fd >= 0) keep.push_back(h.stdin_fd);
  if (h.listen_fd >= 0) keep.push_back(h.listen_fd);
  if (h.lifeline.read_fd >= 0) keep.push_back(h.lifeline.read_fd);
  if (h.lifeline.write_fd >= 0) keep.push_back(h.lifeline.write_fd);
  for (const auto& p : h.processes) {
    for (const auto& f : p.fds) keep.push_back(f.fd);
  }
  return keep;
}

namespace {

std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> args;
  std::string all = text.str();
  std::size_t start = 0;
  while (start < all.size()) {
    std::size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

}  // namespace

Status preflight() {
  if (::access("/proc/self/exe", X_OK) != 0) {
    return make_error(ErrorCode::Unavailable, errno_text("cannot restart in place: /proc/self/exe"));
  }
  if (own_arguments().empty()) {
    return make_error(ErrorCode::Unavailable, "cannot restart in place: /proc/self/cmdline is empty");
  }
  auto probe = make_memfd("orch-probe", "x");
  if (!probe) return make_error(ErrorCode::Unavailable, "cannot restart in place: " + probe.error().message);
  ::close(*probe);
  return {};
}

Error exec_self(HandOver& h) {
  std::vector<std::string> args = own_arguments();
  if (args.empty()) return make_error(ErrorCode::Unavailable, "/proc/self/cmdline is empty");
  h.exec_at_ns = monotonic_ns();
  auto state = make_memfd("orch-restart-state", encode(h));
  if (!state) return state.error();

  // Accepted sockets and every other descriptor must not leak into the new
  // image (a client would hang on a socket nobody serves); only what the
  // hand-over names passes.
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // kernels before 5.11
  }
  std::vector<int> keep = fds_to_keep(h);
  keep.push_back(*state);
  for (int fd : keep) {
    if (::fcntl(fd, F_SETFD, 0) != 0) {
      return make_error(ErrorCode::Io, errno_text("keeping fd " + std::to_string(fd) + " across exec"));
    }
  }
  ::setenv(kStateEnv, std::to_string(*state).c_str(), 1);

  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execve("/proc/self/exe", argv.data(), environ);
  Error failed = make_error(ErrorCode::Io, errno_text("execve /proc/self/exe"));
  ::unsetenv(kStateEnv);
  ::close(*state);
  return failed;
}

}  // namespace orch::app::restart
