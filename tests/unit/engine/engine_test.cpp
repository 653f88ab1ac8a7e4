#include "engine/engine.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>

#include "engine/worker_pool.h"
#include "tests/support/process_probe.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::engine {
namespace {

using namespace std::chrono_literals;

class EngineTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<Engine> engine;

  void open(int max_concurrent = 4, std::size_t queue = 100) {
    EngineOptions o;
    o.state_dir = dir.path();
    o.max_concurrent = max_concurrent;
    o.queue_size = queue;
    o.kill_grace = 1000ms;
    auto e = Engine::open(o);
    ASSERT_TRUE(e.ok()) << e.error().message;
    engine = std::move(*e);
  }
  TaskId submit(const std::string& command, TaskSpec spec = {}) {
    spec.kind = TaskKind::Command;
    spec.command = command;
    auto r = engine->submit(std::move(spec));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->view.task.id : TaskId{};
  }
  TaskView wait_end(const TaskId& id, std::chrono::seconds limit = 20s) {
    auto v = engine->wait(id, std::chrono::steady_clock::now() + limit, {}, {});
    EXPECT_TRUE(v.ok());
    return *v;
  }
  std::string output(const TaskId& id, StreamKind s = StreamKind::Stdout) {
    auto w = engine->read_output(id, s, ReadRequest{0, 1 << 20, false});
    return w.ok() ? w->data : "<error>";
  }
};

TEST_F(EngineTest, RunsACommandAndKeepsItsOutputAndExitCode) {
  open();
  auto id = submit("echo out; echo err >&2; exit 0");
  auto v = wait_end(id);
  EXPECT_EQ(v.task.status, TaskStatus::Completed);
  EXPECT_EQ(v.task.reason, EndReason::ExitCode);
  EXPECT_EQ(v.task.exit_code, 0);
  EXPECT_EQ(output(id), "out\n");
  EXPECT_EQ(output(id, StreamKind::Stderr), "err\n");
  EXPECT_EQ(v.task.stdout_bytes, 4u);
  EXPECT_GT(v.task.finished_at_ms, 0);
}

// Submits queued with submit_later are nothing until commit_submits stores
// them together; each is then answered as submit() would have answered it.
TEST_F(EngineTest, SubmitsQueuedForOneCommitAreAnsweredEachAsASubmitWould) {
  open(4, 3);
  std::vector<Result<SubmitOutcome>> answers;
  auto later = [&](TaskSpec spec) {
    engine->submit_later(std::move(spec), [&](Result<SubmitOutcome> r) { answers.push_back(std::move(r)); });
  };
  TaskSpec keyed;
  keyed.command = "echo batched";
  keyed.idempotency_key = "once";
  later(keyed);
  later(keyed);  // the same key as the one before it in the batch
  TaskSpec unknown_profile;
  unknown_profile.command = "true";
  unknown_profile.profile = "nope";
  later(unknown_profile);
  TaskSpec plain;
  plain.command = "true";
  later(plain);
  later(plain);
  later(plain);  // the queue holds 3: this one finds it full

  EXPECT_TRUE(answers.empty());
  auto before = engine->list({}, 100, "");
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->tasks.empty());  // nothing is seen before its commit

  engine->commit_submits();
  ASSERT_EQ(answers.size(), 6u);
  ASSERT_TRUE(answers[0].ok()) << answers[0].error().message;
  ASSERT_TRUE(answers[1].ok()) << answers[1].error().message;
  EXPECT_TRUE(answers[1]->deduplicated);
  EXPECT_EQ(answers[1]->view.task.id, answers[0]->view.task.id);
  ASSERT_FALSE(answers[2].ok());
  EXPECT_EQ(answers[2].error().code, ErrorCode::NotFound);
  EXPECT_TRUE(answers[3].ok());
  EXPECT_TRUE(answers[4].ok());
  ASSERT_FALSE(answers[5].ok());
  EXPECT_EQ(answers[5].error().code, ErrorCode::QueueFull);

  EXPECT_EQ(wait_end(answers[0]->view.task.id).task.status, TaskStatus::Completed);
  EXPECT_EQ(output(answers[0]->view.task.id), "batched\n");
  EXPECT_EQ(wait_end(answers[4]->view.task.id).task.status, TaskStatus::Completed);

  // They were stored: a reopened engine has all three.
  engine.reset();
  open();
  auto after = engine->list({}, 100, "");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->tasks.size(), 3u);
}

