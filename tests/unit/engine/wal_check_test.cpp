#include "engine/wal_check.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

namespace fs = std::filesystem;
constexpr std::uintmax_t kFrameBytes = 24 + 4096;

// A database in WAL mode with `rows` commits still in its log: the connection
// is left open while the log is copied, as a kill -9 would leave it.
class WalCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open((dir_.path() / "live.db").c_str(), &db_), SQLITE_OK);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA wal_autocheckpoint=0");
    exec("CREATE TABLE t(x)");
    for (int i = 0; i < 20; ++i) exec("INSERT INTO t VALUES (randomblob(3000))");
    fs::copy_file(dir_.path() / "live.db-wal", wal_);
  }
  void TearDown() override { sqlite3_close(db_); }

  void exec(const char* sql) { ASSERT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql; }

  void flip(std::uintmax_t offset) {
    std::fstream f(wal_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x01));
  }
  std::uintmax_t frames() const { return (fs::file_size(wal_) - 32) / kFrameBytes; }

  orch::test::TempDir dir_;
  fs::path wal_ = dir_.path() / "copy.db-wal";
  sqlite3* db_ = nullptr;
};

TEST_F(WalCheck, AMissingOrShortLogIsIntact) {
  EXPECT_EQ(find_wal_damage(dir_.path() / "none-wal"), "");
  fs::resize_file(wal_, 20);
  EXPECT_EQ(find_wal_damage(wal_), "");
}

TEST_F(WalCheck, ALogWrittenBySqliteIsIntact) {
  ASSERT_GT(frames(), 10u);
  EXPECT_EQ(find_wal_damage(wal_), "");
}

TEST_F(WalCheck, AFlippedBitInAFrameBeforeTheLastCommitIsDamage) {
  flip(32 + (frames() / 2) * kFrameBytes + 24 + 100);
  const std::string damage = find_wal_damage(wal_);
  EXPECT_NE(damage.find("frame " + std::to_string(frames() / 2 + 1) + " of"), std::string::npos) << damage;
}

TEST_F(WalCheck, AFlippedBitInTheHeaderIsDamage) {
  flip(20);  // the second salt
  EXPECT_NE(find_wal_damage(wal_).find("header"), std::string::npos);
}

TEST_F(WalCheck, AnUnfinishedLastTransactionIsIntact) {
  std::ofstream(wal_, std::ios::app | std::ios::binary) << std::string(kFrameBytes, '\x11');
  EXPECT_EQ(find_wal_damage(wal_), "");
}

TEST_F(WalCheck, FramesOfAnOlderGenerationAfterTheLiveOnesAreIntact) {
  // A checkpoint and a restart of the log: new salts, old frames left behind it.
  exec("PRAGMA wal_checkpoint(RESTART)");
  exec("INSERT INTO t VALUES (1)");
  fs::copy_file(dir_.path() / "live.db-wal", wal_, fs::copy_options::overwrite_existing);
  ASSERT_GT(frames(), 2u);
  EXPECT_EQ(find_wal_damage(wal_), "");
}

}  // namespace
}  // namespace orch::engine
