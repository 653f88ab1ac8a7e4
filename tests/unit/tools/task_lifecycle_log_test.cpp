// Task lifecycle events: which step says what at which level, and the
// watcher reporting a real task's steps once each, and only those heard.
#include "tools/task_lifecycle_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tests/support/test_engine.h"
#include "tests/support/wait_until.h"

namespace orch::tools {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using engine::TaskStatus;

engine::TaskView view(TaskStatus status) {
  engine::TaskView v;
  v.task.id = "tx";
  v.task.status = status;
  v.task.spec.name = "build";
  return v;
}

// The one event of a step, or a null event when there is none.
LifecycleEvent only(const std::vector<LifecycleEvent>& events) {
  EXPECT_LE(events.size(), 1u);
  return events.empty() ? LifecycleEvent{mcp::LogLevel::Debug, nullptr} : events.front();
}

TEST(LifecycleEvent, EachStepHasItsLevel) {
  auto queued = only(lifecycle_events(std::nullopt, view(TaskStatus::Queued)));
  EXPECT_EQ(queued.first, mcp::LogLevel::Debug);
  EXPECT_EQ(queued.second["event"], "task.queued");
  EXPECT_EQ(queued.second["name"], "build");
  EXPECT_EQ(only(lifecycle_events(TaskStatus::Queued, view(TaskStatus::Running))).first, mcp::LogLevel::Info);
  EXPECT_EQ(only(lifecycle_events(TaskStatus::Running, view(TaskStatus::Completed))).first, mcp::LogLevel::Info);
  EXPECT_EQ(only(lifecycle_events(TaskStatus::Running, view(TaskStatus::Cancelled))).first, mcp::LogLevel::Notice);
  engine::TaskView failed = view(TaskStatus::Failed);
  failed.task.exit_code = 2;
  failed.task.reason = engine::EndReason::ExitCode;
  failed.task.message = "exited with code 2";
  auto f = only(lifecycle_events(TaskStatus::Running, failed));
  EXPECT_EQ(f.first, mcp::LogLevel::Warning);
  EXPECT_EQ(f.second, (json{{"event", "task.failed"}, {"taskId", "tx"}, {"status", "failed"}, {"name", "build"},
                            {"reason", "exit_code"}, {"exitCode", 2}, {"message", "exited with code 2"}}));
  EXPECT_TRUE(lifecycle_events(TaskStatus::Running, view(TaskStatus::Running)).empty()) << "progress alone is no event";
}

TEST(LifecycleEvent, AStartNotSeenBeforeTheEndIsReportedFirst) {
  engine::TaskView done = view(TaskStatus::Completed);
  done.task.started_at_ms = 1000;
  auto events = lifecycle_events(TaskStatus::Queued, done);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].second, (json{{"event", "task.started"}, {"taskId", "tx"}, {"status", "running"},
                                    {"name", "build"}}));
  EXPECT_EQ(events[1].second["event"], "task.completed");
  EXPECT_EQ(lifecycle_events(TaskStatus::Running, done).size(), 1u) << "a start seen is not told twice";
  engine::TaskView never = view(TaskStatus::Cancelled);  // cancelled while queued: never started
  EXPECT_EQ(only(lifecycle_events(TaskStatus::Queued, never)).second["event"], "task.cancelled");
}

TEST(LifecycleEvent, OnlyTheLevelsHeardAreBuilt) {
  const LifecycleHeard warnings = [](mcp::LogLevel level) { return level >= mcp::LogLevel::Warning; };
  engine::TaskView done = view(TaskStatus::Completed);
  done.task.started_at_ms = 1000;
  EXPECT_TRUE(lifecycle_events(TaskStatus::Queued, done, warnings).empty()) << "a start and an end are info";
  engine::TaskView failed = view(TaskStatus::Failed);
  failed.task.started_at_ms = 1000;
  auto events = lifecycle_events(TaskStatus::Queued, failed, warnings);
  ASSERT_EQ(events.size(), 1u) << "the unseen start is info; the failure is heard";
  EXPECT_EQ(events[0].second["event"], "task.failed");
  const LifecycleHeard info = [](mcp::LogLevel level) { return level >= mcp::LogLevel::Info; };
  EXPECT_EQ(lifecycle_events(TaskStatus::Queued, done, info).size(), 2u);
  EXPECT_TRUE(lifecycle_events(std::nullopt, view(TaskStatus::Queued), info).empty()) << "queued is debug";
}

// A real engine, and a sink that keeps the events' names.
class TaskLifecycleLogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(engine_ = test::open_engine(dir_.path() / "state")); }
  void TearDown() override {
    if (engine_) engine_->shutdown(0ms);
  }
  LifecycleSink sink() {
    return [this](mcp::LogLevel, const json& data) {
      std::lock_guard lock(mu_);
      events_.push_back(data.at("event"));
    };
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  engine::TaskId submit(const std::string& command) {
    engine::TaskSpec spec;
    spec.command = command;
    auto submitted = engine_->submit(spec);
    EXPECT_TRUE(submitted);
    return submitted ? submitted->view.task.id : engine::TaskId{};
  }

  test::TempDir dir_;
  std::unique_ptr<engine::Engine> engine_;

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
};

TEST_F(TaskLifecycleLogTest, TheSinkGetsOnlyWhatIsHeard) {
  {
    TaskLifecycleLog log(*engine_, sink(), [](mcp::LogLevel level) { return level >= mcp::LogLevel::Warning; });
    const engine::TaskId ok = submit("exit 0");
    auto ended = engine_->wait(ok, std::chrono::steady_clock::now() + 10s, {}, {});
    ASSERT_TRUE(ended && ended->task.status == TaskStatus::Completed);
    submit("exit 1");
    ASSERT_TRUE(test::wait_until([&] { return !events().empty(); }, 10s));
  }
  // The feed is in order: the first task's info events would have come first.
  EXPECT_EQ(events(), std::vector<std::string>{"task.failed"});
}

TEST_F(TaskLifecycleLogTest, ReportsARealTasksStepsOnce) {
  {
    TaskLifecycleLog log(*engine_, sink());
    submit("exit 1");
    ASSERT_TRUE(test::wait_until([&] {
      auto seen = events();
      return !seen.empty() && seen.back() == "task.failed";
    }, 10s));
  }
  const auto seen = events();
  // queued may be skipped when the task starts before the watcher looks.
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "task.failed"), 1);
  EXPECT_LE(std::count(seen.begin(), seen.end(), "task.started"), 1);
}

}  // namespace
}  // namespace orch::tools