TEST_F(EngineTest, ShutdownAnswersTheSubmitsStillQueuedForACommit) {
  open();
  std::optional<Result<SubmitOutcome>> answer;
  TaskSpec spec;
  spec.command = "true";
  engine->submit_later(spec, [&](Result<SubmitOutcome> r) { answer = std::move(r); });
  engine->shutdown(std::chrono::milliseconds(0));
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->ok()) << answer->error().message;
  engine.reset();
  open();
  EXPECT_TRUE(engine->get(answer->value().view.task.id).ok());
}

// The store refuses one insert of a batch (a trigger in the real file): that
// submit, and a later one naming it by idempotency key, get the store's
// reason; the rest are stored and run.
TEST_F(EngineTest, ASubmitTheStoreRefusesInABatchFailsAloneWithTheStoresReason) {
  open();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path() / "tasks.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db,
                                "CREATE TRIGGER refuse BEFORE INSERT ON tasks WHEN NEW.name = 'refused' "
                                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
                                nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  std::vector<Result<SubmitOutcome>> answers;
  auto later = [&](const std::string& name, const std::string& key) {
    TaskSpec spec;
    spec.command = "true";
    spec.name = name;
    spec.idempotency_key = key;
    engine->submit_later(std::move(spec), [&](Result<SubmitOutcome> r) { answers.push_back(std::move(r)); });
  };
  later("first", "");
  later("refused", "k");
  later("again", "k");  // the refused one's key
  later("last", "");
  engine->commit_submits();
  ASSERT_EQ(answers.size(), 4u);
  ASSERT_TRUE(answers[0].ok()) << answers[0].error().message;
  ASSERT_TRUE(answers[3].ok()) << answers[3].error().message;
  for (std::size_t i : {1u, 2u}) {
    ASSERT_FALSE(answers[i].ok());
    EXPECT_EQ(answers[i].error().code, ErrorCode::Unavailable);
    EXPECT_NE(answers[i].error().message.find("refused by the test"), std::string::npos)
        << answers[i].error().message;
  }
  EXPECT_EQ(wait_end(answers[0]->view.task.id).task.status, TaskStatus::Completed);
  EXPECT_EQ(wait_end(answers[3]->view.task.id).task.status, TaskStatus::Completed);
  auto listed = engine->list({}, 100, "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->tasks.size(), 2u);
  engine.reset();
  open();
  auto reopened = engine->list({}, 100, "");
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->tasks.size(), 2u);
}

TEST_F(EngineTest, AnAnswerThatThrowsDoesNotCostTheOtherSubmitsTheirs) {
  open();
  TaskSpec spec;
  spec.command = "true";
  bool second_answered = false;
  engine->submit_later(spec, [](Result<SubmitOutcome>) { throw std::runtime_error("the reply could not be sent"); });
  engine->submit_later(spec, [&](Result<SubmitOutcome> r) { second_answered = r.ok(); });
  EXPECT_NO_THROW(engine->commit_submits());
  EXPECT_TRUE(second_answered);
}

