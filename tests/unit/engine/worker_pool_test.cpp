#include "engine/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>

#include "tests/support/wait_until.h"

namespace orch::engine {
namespace {

TEST(WorkerPool, RunsJobsConcurrentlySoABlockedJobDoesNotStallOthers) {
  WorkerPool pool({8, 64, std::chrono::milliseconds(30000)});
  std::latch release(1);
  std::atomic<bool> blocked_started{false};
  ASSERT_TRUE(pool.post([&](std::stop_token) {
    blocked_started = true;
    release.wait();
  }));
  ASSERT_TRUE(test::wait_until([&] { return blocked_started.load(); }));
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.post([&](std::stop_token) { ++done; }));
  EXPECT_TRUE(test::wait_until([&] { return done.load() == 5; }));
  release.count_down();
}

TEST(WorkerPool, NeverExceedsMaxThreadsAndRefusesWhenTheQueueIsFull) {
  WorkerPool pool({2, 3, std::chrono::milliseconds(30000)});
  std::latch release(1);
  std::atomic<int> running{0};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.post([&](std::stop_token) {
      ++running;
      release.wait();
    }));
  }
  ASSERT_TRUE(test::wait_until([&] { return running.load() == 2; }));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.post([](std::stop_token) {}));
  EXPECT_FALSE(pool.post([](std::stop_token) {}));
  EXPECT_EQ(pool.stats().threads, 2u);
  EXPECT_EQ(pool.stats().queued, 3u);
  release.count_down();
  EXPECT_TRUE(test::wait_until([&] { return pool.stats().queued == 0 && pool.stats().busy == 0; }));
}

TEST(WorkerPool, IdleThreadsLeaveAfterTheTimeoutAndComeBackOnDemand) {
  WorkerPool pool({4, 16, std::chrono::milliseconds(50)});
  std::atomic<int> done{0};
  ASSERT_TRUE(pool.post([&](std::stop_token) { ++done; }));
  ASSERT_TRUE(test::wait_until([&] { return done.load() == 1; }));
  EXPECT_TRUE(test::wait_until([&] { return pool.stats().threads == 0; }));
  ASSERT_TRUE(pool.post([&](std::stop_token) { ++done; }));
  EXPECT_TRUE(test::wait_until([&] { return done.load() == 2; }));
}

TEST(WorkerPool, StopRequestsStopOnRunningJobsAndJoins) {
  WorkerPool pool({2, 16, std::chrono::milliseconds(30000)});
  std::atomic<bool> saw_stop{false};
  std::atomic<bool> started{false};
  ASSERT_TRUE(pool.post([&](std::stop_token st) {
    started = true;
    while (!st.stop_requested()) std::this_thread::yield();
    saw_stop = true;
  }));
  ASSERT_TRUE(test::wait_until([&] { return started.load(); }));
  pool.stop();
  EXPECT_TRUE(saw_stop.load());
  EXPECT_FALSE(pool.post([](std::stop_token) {}));
}

TEST(WorkerPool, AThrowingJobDoesNotKillTheWorker) {
  WorkerPool pool({1, 16, std::chrono::milliseconds(30000)});
  std::atomic<int> done{0};
  ASSERT_TRUE(pool.post([](std::stop_token) -> void { throw std::runtime_error("boom"); }));
  ASSERT_TRUE(pool.post([&](std::stop_token) { ++done; }));
  EXPECT_TRUE(test::wait_until([&] { return done.load() == 1; }));
}

}  // namespace
}  // namespace orch::engine
