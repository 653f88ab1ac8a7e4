#include "tests/support/server_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "tests/support/process_probe.h"
#include "tests/support/wait_until.h"

extern char** environ;

namespace orch::test {

namespace {

// Keeps what the child wrote to stderr bounded in a chatty run; the start of
// the log and the end are what explain a failure.
constexpr std::size_t kStderrKeep = 4u << 20;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
}

std::vector<std::string> child_environment(const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const std::string& entry : overrides) {
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// The shape of one JSON-RPC 2.0 message the server may write; "" if fine.
std::string check_jsonrpc(const json& m) {
  if (!m.is_object()) return "not a JSON object";
  auto version = m.find("jsonrpc");
  if (version == m.end() || *version != "2.0") return "jsonrpc is not \"2.0\"";
  const bool has_method = m.contains("method");
  const bool has_result = m.contains("result");
  const bool has_error = m.contains("error");
  const bool has_id = m.contains("id");
  if (has_method) {
    if (!m.at("method").is_string()) return "method is not a string";
    if (has_result || has_error) return "method together with result/error";
    if (has_id && !(m.at("id").is_string() || m.at("id").is_number_integer())) {
      return "request id is not a string or integer";
    }
    if (m.contains("params") && !m.at("params").is_object()) return "params is not an object";
    return "";
  }
  if (has_result == has_error) return "a response needs exactly one of result and error";
  if (!has_id) return "a response without id";
  const json& id = m.at("id");
  if (!(id.is_null() || id.is_string() || id.is_number_integer())) return "bad response id";
  if (has_result && !m.at("result").is_object()) return "result is not an object";
  if (has_error) {
    const json& e = m.at("error");
    if (!e.is_object() || !e.contains("code") || !e.at("code").is_number_integer() ||
        !e.contains("message") || !e.at("message").is_string()) {
      return "error needs an integer code and a string message";
    }
  }
  return "";
}

bool is_response(const json& m) { return m.is_object() && !m.contains("method"); }

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exit code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal);
}

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {
  // A server that died must show up as EPIPE on our writes, not kill the test.
  ::signal(SIGPIPE, SIG_IGN);
  home_ = std::make_unique<TempDir>();
  state_dir_ = options_.state_dir.value_or(home_->path() / "state");

  auto has = [&](const char* flag) {
    return std::find(options_.args.begin(), options_.args.end(), flag) != options_.args.end();
  };
  http_only_ = has("--http") && !has("--stdio");
  std::vector<std::string> argv{options_.program.empty() ? std::string(ORCH_BINARY) : options_.program};
  if (options_.pass_state_dir) {
    argv.push_back("--state-dir");
    argv.push_back(state_dir_.string());
  }
  argv.insert(argv.end(), options_.args.begin(), options_.args.end());
  std::vector<std::string> overrides{"XDG_CONFIG_HOME=" + (home_->path() / "config").string(),
                                     "XDG_STATE_HOME=" + (home_->path() / "xdg-state").string()};
  overrides.insert(overrides.end(), options_.env.begin(), options_.env.end());
  std::vector<std::string> env = child_environment(overrides);

  int in[2], out[2], err[2], wake[2];
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);
  make_pipe(wake);
  wake_read_ = wake[0];
  wake_write_ = wake[1];

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the target, so only fds 0-2 reach the child.
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The test may run with signals blocked or ignored; the server must start clean.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int rc = ::posix_spawn(&pid_, argv[0].c_str(), &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
  if (rc != 0) {
    pid_ = -1;
    close_fd(stdin_fd_);
    close_fd(stdout_fd_);
    close_fd(stderr_fd_);
    close_fd(wake_read_);
    close_fd(wake_write_);
    throw std::runtime_error(std::string("posix_spawn " ORCH_BINARY ": ") + std::strerror(rc));
  }
  stdout_thread_ = std::thread([this] { read_stdout(); });
  stderr_thread_ = std::thread([this] { read_stderr(); });
}

