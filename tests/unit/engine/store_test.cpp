#include "engine/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kT0 = 1'800'000'000'000;  // a fixed "now" in Unix ms

// A second, independent connection: what another process would see.
class RawDb {
 public:
  explicit RawDb(const fs::path& file) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db_, flags, nullptr), SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "");
    sqlite3_free(err);
  }
  // The first column of the first row, as text ("" when there is no row).
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      out = p ? p : "";
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TaskRecord make_task(std::int64_t seq, std::string id = {}) {
  TaskRecord t;
  t.id = id.empty() ? new_task_id() : std::move(id);
  t.seq = seq;
  t.spec.command = "echo " + std::to_string(seq);
  t.submitted_at_ms = kT0 + seq;
  return t;
}

// Every field set to something other than its default.
TaskRecord full_task() {
  TaskRecord t;
  t.id = new_task_id();
  t.seq = 42;
  t.spec.kind = TaskKind::Argv;
  t.spec.argv = {"/bin/printf", "%s\\n", "a b", "ünïcødé"};
  t.spec.name = "build";
  t.spec.tags = {"ci", "nightly"};
  t.spec.cwd = "work/dir";
  t.spec.env = {{"A", "1"}, {"EMPTY", ""}, {"QUOTE", "it's \"quoted\""}};
  t.spec.stdin_data = std::string("line 1\nline 2\0tail", 18);
  t.spec.priority = 9;
  t.spec.timeout_ms = 90'000;
  t.spec.depends_on = {"tdep1", "tdep2"};
  t.spec.retry = {3, Backoff::Fixed, 250, 4000};
  t.spec.idempotency_key = "key-1";
  t.spec.run_at_ms = kT0 + 5000;
  t.status = TaskStatus::Failed;
  t.reason = EndReason::Signal;
  t.message = "killed by signal 9";
  t.progress = Progress{3, 10, "step 3"};
  t.attempt = 2;
  t.exit_code = -1;
  t.signal = 9;
  t.pid = 12345;
  t.peak_rss_kb = 65536;
  t.submitted_at_ms = kT0;
  t.started_at_ms = kT0 + 6000;
  t.finished_at_ms = kT0 + 7000;
  t.not_before_ms = kT0 + 5000;
  t.stdout_bytes = 5'000'000'000ULL;  // past 32 bits
  t.stderr_bytes = 17;
  return t;
}

void expect_same(const TaskRecord& a, const TaskRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(spec_to_storage_json(a.spec), spec_to_storage_json(b.spec));
  EXPECT_EQ(a.spec.stdin_data, b.spec.stdin_data);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.progress, b.progress);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.signal, b.signal);
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.peak_rss_kb, b.peak_rss_kb);
  EXPECT_EQ(a.submitted_at_ms, b.submitted_at_ms);
  EXPECT_EQ(a.started_at_ms, b.started_at_ms);
  EXPECT_EQ(a.finished_at_ms, b.finished_at_ms);
  EXPECT_EQ(a.not_before_ms, b.not_before_ms);
  EXPECT_EQ(a.stdout_bytes, b.stdout_bytes);
  EXPECT_EQ(a.stderr_bytes, b.stderr_bytes);
}

class StoreTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  fs::path file = dir.path() / "state" / "tasks.db";  // the parent does not exist yet

  std::unique_ptr<Store> open() {
    auto s = Store::open(file);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::vector<TaskRecord> load(Store& s) {
    auto all = s.load_all();
    EXPECT_TRUE(all.ok()) << (all.ok() ? "" : all.error().message);
    return all.ok() ? std::move(*all) : std::vector<TaskRecord>{};
  }
};

