#include "engine/scheduler.h"

#include <gtest/gtest.h>

namespace orch::engine {
namespace {

constexpr std::int64_t kT0 = 1'800'000'000'000;  // a fixed "now" in Unix ms

class SchedulerTest : public ::testing::Test {
 protected:
  Scheduler sched{Scheduler::Limits{2, 100}, [] { return 0.999999; }};
  std::int64_t seq = 0;

  TaskId submit(TaskSpec spec = {}, std::int64_t now = kT0) {
    TaskRecord t;
    t.id = "task" + std::to_string(++seq);
    t.seq = seq;
    t.spec = std::move(spec);
    t.submitted_at_ms = now;
    auto r = sched.submit(std::move(t), now);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return "task" + std::to_string(seq);
  }
  std::vector<TaskId> take(std::int64_t now = kT0) {
    std::vector<TaskId> started;
    (void)sched.take_runnable(now, started);
    return started;
  }
  void finish(const TaskId& id, int code, std::int64_t now = kT0) {
    AttemptOutcome o;
    o.exit_code = code;
    (void)sched.finish_attempt(id, o, now);
  }
  TaskStatus status(const TaskId& id) { return sched.find(id)->status; }
};

TaskSpec with_priority(int p) {
  TaskSpec s;
  s.priority = p;
  return s;
}

TEST_F(SchedulerTest, HigherPriorityRunsFirstAndFifoWithinALevel) {
  auto low = submit(with_priority(1));
  auto high1 = submit(with_priority(9));
  auto high2 = submit(with_priority(9));
  EXPECT_EQ(*sched.queue_position(high1), 1u);
  EXPECT_EQ(*sched.queue_position(high2), 2u);
  EXPECT_EQ(*sched.queue_position(low), 3u);
  EXPECT_EQ(take(), (std::vector<TaskId>{high1, high2}));
  EXPECT_EQ(status(low), TaskStatus::Queued);
}

TEST_F(SchedulerTest, NeverRunsMoreThanMaxConcurrent) {
  for (int i = 0; i < 5; ++i) submit();
  EXPECT_EQ(take().size(), 2u);
  EXPECT_TRUE(take().empty());
  finish("task1", 0);
  EXPECT_EQ(take(), std::vector<TaskId>{"task3"});
  EXPECT_EQ(sched.running_count(), 2);
}

TEST_F(SchedulerTest, DependentWaitsUntilItsDependencyCompletes) {
  auto a = submit();
  TaskSpec spec;
  spec.depends_on = {a};
  auto b = submit(spec);
  EXPECT_EQ(status(b), TaskStatus::Waiting);
  EXPECT_EQ(take(), std::vector<TaskId>{a});
  finish(a, 0);
  EXPECT_EQ(status(b), TaskStatus::Queued);
  EXPECT_EQ(take(), std::vector<TaskId>{b});
}

TEST_F(SchedulerTest, DependencyFailureCancelsDependentsTransitively) {
  auto a = submit();
  TaskSpec on_a;
  on_a.depends_on = {a};
  auto b = submit(on_a);
  TaskSpec on_b;
  on_b.depends_on = {b};
  auto c = submit(on_b);
  take();
  finish(a, 2);
  EXPECT_EQ(status(a), TaskStatus::Failed);
  EXPECT_EQ(status(b), TaskStatus::Cancelled);
  EXPECT_EQ(sched.find(b)->reason, EndReason::DependencyFailed);
  EXPECT_EQ(status(c), TaskStatus::Cancelled);
  EXPECT_EQ(sched.find(c)->reason, EndReason::DependencyFailed);
}

TEST_F(SchedulerTest, DependingOnAnAlreadyFailedTaskCancelsAtOnce) {
  auto a = submit();
  take();
  finish(a, 1);
  TaskSpec spec;
  spec.depends_on = {a};
  auto b = submit(spec);
  EXPECT_EQ(status(b), TaskStatus::Cancelled);
  EXPECT_EQ(sched.find(b)->reason, EndReason::DependencyFailed);
}

TEST_F(SchedulerTest, UnknownDependencyIsRefused) {
  TaskRecord t;
  t.id = "x";
  t.seq = 1;
  t.spec.depends_on = {"nope"};
  auto r = sched.submit(t, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().message.find("nope"), std::string::npos);
  EXPECT_EQ(sched.find("x"), nullptr);
}

TEST_F(SchedulerTest, FullQueueRefusesWithAClearError) {
  Scheduler small{Scheduler::Limits{1, 2}};
  for (int i = 1; i <= 2; ++i) {
    TaskRecord t;
    t.id = "t" + std::to_string(i);
    t.seq = i;
    ASSERT_TRUE(small.submit(t, kT0).ok());
  }
  TaskRecord t;
  t.id = "t3";
  t.seq = 3;
  auto r = small.submit(t, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::QueueFull);
  EXPECT_NE(r.error().message.find("queue is full"), std::string::npos);
}

TEST_F(SchedulerTest, RetriesAfterAJitteredExponentialBackoff) {
  TaskSpec spec;
  spec.retry = RetryPolicy{3, Backoff::Exponential, 1000, 60000};
  auto id = submit(spec);
  take();
  finish(id, 1);
  const TaskRecord* t = sched.find(id);
  EXPECT_EQ(t->status, TaskStatus::Waiting);
  EXPECT_EQ(t->reason, EndReason::ExitCode);
  EXPECT_NEAR(static_cast<double>(t->not_before_ms - kT0), 1000, 1);
  EXPECT_EQ(*sched.next_wakeup_ms(), t->not_before_ms);
  EXPECT_TRUE(take(kT0 + 500).empty());
  EXPECT_EQ(take(kT0 + 1000), std::vector<TaskId>{id});
  EXPECT_EQ(sched.find(id)->attempt, 2);
  finish(id, 1, kT0 + 1000);
  EXPECT_NEAR(static_cast<double>(sched.find(id)->not_before_ms - (kT0 + 1000)), 2000, 1);
  take(kT0 + 3000);
  finish(id, 1, kT0 + 3000);
  EXPECT_EQ(status(id), TaskStatus::Failed);
  EXPECT_EQ(sched.find(id)->attempt, 3);
}

TEST(RetryDelay, JitterStaysWithinHalfToFullAndRespectsTheCap) {
  RetryPolicy p{10, Backoff::Exponential, 1000, 5000};
  EXPECT_EQ(retry_delay_ms(p, 2, 0.0), 500);
  EXPECT_EQ(retry_delay_ms(p, 3, 0.0), 1000);
  EXPECT_EQ(retry_delay_ms(p, 9, 0.999999), 4999);
  RetryPolicy fixed{10, Backoff::Fixed, 300, 0};
  EXPECT_EQ(retry_delay_ms(fixed, 7, 0.0), 150);
}

TEST_F(SchedulerTest, RunAtHoldsATaskUntilItsTime) {
  TaskSpec spec;
  spec.run_at_ms = kT0 + 5000;
  auto id = submit(spec);
  EXPECT_EQ(status(id), TaskStatus::Waiting);
  EXPECT_TRUE(take(kT0 + 4999).empty());
  EXPECT_EQ(take(kT0 + 5000), std::vector<TaskId>{id});
}

TEST_F(SchedulerTest, TimeoutIsReportedAsTimeoutNotAsTheSignal) {
  TaskSpec spec;
  spec.timeout_ms = 2000;
  auto id = submit(spec);
  take();
  EXPECT_EQ(*sched.next_wakeup_ms(), kT0 + 2000);
  EXPECT_TRUE(sched.take_timed_out(kT0 + 1999).empty());
  EXPECT_EQ(sched.take_timed_out(kT0 + 2000), std::vector<TaskId>{id});
  EXPECT_TRUE(sched.should_stop(id));
  AttemptOutcome killed;
  killed.signal = 15;
  (void)sched.finish_attempt(id, killed, kT0 + 2100);
  EXPECT_EQ(status(id), TaskStatus::Failed);
  EXPECT_EQ(sched.find(id)->reason, EndReason::Timeout);
}

TEST_F(SchedulerTest, CancelledRunningTaskIsNeverCompletedEvenIfItExitsZero) {
  auto id = submit();
  take();
  bool needs_kill = false;
  ASSERT_TRUE(sched.cancel(id, kT0, needs_kill).ok());
  EXPECT_TRUE(needs_kill);
  EXPECT_EQ(status(id), TaskStatus::Running);
  finish(id, 0);
  EXPECT_EQ(status(id), TaskStatus::Cancelled);
  EXPECT_EQ(sched.find(id)->reason, EndReason::Cancelled);
}

TEST_F(SchedulerTest, CancellingAQueuedTaskEndsItAndAFinishedOneIsAConflict) {
  auto id = submit();
  bool needs_kill = true;
  ASSERT_TRUE(sched.cancel(id, kT0, needs_kill).ok());
  EXPECT_FALSE(needs_kill);
  EXPECT_EQ(status(id), TaskStatus::Cancelled);
  auto again = sched.cancel(id, kT0, needs_kill);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::Conflict);
}

// A task the store had as running, in its first attempt, when the server died.
TaskRecord stored_running(const std::string& id, std::int64_t seq) {
  TaskRecord t;
  t.id = id;
  t.seq = seq;
  t.status = TaskStatus::Running;
  t.attempt = 1;
  return t;
}

TEST_F(SchedulerTest, TasksRunningWhenTheServerDiedAreLostAndRetried) {
  Scheduler restored{Scheduler::Limits{2, 100}, [] { return 0.0; }};
  TaskRecord once = stored_running("once", 1);
  TaskRecord retried = stored_running("retried", 2);
  retried.spec.retry.max_attempts = 2;
  TaskRecord queued;
  queued.id = "queued";
  queued.seq = 3;
  restored.restore(once);
  restored.restore(retried);
  restored.restore(queued);
  auto changes = restored.restore_done(kT0);
  EXPECT_EQ(restored.find("once")->status, TaskStatus::Failed);
  EXPECT_EQ(restored.find("once")->reason, EndReason::Lost);
  EXPECT_EQ(restored.find("retried")->status, TaskStatus::Waiting);
  EXPECT_EQ(restored.find("queued")->status, TaskStatus::Queued);
  EXPECT_EQ(restored.max_seq(), 3);
  EXPECT_GE(changes.size(), 2u);
}

TEST_F(SchedulerTest, ATaskThatNeverStartedBeforeTheServerDiedIsQueuedAgainAsTheSameAttempt) {
  Scheduler restored{Scheduler::Limits{2, 100}, [] { return 0.0; }};
  TaskRecord unstarted = stored_running("unstarted", 1);
  unstarted.started_at_ms = kT0 - 5;
  restored.restore(unstarted);
  auto changes = restored.restore_done(kT0, [](const TaskRecord&) {
    AttemptOutcome o;
    o.never_started = true;
    return std::optional<AttemptOutcome>(o);
  });
  const TaskRecord* t = restored.find("unstarted");
  EXPECT_EQ(t->status, TaskStatus::Queued);
  EXPECT_EQ(t->attempt, 0) << "an attempt that never began is not spent";
  EXPECT_EQ(t->reason, EndReason::None);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].from, TaskStatus::Running);
  std::vector<TaskId> ids;
  restored.take_runnable(kT0, ids);
  ASSERT_EQ(ids, std::vector<TaskId>{"unstarted"});
  EXPECT_EQ(restored.find("unstarted")->attempt, 1);
}

