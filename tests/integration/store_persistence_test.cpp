// The SQLite store is real (SPEC §4 Store): finished tasks and their output
// survive a restart, queued tasks run after one, a kill -9 loses nothing
// silently, and a damaged store stops the start without being touched.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "tests/support/process_probe.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

bool has_status(const json& task, const char* status) { return task.value("status", "") == status; }

class StorePersistence : public IntegrationTest {
 protected:
  ServerProcess& server_on_state(std::vector<std::string> args = {}) {
    ServerOptions options;
    options.state_dir = state_.path() / "state";
    options.args = std::move(args);
    ServerProcess& server = start_server(std::move(options));
    server.initialize();
    return server;
  }

  void stop_cleanly(ServerProcess& server) {
    server.close_stdin();
    auto status = server.wait_exit(scaled(10s));
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->ok()) << status->describe();
    stop_server(server);
  }

  TempDir state_;
};

TEST_F(StorePersistence, FinishedTaskAndItsOutputSurviveARestart) {
  std::string id;
  std::string failed;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "echo persisted; echo warn >&2"}, {"name", "kept"}, {"tags", {"t1"}}});
    failed = first.submit({{"command", "exit 4"}});
    EXPECT_EQ(first.wait_result(id).value("status", ""), "completed");
    EXPECT_EQ(first.wait_result(failed).value("status", ""), "failed");
    stop_cleanly(first);
  }
  ServerProcess& second = server_on_state();
  json task = second.task(id);
  EXPECT_EQ(task.value("status", ""), "completed");
  EXPECT_EQ(task.value("name", ""), "kept");
  EXPECT_EQ(task.value("tags", json::array()), json::array({"t1"}));
  EXPECT_EQ(task.value("exitCode", -1), 0);
  json result = structured(second.call_tool("getResult", {{"taskId", id}}));
  EXPECT_EQ(result["stdout"].value("text", ""), "persisted\n");
  EXPECT_EQ(result["stderr"].value("text", ""), "warn\n");
  EXPECT_EQ(result["stdout"].value("totalBytes", 0), 10);
  json f = second.task(failed);
  EXPECT_EQ(f.value("status", ""), "failed");
  EXPECT_EQ(f.value("reason", ""), "exit_code");
  EXPECT_EQ(f.value("exitCode", 0), 4);
  json listed = structured(second.call_tool("listTasks"));
  ASSERT_EQ(listed["tasks"].size(), 2u);
  EXPECT_EQ(listed["tasks"][0].value("taskId", ""), failed) << "newest first across restarts";
  // New tasks after the restart list before the old ones and get fresh ids.
  std::string fresh = second.submit({{"command", "true"}});
  EXPECT_NE(fresh, id);
  second.wait_result(fresh);
  EXPECT_EQ(structured(second.call_tool("listTasks"))["tasks"][0].value("taskId", ""), fresh);
}

TEST_F(StorePersistence, SubmitAcknowledgedRightBeforeEofIsNotLost) {
  std::string id;
  {
    ServerProcess& first = server_on_state();
    // The submit and the EOF arrive together; the answer must still come,
    // and what it acknowledged must be in the store.
    ASSERT_TRUE(
        first.send({{"jsonrpc", "2.0"},
                    {"id", "last-submit"},
                    {"method", "tools/call"},
                    {"params", {{"name", "submitTask"}, {"arguments", {{"command", "echo survived"}}}}}}));
    first.close_stdin();
    auto response = first.wait_response(json("last-submit"));
    ASSERT_TRUE(response) << "a request in flight at EOF must be answered";
    ASSERT_TRUE(response->contains("result")) << response->dump();
    json result = response->at("result");
    if (is_tool_error(result)) {
      // Refusing is acceptable ("shutting down"), silently dropping is not.
      EXPECT_NE(result_text(result).find("shutting down"), std::string::npos) << result_text(result);
      return;
    }
    id = structured(result).value("taskId", "");
    auto status = first.wait_exit(scaled(10s));
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->ok()) << status->describe();
    stop_server(first);
  }
  ServerProcess& second = server_on_state();
  json task = second.task(id);
  ASSERT_TRUE(task.is_object()) << "an acknowledged task vanished across the restart";
  json result = second.wait_result(id);
  // It either ran before the exit, was stopped by it, or runs now.
  const std::string status = result.value("status", "");
  EXPECT_TRUE(status == "completed" || status == "cancelled") << result.dump();
  if (status == "completed") {
    EXPECT_EQ(result["stdout"].value("text", ""), "survived\n");
  }
}

