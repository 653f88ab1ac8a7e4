#include "app/install/backup_write.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace orch::app::install {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  auto text = read_config_text(p);
  return text ? *text : "<unreadable>";
}

void spit(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

mode_t mode_of(const fs::path& p) {
  struct stat st{};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

TEST(BackupWrite, NewFileGetsDirectoriesAndNoBackup) {
  test::TempDir dir;
  auto w = write_with_backup(dir.path() / "a" / "b" / "mcp.json", "{}\n");
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_FALSE(w->backup.has_value());
  EXPECT_EQ(slurp(dir.path() / "a" / "b" / "mcp.json"), "{}\n");
  EXPECT_EQ(mode_of(w->file), 0644u);
}

TEST(BackupWrite, EachWriteKeepsABackupAndTheFirstKeepsTheOriginal) {
  test::TempDir dir;
  const fs::path file = dir.path() / "mcp.json";
  spit(file, "original");
  ::chmod(file.c_str(), 0600);
  auto first = write_with_backup(file, "second");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->backup.has_value());
  EXPECT_EQ(*first->backup, file.string() + ".bak");
  auto second = write_with_backup(file, "third");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second->backup, file.string() + ".bak.1");
  EXPECT_EQ(slurp(file.string() + ".bak"), "original");
  EXPECT_EQ(slurp(file.string() + ".bak.1"), "second");
  EXPECT_EQ(slurp(file), "third");
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_EQ(mode_of(file.string() + ".bak"), 0600u);
}

TEST(BackupWrite, WritesThroughASymlink) {
  test::TempDir dir;
  const fs::path real = dir.path() / "dotfiles" / "mcp.json";
  fs::create_directories(real.parent_path());
  spit(real, "{}");
  fs::create_symlink(real, dir.path() / "link.json");
  auto w = write_with_backup(dir.path() / "link.json", "new");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(fs::is_symlink(dir.path() / "link.json"));
  EXPECT_EQ(slurp(real), "new");
}

TEST(BackupWrite, PrivateNewFileIsOwnerOnly) {
  test::TempDir dir;
  auto w = write_with_backup(dir.path() / ".claude.json", "{}", Privacy::Private);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(mode_of(w->file), 0600u);
}

TEST(BackupWrite, AMissingFileReadsAsEmpty) {
  test::TempDir dir;
  auto text = read_config_text(dir.path() / "nope.json");
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(text->empty());
}

}  // namespace
}  // namespace orch::app::install