TEST_F(SchedulerTest, EvictsFinishedTasksByCountAndAge) {
  std::vector<TaskId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(submit());
  for (int i = 0; i < 4; ++i) {
    if (i % 2 == 0) take();
    finish(ids[static_cast<std::size_t>(i)], 0, kT0 + i);
  }
  auto by_count = sched.evict(2, 1'000'000, kT0 + 10);
  EXPECT_EQ(by_count, (std::vector<TaskId>{ids[0], ids[1]}));
  EXPECT_EQ(sched.find(ids[0]), nullptr);
  auto by_age = sched.evict(10, 5, kT0 + 8);  // finished before kT0+3 are too old
  EXPECT_EQ(by_age, std::vector<TaskId>{ids[2]});
  EXPECT_NE(sched.find(ids[3]), nullptr);
}

// counts() keeps a tally of finished tasks rather than walking them (it runs
// under the engine's lock for every getStatus): the tally follows every end,
// eviction and retry.
TEST_F(SchedulerTest, CountsByStatusFollowEndsEvictionsAndRetries) {
  auto counts = [&] {
    auto c = sched.counts();
    return std::vector<std::size_t>{c[TaskStatus::Queued],    c[TaskStatus::Waiting], c[TaskStatus::Running],
                                    c[TaskStatus::Completed], c[TaskStatus::Failed],  c[TaskStatus::Cancelled]};
  };
  EXPECT_EQ(counts(), (std::vector<std::size_t>{0, 0, 0, 0, 0, 0}));
  TaskSpec retried;
  retried.retry.max_attempts = 2;
  auto a = submit(retried);
  auto b = submit();
  auto c = submit();
  auto d = submit();
  EXPECT_EQ(counts(), (std::vector<std::size_t>{4, 0, 0, 0, 0, 0}));
  take();  // a, b run
  finish(a, 1, kT0 + 1);  // waits to retry: not finished
  finish(b, 0, kT0 + 2);
  EXPECT_EQ(counts(), (std::vector<std::size_t>{2, 1, 0, 1, 0, 0}));
  bool needs_kill = false;
  ASSERT_TRUE(sched.cancel(d, kT0 + 3, needs_kill).ok());
  take(kT0 + 3);  // c runs
  finish(c, 2, kT0 + 4);
  EXPECT_EQ(counts(), (std::vector<std::size_t>{0, 1, 0, 1, 1, 1}));
  EXPECT_EQ(sched.evict(1, 1'000'000, kT0 + 10), (std::vector<TaskId>{b, d}));
  EXPECT_EQ(counts(), (std::vector<std::size_t>{0, 1, 0, 0, 1, 0}));
  EXPECT_EQ(sched.evict(0, 1'000'000, kT0 + 10), std::vector<TaskId>{c});
  EXPECT_EQ(counts(), (std::vector<std::size_t>{0, 1, 0, 0, 0, 0}));
}