TEST_F(StoreTest, RoundTripsEveryFieldAcrossAReopen) {
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

TEST_F(StoreTest, KeepsTheQueryableCopiesOfTheSpecInTheirColumns) {
  const TaskRecord t = full_task();
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->insert(t).ok());
  RawDb raw(file);
  const std::string where = " FROM tasks WHERE id = '" + t.id + "'";
  EXPECT_EQ(raw.text("SELECT name" + where), "build");
  EXPECT_EQ(raw.text("SELECT tags" + where), R"(["ci","nightly"])");
  EXPECT_EQ(raw.text("SELECT priority" + where), "9");
  EXPECT_EQ(raw.text("SELECT idempotency_key" + where), "key-1");
  EXPECT_EQ(raw.text("SELECT count(*) FROM tasks WHERE EXISTS "
                     "(SELECT 1 FROM json_each(tags) WHERE value = 'ci')"),
            "1");
  TaskRecord no_key = make_task(7);
  ASSERT_TRUE(s->insert(no_key).ok());
  EXPECT_EQ(raw.text("SELECT idempotency_key IS NULL FROM tasks WHERE id = '" + no_key.id + "'"),
            "1");
}

TEST_F(StoreTest, UpdateWritesColumnsAndAppendsTransitionsInOrder) {
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

TEST_F(StoreTest, UpdateOfAnUnknownTaskIsNotFoundAndWritesNothing) {
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

TEST_F(StoreTest, UpdateProgressWritesProgressAndCountersButNoTransition) {
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

TEST_F(StoreTest, LoadAllReturnsTasksInSeqOrder) {
  auto s = open();
  ASSERT_TRUE(s);
  for (std::int64_t seq : {5, 1, 9, 3, 7}) ASSERT_TRUE(s->insert(make_task(seq)).ok());
  std::vector<std::int64_t> seqs;
  for (const auto& t : load(*s)) seqs.push_back(t.seq);
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{1, 3, 5, 7, 9}));
}

TEST_F(StoreTest, FindsByIdempotencyKeyAndRefusesADuplicateKey) {
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

TEST_F(StoreTest, RefusesADuplicateIdOrSeqAndWritesNothing) {
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
}

TEST_F(StoreTest, RemoveDeletesTasksAndTheirTransitions) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord a = make_task(1), b = make_task(2), c = make_task(3);
  for (auto* t : {&a, &b, &c}) ASSERT_TRUE(s->insert(*t).ok());
  b.status = TaskStatus::Running;
  ASSERT_TRUE(s->update(b, TaskStatus::Queued).ok());

  ASSERT_TRUE(s->remove({a.id, b.id, "tunknown"}).ok());
  auto all = load(*s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, c.id);
  EXPECT_TRUE(s->transitions(a.id)->empty());
  EXPECT_TRUE(s->transitions(b.id)->empty());
  EXPECT_EQ(s->transitions(c.id)->size(), 1u);
  RawDb raw(file);
  EXPECT_EQ(raw.text("SELECT count(*) FROM transitions"), "1");
  EXPECT_TRUE(s->remove({}).ok());
}

TEST_F(StoreTest, MaxSeqIsZeroWhenEmptyThenTheHighestStored) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->max_seq(), 0);
  ASSERT_TRUE(s->insert(make_task(3)).ok());
  ASSERT_TRUE(s->insert(make_task(11)).ok());
  ASSERT_TRUE(s->insert(make_task(7)).ok());
  EXPECT_EQ(*s->max_seq(), 11);
  EXPECT_TRUE(s->probe().ok());
}

TEST_F(StoreTest, TheFileIsInWalModeAtTheCurrentSchemaVersion) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->file(), file);
  RawDb raw(file);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA user_version"), "1");
}

TEST_F(StoreTest, CommittedWritesSurviveAStoreThatIsNeverClosed) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord t = make_task(1);
  ASSERT_TRUE(s->insert(t).ok());
  t.status = TaskStatus::Running;
  t.started_at_ms = kT0 + 1;
  ASSERT_TRUE(s->update(t, TaskStatus::Queued).ok());

  // What a kill -9 leaves: the files as they are on disk right now, with the
  // last commits still only in the WAL. Copy them while the store is open.
  const fs::path copy = dir.path() / "copy" / "tasks.db";
  fs::create_directories(copy.parent_path());
  ASSERT_TRUE(fs::exists(file.string() + "-wal"));
  fs::copy_file(file, copy);
  fs::copy_file(file.string() + "-wal", copy.string() + "-wal");

  auto reopened = Store::open(copy);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  auto all = load(**reopened);
  ASSERT_EQ(all.size(), 1u);
  expect_same(all[0], t);
  EXPECT_EQ((*reopened)->transitions(t.id)->size(), 2u);
}

