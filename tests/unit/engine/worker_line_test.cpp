#include "engine/worker_line.h"

#include <gtest/gtest.h>

#include <string>

namespace orch::engine {
namespace {

using Kind = WorkerLine::Kind;

TEST(WorkerLine, ProgressResultAndErrorForThisTask) {
  WorkerLine p = parse_worker_line(R"({"id":"t-1","progress":{"current":3,"total":10,"message":"step"}})", "t-1");
  ASSERT_EQ(p.kind, Kind::Progress);
  EXPECT_EQ(p.progress.current, 3);
  EXPECT_EQ(p.progress.total, 10);
  EXPECT_EQ(p.progress.message, "step");

  WorkerLine r = parse_worker_line(R"({"id":"t-1","result":{"answer":[1,"two",null]}})", "t-1");
  ASSERT_EQ(r.kind, Kind::Result);
  EXPECT_EQ(r.result_json, R"({"answer":[1,"two",null]})");

  WorkerLine e = parse_worker_line(R"({"id":"t-1","error":{"message":"bad input"}})", "t-1");
  ASSERT_EQ(e.kind, Kind::Error);
  EXPECT_EQ(e.message, "bad input");
  WorkerLine plain = parse_worker_line(R"({"id":"t-1","error":"oops"})", "t-1");
  ASSERT_EQ(plain.kind, Kind::Error);
  EXPECT_EQ(plain.message, R"("oops")") << "an error that is not {message} is kept as its JSON";
}

TEST(WorkerLine, TrailingCrAndSpacesAreIgnoredAndABlankLineIsNothing) {
  EXPECT_EQ(parse_worker_line("{\"id\":\"t-1\",\"result\":true}\r", "t-1").kind, Kind::Result);
  EXPECT_EQ(parse_worker_line("  \r", "t-1").kind, Kind::Blank);
  EXPECT_EQ(parse_worker_line("", "t-1").kind, Kind::Blank);
}

TEST(WorkerLine, AnythingElseIsMalformedAndSaysWhy) {
  struct Case {
    const char* line;
    const char* why;
  };
  for (const Case& c : {Case{"Traceback (most recent call last):", "not JSON"},
                        Case{"[1,2]", "not a JSON object"},
                        Case{R"({"id":"t-2","result":1})", "this task's id"},
                        Case{R"({"id":7,"result":1})", "this task's id"},
                        Case{R"({"result":1})", "this task's id"},
                        Case{R"({"id":"t-1","progress":5})", "progress is not an object"},
                        Case{R"({"id":"t-1"})", "neither progress, result nor error"}}) {
    WorkerLine m = parse_worker_line(c.line, "t-1");
    EXPECT_EQ(m.kind, Kind::Malformed) << c.line;
    EXPECT_NE(m.message.find(c.why), std::string::npos) << c.line << ": " << m.message;
  }
}

TEST(WorkerLine, ADeeplyNestedLineIsMalformedNotAStackOverflow) {
  // A worker may print a line of up to 16 MiB; dumping a result nested that
  // deep would recurse once per level.
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  WorkerLine m = parse_worker_line(R"({"id":"t-1","result":)" + deep + "}", "t-1");
  EXPECT_EQ(m.kind, Kind::Malformed);
  EXPECT_NE(m.message.find("deeper than 128"), std::string::npos) << m.message;
  EXPECT_EQ(parse_worker_line(R"({"id":"t-1","result":"[[[[[[[[[[[[[[[[[[[["})", "t-1").kind, Kind::Result)
      << "brackets in a string are text";
}

TEST(WorkerLine, ProgressFieldsOfTheWrongTypeAreLeftOut) {
  WorkerLine p = parse_worker_line(R"({"id":"t-1","progress":{"current":"3","total":null,"message":4}})", "t-1");
  ASSERT_EQ(p.kind, Kind::Progress);
  EXPECT_EQ(p.progress, Progress{});
}

}  // namespace
}  // namespace orch::engine