TEST_F(SchedulerTest, ListsNewestFirstFromACursor) {
  for (int i = 0; i < 5; ++i) submit();
  std::vector<std::int64_t> seen;
  sched.for_each_newest_first(4, [&](const TaskRecord& t) {
    seen.push_back(t.seq);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::int64_t>{3, 2}));
}

TEST_F(SchedulerTest, IdempotencyKeyFindsTheFirstTask) {
  TaskSpec spec;
  spec.idempotency_key = "build-42";
  auto id = submit(spec);
  EXPECT_EQ(*sched.find_by_idempotency_key("build-42"), id);
  EXPECT_FALSE(sched.find_by_idempotency_key("other").has_value());
}


// --- per-profile rules (SPEC §4: per-profile limits, token bucket, breaker) --

// The same helpers with room for 8 tasks, so only profile rules hold them.
class SchedulerProfileTest : public SchedulerTest {
 protected:
  SchedulerProfileTest() { sched = Scheduler{Scheduler::Limits{8, 100}, [] { return 0.999999; }}; }

  using SchedulerTest::submit;
  TaskId submit(const std::string& profile, std::int64_t now = kT0) {
    TaskSpec spec;
    spec.profile = profile;
    return submit(std::move(spec), now);
  }
  ProfileView view(const std::string& name, std::int64_t now = kT0) {
    for (auto& v : sched.profile_views(now)) {
      if (v.name == name) return v;
    }
    ADD_FAILURE() << "no profile " << name;
    return {};
  }
};

