// Task output goes to disk, not to the server's memory (SPEC §1, §4): many
// tasks printing a lot leave the server small, counts are exact, and a stream
// over its cap is truncated with a marker but still counted.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

// A /proc/<pid>/status field in KiB ("VmHWM:   12345 kB"); -1 if absent.
std::int64_t proc_status_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream rest(line.substr(field.size() + 1));
      std::int64_t kb = -1;
      rest >> kb;
      return kb;
    }
  }
  return -1;
}

class OutputMemory : public IntegrationTest {};

TEST_F(OutputMemory, SixteenTasksPrinting64MiBEachKeepTheServerSmall) {
  constexpr int kTasks = 16;
  constexpr std::uint64_t kBytes = 64 * kMiB;
  ServerProcess& server = start_server(std::vector<std::string>{"--max-concurrent", "16"});
  server.initialize();
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) {
    // No newlines: the point is bytes through the server, not line scanning.
    std::string command = "head -c " + std::to_string(kBytes) + " /dev/zero";
    ids.push_back(server.submit({{"command", command}, {"name", "big-" + std::to_string(i)}}));
  }
  for (const std::string& id : ids) {
    json result =
        server.wait_result(id, scaled(120s), {{"stream", "stdout"}, {"tail", true}, {"maxBytes", 4}});
    EXPECT_EQ(result.value("status", ""), "completed") << result.dump().substr(0, 500);
    ASSERT_TRUE(result.contains("stdout"));
    EXPECT_EQ(result["stdout"].value("totalBytes", 0u), kBytes);
    EXPECT_EQ(result["stdout"].value("nextOffset", 0u), kBytes);
    EXPECT_FALSE(result["stdout"].value("capped", true)) << "exactly the cap is not over it";
  }
  // The last bytes are what the task printed, NULs included.
  json last = structured(server.call_tool(
      "getResult", {{"taskId", ids[1]}, {"stream", "stdout"}, {"tail", true}, {"maxBytes", 4}}));
  EXPECT_EQ(last["stdout"].value("text", ""), std::string(4, '\0'));
  json status = structured(server.call_tool("getStatus"));
  EXPECT_EQ(status["orchestrator"]["tasks"].value("completed", 0), kTasks);

  if (kSanitized) GTEST_SKIP() << "sanitizer shadow memory makes the server's RSS meaningless";
  const std::int64_t hwm_kb = proc_status_kb(server.pid(), "VmHWM");
  ASSERT_GT(hwm_kb, 0);
  RecordProperty("serverVmHWMKb", std::to_string(hwm_kb));
  EXPECT_LT(hwm_kb, 64 * 1024) << "the server's peak RSS grew with task output: " << hwm_kb << " KiB";
  EXPECT_LT(status["orchestrator"]["memory"].value("peakRssKb", 1 << 30), 64 * 1024);
}

TEST_F(OutputMemory, StreamOverItsCapIsCountedAndTruncatedWithAMarker) {
  TempDir dir;
  auto config = dir.path() / "config.json";
  write_file(config, R"({"output":{"streamCapMb":1}})");
  ServerProcess& server = start_server(std::vector<std::string>{"--config", config.string()});
  server.initialize();
  std::string id = server.submit({{"command", "head -c 3145728 /dev/zero | tr '\\0' a; echo small >&2"}});
  json result =
      server.wait_result(id, scaled(30s), {{"stream", "stdout"}, {"tail", true}, {"maxBytes", 4096}});
  EXPECT_EQ(result.value("status", ""), "completed");
  const json& out = result["stdout"];
  EXPECT_EQ(out.value("totalBytes", 0u), 3u * kMiB);
  EXPECT_TRUE(out.value("capped", false));
  const std::string tail = out.value("text", "");
  EXPECT_NE(tail.find("output truncated"), std::string::npos)
      << "the stored output ends with the marker: " << tail;
  EXPECT_EQ(tail.back(), '\n');

  // The first MiB is kept exactly; the marker follows it.
  json head = structured(
      server.call_tool("getResult", {{"taskId", id}, {"stream", "stdout"}, {"maxBytes", 1 << 20}}));
  EXPECT_EQ(head["stdout"].value("text", ""), std::string(kMiB, 'a'));
  json after = structured(server.call_tool(
      "getResult", {{"taskId", id}, {"stream", "stdout"}, {"offset", kMiB}, {"maxBytes", 4096}}));
  EXPECT_EQ(after["stdout"].value("text", "").rfind("\n[mcp-orchestrator: output truncated", 0), 0u)
      << after["stdout"].value("text", "");
  // The cap is per stream: stderr is whole.
  json err = structured(server.call_tool("getResult", {{"taskId", id}, {"stream", "stderr"}}));
  EXPECT_EQ(err["stderr"].value("text", ""), "small\n");
  EXPECT_FALSE(err["stderr"].value("capped", true));
}

TEST_F(OutputMemory, OutputOfARunningTaskIsReadableAndCounted) {
  TempDir dir;
  ServerProcess& server = start_server();
  server.initialize();
  const std::string gate = (dir.path() / "go").string();
  std::string id = server.submit({{"command", "head -c 1048576 /dev/zero | tr '\\0' b; while [ ! -e '" +
                                                  gate + "' ]; do sleep 0.02; done; echo end"}});
  json live;
  EXPECT_TRUE(wait_until(
      [&] {
        live = structured(server.call_tool(
            "getResult", {{"taskId", id}, {"stream", "stdout"}, {"tail", true}, {"maxBytes", 3}}));
        return live["stdout"].value("totalBytes", 0u) == kMiB;
      },
      scaled(10s), 10ms))
      << live.dump();
  EXPECT_EQ(live.value("status", ""), "running");
  EXPECT_EQ(live["stdout"].value("text", ""), "bbb");
  write_file(gate, "");
  json result = server.wait_result(id, scaled(20s), {{"stream", "stdout"}, {"tail", true}, {"maxBytes", 5}});
  EXPECT_EQ(result["stdout"].value("text", ""), "bend\n");
  EXPECT_EQ(result["stdout"].value("totalBytes", 0u), kMiB + 4);
}

}  // namespace
}  // namespace orch::test
