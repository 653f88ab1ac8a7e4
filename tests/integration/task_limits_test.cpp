// Per-task limits and memory admission with the real binary (SPEC §4): a
// task over its memory limit ends failed with reason memory_limit (under
// cgroup v2 or RLIMIT_AS, whichever this machine allows), CPU and open-file
// limits hold, and admission holds starts while memory is under the floor.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

namespace fs = std::filesystem;

const std::string kFakeAgent = std::string(ORCH_WORKERS_DIR) + "/fake_agent.py";

class TaskLimits : public IntegrationTest {
 protected:
  TempDir dir_;
  fs::path config_file() const { return dir_.path() / "config.json"; }

  void write_config(const json& config) { std::ofstream(config_file()) << config.dump(2); }

  ServerProcess& start_with(const json& config) {
    write_config(config);
    ServerProcess& server = start_server({"--config", config_file().string()});
    server.initialize();
    return server;
  }
};

TEST_F(TaskLimits, A500MiBTaskUnderA100MiBLimitEndsWithMemoryLimit) {
  ServerProcess& server = start_with(
      {{"profiles", {{"hungry", {{"argv", {"python3", kFakeAgent, "--alloc-mb", "{mb}"}}, {"memoryLimitMb", 100}}}}}});
  json r = server.wait_result(server.submit({{"profile", "hungry"}, {"params", {{"mb", "500"}}}}), scaled(60s));
  EXPECT_EQ(r.value("status", ""), "failed") << r.dump();
  EXPECT_EQ(r.value("reason", ""), "memory_limit") << r.dump();
  EXPECT_NE(r.value("message", "").find("100 MiB"), std::string::npos) << r.dump();
  // Within the limit the same program is fine: the verdict is not a guess.
  json small = server.wait_result(server.submit({{"profile", "hungry"}, {"params", {{"mb", "16"}}}}), scaled(60s));
  EXPECT_EQ(small.value("status", ""), "completed") << small.dump();
}

TEST_F(TaskLimits, AFailureUnrelatedToMemoryIsNotCalledMemoryLimit) {
  ServerProcess& server = start_with(
      {{"profiles", {{"limited", {{"argv", {"python3", kFakeAgent, "--exit", "3"}}, {"memoryLimitMb", 100}}}}}});
  json r = server.wait_result(server.submit({{"profile", "limited"}}), scaled(30s));
  EXPECT_EQ(r.value("status", ""), "failed");
  EXPECT_EQ(r.value("reason", ""), "exit_code") << r.dump();
}

TEST_F(TaskLimits, CpuSecondsAndOpenFilesAreLimited) {
  ServerProcess& server = start_with(
      {{"profiles",
        {{"spin", {{"argv", {"python3", "-c", "while True: pass"}}, {"cpuLimitSec", 1}}},
         {"files", {{"argv", {"python3", "-c", "import os\n[os.open('/dev/null', os.O_RDONLY) for _ in range(200)]"}},
                    {"openFilesLimit", 32}}}}}});
  json spin = server.wait_result(server.submit({{"profile", "spin"}}), scaled(30s));
  EXPECT_EQ(spin.value("status", ""), "failed") << spin.dump();
  EXPECT_EQ(spin.value("signal", 0), SIGXCPU) << spin.dump();
  json files = server.wait_result(server.submit({{"profile", "files"}}), scaled(30s));
  EXPECT_EQ(files.value("status", ""), "failed");
  EXPECT_NE(files["stderr"].value("text", "").find("Too many open files"), std::string::npos) << files.dump();
}

TEST_F(TaskLimits, AdmissionHoldsStartsWhileMemoryIsUnderTheFloorAndResumes) {
  // A floor far above any machine's memory: nothing may start.
  ServerProcess& server = start_with({{"limits", {{"memoryFloorMb", 1 << 24}}}});
  const std::string id = server.submit({{"argv", {"true"}}});
  json status;
  ASSERT_TRUE(wait_until(
      [&] {
        status = structured(server.call_tool("getStatus", json::object()))["orchestrator"]["admission"];
        return status.value("holding", false);
      },
      scaled(10s), 20ms))
      << status.dump();
  EXPECT_NE(status.value("reason", "").find("memoryFloorMb"), std::string::npos) << status.dump();
  json t = server.task(id);
  EXPECT_EQ(t.value("status", ""), "queued");
  EXPECT_NE(t.value("message", "").find("system memory is short"), std::string::npos) << t.dump();
  // Memory "returns": the floor drops under what is available, and a restart
  // in place reads the config again. The held task then starts.
  write_config({{"limits", {{"memoryFloorMb", 1}}}});
  server.kill(SIGHUP);
  json r = server.wait_result(id, scaled(30s));
  EXPECT_EQ(r.value("status", ""), "completed") << r.dump();
  EXPECT_FALSE(structured(server.call_tool("getStatus", json::object()))["orchestrator"]["admission"].value("holding", true));
}

}  // namespace
}  // namespace orch::test