// An end starts the next task itself; a retry's backoff is the dispatcher's,
// which must hear of it then rather than at its next tick (a second).
TEST_F(EngineTest, ARetryStartsWhenItsBackoffEndsNotAtTheNextTick) {
  open();
  TaskSpec spec;
  spec.retry = RetryPolicy{2, Backoff::Fixed, 100, 100};
  const auto t0 = std::chrono::steady_clock::now();
  auto id = submit("exit 3", spec);
  auto v = wait_end(id);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(v.task.status, TaskStatus::Failed);
  EXPECT_EQ(v.task.attempt, 2);
  EXPECT_LT(took, 700ms) << "the retry waited for the dispatcher's tick";
}

TEST_F(EngineTest, NonZeroExitFailsWithTheRealCode) {
  open();
  auto v = wait_end(submit("exit 3"));
  EXPECT_EQ(v.task.status, TaskStatus::Failed);
  EXPECT_EQ(v.task.reason, EndReason::ExitCode);
  EXPECT_EQ(v.task.exit_code, 3);
}

TEST_F(EngineTest, ArgvEnvCwdAndStdinReachTheProcess) {
  open();
  TaskSpec spec;
  spec.kind = TaskKind::Argv;
  spec.argv = {"sh", "-c", "printf '%s|%s|' \"$GREETING\" \"$(pwd)\"; cat"};
  spec.env = {{"GREETING", "hello"}};
  spec.cwd = dir.path().string();
  spec.stdin_data = "from stdin";
  auto r = engine->submit(spec);
  ASSERT_TRUE(r.ok());
  auto v = wait_end(r->view.task.id);
  EXPECT_EQ(v.task.status, TaskStatus::Completed);
  EXPECT_EQ(output(r->view.task.id), "hello|" + dir.path().string() + "|from stdin");
}

TEST_F(EngineTest, SpawnErrorsFailWithAReason) {
  open();
  TaskSpec spec;
  spec.kind = TaskKind::Argv;
  spec.argv = {"definitely-not-a-command-xyz"};
  auto r = engine->submit(spec);
  ASSERT_TRUE(r.ok());
  auto v = wait_end(r->view.task.id);
  EXPECT_EQ(v.task.status, TaskStatus::Failed);
  EXPECT_EQ(v.task.reason, EndReason::SpawnError);
  EXPECT_NE(v.task.message.find("definitely-not-a-command-xyz"), std::string::npos);
  EXPECT_EQ(engine->stats().spawn_errors, 1);
}

TEST_F(EngineTest, TimeoutKillsTheGroupAndIsNeverCompleted) {
  open();
  TaskSpec spec;
  spec.timeout_ms = 300;
  auto id = submit("sleep 300 & echo $!; wait", spec);
  auto v = wait_end(id);
  EXPECT_EQ(v.task.status, TaskStatus::Failed);
  EXPECT_EQ(v.task.reason, EndReason::Timeout);
  pid_t grandchild = std::stoi(output(id));
  EXPECT_TRUE(test::wait_until([&] { return !test::process_alive(grandchild); }));
}

TEST_F(EngineTest, CancelStopsARunningTaskAndItEndsCancelled) {
  open();
  auto id = submit("echo started; sleep 300");
  ASSERT_TRUE(test::wait_until([&] { return output(id) == "started\n"; }));
  auto c = engine->cancel(id);
  ASSERT_TRUE(c.ok());
  auto v = wait_end(id);
  EXPECT_EQ(v.task.status, TaskStatus::Cancelled);
  EXPECT_EQ(v.task.reason, EndReason::Cancelled);
  auto again = engine->cancel(id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::Conflict);
}

TEST_F(EngineTest, CancelAllSkipsTasksAlreadyBeingStopped) {
  open();
  auto id = submit("trap '' TERM; echo started; sleep 300");
  ASSERT_TRUE(test::wait_until([&] { return output(id) == "started\n"; }));
  EXPECT_EQ(engine->cancel_all(""), std::vector<TaskId>{id});
  EXPECT_TRUE(engine->cancel_all("").empty()) << "still dying, already cancelled";
  EXPECT_EQ(wait_end(id).task.status, TaskStatus::Cancelled);
}

