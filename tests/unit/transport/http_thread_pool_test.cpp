#include "transport/http_thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "tests/support/wait_until.h"

namespace orch::transport {
namespace {

using namespace std::chrono_literals;

// Jobs that block until released, like long-polls holding their connection.
class Gate {
 public:
  std::function<void()> job() {
    return [this] {
      std::unique_lock lock(mu_);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    };
  }
  bool wait_entered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return entered_ >= n; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

TEST(HttpThreadPool, EveryBlockedJobGetsItsOwnThreadUpToTheLimit) {
  HttpThreadPool pool(8, 100);
  Gate gate;
  for (int i = 0; i < 8; ++i) pool.enqueue(gate.job());
  EXPECT_TRUE(gate.wait_entered(8)) << "none queued behind another";
  EXPECT_EQ(pool.stats().threads, 8u);
  EXPECT_EQ(pool.stats().busy, 8u);
  pool.enqueue(gate.job());
  EXPECT_EQ(pool.stats().pending, 1u) << "past the limit a job waits for a thread";
  gate.open();
  EXPECT_TRUE(gate.wait_entered(9));
  pool.shutdown();
  EXPECT_EQ(pool.stats().threads, 0u);
}

TEST(HttpThreadPool, AfterShutdownJobsRunOnTheCaller) {
  HttpThreadPool pool(2, 2);
  pool.shutdown();
  bool ran = false;
  pool.enqueue([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(HttpThreadPool, IdleThreadsAreReused) {
  HttpThreadPool pool(4, 4);
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) {
    pool.enqueue([&] { ++done; });
    ASSERT_TRUE(test::wait_until([&] { return done.load() == i + 1 && pool.stats().busy == 0; }));
  }
  EXPECT_LE(pool.stats().threads, 2u) << "one job at a time needs about one thread";
}

}  // namespace
}  // namespace orch::transport
