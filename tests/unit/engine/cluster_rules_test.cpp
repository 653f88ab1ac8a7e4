// The non-SQL rules of several servers on one store (engine/cluster_rules.h):
// node names, and what the rescuer makes of a dead node's task.
#include "engine/cluster_rules.h"

#include <gtest/gtest.h>

namespace orch::engine {
namespace {

TEST(ClusterRules, TheDefaultNodeNameIsStablePerStateDirectoryAndValid) {
  const std::string a = default_node_name("/srv/orch/a");
  EXPECT_EQ(a, default_node_name("/srv/orch/a"));
  EXPECT_EQ(a, default_node_name("/srv/orch/./a/")) << "the same directory, spelt differently";
  EXPECT_NE(a, default_node_name("/srv/orch/b"));
  EXPECT_TRUE(check_node_name(a).ok()) << a;
}

TEST(ClusterRules, NodeNamesAreShortAndPlain) {
  EXPECT_TRUE(check_node_name("build-1.eu_west").ok());
  for (const char* bad : {"", "has space", "slash/y", "naïve"}) {
    auto st = check_node_name(bad);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.error().message.find("cluster.nodeName"), std::string::npos);
  }
  EXPECT_FALSE(check_node_name(std::string(65, 'n')).ok());
}

TaskRecord running(int attempt, int max_attempts) {
  TaskRecord t;
  t.id = "t1";
  t.status = TaskStatus::Running;
  t.attempt = attempt;
  t.pid = 4242;
  t.node = "node-a";
  t.spec.retry.max_attempts = max_attempts;
  return t;
}

TEST(ClusterRules, ARunningTaskOfADeadNodeIsQueuedAgainForItsNextAttempt) {
  const TaskRecord t = rescue_decision(running(1, 1), "node-a", 1000);
  EXPECT_EQ(t.status, TaskStatus::Queued);
  EXPECT_EQ(t.reason, EndReason::Lost);
  EXPECT_EQ(t.node, "");
  EXPECT_FALSE(t.pid);
  EXPECT_EQ(t.attempt, 1) << "the next start counts attempt 2";
  EXPECT_NE(t.message.find("lost with node node-a"), std::string::npos) << t.message;
}

TEST(ClusterRules, OnlyOneAttemptBeyondTheRetryPolicyIsGivenForLostNodes) {
  EXPECT_EQ(rescue_decision(running(3, 3), "node-a", 1000).status, TaskStatus::Queued);
  const TaskRecord t = rescue_decision(running(4, 3), "node-a", 1000);
  EXPECT_EQ(t.status, TaskStatus::Failed);
  EXPECT_EQ(t.reason, EndReason::Lost);
  EXPECT_EQ(t.finished_at_ms, 1000);
}

TEST(ClusterRules, AClaimedOrWaitingTaskIsGivenBackAsItIs) {
  TaskRecord waiting = running(1, 3);
  waiting.status = TaskStatus::Waiting;
  waiting.not_before_ms = 5000;
  const TaskRecord t = rescue_decision(waiting, "node-a", 1000);
  EXPECT_EQ(t.status, TaskStatus::Waiting);
  EXPECT_EQ(t.not_before_ms, 5000) << "its back-off still holds";
  EXPECT_EQ(t.node, "");
}

}  // namespace
}  // namespace orch::engine
