// Scheduler hot path: one task from submit to dispatch (take_runnable) and
// back out (finish_attempt), with a queue of `range(0)` tasks already
// waiting behind it, so the cost of the ordered indexes shows.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "engine/scheduler.h"

namespace {

using orch::engine::AttemptOutcome;
using orch::engine::Scheduler;
using orch::engine::TaskId;
using orch::engine::TaskRecord;

constexpr std::int64_t kNow = 1'800'000'000'000;

TaskRecord make_task(std::int64_t seq, int priority) {
  TaskRecord task;
  task.id = "t" + std::to_string(seq);
  task.seq = seq;
  task.spec.command = "true";
  task.spec.priority = priority;
  task.submitted_at_ms = kNow;
  return task;
}

void SubmitToDispatch(benchmark::State& state) {
  const auto backlog = static_cast<std::int64_t>(state.range(0));
  // One free slot above the backlog's: each new top-priority task is taken
  // at once, ahead of every low-priority task queued behind it.
  Scheduler sched(Scheduler::Limits{1, static_cast<std::size_t>(backlog) + 16}, [] { return 0.5; });
  std::int64_t seq = 0;
  for (std::int64_t i = 0; i < backlog; ++i) (void)sched.submit(make_task(++seq, 0), kNow);
  std::vector<TaskId> started;
  AttemptOutcome ok;
  ok.exit_code = 0;
  for (auto _ : state) {
    TaskRecord task = make_task(++seq, 10);
    TaskId id = task.id;
    auto submitted = sched.submit(std::move(task), kNow);
    started.clear();
    auto taken = sched.take_runnable(kNow, started);
    if (!submitted.ok() || started.size() != 1 || started[0] != id) {
      state.SkipWithError("the new task was not dispatched first");
      break;
    }
    auto finished = sched.finish_attempt(id, ok, kNow);
    (void)sched.evict(0, 0, kNow);  // keep the table at its starting size
    benchmark::DoNotOptimize(taken);
    benchmark::DoNotOptimize(finished);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(SubmitToDispatch)->Arg(0)->Arg(1000)->Arg(10000);

}  // namespace

BENCHMARK_MAIN();
