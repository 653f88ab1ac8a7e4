#include "engine/progress_line.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace orch::engine {
namespace {

TEST(ParseProgressLine, ReadsCurrentTotalAndMessage) {
  EXPECT_EQ(parse_progress_line("::progress 3/10 building foo"), (Progress{3, 10, "building foo"}));
  EXPECT_EQ(parse_progress_line("::progress 42"), (Progress{42, std::nullopt, ""}));
  EXPECT_EQ(parse_progress_line("::progress 0.5/1.5"), (Progress{0.5, 1.5, ""}));
  EXPECT_EQ(parse_progress_line("::progress 7 step seven  "), (Progress{7, std::nullopt, "step seven"}));
  EXPECT_EQ(parse_progress_line("::progress\t2/4\tmsg\r"), (Progress{2, 4, "msg"}));
  EXPECT_EQ(parse_progress_line("::progress  5/5   all  done"), (Progress{5, 5, "all  done"}));
}

TEST(ParseProgressLine, RejectsMalformedLines) {
  for (const char* line : {"", "::progress", "::progress ", "::progress3/10", "::progressive 3",
                           "progress 3", " ::progress 3", "::progress x", "::progress -1",
                           "::progress +1", "::progress 3/", "::progress /3", "::progress 3/x",
                           "::progress 1/2/3", "::progress 1e5", "::progress inf", "::progress nan",
                           "::progress 3.", "::progress .5", "::progress 3/10building",
                           "::progress 1,5"}) {
    EXPECT_EQ(parse_progress_line(line), std::nullopt) << '"' << line << '"';
  }
}

// Feeds `chunks` in order, then ends the output; returns what was found.
std::vector<Progress> scan(const std::vector<std::string>& chunks) {
  std::vector<Progress> found;
  auto collect = [&found](const Progress& p) { found.push_back(p); };
  ProgressScanner scanner;
  for (const auto& chunk : chunks) scanner.feed(chunk.data(), chunk.size(), collect);
  scanner.finish(collect);
  return found;
}

TEST(ProgressScanner, FindsLinesSplitAcrossChunks) {
  const std::string output = "::progress 1/2 one\nplain\n::progress 2/2 two\n";
  std::vector<std::string> bytes;
  for (char c : output) bytes.emplace_back(1, c);
  const std::vector<Progress> expected = {{1, 2, "one"}, {2, 2, "two"}};
  EXPECT_EQ(scan(bytes), expected);
  EXPECT_EQ(scan({output}), expected);
  EXPECT_EQ(scan({"::prog", "ress 1/2 o", "ne\npl", "ain\n::progress 2/2 two\n"}), expected);
}

TEST(ProgressScanner, ALastLineWithoutNewlineCountsOnlyWhenFinished) {
  std::vector<Progress> found;
  auto collect = [&found](const Progress& p) { found.push_back(p); };
  ProgressScanner scanner;
  const std::string chunk = "::progress 3/3 done\r";
  scanner.feed(chunk.data(), chunk.size(), collect);
  EXPECT_TRUE(found.empty());
  scanner.finish(collect);
  EXPECT_EQ(found, (std::vector<Progress>{{3, 3, "done"}}));
  scanner.finish(collect);  // nothing left: no second report
  EXPECT_EQ(found.size(), 1u);
}

TEST(ProgressScanner, IgnoresLinesLongerThanTheLimitAndReadsTheNextOne) {
  const std::string start = "::progress 1/2 ";
  const std::string longest = start + std::string(kMaxProgressLine - start.size(), 'x');
  EXPECT_EQ(scan({longest + "\n"}), (std::vector<Progress>{{1, 2, std::string(kMaxProgressLine - start.size(), 'x')}}));
  EXPECT_TRUE(scan({longest + "x\n"}).empty());
  EXPECT_TRUE(scan({longest, "x"}).empty());  // the limit holds across chunks and at the end
  EXPECT_EQ(scan({longest + "x", "x\n::progress 2/2\n"}), (std::vector<Progress>{{2, 2, ""}}));
}

TEST(ProgressScanner, OnlyLinesThatStartWithThePrefixCount) {
  EXPECT_TRUE(scan({"  ::progress 1/2\n", "x::progress 1/2\n", "::progress nope\n"}).empty());
  EXPECT_EQ(scan({"\n\n::progress 5\n\n"}), (std::vector<Progress>{{5, std::nullopt, ""}}));
}

TEST(ProgressScanner, AColonStartsALineOnlyAfterANewlineEvenAcrossChunks) {
  // The line began with "abc" in the previous chunk: not a progress line.
  EXPECT_TRUE(scan({"abc", "::progress 1/2\n"}).empty());
  EXPECT_TRUE(scan({"x: y ::progress 1/2\n"}).empty());
  EXPECT_EQ(scan({"x\n", "::progress 1/2\n"}), (std::vector<Progress>{{1, 2, ""}}));
  EXPECT_EQ(scan({"a:b\nc:d\n::progress 2/2\n"}), (std::vector<Progress>{{2, 2, ""}}));
}

TEST(ProgressScanner, ManyShortLinesAroundAProgressLine) {
  std::string lines;
  for (int i = 0; i < 10000; ++i) lines += "y\n";
  EXPECT_EQ(scan({lines + "::progress 5/9 half\n" + lines}), (std::vector<Progress>{{5, 9, "half"}}));
}

}  // namespace
}  // namespace orch::engine
