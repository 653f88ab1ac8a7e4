// The shared queue of several servers on one PostgreSQL database
// (engine/shared_queue.h, docs/CLUSTER.md): claims in priority/FIFO order
// that never hand one task to two nodes, profile limits across nodes,
// cancels delivered to the holding node, the rescuer giving back a dead
// node's tasks (whose late writes are then refused), dependencies, and the
// LISTEN wake-up. Each test gets a fresh database on the test PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "engine/cluster_rules.h"
#include "engine/postgres_store.h"
#include "tests/support/postgres_db.h"
#include "tests/support/store_tasks.h"
#include "tests/support/wait_until.h"

namespace orch::engine {
namespace {

using test::make_task;
using namespace std::chrono_literals;

class PostgresQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg = test::PostgresDb::create();
    if (!pg) {
      ASSERT_FALSE(HasFailure());
      GTEST_SKIP() << test::kNoTestPostgres;
    }
  }

  std::unique_ptr<PostgresStore> open() {
    auto s = PostgresStore::open(pg->url());
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  // A queued task no node holds, as a submit leaves it.
  TaskRecord queued(PostgresStore& s, int priority = 5, std::string profile = "") {
    auto seq = s.next_seq();
    EXPECT_TRUE(seq.ok());
    TaskRecord t = make_task(seq.ok() ? *seq : 0);
    t.spec.priority = priority;
    t.spec.profile = std::move(profile);
    EXPECT_TRUE(s.insert(t).ok());
    return t;
  }

  static NodeReport report(const std::string& name, std::int64_t lease_ms = 30000) {
    NodeReport r;
    r.self.name = name;
    r.self.max_concurrent = 8;
    r.self.health = "ok";
    r.lease_ms = lease_ms;
    return r;
  }

  static std::vector<TaskId> ids(const std::vector<TaskRecord>& tasks) {
    std::vector<TaskId> out;
    for (const TaskRecord& t : tasks) out.push_back(t.id);
    return out;
  }

  std::unique_ptr<test::PostgresDb> pg;
};

TEST_F(PostgresQueueTest, ClaimsHighestPriorityFirstThenInSubmissionOrder) {
  auto s = open();
  ASSERT_TRUE(s);
  const TaskRecord first = queued(*s, 5);
  const TaskRecord urgent = queued(*s, 9);
  const TaskRecord second = queued(*s, 5);
  auto a = s->claim("node-a", 2, 30000, {});
  ASSERT_TRUE(a.ok()) << a.error().message;
  std::vector<TaskId> got = ids(*a);
  std::sort(got.begin(), got.end());
  std::vector<TaskId> want = {urgent.id, first.id};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  for (const TaskRecord& t : *a) EXPECT_EQ(t.node, "node-a");
  auto b = s->claim("node-b", 5, 30000, {});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ids(*b), std::vector<TaskId>{second.id});
  EXPECT_EQ(s->claim("node-b", 5, 30000, {})->size(), 0u) << "nothing is claimed twice";
}

TEST_F(PostgresQueueTest, NodesClaimingAtOnceNeverTakeTheSameTask) {
  auto feeder = open();
  ASSERT_TRUE(feeder);
  constexpr int kTasks = 300;
  for (int i = 0; i < kTasks; ++i) queued(*feeder);
  constexpr int kNodes = 4;
  std::vector<std::vector<TaskId>> taken(kNodes);
  {
    std::vector<std::jthread> nodes;
    for (int n = 0; n < kNodes; ++n) {
      nodes.emplace_back([&, n] {
        auto s = PostgresStore::open(pg->url());
        ASSERT_TRUE(s.ok());
        for (;;) {
          auto got = (*s)->claim("node-" + std::to_string(n), 7, 30000, {});
          ASSERT_TRUE(got.ok()) << got.error().message;
          if (got->empty()) return;
          for (const TaskRecord& t : *got) taken[n].push_back(t.id);
        }
      });
    }
  }
  std::set<TaskId> all;
  std::size_t total = 0;
  for (const auto& list : taken) {
    all.insert(list.begin(), list.end());
    total += list.size();
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kTasks));
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kTasks)) << "a task was claimed by two nodes";
}

TEST_F(PostgresQueueTest, AProfilesLimitHoldsAcrossNodes) {
  auto s = open();
  ASSERT_TRUE(s);
  for (int i = 0; i < 5; ++i) queued(*s, 5, "build");
  const TaskRecord free_task = queued(*s, 1);
  std::map<std::string, ProfileRules> rules;
  rules["build"].max_concurrent = 2;
  auto a = s->claim("node-a", 8, 30000, rules);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->size(), 3u) << "two of the profile, and the task without one";
  auto b = s->claim("node-b", 8, 30000, rules);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->empty()) << "node-a holds the profile's two already";
  const std::vector<TaskId> taken = ids(*a);
  EXPECT_NE(std::find(taken.begin(), taken.end(), free_task.id), taken.end());
}