TEST_F(StorePersistence, IdempotencyKeySurvivesARestart) {
  std::string id;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "true"}, {"idempotencyKey", "nightly-build"}});
    first.wait_result(id);
    stop_cleanly(first);
  }
  ServerProcess& second = server_on_state();
  json again =
      structured(second.call_tool("submitTask", {{"command", "true"}, {"idempotencyKey", "nightly-build"}}));
  EXPECT_EQ(again.value("taskId", ""), id);
  EXPECT_TRUE(again.value("deduplicated", false));
}

TEST_F(StorePersistence, QueuedTasksRunAfterARestart) {
  std::string blocker, queued, dependent;
  {
    ServerProcess& first = server_on_state({"--max-concurrent", "1"});
    blocker = first.submit({{"command", "sleep 300"}});
    ASSERT_TRUE(first.wait_task(blocker, [](const json& t) { return has_status(t, "running"); }));
    queued = first.submit({{"command", "echo ran-after-restart"}});
    dependent = first.submit({{"command", "echo dependent-ran"}, {"dependsOn", {queued}}});
    EXPECT_EQ(first.task(queued).value("status", ""), "queued");
    EXPECT_EQ(first.task(dependent).value("status", ""), "waiting");
    stop_cleanly(first);
  }
  ServerProcess& second = server_on_state({"--max-concurrent", "1"});
  json result = second.wait_result(queued);
  EXPECT_EQ(result.value("status", ""), "completed");
  EXPECT_EQ(result["stdout"].value("text", ""), "ran-after-restart\n");
  EXPECT_EQ(second.wait_result(dependent)["stdout"].value("text", ""), "dependent-ran\n");
  // The blocker was stopped by the shutdown: it ended, and not as completed.
  json b = second.task(blocker);
  EXPECT_TRUE(has_status(b, "cancelled") || has_status(b, "failed")) << b.dump();
}

TEST_F(StorePersistence, DelayedTaskStillWaitsAndRunsAfterARestart) {
  std::string id;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "echo delayed"}, {"delaySec", 1.5}});
    EXPECT_EQ(first.task(id).value("status", ""), "waiting");
    stop_cleanly(first);
  }
  ServerProcess& second = server_on_state();
  json result = second.wait_result(id);
  EXPECT_EQ(result.value("status", ""), "completed");
  EXPECT_EQ(result["stdout"].value("text", ""), "delayed\n");
  json task = second.task(id);
  EXPECT_GE(parse_iso_ms(task["startedAt"]) - parse_iso_ms(task["submittedAt"]), 1450)
      << "the restart must not drop the delay";
}

TEST_F(StorePersistence, KillNineLosesNoTaskSilently) {
  std::string plain, retried, queued;
  pid_t plain_pid = 0, retried_pid = 0;
  const std::string marker = (state_.path() / "crashed").string();
  {
    ServerProcess& first = server_on_state({"--max-concurrent", "2"});
    plain = first.submit({{"command", "sleep 300"}, {"name", "plain"}});
    retried = first.submit({{"command", "if [ -e '" + marker + "' ]; then echo retried; else sleep 300; fi"},
                            {"retry", {{"maxAttempts", 2}, {"backoff", "fixed"}, {"delayMs", 0}}},
                            {"name", "retried"}});
    ASSERT_TRUE(
        first.wait_task(plain, [](const json& t) { return has_status(t, "running") && t.contains("pid"); }));
    ASSERT_TRUE(first.wait_task(retried,
                                [](const json& t) { return has_status(t, "running") && t.contains("pid"); }));
    plain_pid = first.task(plain).value("pid", 0);
    retried_pid = first.task(retried).value("pid", 0);
    kill_group_at_teardown(plain_pid);
    kill_group_at_teardown(retried_pid);
    queued = first.submit({{"command", "echo queued-ran"}, {"name", "queued"}});
    EXPECT_EQ(first.task(queued).value("status", ""), "queued");
    first.kill(SIGKILL);
    auto status = first.wait_exit(scaled(5s));
    ASSERT_TRUE(status);
    EXPECT_EQ(status->signal, SIGKILL);
    stop_server(first);
  }
  // The crashed server's task processes are orphans now; nothing can follow
  // them, so end them the way a reboot would.
  for (pid_t pgid : {plain_pid, retried_pid}) {
    if (pgid > 0) ::kill(-pgid, SIGKILL);
    EXPECT_TRUE(wait_until([&] { return processes_in_group(pgid).empty(); }, scaled(5s)));
  }
  write_file(marker, "");

  ServerProcess& second = server_on_state({"--max-concurrent", "2"});
  json q = second.wait_result(queued);
  EXPECT_EQ(q.value("status", ""), "completed");
  EXPECT_EQ(q["stdout"].value("text", ""), "queued-ran\n");

  json p = second.wait_result(plain);
  EXPECT_EQ(p.value("status", ""), "failed") << p.dump();
  EXPECT_EQ(p.value("reason", ""), "lost") << p.dump();
  EXPECT_NE(p.value("status", ""), "completed") << "a task nobody saw end is never completed";

  json r = second.wait_result(retried);
  EXPECT_EQ(r.value("status", ""), "completed") << "a lost task with a retry policy runs again: " << r.dump();
  EXPECT_EQ(r["stdout"].value("text", ""), "retried\n");
  EXPECT_EQ(second.task(retried).value("attempt", 0), 2);
  json counts = structured(second.call_tool("getStatus"))["orchestrator"]["tasks"];
  EXPECT_EQ(counts.value("completed", 0) + counts.value("failed", 0), 3) << counts.dump();
}

