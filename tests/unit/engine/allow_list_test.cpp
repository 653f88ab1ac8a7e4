#include "engine/allow_list.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPath = "/usr/local/bin:/usr/bin:/bin";

TaskSpec argv(std::vector<std::string> a, std::string cwd = "/tmp") {
  TaskSpec s;
  s.kind = TaskKind::Argv;
  s.argv = std::move(a);
  s.cwd = std::move(cwd);
  return s;
}

std::vector<std::string> env(std::string path = kPath) { return {"PATH=" + path, "HOME=/root"}; }

AllowList only(std::vector<std::string> commands, std::vector<std::string> dirs = {}) {
  auto list = AllowList::create(commands, dirs, kPath);
  EXPECT_TRUE(list.ok()) << (list.ok() ? "" : list.error().message);
  return list.ok() ? *list : AllowList{};
}

TEST(AllowList, DefaultAllowsEverything) {
  AllowList any;
  EXPECT_TRUE(any.check(argv({"/no/such/thing"}), env(), "/").ok());
}

TEST(AllowList, AllowsANamedProgramByNameAndByItsAbsolutePath) {
  AllowList list = only({"ls"});
  EXPECT_TRUE(list.check(argv({"ls", "-l"}), env(), "/").ok());
  EXPECT_TRUE(list.check(argv({"/usr/bin/ls"}), env(), "/").ok()) << "the same file by another name";
  EXPECT_TRUE(list.check(argv({"/usr/bin/../bin/ls"}), env(), "/").ok());
}

TEST(AllowList, RefusesOtherProgramsHoweverTheyAreSpelled) {
  AllowList list = only({"ls"});
  auto refused = list.check(argv({"rm", "-rf", "x"}), env(), "/");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::Forbidden);
  EXPECT_NE(refused.error().message.find("allowed: ls"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(list.check(argv({"/usr/bin/rm"}), env(), "/").ok());
  EXPECT_FALSE(list.check(argv({"/usr/bin/ls/../rm"}), env(), "/").ok());
  EXPECT_FALSE(list.check(argv({"../../usr/bin/rm"}, "/tmp"), env(), "/").ok());
  EXPECT_FALSE(list.check(argv({"ls\nrm"}), env(), "/").ok()) << "a newline is part of the name, not a separator";
}

TEST(AllowList, TheCommandFormIsAShellAndNeedsTheShellAllowed) {
  TaskSpec cmd;
  cmd.kind = TaskKind::Command;
  cmd.command = "ls; rm -rf /";
  auto refused = only({"ls"}).check(cmd, env(), "/");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("/bin/sh"), std::string::npos);
  EXPECT_TRUE(only({"ls", "sh"}).check(cmd, env(), "/").ok());
}

TEST(AllowList, ATaskPathOrSymlinkCannotSmuggleInAnotherProgram) {
  test::TempDir dir;
  // A directory of the task's own with a "ls" that is really rm.
  fs::create_symlink("/usr/bin/rm", dir.path() / "ls");
  AllowList list = only({"ls"});
  EXPECT_FALSE(list.check(argv({"ls"}), env(dir.path().string() + ":" + kPath), "/").ok());
  EXPECT_FALSE(list.check(argv({(dir.path() / "ls").string()}), env(), "/").ok());
  EXPECT_FALSE(list.check(argv({"./ls"}, dir.path().string()), env(), "/").ok());
}

TEST(AllowList, RestrictedListsRefuseLoaderVariables) {
  TaskSpec s = argv({"ls"});
  auto e = env();
  e.push_back("LD_PRELOAD=/tmp/evil.so");
  EXPECT_FALSE(only({"ls"}).check(s, e, "/").ok());
  EXPECT_TRUE(AllowList{}.check(s, e, "/").ok()) << "with \"*\" anything may run anyway";
}

TEST(AllowList, CwdMustBeInsideAnAllowedDirectoryByWholeComponents) {
  test::TempDir root;
  fs::create_directories(root.path() / "work" / "sub");
  fs::create_directories(root.path() / "workshop");
  fs::create_symlink(root.path() / "workshop", root.path() / "work" / "escape");
  AllowList list = only({"*"}, {(root.path() / "work").string()});
  EXPECT_TRUE(list.check(argv({"ls"}, (root.path() / "work").string()), env(), "/").ok());
  EXPECT_TRUE(list.check(argv({"ls"}, (root.path() / "work" / "sub").string()), env(), "/").ok());
  auto refused = list.check(argv({"ls"}, (root.path() / "workshop").string()), env(), "/");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("outside the allowed directories"), std::string::npos);
  EXPECT_FALSE(list.check(argv({"ls"}, (root.path() / "work" / "sub" / ".." / "..").string()), env(), "/").ok());
  EXPECT_FALSE(list.check(argv({"ls"}, (root.path() / "work" / "escape").string()), env(), "/").ok())
      << "a symlink out of the tree";
  EXPECT_FALSE(list.check(argv({"ls"}, ""), env(), "/").ok()) << "no cwd: the server's, which is outside";
}

TEST(AllowList, RefusesEntriesThatAreNeitherNamesNorAbsolutePaths) {
  EXPECT_FALSE(AllowList::create({"bin/ls"}, {}, kPath).ok());
  EXPECT_FALSE(AllowList::create({"ls"}, {"relative/dir"}, kPath).ok());
}

}  // namespace
}  // namespace orch::engine