TEST_F(PostgresQueueTest, TheRescuerGivesBackADeadNodesTaskAndIgnoresItsLateResult) {
  auto s = open();
  ASSERT_TRUE(s);
  queued(*s);
  ASSERT_TRUE(s->heartbeat(report("node-a", 500)).ok());
  auto claimed = s->claim("node-a", 1, 500, {});
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1);
  TaskRecord running = claimed->front();
  running.status = TaskStatus::Running;
  running.attempt = 1;
  running.started_at_ms = test::kT0;
  ASSERT_TRUE(s->update(running, TaskStatus::Queued).ok());
  NodeReport holding = report("node-a", 500);
  holding.holding = {running.id};
  auto held = s->heartbeat(holding);
  ASSERT_TRUE(held.ok()) << held.error().message;
  EXPECT_TRUE(held->lost.empty()) << "node-a still holds it";
  // node-a stops heartbeating; node-b's rescuer takes over after the lease.
  ASSERT_TRUE(test::wait_until([&] {
    auto r = s->rescue(500, [](const TaskRecord& t, const std::string& dead) { return rescue_decision(t, dead, test::kT0); },
                       3600000, 1000);
    return r.ok() && !r->rescued.empty();
  }, 10s));
  auto now = s->find(running.id);
  ASSERT_TRUE(now.ok() && *now);
  EXPECT_EQ((*now)->status, TaskStatus::Queued);
  EXPECT_EQ((*now)->node, "");
  EXPECT_EQ((*now)->attempt, 1) << "the next start makes it attempt 2";
  EXPECT_NE((*now)->message.find("lost with node node-a"), std::string::npos) << (*now)->message;
  // node-a comes back: its heartbeat tells it the task is no longer its own...
  auto back = s->heartbeat(holding);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->lost, std::vector<TaskId>{running.id});
  EXPECT_EQ((*s->find(running.id))->status, TaskStatus::Queued) << "nor did the heartbeat take it back";
  // ...and the end of the attempt it lost, should it report one, is refused.
  TaskRecord late = running;
  late.status = TaskStatus::Completed;
  late.finished_at_ms = test::kT0 + 10;
  auto st = s->update(late, TaskStatus::Running);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Conflict) << st.error().message;
  EXPECT_EQ((*s->find(running.id))->status, TaskStatus::Queued) << "the late result was ignored";
  auto again = s->claim("node-b", 1, 30000, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ids(*again), std::vector<TaskId>{running.id});
}

TEST_F(PostgresQueueTest, ACancelOfATaskAnotherNodeHoldsReachesItOnItsHeartbeat) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  const TaskRecord t = queued(*a);
  ASSERT_TRUE(a->claim("node-a", 1, 30000, {}).ok());
  auto asked = b->cancel(t.id, "cancelled by request");
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  EXPECT_TRUE(asked->requested);
  EXPECT_FALSE(asked->ended);
  auto delivered = a->heartbeat(report("node-a"));
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(delivered->cancels, std::vector<TaskId>{t.id});
  EXPECT_TRUE(a->heartbeat(report("node-a"))->cancels.empty()) << "delivered once";
}

TEST_F(PostgresQueueTest, ACancelAskedOfANodeThatDiesEndsTheTaskInsteadOfRunningItAgain) {
  auto s = open();
  ASSERT_TRUE(s);
  const TaskRecord t = queued(*s);
  ASSERT_TRUE(s->heartbeat(report("node-a", 300)).ok());
  ASSERT_TRUE(s->claim("node-a", 1, 300, {}).ok());
  ASSERT_TRUE(s->cancel(t.id, "cancelled by request")->requested);
  ASSERT_TRUE(test::wait_until([&] {
    auto r = s->rescue(300, [](const TaskRecord& x, const std::string& dead) { return rescue_decision(x, dead, test::kT0); },
                       3600000, 1000);
    return r.ok() && !r->rescued.empty();
  }, 10s));
  const TaskRecord ended = **s->find(t.id);
  EXPECT_EQ(ended.status, TaskStatus::Cancelled);
  EXPECT_EQ(ended.reason, EndReason::Cancelled);
  EXPECT_NE(ended.message.find("node node-a stopped renewing its lease"), std::string::npos) << ended.message;
  EXPECT_TRUE(s->claim("node-b", 1, 30000, {})->empty());
}

