// The store contract (engine/store.h), run against both backends: a real
// SQLite file and a fresh database on the test PostgreSQL
// (ORCH_TEST_POSTGRES_URL; tests/support/postgres_db.h). What only one
// backend does is in sqlite_store_test.cpp and postgres_store_test.cpp.
#include "engine/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <set>
#include <thread>

#include "tests/support/postgres_db.h"
#include "tests/support/store_tasks.h"
#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

namespace fs = std::filesystem;
using test::expect_same;
using test::full_task;
using test::kT0;
using test::make_task;

enum class Backend { Sqlite, Postgres };

// The first column of the first row of a query on the SQLite file, through
// a connection of the test's own.
std::string sqlite_text(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      if (sqlite3_step(stmt) == SQLITE_ROW) {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        out = p ? p : "";
      } else if (sqlite3_errcode(db) != SQLITE_DONE && sqlite3_errcode(db) != SQLITE_OK) {
        ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
      }
    } else {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
  } else {
    ADD_FAILURE() << "cannot open " << file;
  }
  sqlite3_close_v2(db);
  return out;
}

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::Postgres) {
      pg = test::PostgresDb::create();
      if (!pg && !HasFailure()) GTEST_SKIP() << test::kNoTestPostgres;
      ASSERT_TRUE(pg) << "the test PostgreSQL gave no database";
      spec = pg->url();
    } else {
      spec = file.string();
    }
  }

  std::unique_ptr<Store> open() {
    auto s = open_store(spec);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::vector<TaskRecord> load(Store& s) {
    auto all = s.load_all();
    EXPECT_TRUE(all.ok()) << (all.ok() ? "" : all.error().message);
    return all.ok() ? std::move(*all) : std::vector<TaskRecord>{};
  }
  // SQL on the store's tables, from outside the store: what another process sees.
  std::string raw_text(const std::string& sql) {
    return GetParam() == Backend::Postgres ? pg->text(sql) : sqlite_text(file, sql);
  }
  void raw_exec(const std::string& sql) {
    if (GetParam() == Backend::Postgres) pg->exec(sql);
    else sqlite_text(file, sql);
  }

  test::TempDir dir;
  fs::path file = dir.path() / "state" / "tasks.db";  // the parent does not exist yet
  std::unique_ptr<test::PostgresDb> pg;  // the PostgreSQL case only
  std::string spec;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values(Backend::Sqlite, Backend::Postgres),
                         [](const ::testing::TestParamInfo<Backend>& p) {
                           return p.param == Backend::Sqlite ? "SQLite" : "PostgreSQL";
                         });

TEST_P(StoreContract, RoundTripsEveryFieldAcrossAReopen) {
  const TaskRecord original = full_task();
  TaskRecord plain = make_task(43);  // optional fields unset, reason none, no progress
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->insert(original).ok());
    ASSERT_TRUE(s->insert(plain).ok());
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto all = load(*s);
  ASSERT_EQ(all.size(), 2u);
  expect_same(all[0], original);
  expect_same(all[1], plain);
  EXPECT_FALSE(all[1].exit_code);
  EXPECT_FALSE(all[1].pid);
  EXPECT_FALSE(all[1].progress);
  EXPECT_FALSE(all[1].spec.stdin_data);
  EXPECT_FALSE(all[1].spec.run_at_ms);
}

TEST_P(StoreContract, KeepsTheQueryableCopiesOfTheSpecInTheirColumns) {
  const TaskRecord t = full_task();
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->insert(t).ok());
  const std::string where = " FROM tasks WHERE id = '" + t.id + "'";
  EXPECT_EQ(raw_text("SELECT name" + where), "build");
  EXPECT_EQ(raw_text("SELECT tags" + where), R"(["ci","nightly"])");
  EXPECT_EQ(raw_text("SELECT priority" + where), "9");
  EXPECT_EQ(raw_text("SELECT idempotency_key" + where), "key-1");
  // The tags column is JSON each backend can search.
  EXPECT_EQ(raw_text(GetParam() == Backend::Postgres
                         ? "SELECT count(*) FROM tasks WHERE tags::jsonb ? 'ci'"
                         : "SELECT count(*) FROM tasks WHERE EXISTS "
                           "(SELECT 1 FROM json_each(tags) WHERE value = 'ci')"),
            "1");
  TaskRecord no_key = make_task(7);
  ASSERT_TRUE(s->insert(no_key).ok());
  EXPECT_EQ(raw_text("SELECT count(*) FROM tasks WHERE idempotency_key IS NULL AND id = '" + no_key.id + "'"),
            "1");
}

