#include "engine/task_keeper.h"

#include <gtest/gtest.h>

#include <filesystem>
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

TEST(KeeperStatusLog, ARecordIsFoundByItsTaskAndAttempt) {
  std::string log = format_status_record("t1", 1, {KeeperStatus::Kind::Exited, 4, 10}) +
                    format_status_record("t2", 1, {KeeperStatus::Kind::Signaled, 9, 20}) +
                    format_status_record("t1", 2, {KeeperStatus::Kind::Exited, 0, 30});
  EXPECT_EQ(format_status_record("t1", 1, {KeeperStatus::Kind::Exited, 4, 10}), "v1 t1 1 exit 4 rss 10\n");
  auto first = find_status_record(log, "t1", 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->value, 4);
  auto retry = find_status_record(log, "t1", 2);
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->value, 0);
  EXPECT_EQ(retry->peak_rss_kb, 30);
  EXPECT_FALSE(find_status_record(log, "t1", 3)) << "an attempt without a record has no end";
  EXPECT_FALSE(find_status_record(log, "t", 1)) << "ids match whole";
  auto other = find_status_record(log, "t2", 1);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->kind, KeeperStatus::Kind::Signaled);
}

TEST(KeeperStatusLog, DamagedAndTornRecordsAreSkipped) {
  const std::string good = format_status_record("t1", 1, {KeeperStatus::Kind::Exited, 2, 0});
  EXPECT_FALSE(find_status_record("v1 t1 1 exit 2 rss 0", "t1", 1)) << "no newline: torn";
  EXPECT_FALSE(find_status_record("v1 t1 x exit 2 rss 0\n", "t1", 1));
  EXPECT_FALSE(find_status_record("v1 t1 1 quit 2 rss 0\n", "t1", 1));
  std::string zeros(16, '\0');
  auto found = find_status_record(zeros + "\n" + "garbage\n" + good + "v1 t1 1 exit", "t1", 1);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->value, 2);
}

TEST(KeeperStatusLog, RecordsAreReadFromEveryLogAndOlderStatusFiles) {
  test::TempDir spool;
  EXPECT_FALSE(read_keeper_status(spool.path(), "t1", 1));
  ASSERT_TRUE(append_status_record(spool.path().string(), "t1", 1, {KeeperStatus::Kind::Exited, 5, 1}));
  ASSERT_TRUE(append_status_record(spool.path().string(), "t2", 1, {KeeperStatus::Kind::Exited, 6, 1}));
  std::filesystem::rename(spool.path() / kKeeperStatusLog, spool.path() / (std::string(kKeeperStatusLog) + ".3"));
  ASSERT_TRUE(append_status_record(spool.path().string(), "t3", 1, {KeeperStatus::Kind::Signaled, 15, 1}));
  EXPECT_EQ(status_logs(spool.path()).size(), 2u);
  auto rotated = read_keeper_status(spool.path(), "t1", 1);
  ASSERT_TRUE(rotated) << "a rotated log is still read";
  EXPECT_EQ(rotated->value, 5);
  auto current = read_keeper_status(spool.path(), "t3", 1);
  ASSERT_TRUE(current);
  EXPECT_EQ(current->kind, KeeperStatus::Kind::Signaled);

  // An older keeper's file in the task's directory.
  std::filesystem::create_directory(spool.path() / "t4");
  std::ofstream(spool.path() / "t4" / kKeeperStatusFile) << "v1 signal 15 rss 2048\n";
  auto legacy = read_keeper_status(spool.path(), "t4", 1);
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->kind, KeeperStatus::Kind::Signaled);
  EXPECT_EQ(legacy->value, 15);
}

KeeperArgs sample_args() {
  KeeperArgs args;
  args.task_id = "tabc";
  args.attempt = 3;
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
  EXPECT_EQ(out->attempt, 3);
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
  EXPECT_EQ(keeper_task_of(keeper), "tabc");
  EXPECT_EQ(keeper_task_of(cmdline_of({"/bin/sleep", "--task", "tabc"})), std::nullopt);
  EXPECT_EQ(keeper_task_of(cmdline_of({"/x/mcp-orchestrator-keeper", "--", "sh", "--task", "tabc"})), std::nullopt)
      << "only the keeper's own options name its task";
}

}  // namespace
}  // namespace orch::engine
