// ServerProcess: the real mcp-orchestrator binary (ORCH_BINARY) as a child of
// the test, spoken to over stdin/stdout pipes exactly as an editor would.
//
// - Started with posix_spawn (never fork) with `--state-dir <dir>` (a private
//   temp dir unless the test gives one) and XDG_CONFIG_HOME/XDG_STATE_HOME
//   pointed at a private temp dir, so no test sees the user's config or
//   another test's tasks.
// - A reader thread splits stdout into lines and checks that every line is
//   one valid JSON-RPC 2.0 message (MCP-NOTES §4: nothing else may appear on
//   stdout). Violations are recorded; the destructor fails the test if any
//   were seen (unless allow_non_protocol_stdout() was called, for --help).
// - Another thread drains stderr into a buffer, so the child never blocks on a
//   full pipe; the buffer is printed when the test has failed.
// - Waiting is by deadline (condition variables and wait_until), never by a
//   sleep standing in for synchronisation.
//
// Thread-safety: send/request/call_tool/next_message may be called from
// several test threads at once (e.g. a long-poll in one thread and a ping in
// another). start/wait_exit/kill/the destructor belong to the owning thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace orch::test {

using nlohmann::json;
using namespace std::chrono_literals;

// True when the test (and so the server, built with the same flags) runs
// under AddressSanitizer or ThreadSanitizer: timing margins grow and memory
// checks are skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// A deadline scaled for sanitized builds (they run 2-5x slower).
constexpr std::chrono::milliseconds scaled(std::chrono::milliseconds d) { return kSanitized ? d * 4 : d; }

struct ExitStatus {
  bool exited = false;  // normal exit (then `code`), else killed by `signal`
  int code = -1;
  int signal = 0;
  bool ok() const { return exited && code == 0; }
  std::string describe() const;
};

struct ServerOptions {
  std::vector<std::string> args;                   // after the binary's name
  std::optional<std::filesystem::path> state_dir;  // default: a private temp dir
  bool pass_state_dir = true;                      // false: do not add --state-dir
  std::vector<std::string> env;                    // "KEY=value" over the test's environment
  std::string program;                             // empty: ORCH_BINARY (see run_program)
};

class ServerProcess {
 public:
  // Spawns the binary; throws std::runtime_error if posix_spawn fails.
  explicit ServerProcess(ServerOptions options = {});
  static std::unique_ptr<ServerProcess> start(std::vector<std::string> args = {});
  // Closes stdin (or, for an HTTP-only server, sends SIGTERM), waits
  // briefly, SIGKILLs if needed, reaps.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::filesystem::path& state_dir() const { return state_dir_; }

  // --- raw I/O ---------------------------------------------------------------
  // Writes `message.dump()` plus '\n'. False once the server's stdin is closed.
  bool send(const json& message);
  // Writes exactly these bytes (for malformed input: add the '\n' yourself).
  bool send_raw(std::string_view bytes);
  void close_stdin();

  // --- JSON-RPC --------------------------------------------------------------
  // Sends a request with a fresh integer id and waits for the response with
  // that id. Returns the whole response message (with "result" or "error"),
  // or null (and a test failure) on timeout. Notifications that arrive
  // meanwhile stay queued (see notifications()).
  json request(const std::string& method, json params = json::object(),
               std::chrono::milliseconds timeout = scaled(10s));
  // Waits for a response whose id equals `id` (json(nullptr) for the id-less
  // error answers to malformed input) and removes it from the queue.
  std::optional<json> wait_response(const json& id, std::chrono::milliseconds timeout = scaled(10s));
  // Next message of any kind in arrival order (removed from the queue).
  std::optional<json> next_message(std::chrono::milliseconds timeout = scaled(10s));
  // A fresh id for hand-built requests.
  std::int64_t next_id() { return ++last_id_; }
  // Server-to-client messages with a method (notifications, requests) that
  // arrived so far and were not taken; `take_` also removes them.
  std::vector<json> notifications(const std::string& method = "") const;
  std::vector<json> take_notifications(const std::string& method = "");
  // How many messages of any kind arrived so far (for "no reply" checks).
  std::size_t messages_received() const;

  // --- MCP -------------------------------------------------------------------
  // initialize (2025-11-25) + notifications/initialized; returns the result.
  json initialize(const std::string& protocol_version = "2025-11-25");
  // tools/call; returns the call's result (the CallToolResult), or the whole
  // response when the server answered with a JSON-RPC error (test failure).
  json call_tool(const std::string& name, json arguments = json::object(),
                 std::chrono::milliseconds timeout = scaled(10s),
                 std::optional<json> progress_token = std::nullopt);
  // tools/call; returns the whole JSON-RPC response (for -32602 checks).
  json call_tool_response(const std::string& name, json arguments = json::object(),
                          std::chrono::milliseconds timeout = scaled(10s));