TEST_P(StoreContract, UpdateWritesColumnsAndAppendsTransitionsInOrder) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord t = make_task(1);
  ASSERT_TRUE(s->insert(t).ok());

  t.status = TaskStatus::Running;
  t.attempt = 1;
  t.pid = 4242;
  t.started_at_ms = kT0 + 100;
  ASSERT_TRUE(s->update(t, TaskStatus::Queued).ok());

  t.status = TaskStatus::Completed;
  t.reason = EndReason::ExitCode;
  t.message = "exited with code 0";
  t.exit_code = 0;
  t.pid.reset();
  t.peak_rss_kb = 2048;
  t.finished_at_ms = kT0 + 900;
  t.stdout_bytes = 12;
  ASSERT_TRUE(s->update(t, TaskStatus::Running).ok());

  auto all = load(*s);
  ASSERT_EQ(all.size(), 1u);
  expect_same(all[0], t);

  auto tr = s->transitions(t.id);
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  ASSERT_EQ(tr->size(), 3u);
  EXPECT_EQ((*tr)[0].from, "");
  EXPECT_EQ((*tr)[0].to, "queued");
  EXPECT_EQ((*tr)[0].at_ms, t.submitted_at_ms);
  EXPECT_EQ((*tr)[1].from, "queued");
  EXPECT_EQ((*tr)[1].to, "running");
  EXPECT_EQ((*tr)[1].at_ms, kT0 + 100);
  EXPECT_EQ((*tr)[2].from, "running");
  EXPECT_EQ((*tr)[2].to, "completed");
  EXPECT_EQ((*tr)[2].reason, "exit_code");
  EXPECT_EQ((*tr)[2].message, "exited with code 0");
  EXPECT_EQ((*tr)[2].at_ms, kT0 + 900);
}

TEST_P(StoreContract, UpdateOfAnUnknownTaskIsNotFoundAndWritesNothing) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord t = make_task(1);
  t.status = TaskStatus::Running;
  auto st = s->update(t, TaskStatus::Queued);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::NotFound);
  EXPECT_NE(st.error().message.find(t.id), std::string::npos) << st.error().message;
  EXPECT_TRUE(s->transitions(t.id)->empty());
  EXPECT_EQ(s->update_progress(t).error().code, ErrorCode::NotFound);
}

TEST_P(StoreContract, UpdateProgressWritesProgressAndCountersButNoTransition) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord t = make_task(1);
  ASSERT_TRUE(s->insert(t).ok());
  TaskRecord changed = t;
  changed.progress = Progress{5, std::nullopt, "halfway"};
  changed.stdout_bytes = 1000;
  changed.stderr_bytes = 20;
  changed.message = "not written by update_progress";
  ASSERT_TRUE(s->update_progress(changed).ok());

  auto all = load(*s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].progress, changed.progress);
  EXPECT_EQ(all[0].stdout_bytes, 1000u);
  EXPECT_EQ(all[0].stderr_bytes, 20u);
  EXPECT_EQ(all[0].message, "");
  EXPECT_EQ(s->transitions(t.id)->size(), 1u);
}

TEST_P(StoreContract, ABatchOfWritesLandsInOrderAndAFailingOneFailsAlone) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord started = make_task(1);
  TaskRecord ended = make_task(2);
  ASSERT_TRUE(s->insert(started).ok());
  ASSERT_TRUE(s->insert(ended).ok());
  started.status = TaskStatus::Running;
  started.started_at_ms = kT0 + 10;
  TaskRecord with_pid = started;
  with_pid.pid = 4242;
  TaskRecord unknown = make_task(3);
  unknown.status = TaskStatus::Running;
  ended.status = TaskStatus::Completed;
  ended.reason = EndReason::ExitCode;
  ended.exit_code = 0;
  ended.finished_at_ms = kT0 + 20;
  const Store::Write writes[] = {{&started, TaskStatus::Queued},
                                 {&unknown, TaskStatus::Queued},
                                 {&ended, TaskStatus::Queued},
                                 {&with_pid, std::nullopt}};
  const std::vector<Status> results = s->write(writes);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].error().code, ErrorCode::NotFound);
  EXPECT_TRUE(results[2].ok());
  EXPECT_TRUE(results[3].ok());

  auto all = load(*s);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].status, TaskStatus::Running);
  EXPECT_EQ(all[0].pid, 4242) << "the later write of the same task wins";
  EXPECT_EQ(all[1].status, TaskStatus::Completed);
  EXPECT_EQ(s->transitions(started.id)->size(), 2u);
  EXPECT_EQ(s->transitions(ended.id)->size(), 2u);
  EXPECT_TRUE(s->transitions(unknown.id)->empty());
  EXPECT_TRUE(s->write({}).empty());
}