TEST_F(SchedulerProfileTest, ProfileConcurrencyHoldsOnlyItsOwnTasks) {
  ProfileRules agent;
  agent.max_concurrent = 2;
  sched.set_profile_rules({{"agent", agent}});
  auto a1 = submit("agent");
  auto a2 = submit("agent");
  auto a3 = submit("agent");
  auto other = submit("");
  EXPECT_EQ(view("agent").queued, 3u);
  EXPECT_EQ(take(), (std::vector<TaskId>{a1, a2, other})) << "a3 is passed over, the task behind it is not";
  EXPECT_EQ(view("agent").queued, 1u);
  EXPECT_NE(sched.held_reason(*sched.find(a3), kT0).find("at most 2"), std::string::npos);
  finish(a1, 0);
  EXPECT_EQ(take(), std::vector<TaskId>{a3});
  EXPECT_EQ(view("agent").running, 2);
  EXPECT_EQ(view("agent").queued, 0u);
  auto a4 = submit("agent");
  EXPECT_EQ(view("agent").queued, 1u);
  bool needs_kill = false;
  ASSERT_TRUE(sched.cancel(a4, kT0, needs_kill).ok());
  EXPECT_EQ(view("agent").queued, 0u) << "a cancelled task leaves the count";
}

TEST_F(SchedulerProfileTest, RateLimitAdmitsTheBurstThenOnePerInterval) {
  ProfileRules rules;
  rules.rate_limit.per_minute = 10;  // bucket of 10, one token per 6 s
  sched.set_profile_rules({{"api", rules}});
  std::vector<TaskId> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(submit("api"));
  auto first = take();
  ASSERT_EQ(first.size(), 8u) << "the global limit of 8 comes first";
  for (const auto& id : first) finish(id, 0);
  EXPECT_EQ(take().size(), 2u) << "10 starts in all, then the bucket is empty";
  EXPECT_TRUE(take(kT0 + 5999).empty());
  EXPECT_NE(sched.held_reason(*sched.find(ids[10]), kT0).find("rate limit"), std::string::npos);
  ASSERT_TRUE(sched.next_wakeup_ms().has_value());
  EXPECT_LE(*sched.next_wakeup_ms(), kT0 + 6000) << "the dispatcher wakes when a token is due";
  EXPECT_EQ(take(kT0 + 6000), std::vector<TaskId>{ids[10]});
  EXPECT_TRUE(take(kT0 + 6001).empty());
  EXPECT_EQ(take(kT0 + 12000), std::vector<TaskId>{ids[11]});
}