  // --- tool shortcuts (each fails the test on an isError result) -----------
  // submitTask → taskId ("" on failure).
  std::string submit(json arguments);
  // getStatus {taskId} → the task object.
  json task(const std::string& task_id);
  // getResult with waitSec until the task is terminal (or `timeout`); returns
  // structuredContent of the last getResult.
  json wait_result(const std::string& task_id, std::chrono::milliseconds timeout = scaled(20s),
                   json extra = json::object());
  // Polls getStatus until `pred(task)` holds; true if it did in time.
  bool wait_task(const std::string& task_id, const std::function<bool(const json&)>& pred,
                 std::chrono::milliseconds timeout = scaled(10s));

  // --- HTTP (a server started with --http) ------------------------------------
  // The base URL ("http://127.0.0.1:PORT") from <state-dir>/http.json, waiting
  // for the server to write it; "" (and a test failure) on timeout.
  std::string http_url(std::chrono::milliseconds timeout = scaled(10s));
  // The bearer token from <state-dir>/http-token ("" when there is none).
  std::string http_token() const;

  // --- process ---------------------------------------------------------------
  // Waits for the child to exit and reaps it; nullopt if still running then.
  std::optional<ExitStatus> wait_exit(std::chrono::milliseconds timeout = scaled(5s));
  void kill(int sig);
  bool exited() const { return status_.has_value(); }

  // --- what came out ---------------------------------------------------------
  std::vector<std::string> stdout_violations() const;
  std::string stdout_text() const;  // every byte read from stdout so far
  std::string stderr_text() const;
  // Waits until stderr holds `needle` (or the pipe closed); true if it does.
  bool wait_stderr_contains(const std::string& needle, std::chrono::milliseconds timeout = scaled(5s));
  // Waits until both stdout and stderr reached EOF.
  bool wait_pipes_closed(std::chrono::milliseconds timeout);
  // For runs that print help or version text on stdout.
  void allow_non_protocol_stdout() { check_stdout_ = false; }

 private:
  void read_stdout();
  void read_stderr();
  void on_line(std::string line);
  void stop_readers();

  ServerOptions options_;
  std::unique_ptr<TempDir> home_;  // XDG dirs and the default state dir
  std::filesystem::path state_dir_;
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int wake_read_ = -1;  // wakes the reader threads when they must give up
  int wake_write_ = -1;
  bool check_stdout_ = true;
  bool http_only_ = false;  // --http without --stdio: stdin EOF does not stop it, SIGTERM does
  std::atomic<std::int64_t> last_id_{0};

  std::mutex write_mu_;

  mutable std::mutex mu_;
  std::condition_variable arrived_;
  std::deque<json> inbox_;               // guarded by mu_
  std::size_t received_ = 0;             // guarded by mu_
  std::vector<std::string> violations_;  // guarded by mu_
  std::string stdout_bytes_;             // guarded by mu_
  std::string stderr_bytes_;             // guarded by mu_
  bool stdout_eof_ = false;              // guarded by mu_
  bool stderr_eof_ = false;              // guarded by mu_

  std::thread stdout_thread_;  // joined in the destructor
  std::thread stderr_thread_;
};

// A one-shot run (for --version, --help, bad config): spawns, closes stdin at
// once, waits for the exit, and returns the status with stdout and stderr.
struct RunResult {
  std::optional<ExitStatus> status;  // nullopt: did not exit in time (then killed)
  std::string out;
  std::string err;
};
RunResult run_binary(std::vector<std::string> args, std::vector<std::string> env = {},
                     std::chrono::milliseconds timeout = scaled(10s));
// The same for another program (argv[0] is its path), fed `input` on stdin.
RunResult run_program(std::vector<std::string> argv, const std::string& input = "",
                      std::chrono::milliseconds timeout = scaled(10s));

// structuredContent of a successful tool result; fails the test (and returns
// null) when the result is an error.
json structured(const json& tool_result);
// The text of the first content block ("" if none).
std::string result_text(const json& tool_result);
bool is_tool_error(const json& tool_result);

// Writes `text` to `path` (whole file).
void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);

// Direct children of this test process that are still alive (teardown check).
std::vector<pid_t> live_children();

// Milliseconds since the epoch of an ISO 8601 UTC time as the server writes
// it ("2026-11-23T21:40:44.681Z"); -1 if it does not parse.
std::int64_t parse_iso_ms(const std::string& text);

// Base fixture: owns the servers a test starts (so they are stopped before
// the teardown checks), kills process groups a test names as possible
// leftovers (tasks orphaned on purpose by a kill -9), and checks that no
// child of the test process is left behind.
class IntegrationTest : public ::testing::Test {
 protected:
  ServerProcess& start_server(ServerOptions options = {});
  ServerProcess& start_server(std::vector<std::string> args);
  // Stops (stdin EOF, then SIGKILL) and forgets one server started above.
  void stop_server(ServerProcess& server);
  // At teardown, SIGKILL this process group if anything in it still lives.
  void kill_group_at_teardown(pid_t pgid) { leftover_groups_.push_back(pgid); }
  void TearDown() override;

 private:
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  std::vector<pid_t> leftover_groups_;
};

}  // namespace orch::test