TEST_P(StoreContract, LoadAllReturnsTasksInSeqOrder) {
  auto s = open();
  ASSERT_TRUE(s);
  for (std::int64_t seq : {5, 1, 9, 3, 7}) ASSERT_TRUE(s->insert(make_task(seq)).ok());
  std::vector<std::int64_t> seqs;
  for (const auto& t : load(*s)) seqs.push_back(t.seq);
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{1, 3, 5, 7, 9}));
}

TEST_P(StoreContract, FindsByIdempotencyKeyAndRefusesADuplicateKey) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord a = make_task(1);
  a.spec.idempotency_key = "deploy-42";
  ASSERT_TRUE(s->insert(a).ok());

  auto found = s->find_by_idempotency_key("deploy-42");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, a.id);
  EXPECT_EQ(*s->find_by_idempotency_key("other"), std::nullopt);
  EXPECT_EQ(*s->find_by_idempotency_key(""), std::nullopt);

  TaskRecord b = make_task(2);
  b.spec.idempotency_key = "deploy-42";
  auto st = s->insert(b);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Conflict);
  EXPECT_NE(st.error().message.find("idempotency_key"), std::string::npos) << st.error().message;
  EXPECT_EQ(load(*s).size(), 1u);
  EXPECT_TRUE(s->transitions(b.id)->empty()) << "a refused insert writes no transition";

  // Tasks without a key never collide with each other.
  ASSERT_TRUE(s->insert(make_task(3)).ok());
  ASSERT_TRUE(s->insert(make_task(4)).ok());
}

TEST_P(StoreContract, RefusesADuplicateIdOrSeqAndWritesNothing) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord a = make_task(1);
  ASSERT_TRUE(s->insert(a).ok());
  TaskRecord same_id = make_task(2, a.id);
  auto st = s->insert(same_id);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Conflict);
  EXPECT_NE(st.error().message.find("store: insert task " + a.id + " failed"), std::string::npos)
      << st.error().message;
  TaskRecord same_seq = make_task(1);
  EXPECT_EQ(s->insert(same_seq).error().code, ErrorCode::Conflict);
  EXPECT_EQ(load(*s).size(), 1u);
  EXPECT_EQ(s->transitions(a.id)->size(), 1u);
  // The store is still usable after a refused write.
  ASSERT_TRUE(s->insert(make_task(2)).ok());
}

TEST_P(StoreContract, ABatchOfInsertsStoresEachAndRefusesADuplicateAlone) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord a = make_task(1), b = make_task(2), c = make_task(3);
  TaskRecord same_id = make_task(4, a.id);
  std::vector<Store::Write> writes{{&a, std::nullopt, true}, {&same_id, std::nullopt, true},
                                   {&b, std::nullopt, true}, {&c, std::nullopt, true}};
  const std::vector<Status> results = s->write(writes);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].error().code, ErrorCode::Conflict);
  EXPECT_TRUE(results[2].ok());
  EXPECT_TRUE(results[3].ok());
  const auto stored = load(*s);
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].id, a.id);
  EXPECT_EQ(stored[0].seq, 1);  // not the refused one's
  for (const TaskRecord* t : {&a, &b, &c}) EXPECT_EQ(s->transitions(t->id)->size(), 1u) << t->id;
}

// An update writes what changes as the task runs; its spec stays as stored.
TEST_P(StoreContract, AnUpdateKeepsTheSpecAsInserted) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord t = full_task();
  ASSERT_TRUE(s->insert(t).ok());
  const TaskStatus from = t.status;
  t.status = TaskStatus::Running;
  t.started_at_ms = 5;
  t.pid = 42;
  ASSERT_TRUE(s->update(t, from).ok());
  const auto stored = load(*s);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].spec.argv, t.spec.argv);
  EXPECT_EQ(stored[0].spec.name, t.spec.name);
  EXPECT_EQ(stored[0].spec.tags, t.spec.tags);
  EXPECT_EQ(stored[0].spec.env, t.spec.env);
  EXPECT_EQ(stored[0].spec.priority, t.spec.priority);
  EXPECT_EQ(stored[0].spec.idempotency_key, t.spec.idempotency_key);
  EXPECT_EQ(stored[0].status, TaskStatus::Running);
  EXPECT_EQ(stored[0].pid, 42);
  EXPECT_EQ(stored[0].started_at_ms, 5);
}

