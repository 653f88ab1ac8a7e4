// No process of a task's group is left behind (SPEC §1, §3 cancelTask, §4):
// after a timeout, after a cancel, after the server exits while tasks run,
// and after a task that leaves a background child and exits at once.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "tests/support/process_probe.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

// Starts a background grandchild, prints its pid, and waits for it.
constexpr const char* kGrandchildTask = "sleep 300 & echo $!; wait";

class ProcessHygiene : public IntegrationTest {
 protected:
  struct Running {
    std::string id;
    pid_t leader = 0;      // the task's pid, also its process group id
    pid_t grandchild = 0;  // the background sleep
  };

  // The pid reaches the store a moment after the process starts, so output
  // can be seen first.
  static pid_t wait_for_pid(ServerProcess& server, const std::string& id) {
    pid_t pid = 0;
    wait_until([&] { return (pid = server.task(id).value("pid", 0)) > 0; }, scaled(10s), 10ms);
    return pid;
  }

  // Submits kGrandchildTask and waits until its grandchild's pid is printed.
  Running start_grandchild_task(ServerProcess& server, json extra = json::object()) {
    Running r;
    json args = std::move(extra);
    args["command"] = kGrandchildTask;
    r.id = server.submit(args);
    if (r.id.empty()) return r;
    bool printed = wait_until(
        [&] {
          json out = structured(server.call_tool("getResult", {{"taskId", r.id}, {"stream", "stdout"}}));
          std::string text = out.is_object() ? out["stdout"].value("text", "") : "";
          if (text.empty() || text.back() != '\n') return false;
          r.grandchild = static_cast<pid_t>(std::stol(text));
          return true;
        },
        scaled(10s), 10ms);
    EXPECT_TRUE(printed) << "the task never printed its grandchild's pid";
    r.leader = wait_for_pid(server, r.id);
    EXPECT_GT(r.leader, 0) << "a running task reports its pid: " << server.task(r.id).dump();
    EXPECT_TRUE(process_alive(r.grandchild));
    // Should the product leave them, the test still cleans up after itself.
    kill_group_at_teardown(r.leader);
    return r;
  }

  void expect_all_gone(const Running& r, std::chrono::milliseconds within = scaled(10s)) {
    EXPECT_TRUE(wait_until([&] { return !process_alive(r.grandchild); }, within, 10ms))
        << "grandchild " << r.grandchild << " of task " << r.id << " is still alive";
    EXPECT_TRUE(wait_until([&] { return processes_in_group(r.leader).empty(); }, within, 10ms))
        << "process group " << r.leader << " of task " << r.id << " still has members";
  }
};

TEST_F(ProcessHygiene, NothingIsLeftAfterATimeout) {
  ServerProcess& server = start_server();
  server.initialize();
  Running r = start_grandchild_task(server, {{"timeoutSec", scaled(1000ms).count() / 1000.0}});
  ASSERT_GT(r.grandchild, 0);
  json result = server.wait_result(r.id, scaled(20s));
  EXPECT_EQ(result.value("status", ""), "failed");
  EXPECT_EQ(result.value("reason", ""), "timeout");
  expect_all_gone(r);
}

TEST_F(ProcessHygiene, NothingIsLeftAfterCancel) {
  ServerProcess& server = start_server();
  server.initialize();
  Running r = start_grandchild_task(server);
  ASSERT_GT(r.grandchild, 0);
  structured(server.call_tool("cancelTask", {{"taskId", r.id}}));
  json result = server.wait_result(r.id, scaled(20s));
  EXPECT_EQ(result.value("status", ""), "cancelled");
  expect_all_gone(r);
}

TEST_F(ProcessHygiene, NothingIsLeftWhenATaskIgnoresSigterm) {
  // The grace period runs out and SIGKILL reaches the whole group.
  ServerProcess& server = start_server(std::vector<std::string>{"--kill-grace-sec", "1"});
  server.initialize();
  Running r;
  r.id = server.submit({{"command", "trap '' TERM; sh -c 'trap \"\" TERM; sleep 300' & echo $!; wait"}});
  ASSERT_TRUE(wait_until(
      [&] {
        std::string text =
            structured(server.call_tool("getResult", {{"taskId", r.id}}))["stdout"].value("text", "");
        if (text.empty() || text.back() != '\n') return false;
        r.grandchild = static_cast<pid_t>(std::stol(text));
        return true;
      },
      scaled(10s), 10ms));
  r.leader = wait_for_pid(server, r.id);
  ASSERT_GT(r.leader, 0);
  kill_group_at_teardown(r.leader);
  structured(server.call_tool("cancelTask", {{"taskId", r.id}}));
  json result = server.wait_result(r.id, scaled(20s));
  EXPECT_EQ(result.value("status", ""), "cancelled");
  expect_all_gone(r);
}

