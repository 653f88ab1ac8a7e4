// ProcessPool with real workers (tests/workers/echo_worker.py and the C++
// one): the protocol, recycling, crashes, protocol faults and RSS limits.
#include "engine/process_pool.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>

#include <nlohmann/json.hpp>
#include <thread>

#include "engine/process_spawn.h"
#include "tests/support/process_probe.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

extern char** environ;

namespace orch::engine {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> server_env() {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
  return out;
}

class ProcessPoolTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  Spool spool{dir.path(), 1 << 20};

  ProcessPool::Options options(PoolSettings settings, bool cpp = false) {
    ProcessPool::Options o;
    o.name = "echo";
    o.settings = settings;
    o.worker.argv = cpp ? std::vector<std::string>{ORCH_ECHO_WORKER_CPP}
                        : std::vector<std::string>{"python3", "-u", std::string(ORCH_WORKERS_DIR) + "/echo_worker.py"};
    o.worker.env = server_env();
    o.stop_grace = 500ms;
    return o;
  }

  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<PoolOutcome> outcome;
    std::vector<Progress> progress;
  };

  // Runs one request and waits for its outcome (with a deadline).
  PoolOutcome run(ProcessPool& pool, const std::string& id, const std::string& input) {
    auto done = std::make_shared<Done>();
    PoolRequest req;
    req.task_id = id;
    req.input_json = input;
    req.on_progress = [done](const Progress& p) {
      std::lock_guard lock(done->mu);
      done->progress.push_back(p);
    };
    req.on_done = [done](const PoolOutcome& o) {
      std::lock_guard lock(done->mu);
      done->outcome = o;
      done->cv.notify_all();
    };
    EXPECT_TRUE(pool.run(std::move(req)).ok());
    std::unique_lock lock(done->mu);
    EXPECT_TRUE(done->cv.wait_for(lock, 20s, [&] { return done->outcome.has_value(); })) << "no answer for " << id;
    last_progress = done->progress;
    return done->outcome.value_or(PoolOutcome{});
  }

  static int served_pid(const PoolOutcome& o) {
    auto j = nlohmann::json::parse(o.result_json, nullptr, false);
    return j.is_object() ? j.value("pid", 0) : 0;
  }

  std::vector<Progress> last_progress;
};

TEST_F(ProcessPoolTest, AnswersWithTheWorkersResultAndProgress) {
  ProcessPool pool(options({.min = 1, .max = 1}), spool);
  auto o = run(pool, "t1", R"({"echo": "hi", "progress": 2, "stderr": "to the spool\n"})");
  ASSERT_EQ(o.kind, PoolOutcome::Kind::Result) << o.message;
  auto result = nlohmann::json::parse(o.result_json);
  EXPECT_EQ(result["echo"], "hi");
  ASSERT_EQ(last_progress.size(), 2u);
  EXPECT_EQ(last_progress[1].current, 2);
  EXPECT_EQ(last_progress[1].total, 2);
  auto err = spool.read("t1", StreamKind::Stderr, {});
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->data, "to the spool\n");
}

TEST_F(ProcessPoolTest, ReusesTheWarmWorkerAndRecyclesItAfterMaxTasks) {
  ProcessPool pool(options({.min = 1, .max = 1, .max_tasks_per_worker = 3}), spool);
  std::vector<int> pids;
  for (int i = 0; i < 7; ++i) pids.push_back(served_pid(run(pool, "t" + std::to_string(i), "{}")));
  EXPECT_EQ(pids[0], pids[1]);
  EXPECT_EQ(pids[1], pids[2]);
  EXPECT_NE(pids[2], pids[3]) << "replaced exactly after its 3rd task";
  EXPECT_EQ(pids[3], pids[5]);
  EXPECT_NE(pids[5], pids[6]);
  EXPECT_FALSE(test::process_alive(pids[0]));
}

TEST_F(ProcessPoolTest, ACrashFailsTheTaskAndANewWorkerTakesTheNext) {
  ProcessPool pool(options({.min = 1, .max = 1}), spool);
  const int first = served_pid(run(pool, "a", "{}"));
  auto crashed = run(pool, "b", R"({"crash": 7})");
  EXPECT_EQ(crashed.kind, PoolOutcome::Kind::Crashed);
  EXPECT_EQ(crashed.exit_code, 7);
  const int next = served_pid(run(pool, "c", "{}"));
  EXPECT_NE(next, 0);
  EXPECT_NE(next, first);
}