TEST_F(PostgresQueueTest, ACancelOfATaskNoNodeHoldsEndsItAtOnce) {
  auto s = open();
  ASSERT_TRUE(s);
  const TaskRecord t = queued(*s);
  auto done = s->cancel(t.id, "cancelled by request");
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_TRUE(done->ended);
  EXPECT_EQ((*s->find(t.id))->status, TaskStatus::Cancelled);
  auto twice = s->cancel(t.id, "cancelled by request");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::Conflict);
  EXPECT_TRUE(s->claim("node-a", 4, 30000, {})->empty());
}

TEST_F(PostgresQueueTest, WaitingTasksAreReleasedOrCancelledByTheirDependencies) {
  auto s = open();
  ASSERT_TRUE(s);
  TaskRecord done = make_task(*s->next_seq());
  done.status = TaskStatus::Completed;
  ASSERT_TRUE(s->insert(done).ok());
  TaskRecord broken = make_task(*s->next_seq());
  broken.status = TaskStatus::Failed;
  ASSERT_TRUE(s->insert(broken).ok());
  TaskRecord ready = make_task(*s->next_seq());
  ready.status = TaskStatus::Waiting;
  ready.spec.depends_on = {done.id};
  ASSERT_TRUE(s->insert(ready).ok());
  TaskRecord doomed = make_task(*s->next_seq());
  doomed.status = TaskStatus::Waiting;
  doomed.spec.depends_on = {done.id, broken.id};
  ASSERT_TRUE(s->insert(doomed).ok());
  TaskRecord after_doomed = make_task(*s->next_seq());
  after_doomed.status = TaskStatus::Waiting;
  after_doomed.spec.depends_on = {doomed.id};
  ASSERT_TRUE(s->insert(after_doomed).ok());
  auto r = s->rescue(30000, [](const TaskRecord& t, const std::string&) { return t; }, 3600000, 1000);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->ran);
  EXPECT_EQ(r->released, std::vector<TaskId>{ready.id});
  EXPECT_EQ(r->dependency_failed.size(), 2u) << "transitively";
  EXPECT_EQ((*s->find(ready.id))->status, TaskStatus::Queued);
  const TaskRecord ended = **s->find(doomed.id);
  EXPECT_EQ(ended.status, TaskStatus::Cancelled);
  EXPECT_EQ(ended.reason, EndReason::DependencyFailed);
  EXPECT_EQ(ended.message, "dependency " + broken.id + " failed");
  EXPECT_EQ((*s->find(after_doomed.id))->status, TaskStatus::Cancelled);
}

TEST_F(PostgresQueueTest, FinishedRowsNoLiveNodeKeepsAreEvicted) {
  auto s = open();
  ASSERT_TRUE(s);
  std::vector<TaskId> finished;
  for (int i = 0; i < 5; ++i) {
    TaskRecord t = make_task(*s->next_seq());
    t.status = TaskStatus::Completed;
    t.node = "node-gone";
    t.finished_at_ms = test::kT0;
    ASSERT_TRUE(s->insert(t).ok());
    finished.push_back(t.id);
  }
  const TaskRecord live = queued(*s);
  auto r = s->rescue(30000, [](const TaskRecord& t, const std::string&) { return t; }, 365LL * 24 * 3600 * 1000 * 100, 2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->evicted, 3u) << "the newest two are kept";
  EXPECT_FALSE(*s->find(finished[0]));
  EXPECT_TRUE(*s->find(finished[4]));
  EXPECT_TRUE(*s->find(live.id));
}

TEST_F(PostgresQueueTest, ASubmitOnAnotherNodeEndsAWaitForNews) {
  auto waiter = open();
  auto submitter = open();
  ASSERT_TRUE(waiter && submitter);
  waiter->wait_for_news(1ms);  // starts listening
  const auto started = std::chrono::steady_clock::now();
  std::jthread wait([&] { waiter->wait_for_news(60s); });
  // The LISTEN is in place before the wait begins, so the notify cannot be missed.
  queued(*submitter);
  wait.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "the NOTIFY of the insert ended the wait";
}

TEST_F(PostgresQueueTest, NodesAreListedWithTheirHeartbeat) {
  auto s = open();
  ASSERT_TRUE(s);
  NodeReport r = report("node-a");
  r.self.url = "http://127.0.0.1:1";
  r.self.running = 3;
  ASSERT_TRUE(s->heartbeat(r).ok());
  auto nodes = s->nodes(30000);
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ(nodes->front().name, "node-a");
  EXPECT_EQ(nodes->front().url, "http://127.0.0.1:1");
  EXPECT_EQ(nodes->front().running, 3);
  EXPECT_TRUE(nodes->front().alive);
  ASSERT_TRUE(s->leave("node-a").ok());
  EXPECT_TRUE(s->nodes(30000)->empty());
}

}  // namespace
}  // namespace orch::engine