std::unique_ptr<ServerProcess> ServerProcess::start(std::vector<std::string> args) {
  ServerOptions options;
  options.args = std::move(args);
  return std::make_unique<ServerProcess>(std::move(options));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && !status_) {
    close_stdin();
    if (http_only_) kill(SIGTERM);
    if (!wait_exit(scaled(5s))) {
      ADD_FAILURE() << "the server did not exit within 5 s of " << (http_only_ ? "SIGTERM" : "stdin EOF")
                    << "; killing it";
      kill(SIGKILL);
      wait_exit(60s);
    }
  }
  close_stdin();
  stop_readers();
  if (check_stdout_) {
    std::vector<std::string> bad = stdout_violations();
    for (const std::string& v : bad) ADD_FAILURE() << "non-protocol output on stdout: " << v;
  }
  {
    // A sanitized server reports UB and leaks on stderr and may still exit 0.
    std::string err = stderr_text();
    for (const char* report :
         {"runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer"}) {
      if (err.find(report) != std::string::npos)
        ADD_FAILURE() << "the server's stderr has a sanitizer report: " << report;
    }
  }
  if (::testing::Test::HasFailure()) {
    std::string err = stderr_text();
    std::cerr << "---- server " << pid_ << " stderr (" << err.size() << " bytes) ----\n"
              << err << "\n---- end of server stderr ----\n";
  }
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
  close_fd(wake_read_);
  close_fd(wake_write_);
}

void ServerProcess::stop_readers() {
  // After the server exited, its pipes reach EOF at once unless some other
  // process (a task that inherited them) still holds them: that is a bug to
  // report, and the readers must not hang on it.
  if (status_) {
    if (!wait_pipes_closed(scaled(2s))) {
      ADD_FAILURE() << "the server's stdout/stderr stayed open after it exited: another process "
                       "(a task?) inherited them";
    }
  }
  if (wake_write_ >= 0) {
    char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_write_, &byte, 1);
  }
  if (stdout_thread_.joinable()) stdout_thread_.join();
  if (stderr_thread_.joinable()) stderr_thread_.join();
}

// --- raw I/O -----------------------------------------------------------------

bool ServerProcess::send(const json& message) { return send_raw(message.dump() + "\n"); }