TEST_F(ProcessPoolTest, AProtocolFaultReplacesTheWorker) {
  ProcessPool pool(options({.min = 0, .max = 1}), spool);
  const int first = served_pid(run(pool, "a", "{}"));
  auto bad = run(pool, "b", R"({"malformed": true})");
  EXPECT_EQ(bad.kind, PoolOutcome::Kind::Malformed);
  EXPECT_NE(bad.message.find("not JSON"), std::string::npos) << bad.message;
  EXPECT_FALSE(test::process_alive(first));
  EXPECT_NE(served_pid(run(pool, "c", "{}")), first);
}

TEST_F(ProcessPoolTest, AnErrorAnswerKeepsTheWorker) {
  ProcessPool pool(options({.min = 1, .max = 1}), spool);
  auto err = run(pool, "a", R"({"error": "no such model"})");
  EXPECT_EQ(err.kind, PoolOutcome::Kind::Error);
  EXPECT_NE(err.message.find("no such model"), std::string::npos);
  auto ok = run(pool, "b", "{}");
  EXPECT_EQ(nlohmann::json::parse(ok.result_json)["served"], 2) << "the same worker served both";
}

TEST_F(ProcessPoolTest, AWorkerAboveTheHardRssLimitIsKilledMidTask) {
  auto o = options({.min = 1, .max = 1});
  o.hard_rss_mb = 60;
  ProcessPool pool(std::move(o), spool);
  auto big = run(pool, "a", R"({"alloc_mb": 200, "sleep": 5})");
  EXPECT_EQ(big.kind, PoolOutcome::Kind::MemoryLimit) << big.message;
  EXPECT_EQ(run(pool, "b", "{}").kind, PoolOutcome::Kind::Result);
}

TEST_F(ProcessPoolTest, AWorkerAboveMaxWorkerRssIsReplacedBetweenTasks) {
  ProcessPool pool(options({.min = 1, .max = 1, .max_worker_rss_mb = 60}), spool);
  auto grew = run(pool, "a", R"({"alloc_mb": 100})");
  ASSERT_EQ(grew.kind, PoolOutcome::Kind::Result) << "the soft limit never fails a task";
  EXPECT_NE(served_pid(run(pool, "b", "{}")), served_pid(grew));
}

TEST_F(ProcessPoolTest, StopTaskKillsItsWorker) {
  ProcessPool pool(options({.min = 1, .max = 1}), spool);
  PoolRequest req;
  req.task_id = "long";
  req.input_json = R"({"sleep": 30})";
  std::promise<PoolOutcome> outcome;
  req.on_done = [&outcome](const PoolOutcome& o) { outcome.set_value(o); };
  ASSERT_TRUE(pool.run(std::move(req)).ok());
  // Once a worker has it (or while it waits for one), stop it.
  ASSERT_TRUE(test::wait_until([&] { return pool.stop_task("long"); }, 10s, 5ms));
  auto f = outcome.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get().kind, PoolOutcome::Kind::Stopped);
}

TEST_F(ProcessPoolTest, IdleWorkersAboveMinExit) {
  auto o = options({.min = 0, .max = 2, .idle_timeout_ms = 200});
  ProcessPool pool(std::move(o), spool);
  const int pid = served_pid(run(pool, "a", "{}"));
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(test::wait_until([&] { return !test::process_alive(pid); }, 10s, 10ms));
  // The pool forgets the worker once it has reaped it, a moment after it died.
  EXPECT_TRUE(test::wait_until([&] { return pool.workers().empty(); }, 10s, 10ms));
}

TEST_F(ProcessPoolTest, TheCppWorkerSpeaksTheSameProtocol) {
  ProcessPool pool(options({.min = 1, .max = 1}, true), spool);
  auto o = run(pool, "a", R"({"echo": [1, 2], "progress": 1})");
  ASSERT_EQ(o.kind, PoolOutcome::Kind::Result) << o.message;
  EXPECT_EQ(nlohmann::json::parse(o.result_json)["echo"], nlohmann::json::array({1, 2}));
  EXPECT_EQ(last_progress.size(), 1u);
}

TEST_F(ProcessPoolTest, ShutdownLeavesNoWorkerBehind) {
  std::vector<int> pids;
  {
    ProcessPool pool(options({.min = 2, .max = 2}), spool);
    pids.push_back(served_pid(run(pool, "a", "{}")));
    for (const auto& w : pool.workers()) pids.push_back(w.pid);
  }
  for (int pid : pids) EXPECT_FALSE(test::process_alive(pid)) << pid;
}

}  // namespace
}  // namespace orch::engine
