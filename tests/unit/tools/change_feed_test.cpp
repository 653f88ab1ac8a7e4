// The watchers' change feed: every change reaches the watcher, a burst comes
// in few batches rather than one wake-up per change, and a stop ends it.
#include "tools/change_feed.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"
#include "tools/tool.h"

namespace orch::tools {
namespace {

using namespace std::chrono_literals;

TEST(ChangeFeed, ABurstArrivesInBatchesAndEveryTasksEndIsSeen) {
  test::TempDir dir;
  engine::EngineOptions options;
  options.state_dir = dir.path() / "state";
  auto opened = engine::Engine::open(options);
  ASSERT_TRUE(opened) << opened.error().message;
  engine::Engine& engine = **opened;
  std::mutex mu;
  std::set<engine::TaskId> ended;
  std::size_t batches = 0, changes = 0;
  const std::uint64_t start = engine.changes_since(0, engine_clock(engine).now(), {}).cursor;
  std::jthread watcher([&](std::stop_token stop) {
    follow_changes(engine, start, stop, [&](const engine::TaskChanges& batch) {
      std::lock_guard lock(mu);
      if (batch.changed.empty()) return;
      ++batches;
      changes += batch.changed.size();
      for (const engine::TaskView& v : batch.changed) {
        if (engine::is_terminal(v.task.status)) ended.insert(v.task.id);
      }
    });
  });
  constexpr std::size_t kTasks = 40;
  const auto began = std::chrono::steady_clock::now();
  std::set<engine::TaskId> submitted;
  for (std::size_t i = 0; i < kTasks; ++i) {
    engine::TaskSpec spec;
    spec.command = "true";
    auto out = engine.submit(spec);
    ASSERT_TRUE(out) << out.error().message;
    submitted.insert(out->view.task.id);
  }
  ASSERT_TRUE(test::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return ended.size() == kTasks;
      },
      20s));
  watcher.request_stop();
  watcher.join();  // a stop ends the feed
  const auto elapsed = std::chrono::steady_clock::now() - began;
  std::lock_guard lock(mu);
  EXPECT_EQ(ended, submitted);
  // A batch is followed by a gather, so there are at most as many as gathers
  // fit in the run (without it, a wake-up per change or two: several times more).
  const auto most = static_cast<std::size_t>(elapsed / kChangeGather) + 2;
  EXPECT_LE(batches, most) << batches << " batches for " << changes << " changes in "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
  engine.shutdown(0ms);
}

}  // namespace
}  // namespace orch::tools