bool ServerProcess::send_raw(std::string_view bytes) {
  std::lock_guard lock(write_mu_);
  if (stdin_fd_ < 0) return false;
  while (!bytes.empty()) {
    ssize_t n = ::write(stdin_fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;  // EPIPE: the server is gone
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void ServerProcess::close_stdin() {
  std::lock_guard lock(write_mu_);
  close_fd(stdin_fd_);
}

void ServerProcess::read_stdout() {
  std::string pending;
  char buf[65536];
  pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
  while (true) {
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents != 0) break;
    ssize_t got = ::read(stdout_fd_, buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;
    {
      std::lock_guard lock(mu_);
      stdout_bytes_.append(buf, static_cast<std::size_t>(got));
    }
    pending.append(buf, static_cast<std::size_t>(got));
    std::size_t start = 0;
    while (true) {
      auto nl = pending.find('\n', start);
      if (nl == std::string::npos) break;
      on_line(pending.substr(start, nl - start));
      start = nl + 1;
    }
    pending.erase(0, start);
  }
  std::lock_guard lock(mu_);
  if (!pending.empty()) violations_.push_back("a last line without '\\n': " + pending.substr(0, 200));
  stdout_eof_ = true;
  arrived_.notify_all();
}

void ServerProcess::on_line(std::string line) {
  json message;
  std::string problem;
  try {
    message = json::parse(line);
    problem = check_jsonrpc(message);
  } catch (const json::exception& e) {
    problem = std::string("not JSON (") + e.what() + ")";
  }
  std::lock_guard lock(mu_);
  if (!problem.empty()) {
    violations_.push_back(problem + ": " + line.substr(0, 300));
    return;
  }
  inbox_.push_back(std::move(message));
  ++received_;
  arrived_.notify_all();
}

void ServerProcess::read_stderr() {
  char buf[65536];
  pollfd fds[2] = {{stderr_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
  while (true) {
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents != 0) break;
    ssize_t got = ::read(stderr_fd_, buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;
    std::lock_guard lock(mu_);
    if (stderr_bytes_.size() < kStderrKeep) stderr_bytes_.append(buf, static_cast<std::size_t>(got));
    arrived_.notify_all();
  }
  std::lock_guard lock(mu_);
  stderr_eof_ = true;
  arrived_.notify_all();
}

// --- JSON-RPC ----------------------------------------------------------------

json ServerProcess::request(const std::string& method, json params, std::chrono::milliseconds timeout) {
  const std::int64_t id = next_id();
  json message{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) message["params"] = std::move(params);
  if (!send(message)) {
    ADD_FAILURE() << "could not send " << method << ": the server's stdin is closed";
    return json();
  }
  auto response = wait_response(json(id), timeout);
  if (!response) {
    ADD_FAILURE() << "no response to " << method << " (id " << id << ") within " << timeout.count() << " ms";
    return json();
  }
  return *response;
}

std::optional<json> ServerProcess::wait_response(const json& id, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::optional<json> found;
  arrived_.wait_for(lock, timeout, [&] {
    for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
      if (is_response(*it) && it->value("id", json()) == id) {
        found = std::move(*it);
        inbox_.erase(it);
        return true;
      }
    }
    return stdout_eof_;
  });
  return found;
}

std::optional<json> ServerProcess::next_message(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  arrived_.wait_for(lock, timeout, [&] { return !inbox_.empty() || stdout_eof_; });
  if (inbox_.empty()) return std::nullopt;
  json m = std::move(inbox_.front());
  inbox_.pop_front();
  return m;
}

std::vector<json> ServerProcess::notifications(const std::string& method) const {
  std::lock_guard lock(mu_);
  std::vector<json> out;
  for (const json& m : inbox_) {
    if (m.contains("method") && (method.empty() || m.at("method") == method)) out.push_back(m);
  }
  return out;
}

std::vector<json> ServerProcess::take_notifications(const std::string& method) {
  std::lock_guard lock(mu_);
  std::vector<json> out;
  for (auto it = inbox_.begin(); it != inbox_.end();) {
    if (it->contains("method") && (method.empty() || it->at("method") == method)) {
      out.push_back(std::move(*it));
      it = inbox_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::size_t ServerProcess::messages_received() const {
  std::lock_guard lock(mu_);
  return received_;
}

// --- MCP ---------------------------------------------------------------------

json ServerProcess::initialize(const std::string& protocol_version) {
  json response = request("initialize", {{"protocolVersion", protocol_version},
                                         {"capabilities", json::object()},
                                         {"clientInfo", {{"name", "integration-test"}, {"version", "1.0"}}}});
  if (!response.contains("result")) {
    ADD_FAILURE() << "initialize failed: " << response.dump();
    return json();
  }
  send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  return response.at("result");
}

json ServerProcess::call_tool_response(const std::string& name, json arguments,
                                       std::chrono::milliseconds timeout) {
  return request("tools/call", {{"name", name}, {"arguments", std::move(arguments)}}, timeout);
}

json ServerProcess::call_tool(const std::string& name, json arguments, std::chrono::milliseconds timeout,
                              std::optional<json> progress_token) {
  json params{{"name", name}, {"arguments", std::move(arguments)}};
  if (progress_token) params["_meta"] = {{"progressToken", *progress_token}};
  json response = request("tools/call", std::move(params), timeout);
  if (response.contains("result")) return response.at("result");
  ADD_FAILURE() << name << " answered with a JSON-RPC error or not at all: " << response.dump();
  return response;
}

std::string ServerProcess::submit(json arguments) {
  json result = call_tool("submitTask", arguments);
  json out = structured(result);
  if (!out.is_object() || !out.contains("taskId")) {
    ADD_FAILURE() << "submitTask " << arguments.dump() << " failed: " << result.dump();
    return "";
  }
  return out.at("taskId").get<std::string>();
}

json ServerProcess::task(const std::string& task_id) {
  json out = structured(call_tool("getStatus", {{"taskId", task_id}}));
  if (!out.is_object() || !out.contains("task")) return json();
  return out.at("task");
}

json ServerProcess::wait_result(const std::string& task_id, std::chrono::milliseconds timeout, json extra) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  json last;
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    double wait_sec = std::min<double>(static_cast<double>(left.count()) / 1000.0, 50.0);
    json args = extra;
    args["taskId"] = task_id;
    args["waitSec"] = wait_sec;
    last = structured(call_tool("getResult", args, left + scaled(10s)));
    if (!last.is_object()) return last;
    const std::string status = last.value("status", "");
    if (status == "completed" || status == "failed" || status == "cancelled") return last;
  }
  ADD_FAILURE() << "task " << task_id << " did not end within " << timeout.count()
                << " ms; last getResult: " << last.dump().substr(0, 2000);
  return last;
}

bool ServerProcess::wait_task(const std::string& task_id, const std::function<bool(const json&)>& pred,
                              std::chrono::milliseconds timeout) {
  json last;
  bool ok = wait_until(
      [&] {
        json out = structured(call_tool("getStatus", {{"taskId", task_id}}));
        if (!out.is_object() || !out.contains("task")) return false;
        last = out.at("task");
        return pred(last);
      },
      timeout, 20ms);
  if (!ok) std::cerr << "wait_task " << task_id << ": last status " << last.dump() << "\n";
  return ok;
}

// --- process -----------------------------------------------------------------

std::string ServerProcess::http_url(std::chrono::milliseconds timeout) {
  const auto file = state_dir_ / "http.json";
  std::string url;
  bool found = wait_until(
      [&] {
        std::ifstream in(file);
        if (!in) return exited();
        std::stringstream text;
        text << in.rdbuf();
        json endpoint = json::parse(text.str(), nullptr, false);
        if (!endpoint.is_object() || !endpoint.contains("url")) return false;
        url = endpoint["url"].get<std::string>();
        return true;
      },
      timeout);
  if (!found || url.empty()) ADD_FAILURE() << "the server did not write " << file << " in time";
  return url;
}

std::string ServerProcess::http_token() const {
  std::ifstream in(state_dir_ / "http-token");
  std::string token;
  std::getline(in, token);
  return token;
}

std::optional<ExitStatus> ServerProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  int raw = 0;
  bool reaped = wait_until(
      [&] {
        pid_t r = ::waitpid(pid_, &raw, WNOHANG);
        return r == pid_ || (r < 0 && errno == ECHILD);
      },
      timeout, 2ms);
  if (!reaped) return std::nullopt;
  ExitStatus st;
  if (WIFEXITED(raw)) {
    st.exited = true;
    st.code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    st.signal = WTERMSIG(raw);
  }
  status_ = st;
  return status_;
}

void ServerProcess::kill(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

// --- what came out -----------------------------------------------------------

std::vector<std::string> ServerProcess::stdout_violations() const {
  std::lock_guard lock(mu_);
  return violations_;
}

std::string ServerProcess::stdout_text() const {
  std::lock_guard lock(mu_);
  return stdout_bytes_;
}

std::string ServerProcess::stderr_text() const {
  std::lock_guard lock(mu_);
  return stderr_bytes_;
}

bool ServerProcess::wait_pipes_closed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return arrived_.wait_for(lock, timeout, [&] { return stdout_eof_ && stderr_eof_; });
}

bool ServerProcess::wait_stderr_contains(const std::string& needle, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return arrived_.wait_for(lock, timeout, [&] {
    return stderr_bytes_.find(needle) != std::string::npos || stderr_eof_;
  }) && stderr_bytes_.find(needle) != std::string::npos;
}

// --- free helpers ------------------------------------------------------------

namespace {

RunResult run_to_exit(ServerOptions options, const std::string& input, std::chrono::milliseconds timeout) {
  options.pass_state_dir = false;
  ServerProcess p(std::move(options));
  p.allow_non_protocol_stdout();
  if (!input.empty()) p.send_raw(input);
  p.close_stdin();
  RunResult r;
  r.status = p.wait_exit(timeout);
  if (!r.status) {
    p.kill(SIGKILL);
    p.wait_exit(60s);
  }
  // The pipes reach EOF once the process is gone; then all bytes are in.
  p.wait_pipes_closed(scaled(2s));
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

}  // namespace

RunResult run_binary(std::vector<std::string> args, std::vector<std::string> env,
                     std::chrono::milliseconds timeout) {
  ServerOptions options;
  options.args = std::move(args);
  options.env = std::move(env);
  return run_to_exit(std::move(options), "", timeout);
}

RunResult run_program(std::vector<std::string> argv, const std::string& input,
                      std::chrono::milliseconds timeout) {
  ServerOptions options;
  options.program = argv.at(0);
  options.args.assign(argv.begin() + 1, argv.end());
  return run_to_exit(std::move(options), input, timeout);
}

json structured(const json& tool_result) {
  if (!tool_result.is_object()) {
    ADD_FAILURE() << "not a tool result: " << tool_result.dump();
    return json();
  }
  if (tool_result.value("isError", false)) {
    ADD_FAILURE() << "tool error: " << result_text(tool_result);
    return json();
  }
  auto it = tool_result.find("structuredContent");
  if (it == tool_result.end()) {
    ADD_FAILURE() << "no structuredContent in " << tool_result.dump().substr(0, 2000);
    return json();
  }
  return *it;
}

std::string result_text(const json& tool_result) {
  if (!tool_result.is_object()) return "";
  auto content = tool_result.find("content");
  if (content == tool_result.end() || !content->is_array() || content->empty()) return "";
  const json& first = content->at(0);
  return first.is_object() ? first.value("text", "") : "";
}

bool is_tool_error(const json& tool_result) {
  return tool_result.is_object() && tool_result.value("isError", false);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<pid_t> live_children() { return children_of(::getpid()); }

std::int64_t parse_iso_ms(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &y, &mo, &d, &h, &mi, &sec, &ms) != 7) {
    return -1;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + ms;
}

// --- IntegrationTest ---------------------------------------------------------

ServerProcess& IntegrationTest::start_server(ServerOptions options) {
  servers_.push_back(std::make_unique<ServerProcess>(std::move(options)));
  return *servers_.back();
}

ServerProcess& IntegrationTest::start_server(std::vector<std::string> args) {
  ServerOptions options;
  options.args = std::move(args);
  return start_server(std::move(options));
}

void IntegrationTest::stop_server(ServerProcess& server) {
  for (auto it = servers_.begin(); it != servers_.end(); ++it) {
    if (it->get() == &server) {
      servers_.erase(it);
      return;
    }
  }
}

void IntegrationTest::TearDown() {
  servers_.clear();
  for (pid_t pgid : leftover_groups_) {
    if (pgid > 0 && !processes_in_group(pgid).empty()) ::kill(-pgid, SIGKILL);
  }
  bool clean = wait_until([] { return live_children().empty(); }, scaled(5s), 10ms);
  if (!clean) {
    std::string pids;
    for (pid_t p : live_children()) pids += " " + std::to_string(p);
    ADD_FAILURE() << "child processes of the test left behind:" << pids;
  }
}

}  // namespace orch::test
