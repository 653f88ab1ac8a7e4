// A task's state without its spec (state_of): what the change feed's
// watchers read.
#include <gtest/gtest.h>

#include "engine/task.h"
#include "tests/support/store_tasks.h"

namespace orch::engine {
namespace {

TEST(TaskState, KeepsEveryFieldButTheSpecWhoseNameItKeeps) {
  const TaskRecord t = test::full_task();
  TaskRecord expected = t;
  expected.spec = TaskSpec{};
  expected.spec.name = t.spec.name;
  test::expect_same(state_of(t), expected);
}

TEST(TaskState, LeavesTheRestOfTheSpecBehind) {
  const TaskRecord s = state_of(test::full_task());
  EXPECT_EQ(s.spec.name, "build");
  EXPECT_TRUE(s.spec.argv.empty());
  EXPECT_TRUE(s.spec.env.empty());
  EXPECT_TRUE(s.spec.tags.empty());
  EXPECT_TRUE(s.spec.cwd.empty());
  EXPECT_FALSE(s.spec.stdin_data);
}

}  // namespace
}  // namespace orch::engine
