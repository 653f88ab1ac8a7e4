#include "engine/change_log.h"

#include <gtest/gtest.h>

namespace orch::engine {
namespace {

TEST(ChangeLog, NothingAfterTheLatestCursor) {
  ChangeLog log;
  auto since = log.since(log.seq());
  ASSERT_TRUE(since);
  EXPECT_TRUE(since->changed.empty());
  EXPECT_TRUE(since->removed.empty());
  EXPECT_GE(log.seq(), 1u) << "0 is kept for 'no cursor yet'";
}

TEST(ChangeLog, EachTaskOnceInTheOrderOfItsLatestChange) {
  ChangeLog log;
  const auto cursor = log.seq();
  log.changed("a");
  log.changed("b");
  log.changed("a");
  auto since = log.since(cursor);
  ASSERT_TRUE(since);
  EXPECT_EQ(since->changed, (std::vector<TaskId>{"b", "a"}));
}

TEST(ChangeLog, ARemovalAfterAChangeCountsAsRemoved) {
  ChangeLog log;
  const auto cursor = log.seq();
  log.changed("a");
  log.changed("b");
  log.removed("a");
  auto since = log.since(cursor);
  ASSERT_TRUE(since);
  EXPECT_EQ(since->changed, (std::vector<TaskId>{"b"}));
  EXPECT_EQ(since->removed, (std::vector<TaskId>{"a"}));
}

TEST(ChangeLog, OnlyChangesAfterTheCursor) {
  ChangeLog log;
  log.changed("old");
  const auto cursor = log.seq();
  log.changed("new");
  auto since = log.since(cursor);
  ASSERT_TRUE(since);
  EXPECT_EQ(since->changed, (std::vector<TaskId>{"new"}));
}

TEST(ChangeLog, AReaderTooFarBehindIsToldToTakeASnapshot) {
  ChangeLog log(3);
  const auto cursor = log.seq();
  for (const char* id : {"a", "b", "c", "d"}) log.changed(id);
  EXPECT_FALSE(log.since(cursor)) << "the change to a is forgotten";
  EXPECT_TRUE(log.since(cursor + 1)) << "b, c and d are all remembered";
}

}  // namespace
}  // namespace orch::engine
