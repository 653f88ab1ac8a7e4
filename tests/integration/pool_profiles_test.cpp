// Pool profiles with the real binary and real workers (SPEC §4, §6): the
// worker's result in getResult, progress, workers in getStatus, recycling,
// a worker killed mid-task, protocol faults, and the C++ worker.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "tests/support/process_probe.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

namespace fs = std::filesystem;

const std::string kPythonWorker = std::string(ORCH_WORKERS_DIR) + "/echo_worker.py";

class PoolProfiles : public IntegrationTest {
 protected:
  TempDir dir_;

  ServerProcess& start_with(json pool, std::vector<std::string> argv = {"python3", "-u", kPythonWorker}) {
    json config{{"profiles", {{"echo", {{"mode", "pool"}, {"argv", argv}, {"pool", std::move(pool)}}}}}};
    const fs::path file = dir_.path() / "config.json";
    std::ofstream(file) << config.dump(2);
    ServerProcess& server = start_server({"--config", file.string()});
    server.initialize();
    return server;
  }

  static json workers(ServerProcess& server) {
    json status = structured(server.call_tool("getStatus", json::object()));
    for (const json& p : status["orchestrator"]["pools"]) {
      if (p.value("profile", "") == "echo") return p["workers"];
    }
    ADD_FAILURE() << "no pool in " << status.dump();
    return json::array();
  }

  static int pid_of(const json& result) { return result.contains("result") ? result["result"].value("pid", 0) : 0; }
};

TEST_F(PoolProfiles, TheWorkersResultAndProgressComeBack) {
  ServerProcess& server = start_with({{"min", 1}, {"max", 2}});
  const std::string id =
      server.submit({{"profile", "echo"}, {"input", {{"echo", {{"nested", {1, 2, 3}}}}, {"progress", 3}, {"stderr", "warned\n"}}}});
  json r = server.wait_result(id);
  ASSERT_EQ(r.value("status", ""), "completed") << r.dump();
  EXPECT_EQ(r["result"]["echo"], json({{"nested", {1, 2, 3}}}));
  EXPECT_EQ(r["progress"].value("current", 0.0), 3);
  EXPECT_EQ(r["progress"].value("total", 0.0), 3);
  EXPECT_EQ(r["stderr"].value("text", ""), "warned\n") << "the worker's stderr lands in the task's";
  EXPECT_GT(pid_of(r), 0);
}

TEST_F(PoolProfiles, GetStatusListsWorkersWithPidStateTasksServedAndRss) {
  ServerProcess& server = start_with({{"min", 2}, {"max", 2}});
  ASSERT_TRUE(wait_until([&] { return workers(server).size() == 2 && workers(server)[1].value("state", "") == "idle"; },
                         scaled(20s), 20ms))
      << workers(server).dump();
  json r = server.wait_result(server.submit({{"profile", "echo"}, {"input", {{"echo", 1}}}}));
  json list = workers(server);
  ASSERT_EQ(list.size(), 2u);
  int served = 0;
  for (const json& w : list) {
    EXPECT_GT(w.value("pid", 0), 0);
    EXPECT_TRUE(process_alive(w.value("pid", 0)));
    EXPECT_GT(w.value("rssKb", 0), 0);
    served += w.value("tasksServed", 0);
  }
  EXPECT_EQ(served, 1);
}

TEST_F(PoolProfiles, RecyclingAfterNTasksChangesTheWorkerPidExactlyThen) {
  ServerProcess& server = start_with({{"min", 1}, {"max", 1}, {"maxTasksPerWorker", 3}});
  std::vector<int> pids;
  for (int i = 0; i < 7; ++i) pids.push_back(pid_of(server.wait_result(server.submit({{"profile", "echo"}, {"input", i}}))));
  EXPECT_EQ(pids[0], pids[1]);
  EXPECT_EQ(pids[1], pids[2]);
  EXPECT_NE(pids[2], pids[3]);
  EXPECT_EQ(pids[3], pids[4]);
  EXPECT_EQ(pids[4], pids[5]);
  EXPECT_NE(pids[5], pids[6]);
  EXPECT_TRUE(wait_until([&] { return !process_alive(pids[0]); }, scaled(10s), 10ms)) << "the old worker is gone";
}

TEST_F(PoolProfiles, AWorkerKilledMidTaskIsReplacedAndTheTaskRetried) {
  ServerProcess& server = start_with({{"min", 1}, {"max", 1}});
  const std::string marker = (dir_.path() / "hung-once").string();
  const std::string id = server.submit(
      {{"profile", "echo"}, {"input", {{"hang_once", marker}}}, {"retry", {{"maxAttempts", 2}, {"delayMs", 0}}}});
  ASSERT_TRUE(wait_until([&] { return fs::exists(marker); }, scaled(20s), 10ms)) << "the first attempt never began";
  int victim = 0;
  ASSERT_TRUE(wait_until([&] { return (victim = server.task(id).value("pid", 0)) > 0; }, scaled(10s), 10ms));
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  json r = server.wait_result(id, scaled(30s));
  EXPECT_EQ(r.value("status", ""), "completed") << r.dump();
  EXPECT_EQ(server.task(id).value("attempt", 0), 2);
  EXPECT_NE(pid_of(r), victim);
  EXPECT_GT(pid_of(r), 0);
}

