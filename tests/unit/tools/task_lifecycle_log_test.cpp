// Task lifecycle events: which step says what at which level, and the
// watcher reporting a real task's steps once each.
#include "tools/task_lifecycle_log.h"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "tests/support/temp_dir.h"
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

TEST(LifecycleEvent, EachStepHasItsLevel) {
  auto queued = lifecycle_event(std::nullopt, view(TaskStatus::Queued));
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->first, mcp::LogLevel::Debug);
  EXPECT_EQ(queued->second["event"], "task.queued");
  EXPECT_EQ(queued->second["name"], "build");
  EXPECT_EQ(lifecycle_event(TaskStatus::Queued, view(TaskStatus::Running))->first, mcp::LogLevel::Info);
  EXPECT_EQ(lifecycle_event(TaskStatus::Running, view(TaskStatus::Completed))->first, mcp::LogLevel::Info);
  EXPECT_EQ(lifecycle_event(TaskStatus::Running, view(TaskStatus::Cancelled))->first, mcp::LogLevel::Notice);
  engine::TaskView failed = view(TaskStatus::Failed);
  failed.task.exit_code = 2;
  failed.task.reason = engine::EndReason::ExitCode;
  failed.task.message = "exited with code 2";
  auto f = lifecycle_event(TaskStatus::Running, failed);
  EXPECT_EQ(f->first, mcp::LogLevel::Warning);
  EXPECT_EQ(f->second, (json{{"event", "task.failed"}, {"taskId", "tx"}, {"status", "failed"}, {"name", "build"},
                             {"reason", "exit_code"}, {"exitCode", 2}, {"message", "exited with code 2"}}));
  EXPECT_FALSE(lifecycle_event(TaskStatus::Running, view(TaskStatus::Running))) << "progress alone is no event";
}

TEST(TaskLifecycleLog, ReportsARealTasksStepsOnce) {
  test::TempDir dir;
  engine::EngineOptions options;
  options.state_dir = dir.path() / "state";
  auto engine = engine::Engine::open(options);
  ASSERT_TRUE(engine) << engine.error().message;
  std::mutex mu;
  std::vector<std::string> events;
  {
    TaskLifecycleLog log(**engine, [&](mcp::LogLevel, const json& data) {
      std::lock_guard lock(mu);
      events.push_back(data.at("event"));
    });
    engine::TaskSpec spec;
    spec.command = "exit 1";
    ASSERT_TRUE((*engine)->submit(spec));
    ASSERT_TRUE(test::wait_until([&] {
      std::lock_guard lock(mu);
      return !events.empty() && events.back() == "task.failed";
    }, 10s));
  }
  std::lock_guard lock(mu);
  // queued may be skipped when the task starts before the watcher looks.
  EXPECT_EQ(std::count(events.begin(), events.end(), "task.failed"), 1);
  EXPECT_LE(std::count(events.begin(), events.end(), "task.started"), 1);
  (*engine)->shutdown(0ms);
}

}  // namespace
}  // namespace orch::tools
