#include "engine/spool.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Writes `text` as the task's stdout through a writer, as a task would.
void write_stdout(Spool& spool, const TaskId& id, const std::string& text) {
  auto writer = spool.open_writer(id, StreamKind::Stdout);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  ASSERT_TRUE((*writer)->append(text.data(), text.size()).ok());
}

OutputWindow read_ok(const Spool& spool, const TaskId& id, ReadRequest req,
                     StreamKind kind = StreamKind::Stdout) {
  auto window = spool.read(id, kind, req);
  EXPECT_TRUE(window.ok()) << window.error().message;
  return window.ok() ? *window : OutputWindow{};
}

TEST(SpoolWriter, KeepsEverythingBelowTheCap) {
  test::TempDir dir;
  Spool spool(dir.path(), 100);
  auto writer = spool.open_writer("t1", StreamKind::Stdout);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->append("hello ", 6).ok());
  ASSERT_TRUE((*writer)->append("world\n", 6).ok());
  EXPECT_EQ((*writer)->total_bytes(), 12u);
  EXPECT_EQ((*writer)->stored_bytes(), 12u);
  EXPECT_FALSE((*writer)->capped());
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stdout)), "hello world\n");
}

TEST(SpoolWriter, StopsAtTheCapWritesTheMarkerOnceAndKeepsCounting) {
  test::TempDir dir;
  Spool spool(dir.path(), 10);
  auto writer = spool.open_writer("t1", StreamKind::Stderr);
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*writer)->append("abcdef", 6).ok());
  EXPECT_EQ((*writer)->total_bytes(), 18u);
  EXPECT_EQ((*writer)->stored_bytes(), 10u);
  EXPECT_TRUE((*writer)->capped());
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stderr)), "abcdefabcd" + truncation_marker(10));
}

TEST(SpoolWriter, ReachingTheCapExactlyIsNotTruncation) {
  test::TempDir dir;
  Spool spool(dir.path(), 6);
  auto writer = spool.open_writer("t1", StreamKind::Stdout);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->append("abcdef", 6).ok());
  EXPECT_FALSE((*writer)->capped());
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stdout)), "abcdef");
  ASSERT_TRUE((*writer)->append("g", 1).ok());
  EXPECT_TRUE((*writer)->capped());
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stdout)), "abcdef" + truncation_marker(6));
}

TEST(Spool, TruncationMarkerIsOneLineNamingTheCapHumanReadably) {
  const std::string marker = truncation_marker(kDefaultStreamCapBytes);
  EXPECT_EQ(marker,
            "\n[mcp-orchestrator: output truncated: this stream passed its 64 MiB cap; later output "
            "was counted but not kept]\n");
  EXPECT_NE(truncation_marker(1000).find(" 1000 bytes cap"), std::string::npos);
  EXPECT_NE(truncation_marker(1536).find(" 1.5 KiB cap"), std::string::npos);
  EXPECT_NE(truncation_marker(2ull << 30).find(" 2 GiB cap"), std::string::npos);
}

TEST(Spool, OpeningAWriterStartsAFreshFile) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "first attempt printed a lot\n");
  write_stdout(spool, "t1", "second\n");
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stdout)), "second\n");
}

TEST(Spool, AResumedWriterAppendsAndKeepsTheCountersAndTheCap) {
  test::TempDir dir;
  Spool spool(dir.path(), 10);
  write_stdout(spool, "t1", "12345");
  auto w = spool.resume_writer("t1", StreamKind::Stdout, 5, 5, false);
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_TRUE((*w)->append("6789abc", 7).ok());
  EXPECT_EQ((*w)->total_bytes(), 12u);
  EXPECT_EQ((*w)->stored_bytes(), 10u);
  EXPECT_TRUE((*w)->capped());
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stdout)), "123456789a" + truncation_marker(10));
}