TEST_P(StoreContract, RemoveDeletesTasksAndTheirTransitions) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord a = make_task(1), b = make_task(2), c = make_task(3);
  for (auto* t : {&a, &b, &c}) ASSERT_TRUE(s->insert(*t).ok());
  b.status = TaskStatus::Running;
  ASSERT_TRUE(s->update(b, TaskStatus::Queued).ok());

  ASSERT_TRUE(s->remove({a.id, b.id, "tunknown", "t\"odd\\id"}).ok());
  auto all = load(*s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, c.id);
  EXPECT_TRUE(s->transitions(a.id)->empty());
  EXPECT_TRUE(s->transitions(b.id)->empty());
  EXPECT_EQ(s->transitions(c.id)->size(), 1u);
  EXPECT_EQ(raw_text("SELECT count(*) FROM transitions"), "1");
  EXPECT_TRUE(s->remove({}).ok());
}

TEST_P(StoreContract, MaxSeqIsZeroWhenEmptyThenTheHighestStored) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->max_seq(), 0);
  ASSERT_TRUE(s->insert(make_task(3)).ok());
  ASSERT_TRUE(s->insert(make_task(11)).ok());
  ASSERT_TRUE(s->insert(make_task(7)).ok());
  EXPECT_EQ(*s->max_seq(), 11);
  EXPECT_TRUE(s->probe().ok());
}

TEST_P(StoreContract, ReopeningKeepsDataAndContinuesTheSequence) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(s->insert(make_task(i)).ok());
  }
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(load(*s).size(), 3u);
  EXPECT_EQ(*s->max_seq(), 3);
  ASSERT_TRUE(s->insert(make_task(*s->max_seq() + 1)).ok());
  EXPECT_EQ(load(*s).size(), 4u);
}

TEST_P(StoreContract, ARowThatCannotBeReadBackIsAnErrorNamingTheTask) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord t = make_task(1);
  ASSERT_TRUE(s->insert(t).ok());
  raw_exec("UPDATE tasks SET status = 'exploded' WHERE id = '" + t.id + "'");
  auto all = s->load_all();
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.error().message.find(t.id), std::string::npos) << all.error().message;
  EXPECT_NE(all.error().message.find("exploded"), std::string::npos) << all.error().message;
  raw_exec("UPDATE tasks SET status = 'queued', spec = '{not json' WHERE id = '" + t.id + "'");
  all = s->load_all();
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.error().message.find(t.id), std::string::npos) << all.error().message;
}

TEST_P(StoreContract, ConcurrentWritersStayConsistent) {
  auto s = open();
  ASSERT_TRUE(s);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int k = 0; k < kThreads; ++k) {
      threads.emplace_back([&, k] {
        for (int i = 0; i < kPerThread; ++i) {
          TaskRecord t = make_task(k * kPerThread + i + 1);
          if (!s->insert(t)) ++failures;
          t.status = TaskStatus::Running;
          t.started_at_ms = kT0 + 10;
          if (!s->update(t, TaskStatus::Queued)) ++failures;
          t.progress = Progress{1, 2, "half"};
          if (!s->update_progress(t)) ++failures;
          t.status = TaskStatus::Completed;
          t.reason = EndReason::ExitCode;
          t.exit_code = 0;
          t.finished_at_ms = kT0 + 20;
          if (!s->update(t, TaskStatus::Running)) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  auto all = load(*s);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::set<std::int64_t> seqs;
  for (const auto& t : all) {
    seqs.insert(t.seq);
    EXPECT_EQ(t.status, TaskStatus::Completed);
    EXPECT_EQ(t.progress, (Progress{1, 2, "half"}));
  }
  EXPECT_EQ(seqs.size(), all.size());
  EXPECT_EQ(*s->max_seq(), kThreads * kPerThread);
  EXPECT_EQ(raw_text("SELECT count(*) FROM transitions"), std::to_string(3 * kThreads * kPerThread));
}

TEST_P(StoreContract, BothBackendsAreAtTheSameSchemaVersion) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(raw_text(GetParam() == Backend::Postgres ? "SELECT max(version) FROM schema_version"
                                                     : "PRAGMA user_version"),
            "3");
}

TEST(OpenStore, ChoosesTheBackendByTheSpec) {
  EXPECT_TRUE(is_postgres_url("postgresql://u@127.0.0.1:5432/db"));
  EXPECT_TRUE(is_postgres_url("postgres://u@127.0.0.1/db"));
  EXPECT_FALSE(is_postgres_url("sqlite:///tmp/x.db"));
  EXPECT_FALSE(is_postgres_url("postgresql.db"));

  test::TempDir dir;
  const fs::path file = dir.path() / "by-url.db";
  auto s = open_store("sqlite://" + file.string());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ((*s)->location(), file.string());
  EXPECT_TRUE(fs::exists(file)) << "sqlite:// names a SQLite file";
}

}  // namespace
}  // namespace orch::engine
