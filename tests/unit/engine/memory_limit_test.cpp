#include "engine/memory_limit.h"

#include <gtest/gtest.h>

#include <fstream>

#include "engine/task_keeper.h"
#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

TEST(MemoryLimit, RecognisesOutOfMemoryMessagesOfCommonRuntimes) {
  EXPECT_EQ(find_out_of_memory_message("Traceback ...\nMemoryError\n"), "MemoryError");
  EXPECT_EQ(find_out_of_memory_message("terminate called after throwing an instance of 'std::bad_alloc'"),
            "std::bad_alloc");
  EXPECT_TRUE(find_out_of_memory_message("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"));
  EXPECT_TRUE(find_out_of_memory_message("fatal error: runtime: out of memory"));
  EXPECT_FALSE(find_out_of_memory_message("error: no such file or directory"));
}

class RlimitVerdict : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<MemoryLimiter> limiter = MemoryLimiter::rlimit_only();
  std::filesystem::path stderr_with(const std::string& text) {
    auto p = dir.path() / "stderr";
    std::ofstream(p) << text;
    return p;
  }
};

TEST_F(RlimitVerdict, AFailureWhoseStderrSaysOutOfMemoryIsTheLimit) {
  EXPECT_FALSE(limiter->uses_cgroup());
  EXPECT_EQ(limiter->prepare("t1", 100), "") << "no cgroup: the keeper sets RLIMIT_AS";
  auto verdict = limiter->judge_end("t1", 100, 1, std::nullopt, stderr_with("...\nMemoryError\n"));
  ASSERT_TRUE(verdict.has_value());
  EXPECT_NE(verdict->find("100 MiB"), std::string::npos);
  EXPECT_NE(verdict->find("RLIMIT_AS"), std::string::npos);
}

TEST_F(RlimitVerdict, SuccessOrAnotherFailureIsNot) {
  EXPECT_FALSE(limiter->judge_end("t1", 100, 0, std::nullopt, stderr_with("MemoryError")));
  EXPECT_FALSE(limiter->judge_end("t1", 100, 2, std::nullopt, stderr_with("usage: prog [-h]\n")));
  EXPECT_FALSE(limiter->judge_end("t1", 100, 1, std::nullopt, dir.path() / "missing"));
}

TEST(TaskKeeperLimits, LimitsTravelOnTheKeepersCommandLine) {
  KeeperArgs args;
  args.task_id = "t1";
  args.task_dir = "/tmp/t1";
  args.limits = {.memory_mb = 100, .cpu_sec = 5, .open_files = 64};
  args.cgroup = "/sys/fs/cgroup/x/orch-t1";
  args.exe = "/bin/true";
  args.argv = {"true"};
  auto line = keeper_command_line("/usr/libexec/mcp-orchestrator-keeper", args);
  std::vector<const char*> argv;
  for (const auto& a : line) argv.push_back(a.c_str());
  std::string error;
  auto parsed = parse_keeper_command_line(static_cast<int>(argv.size()), argv.data(), error);
  ASSERT_TRUE(parsed.has_value()) << error;
  EXPECT_EQ(parsed->limits, args.limits);
  EXPECT_EQ(parsed->cgroup, args.cgroup);
  EXPECT_EQ(parsed->argv, args.argv);
}

}  // namespace
}  // namespace orch::engine
