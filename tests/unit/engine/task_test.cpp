// A task's state without its spec (state_of): what the change feed's
// watchers read.
#include <gtest/gtest.h>

#include "engine/task.h"

namespace orch::engine {
namespace {

TaskRecord every_field_set() {
  TaskRecord t;
  t.id = new_task_id();
  t.seq = 42;
  t.spec.command = "make -j2 test";
  t.spec.argv = {"make", "-j2"};
  t.spec.env = {{"CI", "true"}};
  t.spec.tags = {"build"};
  t.spec.cwd = "/src";
  t.spec.stdin_data = "input";
  t.spec.name = "tests";
  t.status = TaskStatus::Failed;
  t.reason = EndReason::Timeout;
  t.message = "timed out after 30 s";
  t.progress = Progress{3, 10, "step 3"};
  t.attempt = 2;
  t.exit_code = 124;
  t.signal = 15;
  t.pid = 4321;
  t.peak_rss_kb = 2048;
  t.submitted_at_ms = 1000;
  t.started_at_ms = 2000;
  t.finished_at_ms = 3000;
  t.not_before_ms = 1500;
  t.stdout_bytes = 7;
  t.stderr_bytes = 9;
  t.node = "node-a";
  return t;
}

TEST(TaskState, KeepsEveryFieldButTheSpecWhoseNameItKeeps) {
  const TaskRecord t = every_field_set();
  const TaskRecord s = state_of(t);
  EXPECT_EQ(s.id, t.id);
  EXPECT_EQ(s.seq, t.seq);
  EXPECT_EQ(s.spec.name, "tests");
  EXPECT_EQ(s.status, t.status);
  EXPECT_EQ(s.reason, t.reason);
  EXPECT_EQ(s.message, t.message);
  EXPECT_EQ(s.progress, t.progress);
  EXPECT_EQ(s.attempt, t.attempt);
  EXPECT_EQ(s.exit_code, t.exit_code);
  EXPECT_EQ(s.signal, t.signal);
  EXPECT_EQ(s.pid, t.pid);
  EXPECT_EQ(s.peak_rss_kb, t.peak_rss_kb);
  EXPECT_EQ(s.submitted_at_ms, t.submitted_at_ms);
  EXPECT_EQ(s.started_at_ms, t.started_at_ms);
  EXPECT_EQ(s.finished_at_ms, t.finished_at_ms);
  EXPECT_EQ(s.not_before_ms, t.not_before_ms);
  EXPECT_EQ(s.stdout_bytes, t.stdout_bytes);
  EXPECT_EQ(s.stderr_bytes, t.stderr_bytes);
  EXPECT_EQ(s.node, t.node);
}

TEST(TaskState, LeavesTheRestOfTheSpecBehind) {
  const TaskRecord s = state_of(every_field_set());
  EXPECT_TRUE(s.spec.command.empty());
  EXPECT_TRUE(s.spec.argv.empty());
  EXPECT_TRUE(s.spec.env.empty());
  EXPECT_TRUE(s.spec.tags.empty());
  EXPECT_TRUE(s.spec.cwd.empty());
  EXPECT_FALSE(s.spec.stdin_data);
}

}  // namespace
}  // namespace orch::engine
