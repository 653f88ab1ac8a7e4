// What only the PostgreSQL store does (engine/postgres_store.h): migrations
// recorded in schema_version and applied once by servers that start
// together, a reconnect after the server cut the connection, and start-up
// errors that name host:port but never the password. Each test gets a
// fresh database on the test PostgreSQL (ORCH_TEST_POSTGRES_URL).
#include "engine/postgres_store.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tests/support/postgres_db.h"
#include "tests/support/store_tasks.h"

namespace orch::engine {
namespace {

using test::closed_port;
using test::make_task;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg = test::PostgresDb::create();
    if (!pg && !HasFailure()) GTEST_SKIP() << test::kNoTestPostgres;
    ASSERT_TRUE(pg);
  }
  std::unique_ptr<PostgresStore> open() {
    auto s = PostgresStore::open(pg->url());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::unique_ptr<test::PostgresDb> pg;
};

TEST_F(PostgresStoreTest, EachMigrationIsRecordedOnceInSchemaVersion) {
  ASSERT_TRUE(open());
  ASSERT_TRUE(open()) << "a second open finds the schema in place";
  EXPECT_EQ(pg->text("SELECT count(*) FROM schema_version"), "3");
  EXPECT_EQ(pg->text("SELECT max(version) FROM schema_version"), "3");
  EXPECT_EQ(pg->text("SELECT count(*) FROM schema_version WHERE applied_at_ms > 0"), "3");
  EXPECT_EQ(pg->text("SELECT data_type FROM information_schema.columns "
                     "WHERE table_name = 'tasks' AND column_name = 'stdout_bytes'"),
            "bigint");
}

TEST_F(PostgresStoreTest, ServersStartingTogetherMigrateOnce) {
  constexpr int kServers = 4;
  std::vector<std::string> errors(kServers);
  {
    std::vector<std::jthread> starts;
    for (int i = 0; i < kServers; ++i) {
      starts.emplace_back([&, i] {
        auto s = PostgresStore::open(pg->url());
        if (!s) errors[i] = s.error().message;
      });
    }
  }
  for (const std::string& e : errors) EXPECT_EQ(e, "") << "several servers share one database";
  EXPECT_EQ(pg->text("SELECT count(*) FROM schema_version"), "3");
}

TEST_F(PostgresStoreTest, TwoServersOnOneDatabaseSeeEachOthersTasks) {
  auto first = open();
  ASSERT_TRUE(first);
  auto second = PostgresStore::open(pg->url());
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_TRUE(first->insert(make_task(1)).ok());
  auto loaded = (*second)->load_all();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->size(), 1u);
}

TEST_F(PostgresStoreTest, RefusesASchemaNewerThanThisBuild) {
  ASSERT_TRUE(open());
  pg->exec("INSERT INTO schema_version (version, applied_at_ms) VALUES (999, 1)");
  auto s = PostgresStore::open(pg->url());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("created by a newer mcp-orchestrator (schema 999, this build knows 3)"),
            std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find(pg->name()), std::string::npos) << s.error().message;
}

TEST_F(PostgresStoreTest, ReconnectsOnceWhenTheServerCutTheConnection) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->insert(make_task(1)).ok());
  // What a restart of PostgreSQL or an idle-connection cut-off looks like to us.
  // pg_terminate_backend(pid, timeout) waits until the backend is gone.
  EXPECT_EQ(pg->text("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND application_name = 'mcp-orchestrator'"),
            "1");
  EXPECT_TRUE(s->insert(make_task(2)).ok()) << "a write after the cut reconnects";
  pg->exec("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
           "WHERE datname = current_database() AND application_name = 'mcp-orchestrator'");
  EXPECT_TRUE(s->probe().ok());
  auto all = s->load_all();
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->size(), 2u);
}

TEST_F(PostgresStoreTest, LocationNamesTheDatabaseWithoutThePassword) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_NE(s->location().find("/" + pg->name()), std::string::npos) << s->location();
  EXPECT_EQ(s->location().rfind("postgresql://", 0), 0u) << s->location();
  EXPECT_EQ(redact_postgres_url("postgresql://orch:hunter2@db.example:5432/q"),
            "postgresql://orch:***@db.example:5432/q");
  EXPECT_EQ(redact_postgres_url("postgresql://orch@db.example/q"), "postgresql://orch@db.example/q");
}

TEST(PostgresStoreStart, AnUnreachableServerIsUnavailableNamingHostAndPortNotThePassword) {
  const std::string port = std::to_string(closed_port());
  auto s = PostgresStore::open("postgresql://orch:s3cret-pw@127.0.0.1:" + port + "/tasks");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::Unavailable);
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("127.0.0.1:" + port), std::string::npos) << m;
  EXPECT_NE(m.find("tasks"), std::string::npos) << m;
  EXPECT_EQ(m.find("s3cret-pw"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
}

TEST(PostgresStoreStart, APasswordLikeTheMaskIsScrubbedWithoutLoopingForever) {
  const std::string port = std::to_string(closed_port());
  for (const char* password : {"*", "**", "***"}) {
    auto s = PostgresStore::open(std::string("postgresql://orch:") + password + "@127.0.0.1:" + port + "/tasks");
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("127.0.0.1:" + port), std::string::npos) << s.error().message;
  }
}

TEST(PostgresStoreStart, ABadUrlIsRefusedWithoutThePassword) {
  auto s = PostgresStore::open("postgresql://orch:s3cret%zz@127.0.0.1/tasks");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::InvalidArgument);
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("bad PostgreSQL URL"), std::string::npos) << m;
  EXPECT_EQ(m.find("s3cret"), std::string::npos) << m;
}

}  // namespace
}  // namespace orch::engine
