#include "engine/task_keeper.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

using namespace std::string_literals;

TEST(KeeperStatus, EveryKindSurvivesARoundTrip) {
  for (auto kind : {KeeperStatus::Kind::Exited, KeeperStatus::Kind::Signaled, KeeperStatus::Kind::SpawnError,
                    KeeperStatus::Kind::OrphanKilled}) {
    KeeperStatus in{kind, 9, 123456};
    auto out = parse_keeper_status(format_keeper_status(in));
    ASSERT_TRUE(out) << format_keeper_status(in);
    EXPECT_EQ(out->kind, kind);
    EXPECT_EQ(out->value, 9);
    EXPECT_EQ(out->peak_rss_kb, 123456);
  }
  EXPECT_EQ(format_keeper_status({KeeperStatus::Kind::Exited, 3, 10}), "v1 exit 3 rss 10\n");
}

TEST(KeeperStatus, DamagedLinesAreRefused) {
  for (const std::string& bad :
       {""s, "v1 exit 3 rss 10"s /* no newline: torn */, "v2 exit 3 rss 10\n"s, "v1 quit 3 rss 10\n"s,
        "v1 exit x rss 10\n"s, "v1 exit 3 mem 10\n"s, "v1 exit 3 rss\n"s, "v1 exit 3 rss 10 more\n"s}) {
    EXPECT_FALSE(parse_keeper_status(bad)) << bad;
  }
}

TEST(KeeperStatus, ReadsTheFileOrNothing) {
  test::TempDir dir;
  EXPECT_FALSE(read_keeper_status(dir.path()));
  std::ofstream(dir.path() / kKeeperStatusFile) << "v1 signal 15 rss 2048\n";
  auto status = read_keeper_status(dir.path());
  ASSERT_TRUE(status);
  EXPECT_EQ(status->kind, KeeperStatus::Kind::Signaled);
  EXPECT_EQ(status->value, 15);
}

KeeperArgs sample_args() {
  KeeperArgs args;
  args.task_id = "tabc";
  args.task_dir = "/state/spool/tabc";
  args.cap_bytes = 1 << 20;
  args.orphans = OrphanPolicy::Kill;
  args.grace_ms = 750;
  args.exe = "/bin/sh";
  args.argv = {"sh", "-c", "echo -- --task tother"};
  return args;
}

std::optional<KeeperArgs> parse(const std::vector<std::string>& line, std::string& error) {
  std::vector<const char*> argv;
  for (const auto& a : line) argv.push_back(a.c_str());
  return parse_keeper_command_line(static_cast<int>(argv.size()), argv.data(), error);
}

TEST(KeeperCommandLine, WhatTheRunnerBuildsTheKeeperParses) {
  const KeeperArgs in = sample_args();
  std::string error;
  auto out = parse(keeper_command_line("/opt/bin/mcp-orchestrator-keeper", in), error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(out->task_id, in.task_id);
  EXPECT_EQ(out->task_dir, in.task_dir);
  EXPECT_EQ(out->cap_bytes, in.cap_bytes);
  EXPECT_EQ(out->orphans, OrphanPolicy::Kill);
  EXPECT_EQ(out->grace_ms, 750);
  EXPECT_EQ(out->exe, in.exe);
  EXPECT_EQ(out->argv, in.argv);
}

TEST(KeeperCommandLine, BadCommandLinesSayWhatIsWrong) {
  std::string error;
  EXPECT_FALSE(parse({"keeper", "--task", "t", "--dir", "/d"}, error));
  EXPECT_NE(error.find("expected --"), std::string::npos) << error;
  EXPECT_FALSE(parse({"keeper", "--task", "t", "--dir", "relative", "--", "/bin/true", "true"}, error));
  EXPECT_NE(error.find("absolute"), std::string::npos) << error;
  EXPECT_FALSE(parse({"keeper", "--orphans", "maybe", "--", "/bin/true", "true"}, error));
  EXPECT_FALSE(parse({"keeper", "--cap", "-1", "--", "/bin/true", "true"}, error));
  EXPECT_FALSE(parse({"keeper", "--task"}, error));
}

std::string cmdline_of(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    out += a;
    out.push_back('\0');
  }
  return out;
}

TEST(KeeperIdentity, RecognisesOnlyTheKeeperOfThatTask) {
  const std::string keeper = cmdline_of(keeper_command_line("/x/mcp-orchestrator-keeper", sample_args()));
  EXPECT_TRUE(is_keeper_of(keeper, "tabc"));
  EXPECT_FALSE(is_keeper_of(keeper, "tab")) << "a prefix of the id is another task";
  EXPECT_FALSE(is_keeper_of(keeper, "tother")) << "the command's own arguments do not count";
  EXPECT_FALSE(is_keeper_of(cmdline_of({"/bin/sleep", "--task", "tabc"}), "tabc")) << "a stranger with the pid";
  EXPECT_FALSE(is_keeper_of("", "tabc")) << "a zombie has an empty cmdline";
}

}  // namespace
}  // namespace orch::engine