TEST_F(StorePersistence, GarbageDatabaseStopsTheStartAndIsLeftUntouched) {
  const auto dir = state_.path() / "state";
  std::filesystem::create_directories(dir);
  const auto db = dir / "tasks.db";
  const std::string garbage = "not a database\n";
  write_file(db, garbage);
  ServerOptions options;
  options.state_dir = dir;
  ServerProcess& server = start_server(options);
  auto status = server.wait_exit(scaled(10s));
  ASSERT_TRUE(status) << "the server should refuse to start on a damaged store";
  EXPECT_FALSE(status->ok()) << status->describe();
  server.wait_pipes_closed(scaled(2s));
  EXPECT_NE(server.stderr_text().find(db.string()), std::string::npos)
      << "the message should name the file:\n"
      << server.stderr_text();
  EXPECT_TRUE(server.stdout_text().empty()) << server.stdout_text();
  EXPECT_EQ(read_file(db), garbage) << "a damaged store must never be emptied or recreated";
}

TEST_F(StorePersistence, SecondServerOnTheSameStateDirIsRefused) {
  ServerProcess& first = server_on_state();
  ServerOptions options;
  options.state_dir = state_.path() / "state";
  ServerProcess& second = start_server(options);
  auto status = second.wait_exit(scaled(10s));
  ASSERT_TRUE(status) << "two servers on one store would run the same tasks twice";
  EXPECT_FALSE(status->ok());
  second.wait_pipes_closed(scaled(2s));
  EXPECT_NE(second.stderr_text().find("in use"), std::string::npos) << second.stderr_text();
  EXPECT_TRUE(first.request("ping").contains("result"));
}

// A second editor window starts its own stdio server on the default state
// directory: it must serve from the next instance slot, not fail to start,
// and the two must not share a store.
TEST_F(StorePersistence, SecondServerOnTheBusyDefaultStateDirUsesTheNextSlot) {
  ServerOptions options;
  options.pass_state_dir = false;
  options.env = {"XDG_STATE_HOME=" + (state_.path() / "xdg").string()};
  ServerProcess& first = start_server(options);
  first.initialize();
  ServerProcess& second = start_server(options);
  second.initialize();
  auto state_of = [](ServerProcess& server) {
    return structured(server.call_tool("getStatus", json::object())).at("orchestrator").at("stateDir").get<std::string>();
  };
  const auto base = state_.path() / "xdg" / "mcp-orchestrator";
  EXPECT_EQ(state_of(first), base.string());
  EXPECT_EQ(state_of(second), (base / "instances" / "2").string());
  std::string id = second.submit({{"command", "echo slot"}});
  EXPECT_EQ(second.wait_result(id, scaled(20s)).at("status"), "completed");
  auto unknown = first.call_tool("getStatus", {{"taskId", id}});
  EXPECT_TRUE(is_tool_error(unknown)) << "the two servers must not share a store";
}

}  // namespace
}  // namespace orch::test