TEST_F(EngineTest, WaitReturnsAsSoonAsTheTaskEndsAndReportsProgress) {
  open();
  auto id = submit("echo '::progress 1/2 half'; sleep 0.2; echo '::progress 2/2 done'; sleep 0.2");
  std::vector<Progress> seen;
  auto start = std::chrono::steady_clock::now();
  auto v = engine->wait(id, start + 30s, {}, [&](const TaskView& t) {
    if (t.task.progress) seen.push_back(*t.task.progress);
  });
  ASSERT_TRUE(v.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(v->task.status, TaskStatus::Completed);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().total, 2.0);
}

TEST_F(EngineTest, WaitEndsAtItsDeadlineOrWhenStopped) {
  open();
  auto id = submit("sleep 300");
  auto v = engine->wait(id, std::chrono::steady_clock::now() + 50ms, {}, {});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(is_terminal(v->task.status));
  std::stop_source stop;
  stop.request_stop();
  auto s = engine->wait(id, std::chrono::steady_clock::now() + 30s, stop.get_token(), {});
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(is_terminal(s->task.status));
}

TEST_F(EngineTest, MaxConcurrentBoundsRunningProcesses) {
  open(2);
  std::vector<TaskId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(submit("sleep 0.2"));
  int peak = 0;
  for (const auto& id : ids) {
    while (true) {
      peak = std::max(peak, engine->stats().running);
      auto v = engine->get(id);
      if (v.ok() && is_terminal(v->task.status)) break;
      std::this_thread::sleep_for(5ms);  // sampling the gauge, not synchronising
    }
  }
  EXPECT_LE(peak, 2);
  for (const auto& id : ids) EXPECT_EQ(engine->get(id)->task.status, TaskStatus::Completed);
}

TEST_F(EngineTest, TasksSurviveAReopenAndQueuedOnesRunAfterIt) {
  open(1);
  auto done = submit("echo kept");
  wait_end(done);
  auto blocker = submit("sleep 300");
  auto queued = submit("echo later");
  ASSERT_TRUE(test::wait_until([&] { return engine->get(blocker)->task.status == TaskStatus::Running; }));
  engine.reset();  // the blocker is stopped by the shutdown; the queued task stays queued
  open(1);
  EXPECT_EQ(engine->get(done)->task.status, TaskStatus::Completed);
  EXPECT_EQ(output(done), "kept\n");
  EXPECT_EQ(engine->get(blocker)->task.status, TaskStatus::Cancelled);
  auto v = wait_end(queued);
  EXPECT_EQ(v.task.status, TaskStatus::Completed);
  EXPECT_EQ(output(queued), "later\n");
}

TEST_F(EngineTest, ASecondEngineOnTheSameStateDirectoryIsRefused) {
  open();
  EngineOptions o;
  o.state_dir = dir.path();
  auto second = Engine::open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::Unavailable);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos);
}

TEST_F(EngineTest, ListsNewestFirstWithACursor) {
  open();
  std::vector<TaskId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(submit("true"));
  auto first = engine->list({}, 2, "");
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->tasks.size(), 2u);
  EXPECT_EQ(first->tasks[0].task.id, ids[4]);
  ASSERT_TRUE(first->next_cursor);
  auto second = engine->list({}, 10, *first->next_cursor);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->tasks.size(), 3u);
  EXPECT_EQ(second->tasks[2].task.id, ids[0]);
  EXPECT_FALSE(second->next_cursor);
  EXPECT_FALSE(engine->list({}, 10, "garbage").ok());
}

TEST_F(EngineTest, IdempotencyKeyReturnsTheFirstTask) {
  open();
  TaskSpec spec;
  spec.idempotency_key = "k1";
  auto a = submit("true", spec);
  spec.command = "false";
  auto again = engine->submit(spec);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(again->view.task.id, a);
}

