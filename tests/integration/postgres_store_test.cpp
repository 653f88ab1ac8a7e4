// The real server on a PostgreSQL store (--store postgresql://…, docs/STORE.md):
// tasks, their ends and idempotency keys live in the database and survive a
// restart, and a store that cannot be reached stops the start with a message
// naming host:port but never the password. Each test gets a fresh database
// on the test PostgreSQL (ORCH_TEST_POSTGRES_URL, started by scripts/test).
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/postgres_db.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace orch::test {
namespace {

bool has_status(const json& task, const char* status) { return task.value("status", "") == status; }

class PostgresStore : public IntegrationTest {
 protected:
  ServerProcess& server_on(const std::string& store, std::vector<std::string> args = {}) {
    ServerOptions options;
    options.state_dir = state_.path() / "state";
    options.args = {"--store", store};
    options.args.insert(options.args.end(), args.begin(), args.end());
    ServerProcess& server = start_server(std::move(options));
    server.initialize();
    return server;
  }

  void stop_cleanly(ServerProcess& server) {
    server.close_stdin();
    auto status = server.wait_exit(scaled(10s));
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->ok()) << status->describe() << "\n" << server.stderr_text();
    stop_server(server);
  }

  TempDir state_;
};

TEST_F(PostgresStore, TasksSurviveARestartOfTheServer) {
  auto db = PostgresDb::create();
  if (!db) {
    ASSERT_FALSE(HasFailure());
    GTEST_SKIP() << kNoTestPostgres;
  }
  std::string done, failed, keyed, queued;
  {
    ServerProcess& first = server_on(db->url(), {"--max-concurrent", "1"});
    done = first.submit({{"command", "echo on-postgres"}, {"name", "kept"}, {"tags", {"pg"}}});
    failed = first.submit({{"command", "exit 3"}});
    keyed = first.submit({{"command", "true"}, {"idempotencyKey", "shared-queue"}});
    EXPECT_EQ(first.wait_result(done).value("status", ""), "completed");
    EXPECT_EQ(first.wait_result(failed).value("status", ""), "failed");
    first.wait_result(keyed);
    // Queued behind a running task when the server stops: it runs after the restart.
    const std::string blocker = first.submit({{"command", "sleep 300"}});
    ASSERT_TRUE(first.wait_task(blocker, [](const json& t) { return has_status(t, "running"); }));
    queued = first.submit({{"command", "echo after-restart"}});
    EXPECT_TRUE(has_status(first.task(queued), "queued"));
    stop_cleanly(first);
  }
  // The rows are in PostgreSQL, and no SQLite file was made beside the spool.
  EXPECT_EQ(db->text("SELECT count(*) FROM tasks"), "5");
  EXPECT_EQ(db->text("SELECT status FROM tasks WHERE id = '" + done + "'"), "completed");
  EXPECT_FALSE(std::filesystem::exists(state_.path() / "state" / "tasks.db"));

  ServerProcess& second = server_on(db->url());
  EXPECT_TRUE(second.wait_stderr_contains("store " + db->url())) << "the start-up line names the store";
  json task = second.task(done);
  EXPECT_EQ(task.value("status", ""), "completed");
  EXPECT_EQ(task.value("name", ""), "kept");
  EXPECT_EQ(task.value("tags", json::array()), json::array({"pg"}));
  json result = structured(second.call_tool("getResult", {{"taskId", done}}));
  EXPECT_EQ(result["stdout"].value("text", ""), "on-postgres\n") << "the output spool is on this node";
  json f = second.task(failed);
  EXPECT_EQ(f.value("reason", ""), "exit_code");
  EXPECT_EQ(f.value("exitCode", 0), 3);
  json again = structured(second.call_tool("submitTask", {{"command", "true"}, {"idempotencyKey", "shared-queue"}}));
  EXPECT_EQ(again.value("taskId", ""), keyed);
  EXPECT_TRUE(again.value("deduplicated", false));
  json q = second.wait_result(queued);
  EXPECT_EQ(q.value("status", ""), "completed") << q.dump();
  EXPECT_EQ(q["stdout"].value("text", ""), "after-restart\n");
  json listed = structured(second.call_tool("listTasks"));
  EXPECT_EQ(listed["tasks"].size(), 5u) << listed.dump();
  stop_cleanly(second);
}

TEST_F(PostgresStore, AnUnreachableStoreStopsTheStartNamingHostAndPortNotThePassword) {
  const std::string port = std::to_string(closed_port());
  ServerOptions options;
  options.state_dir = state_.path() / "state";
  options.args = {"--store", "postgresql://orch:never-printed@127.0.0.1:" + port + "/tasks"};
  ServerProcess& server = start_server(std::move(options));
  auto status = server.wait_exit(scaled(15s));
  ASSERT_TRUE(status) << "the server should refuse to start without its store";
  EXPECT_FALSE(status->ok()) << status->describe();
  server.wait_pipes_closed(scaled(2s));
  const std::string err = server.stderr_text();
  EXPECT_NE(err.find("127.0.0.1:" + port), std::string::npos) << err;
  EXPECT_EQ(err.find("never-printed"), std::string::npos) << err;
  EXPECT_TRUE(server.stdout_text().empty()) << server.stdout_text();
}

}  // namespace
}  // namespace orch::test