TEST_F(SchedulerProfileTest, BreakerOpensAfterConsecutiveFailuresThenHalfOpens) {
  ProfileRules rules;
  rules.breaker.failures = 2;
  rules.breaker.cooldown_ms = 10000;
  sched.set_profile_rules({{"flaky", rules}});
  auto t1 = submit("flaky");
  auto t2 = submit("flaky");
  auto t3 = submit("flaky");
  auto t4 = submit("flaky");
  EXPECT_EQ(take(), (std::vector<TaskId>{t1, t2, t3, t4}));
  finish(t1, 0);
  finish(t2, 1);
  EXPECT_EQ(view("flaky").breaker, BreakerState::Closed) << "one failure after a success";
  finish(t3, 1);
  EXPECT_EQ(view("flaky").breaker, BreakerState::Open);
  EXPECT_EQ(view("flaky").consecutive_failures, 2);
  finish(t4, 0, kT0 + 1);  // already running when it opened; a success closes it again
  EXPECT_EQ(view("flaky", kT0 + 1).breaker, BreakerState::Closed);

  auto t5 = submit("flaky");
  auto t6 = submit("flaky");
  EXPECT_EQ(take(kT0 + 2).size(), 2u);
  finish(t5, 1, kT0 + 3);
  finish(t6, 1, kT0 + 3);
  auto t7 = submit("flaky");
  auto t8 = submit("flaky");
  EXPECT_TRUE(take(kT0 + 4).empty()) << "open: nothing of the profile starts";
  EXPECT_NE(sched.held_reason(*sched.find(t7), kT0 + 4).find("circuit breaker is open"), std::string::npos);
  EXPECT_EQ(take(kT0 + 10003), std::vector<TaskId>{t7}) << "half-open: one trial";
  EXPECT_TRUE(take(kT0 + 10004).empty());
  finish(t7, 1, kT0 + 10005);
  EXPECT_EQ(view("flaky", kT0 + 10005).breaker, BreakerState::Open) << "a failed trial opens it again";
  EXPECT_EQ(take(kT0 + 20005), std::vector<TaskId>{t8});
  finish(t8, 0, kT0 + 20006);
  EXPECT_EQ(view("flaky", kT0 + 20006).breaker, BreakerState::Closed);
}

TEST_F(SchedulerProfileTest, AdmissionHoldStopsEveryStartAndSaysWhy) {
  auto t1 = submit("");
  sched.set_admission_hold("system memory is short");
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(sched.held_reason(*sched.find(t1), kT0), "system memory is short");
  sched.set_admission_hold("");
  EXPECT_EQ(take(), std::vector<TaskId>{t1});
}

TEST_F(SchedulerProfileTest, PoolOutcomesMapToTheirReasons) {
  auto t1 = submit("");
  auto t2 = submit("");
  auto t3 = submit("");
  auto t4 = submit("");
  take();
  AttemptOutcome result;
  result.worker_result = true;
  (void)sched.finish_attempt(t1, result, kT0);
  EXPECT_EQ(sched.find(t1)->status, TaskStatus::Completed);
  AttemptOutcome crashed;
  crashed.worker_crashed = true;
  (void)sched.finish_attempt(t2, crashed, kT0);
  EXPECT_EQ(sched.find(t2)->reason, EndReason::WorkerCrashed);
  AttemptOutcome error;
  error.worker_error = true;
  (void)sched.finish_attempt(t3, error, kT0);
  EXPECT_EQ(sched.find(t3)->reason, EndReason::WorkerError);
  AttemptOutcome memory;
  memory.memory_limit = true;
  memory.signal = 9;
  (void)sched.finish_attempt(t4, memory, kT0);
  EXPECT_EQ(sched.find(t4)->status, TaskStatus::Failed);
  EXPECT_EQ(sched.find(t4)->reason, EndReason::MemoryLimit);
}

}  // namespace
}  // namespace orch::engine
