#include "engine/wal_checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>

#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::engine {
namespace {

namespace fs = std::filesystem;
constexpr std::uintmax_t kFrameBytes = 24 + 4096;

class WalCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(file_.c_str(), &db_), SQLITE_OK);
    // As the store's own connection: a commit that meets the thread's
    // checkpoint updating the log's read marks waits for it, not BUSY.
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE t(x)");
  }
  void TearDown() override {
    checkpointer_.reset();
    sqlite3_close(db_);
  }

  void exec(const char* sql) { ASSERT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql; }
  // One commit of about a page.
  void commit_a_page() { exec("INSERT INTO t VALUES (randomblob(3500))"); }
  std::uintmax_t log_frames() const {
    std::error_code ec;
    auto size = fs::file_size(file_.string() + "-wal", ec);
    return ec || size < 32 ? 0 : (size - 32) / kFrameBytes;
  }

  orch::test::TempDir dir_;
  fs::path file_ = dir_.path() / "t.db";
  sqlite3* db_ = nullptr;
  std::unique_ptr<WalCheckpointer> checkpointer_;
};

TEST_F(WalCheckpointerTest, ALogPastTheThresholdIsCopiedIntoTheDatabaseByTheThread) {
  auto attached = WalCheckpointer::attach(db_, file_);
  ASSERT_TRUE(attached) << attached.error().message;
  checkpointer_ = std::move(*attached);
  const auto before = fs::file_size(file_);
  while (log_frames() < WalCheckpointer::kPages + 10) commit_a_page();
  ASSERT_TRUE(orch::test::wait_until([&] { return checkpointer_->background_runs() >= 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(checkpointer_->forced_runs(), 0);
  // The pages reached the database file, which SQLite's own checkpoint, now
  // replaced by the hook, would have done in the commit.
  EXPECT_GT(fs::file_size(file_), before + 200 * 4096);
}

TEST_F(WalCheckpointerTest, AWriterThatNeverPausesKeepsTheLogBounded) {
  auto attached = WalCheckpointer::attach(db_, file_);
  ASSERT_TRUE(attached) << attached.error().message;
  checkpointer_ = std::move(*attached);
  constexpr int kCommits = 8 * WalCheckpointer::kForcePages;
  std::uintmax_t longest = 0;
  for (int i = 0; i < kCommits; ++i) {
    commit_a_page();
    longest = std::max(longest, log_frames());
  }
  // Past the forced threshold only while the thread's checkpoint holds the
  // forced one off, which is as long as that checkpoint takes (seconds under
  // a sanitizer): bounded, but not by a number of pages. Never checkpointed,
  // the log would hold every commit.
  EXPECT_LT(longest, static_cast<std::uintmax_t>(kCommits / 2));
  EXPECT_GE(checkpointer_->background_runs() + checkpointer_->forced_runs(), 1);
}

TEST_F(WalCheckpointerTest, ClosingAfterItLeavesNoLogBehind) {
  auto attached = WalCheckpointer::attach(db_, file_);
  ASSERT_TRUE(attached) << attached.error().message;
  checkpointer_ = std::move(*attached);
  for (int i = 0; i < 50; ++i) commit_a_page();
  checkpointer_.reset();
  ASSERT_EQ(sqlite3_close(db_), SQLITE_OK);
  db_ = nullptr;
  EXPECT_FALSE(fs::exists(file_.string() + "-wal"));
}

TEST_F(WalCheckpointerTest, AFileThatCannotBeOpenedIsAClearError) {
  auto attached = WalCheckpointer::attach(db_, dir_.path() / "missing" / "t.db");
  ASSERT_FALSE(attached);
  EXPECT_NE(attached.error().message.find("cannot open"), std::string::npos) << attached.error().message;
}

}  // namespace
}  // namespace orch::engine