TEST_F(PoolProfiles, ACrashOrAMalformedLineFailsTheAttemptAndTheNextTaskGetsANewWorker) {
  ServerProcess& server = start_with({{"min", 1}, {"max", 1}});
  const int first = pid_of(server.wait_result(server.submit({{"profile", "echo"}, {"input", 0}})));
  json crashed = server.wait_result(server.submit({{"profile", "echo"}, {"input", {{"crash", 9}}}}));
  EXPECT_EQ(crashed.value("status", ""), "failed");
  EXPECT_EQ(crashed.value("reason", ""), "worker_crashed");
  const int second = pid_of(server.wait_result(server.submit({{"profile", "echo"}, {"input", 0}})));
  EXPECT_NE(second, first);
  json bad = server.wait_result(server.submit({{"profile", "echo"}, {"input", {{"malformed", true}}}}));
  EXPECT_EQ(bad.value("reason", ""), "worker_crashed");
  EXPECT_NE(bad.value("message", "").find("not JSON"), std::string::npos) << bad.dump();
  json err = server.wait_result(server.submit({{"profile", "echo"}, {"input", {{"error", "model overloaded"}}}}));
  EXPECT_EQ(err.value("status", ""), "failed");
  EXPECT_EQ(err.value("reason", ""), "worker_error");
  EXPECT_NE(err.value("message", "").find("model overloaded"), std::string::npos);
  EXPECT_NE(pid_of(server.wait_result(server.submit({{"profile", "echo"}, {"input", 0}}))), second);
}

TEST_F(PoolProfiles, CancellingAPoolTaskStopsItsWorker) {
  ServerProcess& server = start_with({{"min", 1}, {"max", 1}});
  const std::string id = server.submit({{"profile", "echo"}, {"input", {{"sleep", 60}}}});
  int pid = 0;
  ASSERT_TRUE(wait_until([&] { return (pid = server.task(id).value("pid", 0)) > 0; }, scaled(20s), 10ms));
  server.call_tool("cancelTask", {{"taskId", id}});
  json r = server.wait_result(id, scaled(20s));
  EXPECT_EQ(r.value("status", ""), "cancelled");
  EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }, scaled(10s), 10ms));
}

// SIGTERM is ignored through exec, so the Python worker never sees it: the
// grace runs out and SIGKILL ends it; the task is cancelled, not completed.
TEST_F(PoolProfiles, AWorkerThatIgnoresSigtermIsKilledWhenItsTaskIsCancelled) {
  ServerProcess& server = start_with({{"min", 1}, {"max", 1}},
                                     {"sh", "-c", std::string("trap '' TERM; exec python3 -u ") + kPythonWorker});
  const std::string id = server.submit({{"profile", "echo"}, {"input", {{"sleep", 60}}}});
  int pid = 0;
  ASSERT_TRUE(wait_until([&] { return (pid = server.task(id).value("pid", 0)) > 0; }, scaled(20s), 10ms));
  server.call_tool("cancelTask", {{"taskId", id}});
  json r = server.wait_result(id, scaled(30s));
  EXPECT_EQ(r.value("status", ""), "cancelled") << r.dump();
  EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }, scaled(15s), 10ms)) << "worker " << pid << " survived";
  json next = server.wait_result(server.submit({{"profile", "echo"}, {"input", 1}}), scaled(30s));
  EXPECT_EQ(next.value("status", ""), "completed") << "a new worker serves the next task: " << next.dump();
}

TEST_F(PoolProfiles, TheCppWorkerServesTasks) {
  ServerProcess& server = start_with({{"min", 1}, {"max", 1}}, {ORCH_ECHO_WORKER_CPP});
  json r = server.wait_result(server.submit({{"profile", "echo"}, {"input", {{"echo", "native"}}}}));
  ASSERT_EQ(r.value("status", ""), "completed") << r.dump();
  EXPECT_EQ(r["result"].value("echo", ""), "native");
}

TEST_F(PoolProfiles, ParamsAndProcessSettingsAreRefusedForAPoolProfile) {
  ServerProcess& server = start_with({{"min", 0}, {"max", 1}});
  json r = server.call_tool("submitTask", {{"profile", "echo"}, {"params", {{"a", "b"}}}});
  EXPECT_TRUE(r.value("isError", false));
  EXPECT_NE(result_text(r).find("input"), std::string::npos);
  json cwd = server.call_tool("submitTask", {{"profile", "echo"}, {"input", 1}, {"cwd", "/tmp"}});
  EXPECT_TRUE(cwd.value("isError", false)) << "a running worker cannot change its directory";
  EXPECT_NE(result_text(cwd).find("cannot set cwd"), std::string::npos) << result_text(cwd);
}

}  // namespace
}  // namespace orch::test