TEST_F(ProcessHygiene, NothingIsLeftAfterTheServerExitsOnStdinEof) {
  ServerProcess& server = start_server();
  server.initialize();
  Running a = start_grandchild_task(server);
  Running b = start_grandchild_task(server);
  ASSERT_GT(a.grandchild, 0);
  ASSERT_GT(b.grandchild, 0);
  server.close_stdin();
  auto status = server.wait_exit(scaled(10s));
  ASSERT_TRUE(status) << "the server did not exit after stdin EOF with tasks running";
  EXPECT_TRUE(status->ok()) << status->describe();
  expect_all_gone(a, scaled(5s));
  expect_all_gone(b, scaled(5s));
}

class ProcessHygieneOnSignal : public ProcessHygiene, public ::testing::WithParamInterface<int> {};

// SIGTERM and SIGINT (Ctrl-C, or `scripts/run` passing on its terminal's
// SIGHUP as SIGTERM) stop in order. SIGHUP itself restarts in place
// (restart_in_place_test.cpp).
TEST_P(ProcessHygieneOnSignal, NothingIsLeftAfterTheServerExitsOnTheSignal) {
  ServerProcess& server = start_server();
  server.initialize();
  Running r = start_grandchild_task(server);
  ASSERT_GT(r.grandchild, 0);
  server.kill(GetParam());
  auto status = server.wait_exit(scaled(10s));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->ok()) << status->describe();
  expect_all_gone(r, scaled(5s));
}

INSTANTIATE_TEST_SUITE_P(StopSignals, ProcessHygieneOnSignal, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return std::string(sigabbrev_np(param.param));
                         });

// A daemon leaves the task's process group (setsid), so signals to the group
// miss it; the keeper, a child subreaper, inherits it and stops it.
TEST_F(ProcessHygiene, ADaemonForkedByAFinishedTaskIsStopped) {
  ServerProcess& server = start_server();
  server.initialize();
  TempDir dir;
  const std::string pid_file = (dir.path() / "daemon.pid").string();
  std::string id = server.submit(
      {{"command", "setsid sh -c 'sleep 300 </dev/null >/dev/null 2>&1 & echo $! > " + pid_file + "'; exit 0"}});
  json result = server.wait_result(id, scaled(20s));
  EXPECT_EQ(result.value("status", ""), "completed") << result.dump();
  const std::string text = read_file(pid_file);
  ASSERT_FALSE(text.empty());
  const pid_t daemon = static_cast<pid_t>(std::stol(text));
  EXPECT_TRUE(wait_until([&] { return !process_alive(daemon); }, scaled(10s), 10ms))
      << "the daemon " << daemon << " outlived its task";
  if (process_alive(daemon)) ::kill(daemon, SIGKILL);
}

// A task that closes its stdout and carries on: the server sees EOF on the
// pipe long before the end, which must neither end the task early nor lose
// its later stderr or its exit code.
TEST_F(ProcessHygiene, ATaskThatClosesItsStdoutEarlyEndsWithItsOwnStatus) {
  ServerProcess& server = start_server();
  server.initialize();
  std::string id = server.submit({{"command", "echo before; exec 1>&-; sleep 0.3; echo after >&2; exit 7"}});
  json result = server.wait_result(id, scaled(20s), {{"stream", "both"}});
  EXPECT_EQ(result.value("status", ""), "failed") << result.dump();
  EXPECT_EQ(result.value("reason", ""), "exit_code");
  EXPECT_EQ(result.value("exitCode", -1), 7);
  EXPECT_EQ(result["stdout"].value("text", ""), "before\n");
  EXPECT_EQ(result["stderr"].value("text", ""), "after\n");
  const pid_t leader = server.task(id).value("pid", 0);
  if (leader > 0) {
    EXPECT_TRUE(wait_until([&] { return processes_in_group(leader).empty(); }, scaled(5s)));
  }
}

TEST_F(ProcessHygiene, BackgroundChildOfAFinishedTaskIsStopped) {
  ServerProcess& server = start_server();
  server.initialize();
  std::string id = server.submit({{"command", "sleep 300 & echo $!"}});
  json result = server.wait_result(id, scaled(20s));
  EXPECT_EQ(result.value("status", ""), "completed") << result.dump();
  std::string text = result["stdout"].value("text", "");
  ASSERT_FALSE(text.empty());
  const pid_t sleeper = static_cast<pid_t>(std::stol(text));
  // Its group id is the finished leader's pid, which getStatus no longer gives.
  EXPECT_TRUE(wait_until([&] { return !process_alive(sleeper); }, scaled(10s), 10ms))
      << "the background sleep " << sleeper << " outlived its task";
  if (process_alive(sleeper)) ::kill(sleeper, SIGKILL);
}

}  // namespace
}  // namespace orch::test