// Restart in place, within one process: the first engine hands its running
// task over, a second one on the same state directory takes it and reports
// its real end; queued tasks stay queued and run after.
TEST_F(EngineTest, AHandedOverTaskKeepsRunningInTheNextEngine) {
  open(1);
  const std::string fifo = (dir.path() / "go").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto running = submit("echo before; echo '::progress 1/2 half'; read x < " + fifo + "; echo after; exit 9");
  auto queued = submit("echo queued");
  ASSERT_TRUE(test::wait_until([&] {
    auto v = engine->get(running);
    return v->task.progress && v->task.progress->current == 1;
  }));
  engine->begin_drain();
  EXPECT_TRUE(engine->draining());
  // A long wait answers at once while draining.
  auto t0 = std::chrono::steady_clock::now();
  auto waited = engine->wait(running, t0 + 30s, {}, {});
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->task.status, TaskStatus::Running);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  // A watcher following the change feed is not cut short: it waits for news
  // (the task is blocked on the fifo, so none comes) instead of spinning.
  const std::uint64_t cursor = engine->changes_since(0, t0, {}).cursor;
  const auto t1 = std::chrono::steady_clock::now();
  TaskChanges none = engine->changes_since(cursor, t1 + 100ms, {}, OnDrain::KeepWaiting);
  EXPECT_TRUE(none.changed.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - t1, 100ms);
  std::vector<RunningProcess> handed = engine->hand_over();
  ASSERT_EQ(handed.size(), 1u);
  EXPECT_FALSE(engine->probe_store().ok()) << "the store is closed";
  engine.reset();  // stops nothing: the process is the next engine's

  { std::ofstream(fifo) << "go\n"; }
  EngineOptions o;
  o.state_dir = dir.path();
  o.max_concurrent = 1;
  o.handed_over = std::move(handed);
  auto e = Engine::open(std::move(o));
  ASSERT_TRUE(e.ok()) << e.error().message;
  engine = std::move(*e);
  auto v = engine->get(running);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->task.status == TaskStatus::Running || v->task.status == TaskStatus::Failed);
  ASSERT_TRUE(v->task.progress.has_value()) << "progress was saved for the next image";
  TaskView ended = wait_end(running);
  EXPECT_EQ(ended.task.status, TaskStatus::Failed);
  EXPECT_EQ(ended.task.reason, EndReason::ExitCode);
  EXPECT_EQ(ended.task.exit_code, 9);
  EXPECT_EQ(ended.task.attempt, 1) << "the same attempt, not a retry";
  EXPECT_EQ(output(running), "before\n::progress 1/2 half\nafter\n");
  auto q = wait_end(queued);
  EXPECT_EQ(q.task.status, TaskStatus::Completed);
  EXPECT_EQ(output(queued), "queued\n");
}

// A cancel under way when the engine hands over goes on in the next one: the
// task, which ignores SIGTERM, is killed after the grace and ends cancelled.
TEST_F(EngineTest, ACancelUnderWayIsFinishedByTheNextEngine) {
  open(1);
  auto stubborn = submit("trap '' TERM; echo ready; while :; do sleep 0.05; done");
  ASSERT_TRUE(test::wait_until([&] { return output(stubborn) == "ready\n"; }));
  ASSERT_TRUE(engine->cancel(stubborn).ok());
  std::vector<RunningProcess> handed = engine->hand_over();
  ASSERT_EQ(handed.size(), 1u);
  EXPECT_TRUE(handed[0].stop_requested);
  engine.reset();
  EngineOptions o;
  o.state_dir = dir.path();
  o.kill_grace = 500ms;
  o.handed_over = std::move(handed);
  auto e = Engine::open(std::move(o));
  ASSERT_TRUE(e.ok()) << e.error().message;
  engine = std::move(*e);
  TaskView v = wait_end(stubborn);
  EXPECT_EQ(v.task.status, TaskStatus::Cancelled);
}

}  // namespace
}  // namespace orch::engine