TEST(Spool, FilesAreReadableOnlyByTheOwner) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "secret\n");
  struct stat st {};
  ASSERT_EQ(::stat(spool.path("t1", StreamKind::Stdout).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir.path() / "t1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(Spool, ReadsAWindowByOffsetAndMaxBytes) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "0123456789");

  OutputWindow w = read_ok(spool, "t1", {.offset = 2, .max_bytes = 3});
  EXPECT_EQ(w.data, "234");
  EXPECT_EQ(w.offset, 2u);
  EXPECT_EQ(w.next_offset, 5u);
  EXPECT_EQ(w.file_bytes, 10u);
  EXPECT_TRUE(w.more);

  w = read_ok(spool, "t1", {.offset = 7, .max_bytes = 100});
  EXPECT_EQ(w.data, "789");
  EXPECT_EQ(w.next_offset, 10u);
  EXPECT_FALSE(w.more);
}

TEST(Spool, TailReturnsTheLastBytesAndIgnoresOffset) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "0123456789");

  OutputWindow w = read_ok(spool, "t1", {.offset = 1, .max_bytes = 4, .tail = true});
  EXPECT_EQ(w.data, "6789");
  EXPECT_EQ(w.offset, 6u);
  EXPECT_EQ(w.next_offset, 10u);
  EXPECT_FALSE(w.more);

  w = read_ok(spool, "t1", {.offset = 0, .max_bytes = 100, .tail = true});
  EXPECT_EQ(w.data, "0123456789");
  EXPECT_EQ(w.offset, 0u);
}

TEST(Spool, OffsetPastTheEndIsClampedToTheFileSize) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "0123456789");
  OutputWindow w = read_ok(spool, "t1", {.offset = 500, .max_bytes = 10});
  EXPECT_EQ(w.data, "");
  EXPECT_EQ(w.offset, 10u);
  EXPECT_EQ(w.next_offset, 10u);
  EXPECT_EQ(w.file_bytes, 10u);
  EXPECT_FALSE(w.more);
}

TEST(Spool, ZeroMaxBytesReportsSizeAndMore) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "0123456789");
  OutputWindow w = read_ok(spool, "t1", {.offset = 0, .max_bytes = 0});
  EXPECT_EQ(w.data, "");
  EXPECT_EQ(w.next_offset, 0u);
  EXPECT_TRUE(w.more);
}

TEST(Spool, AMissingFileReadsAsEmpty) {
  test::TempDir dir;
  Spool spool(dir.path());
  OutputWindow w = read_ok(spool, "never-started", {.offset = 5, .max_bytes = 10});
  EXPECT_EQ(w.data, "");
  EXPECT_EQ(w.offset, 0u);
  EXPECT_EQ(w.next_offset, 0u);
  EXPECT_EQ(w.file_bytes, 0u);
  EXPECT_FALSE(w.more);

  write_stdout(spool, "t1", "out");
  w = read_ok(spool, "t1", {.tail = true}, StreamKind::Stderr);
  EXPECT_EQ(w.data, "");
  EXPECT_EQ(w.file_bytes, 0u);
}

TEST(Spool, ReadsSeeWhatAWriterAppendedSoFar) {
  test::TempDir dir;
  Spool spool(dir.path(), 100);
  auto writer = spool.open_writer("t1", StreamKind::Stdout);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->append("abc", 3).ok());
  OutputWindow w = read_ok(spool, "t1", {});
  EXPECT_EQ(w.data, "abc");
  ASSERT_TRUE((*writer)->append("def", 3).ok());
  w = read_ok(spool, "t1", {.offset = w.next_offset});
  EXPECT_EQ(w.data, "def");
  EXPECT_EQ(w.offset, 3u);
}

TEST(Spool, WriteStdinStoresTheTextAndReturnsItsPath) {
  test::TempDir dir;
  Spool spool(dir.path());
  auto path = spool.write_stdin("t1", std::string("line one\n\0binary", 16));
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(*path, dir.path() / "t1" / "stdin");
  EXPECT_EQ(slurp(*path), std::string("line one\n\0binary", 16));
}

