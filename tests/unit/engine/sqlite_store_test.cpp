// What only the SQLite store does (engine/sqlite_store.h): WAL on a real
// file, what a kill -9 leaves, and refusing damaged files untouched. The
// contract both backends keep is tested in store_test.cpp.
#include "engine/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "tests/support/store_tasks.h"
#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

namespace fs = std::filesystem;
using test::expect_same;
using test::kT0;
using test::make_task;

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

class SqliteStoreTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  fs::path file = dir.path() / "state" / "tasks.db";  // the parent does not exist yet

  std::unique_ptr<SqliteStore> open() {
    auto s = SqliteStore::open(file);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::vector<TaskRecord> load(Store& s) {
    auto all = s.load_all();
    EXPECT_TRUE(all.ok()) << (all.ok() ? "" : all.error().message);
    return all.ok() ? std::move(*all) : std::vector<TaskRecord>{};
  }
};

TEST_F(SqliteStoreTest, TheFileIsInWalModeAtTheCurrentSchemaVersion) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->file(), file);
  RawDb raw(file);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA user_version"), "3");
}

TEST_F(SqliteStoreTest, CommittedWritesSurviveAStoreThatIsNeverClosed) {
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

  auto reopened = SqliteStore::open(copy);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  auto all = load(**reopened);
  ASSERT_EQ(all.size(), 1u);
  expect_same(all[0], t);
  EXPECT_EQ((*reopened)->transitions(t.id)->size(), 2u);
}

// A refusal names the file, says what is wrong and what to do, and leaves
// the file exactly as it was.
void expect_refused_untouched(const fs::path& file, const std::string& bytes) {
  auto s = SqliteStore::open(file);
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message;
  EXPECT_NE(m.find(file.string()), std::string::npos) << m;
  EXPECT_NE(m.find("corrupt"), std::string::npos) << m;
  EXPECT_NE(m.find("move"), std::string::npos) << m;
  EXPECT_TRUE(read_bytes(file) == bytes) << "the refused file was changed";
}

// SQLite would take an empty file for a new database; the store writes its
// header on the first open, so an existing empty file was truncated.
TEST_F(SqliteStoreTest, AnEmptyExistingFileIsRefusedNotTakenForANewStore) {
  fs::create_directories(file.parent_path());
  write_bytes(file, "");
  expect_refused_untouched(file, "");
  EXPECT_NE(SqliteStore::open(file).error().message.find("empty (0 bytes)"), std::string::npos) << "it says why";
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabaseAndLeavesItUntouched) {
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

TEST_F(SqliteStoreTest, RefusesAFileWithADamagedPageAndLeavesItUntouched) {
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

// The log grows by the pages a commit changed: ten writes of neighbouring
// rows in one batch add about one page where ten commits add ten.
TEST_F(SqliteStoreTest, ABatchOfWritesIsOneCommit) {
  auto s = open();
  ASSERT_TRUE(s);
  std::vector<TaskRecord> tasks;
  for (int i = 1; i <= 20; ++i) {
    tasks.push_back(make_task(i));
    ASSERT_TRUE(s->insert(tasks.back()).ok());
  }
  const fs::path wal = file.string() + "-wal";
  auto grown = [&](auto&& write) {
    const auto before = fs::file_size(wal);
    write();
    return fs::file_size(wal) - before;
  };
  const auto one_by_one = grown([&] {
    for (int i = 0; i < 10; ++i) {
      tasks[i].pid = 100 + i;
      ASSERT_TRUE(s->update_progress(tasks[i]).ok());
    }
  });
  const auto batched = grown([&] {
    std::vector<Store::Write> writes;
    for (int i = 10; i < 20; ++i) {
      tasks[i].pid = 100 + i;
      writes.push_back({&tasks[i], std::nullopt});
    }
    for (const Status& st : s->write(writes)) EXPECT_TRUE(st.ok());
  });
  EXPECT_GE(one_by_one, 10u * 4096u);
  EXPECT_LT(batched * 4, one_by_one) << "one commit for the batch";
  for (const TaskRecord& t : load(*s)) EXPECT_EQ(t.pid, 100 + t.seq - 1);
}

// A file of schema 2 (this one plus the status and claim indexes) keeps its
// tasks and loses the indexes that only cost writes here.
TEST_F(SqliteStoreTest, MigratesAVersionTwoFileAndKeepsItsTasks) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->insert(make_task(1)).ok());
  }
  {
    RawDb raw(file);
    raw.exec("CREATE INDEX tasks_status ON tasks(status); "
             "CREATE INDEX tasks_claimable ON tasks(priority DESC, seq) WHERE status = 'queued' AND node IS NULL; "
             "PRAGMA user_version = 2;");
  }
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(load(*s).size(), 1u);
  RawDb raw(file);
  EXPECT_EQ(raw.text("PRAGMA user_version"), "3");
  EXPECT_EQ(raw.text("SELECT count(*) FROM sqlite_master WHERE name IN ('tasks_status', 'tasks_claimable')"), "0");
}

TEST_F(SqliteStoreTest, RefusesASchemaNewerThanThisBuild) {
  fs::create_directories(file.parent_path());
  {
    RawDb raw(file);
    raw.exec("CREATE TABLE future (x); PRAGMA user_version = 999;");
  }
  const std::string bytes = read_bytes(file);
  auto s = SqliteStore::open(file);
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("created by a newer mcp-orchestrator (schema 999, this build knows 3)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(file.string()), std::string::npos) << m;
  EXPECT_TRUE(read_bytes(file) == bytes);
}

}  // namespace
}  // namespace orch::engine