TEST_F(StoreTest, ReopeningKeepsDataAndContinuesTheSequence) {
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

// A refusal names the file, says what is wrong and what to do, and leaves
// the file exactly as it was.
void expect_refused_untouched(const fs::path& file, const std::string& bytes) {
  auto s = Store::open(file);
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message;
  EXPECT_NE(m.find(file.string()), std::string::npos) << m;
  EXPECT_NE(m.find("corrupt"), std::string::npos) << m;
  EXPECT_NE(m.find("move"), std::string::npos) << m;
  EXPECT_TRUE(read_bytes(file) == bytes) << "the refused file was changed";
}

// SQLite would take an empty file for a new database; the store writes its
// header on the first open, so an existing empty file was truncated.
TEST_F(StoreTest, AnEmptyExistingFileIsRefusedNotTakenForANewStore) {
  fs::create_directories(file.parent_path());
  write_bytes(file, "");
  expect_refused_untouched(file, "");
  EXPECT_NE(Store::open(file).error().message.find("empty (0 bytes)"), std::string::npos) << "it says why";
}

TEST_F(StoreTest, RefusesAFileThatIsNotADatabaseAndLeavesItUntouched) {
  fs::create_directories(file.parent_path());
  const std::string text = "this is not a database\n";
  write_bytes(file, text);
  expect_refused_untouched(file, text);

  // The SQLite magic followed by garbage gets past the header check; SQLite
  // itself must then refuse it.
  std::string fake("SQLite format 3\0", 16);
  fake += std::string(8192, '\xAB');
  write_bytes(file, fake);
  expect_refused_untouched(file, fake);
}

TEST_F(StoreTest, RefusesAFileWithADamagedPageAndLeavesItUntouched) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    for (int i = 1; i <= 300; ++i) {
      TaskRecord t = make_task(i);
      t.spec.env["PAYLOAD"] = std::string(200, static_cast<char>('a' + i % 26));
      ASSERT_TRUE(s->insert(t).ok());
    }
  }  // closed: the WAL is checkpointed into the file and removed
  std::string bytes = read_bytes(file);
  ASSERT_GT(bytes.size(), 8192u + 4096u);
  std::fill_n(bytes.begin() + 8192, 4096, '\xFF');
  write_bytes(file, bytes);
  expect_refused_untouched(file, bytes);
}

TEST_F(StoreTest, RefusesASchemaNewerThanThisBuild) {
  fs::create_directories(file.parent_path());
  {
    RawDb raw(file);
    raw.exec("CREATE TABLE future (x); PRAGMA user_version = 999;");
  }
  const std::string bytes = read_bytes(file);
  auto s = Store::open(file);
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("created by a newer mcp-orchestrator (schema 999, this build knows 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(file.string()), std::string::npos) << m;
  EXPECT_TRUE(read_bytes(file) == bytes);
}

TEST_F(StoreTest, ARowThatCannotBeReadBackIsAnErrorNamingTheTask) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord t = make_task(1);
  ASSERT_TRUE(s->insert(t).ok());
  {
    RawDb raw(file);
    raw.exec("UPDATE tasks SET status = 'exploded' WHERE id = '" + t.id + "'");
  }
  auto all = s->load_all();
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.error().message.find(t.id), std::string::npos) << all.error().message;
  EXPECT_NE(all.error().message.find("exploded"), std::string::npos) << all.error().message;
  {
    RawDb raw(file);
    raw.exec("UPDATE tasks SET status = 'queued', spec = '{not json' WHERE id = '" + t.id + "'");
  }
  all = s->load_all();
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.error().message.find(t.id), std::string::npos) << all.error().message;
}

TEST_F(StoreTest, ConcurrentWritersStayConsistent) {
  auto s = open();
  ASSERT_TRUE(s);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
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
  RawDb raw(file);
  EXPECT_EQ(raw.text("SELECT count(*) FROM transitions"),
            std::to_string(3 * kThreads * kPerThread));
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace orch::engine