TEST(Spool, RemoveDeletesTheTaskDirectoryAndToleratesMissing) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "out");
  ASSERT_TRUE(spool.write_stdin("t1", "in").ok());
  write_stdout(spool, "t2", "other");

  spool.remove("t1");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "t1"));
  EXPECT_TRUE(std::filesystem::exists(spool.path("t2", StreamKind::Stdout)));
  spool.remove("t1");  // already gone: no error, no throw
  EXPECT_EQ(read_ok(spool, "t1", {}).file_bytes, 0u);
}

TEST(Spool, RefusesIdsThatAreNotASingleDirectoryName) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "spool");
  std::ofstream(dir.path() / "keep") << "must survive";
  Spool spool(dir.path() / "spool");

  for (const TaskId& bad : {TaskId(""), TaskId("."), TaskId(".."), TaskId("../x"), TaskId("a/b")}) {
    auto writer = spool.open_writer(bad, StreamKind::Stdout);
    ASSERT_FALSE(writer.ok()) << bad;
    EXPECT_EQ(writer.error().code, ErrorCode::InvalidArgument);
    EXPECT_FALSE(spool.read(bad, StreamKind::Stdout, {}).ok()) << bad;
    EXPECT_FALSE(spool.write_stdin(bad, "x").ok()) << bad;
    spool.remove(bad);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "keep"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "spool"));
}

TEST(Spool, CreatesItsDirectoryOnFirstUse) {
  test::TempDir dir;
  Spool spool(dir.path() / "state" / "spool");
  write_stdout(spool, "t1", "x");
  EXPECT_EQ(read_ok(spool, "t1", {}).data, "x");
  EXPECT_EQ(spool.dir(), dir.path() / "state" / "spool");
}

TEST(Spool, ATaskThatPrintsNothingCreatesNoFile) {
  test::TempDir dir;
  Spool spool(dir.path());
  write_stdout(spool, "t1", "first attempt\n");
  auto writer = spool.open_writer("t1", StreamKind::Stdout);
  ASSERT_TRUE(writer.ok());
  EXPECT_FALSE(std::filesystem::exists(spool.path("t1", StreamKind::Stdout)))
      << "a new attempt does not keep its predecessor's output";
  write_stdout(spool, "t3", "kept\n");
  ASSERT_TRUE(spool.open_writer("t3", StreamKind::Stdout, Spool::Earlier::None).ok());
  EXPECT_EQ(read_ok(spool, "t3", {}).data, "kept\n") << "a first attempt removes nothing";
  auto silent = spool.open_writer("t2", StreamKind::Stdout);
  ASSERT_TRUE(silent.ok());
  ASSERT_TRUE((*silent)->append("", 0).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "t2")) << "no directory before the first byte";
  EXPECT_EQ(read_ok(spool, "t2", {}).data, "");
}

TEST(Spool, AnOutputFileThatCannotBeCreatedIsAnErrorNamingItAndBytesStillCount) {
  test::TempDir dir;
  Spool spool(dir.path());
  std::ofstream(dir.path() / "t1") << "a file where the task's directory should be";
  auto writer = spool.open_writer("t1", StreamKind::Stdout);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  auto first = (*writer)->append("hello", 5);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, ErrorCode::Io);
  EXPECT_NE(first.error().message.find("cannot create the task's output file"), std::string::npos)
      << first.error().message;
  EXPECT_NE(first.error().message.find((dir.path() / "t1" / "stdout").string()), std::string::npos);
  auto again = (*writer)->append("more", 4);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, first.error().message);
  EXPECT_EQ((*writer)->total_bytes(), 9u);
  EXPECT_EQ((*writer)->stored_bytes(), 0u);
}

}  // namespace
}  // namespace orch::engine
