// The engine's change feed (changes_since), duration histogram and store
// probe: what the dashboard, /metrics and /healthz read.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "engine/engine.h"
#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

using namespace std::chrono_literals;

class EngineChanges : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.state_dir = dir.path();
    o.kill_grace = 1000ms;
    auto e = Engine::open(o);
    ASSERT_TRUE(e.ok()) << e.error().message;
    engine = std::move(*e);
  }
  TaskId submit(const std::string& command) {
    TaskSpec spec;
    spec.command = command;
    auto r = engine->submit(std::move(spec));
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->view.task.id : TaskId{};
  }
  static bool has(const TaskChanges& c, const TaskId& id, TaskStatus status) {
    return std::any_of(c.changed.begin(), c.changed.end(),
                       [&](const TaskView& v) { return v.task.id == id && v.task.status == status; });
  }
  test::TempDir dir;
  std::unique_ptr<Engine> engine;
};

TEST_F(EngineChanges, CursorZeroIsASnapshotOfEveryTask) {
  TaskId a = submit("true");
  TaskId b = submit("true");
  TaskChanges c = engine->changes_since(0, std::chrono::steady_clock::now() + 5s, {});
  EXPECT_TRUE(c.snapshot);
  EXPECT_GT(c.cursor, 0u);
  EXPECT_EQ(c.changed.size(), 2u);
  EXPECT_TRUE(c.changed[0].task.id == b && c.changed[1].task.id == a) << "newest first";
}

TEST_F(EngineChanges, DeltasFollowASubmitToItsEnd) {
  TaskChanges start = engine->changes_since(0, std::chrono::steady_clock::now(), {});
  TaskId id = submit("exit 0");
  std::uint64_t cursor = start.cursor;
  bool seen_queued_or_running = false, seen_completed = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!seen_completed && std::chrono::steady_clock::now() < deadline) {
    TaskChanges c = engine->changes_since(cursor, deadline, {});
    EXPECT_FALSE(c.snapshot);
    EXPECT_GT(c.cursor, cursor);
    cursor = c.cursor;
    seen_queued_or_running |= has(c, id, TaskStatus::Queued) || has(c, id, TaskStatus::Running);
    seen_completed |= has(c, id, TaskStatus::Completed);
  }
  EXPECT_TRUE(seen_queued_or_running);
  EXPECT_TRUE(seen_completed);
}

TEST_F(EngineChanges, NoChangeUntilTheDeadlineLeavesTheCursorAlone) {
  TaskChanges start = engine->changes_since(0, std::chrono::steady_clock::now(), {});
  TaskChanges c = engine->changes_since(start.cursor, std::chrono::steady_clock::now() + 50ms, {});
  EXPECT_FALSE(c.snapshot);
  EXPECT_TRUE(c.changed.empty());
  EXPECT_EQ(c.cursor, start.cursor);
}

TEST_F(EngineChanges, AStopRequestWakesTheWait) {
  TaskChanges start = engine->changes_since(0, std::chrono::steady_clock::now(), {});
  std::stop_source stop;
  std::thread stopper([&] { stop.request_stop(); });
  TaskChanges c = engine->changes_since(start.cursor, std::chrono::steady_clock::now() + 60s, stop.get_token());
  stopper.join();
  EXPECT_TRUE(c.changed.empty());
}

TEST_F(EngineChanges, AStateViewCarriesTheNameButNotTheRestOfTheSpec) {
  TaskSpec spec;
  spec.command = "exit 0";
  spec.name = "named";
  spec.env = {{"SECRET", "x"}};
  auto submitted = engine->submit(std::move(spec));
  ASSERT_TRUE(submitted.ok());
  const TaskId id = submitted->view.task.id;
  const auto now = std::chrono::steady_clock::now();
  TaskChanges full = engine->changes_since(0, now, {});
  TaskChanges state = engine->changes_since(0, now, {}, OnDrain::Return, ViewDetail::State);
  ASSERT_EQ(full.changed.size(), 1u);
  ASSERT_EQ(state.changed.size(), 1u);
  EXPECT_EQ(full.changed[0].task.spec.command, "exit 0");
  EXPECT_EQ(full.changed[0].task.spec.env.size(), 1u);
  const TaskRecord& s = state.changed[0].task;
  EXPECT_EQ(s.id, id);
  EXPECT_EQ(s.spec.name, "named");
  EXPECT_TRUE(s.spec.command.empty());
  EXPECT_TRUE(s.spec.env.empty());
  EXPECT_EQ(s.seq, full.changed[0].task.seq);
}

TEST_F(EngineChanges, EndedTasksFillTheDurationHistogramAndTheStoreAnswers) {
  TaskId a = submit("true");
  TaskId b = submit("exit 2");
  for (const TaskId& id : {a, b}) {
    auto ended = engine->wait(id, std::chrono::steady_clock::now() + 20s, {}, {});
    ASSERT_TRUE(ended && is_terminal(ended->task.status));
  }
  DurationHistogram d = engine->stats().durations;
  EXPECT_EQ(d.count, 2u);
  ASSERT_FALSE(d.counts.empty());
  EXPECT_EQ(d.counts.size(), d.bounds_s.size());
  EXPECT_EQ(d.counts.back(), 2u) << "both took under an hour";
  EXPECT_TRUE(std::is_sorted(d.counts.begin(), d.counts.end())) << "cumulative";
  EXPECT_TRUE(engine->probe_store());
}

}  // namespace
}  // namespace orch::engine
