// NativeTasks over a real Engine (temp state dir, real /bin/sh tasks): a
// native task is the engine task, bound to its owner, with MCP's status
// mapping, cancellation, ttl and status notifications.
#include "tools/native_tasks.h"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <vector>

#include "engine/engine.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::tools {
namespace {

using namespace std::chrono_literals;
using mcp::NativeTask;
using mcp::NativeTaskStatus;

class NativeTasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::EngineOptions options;
    options.state_dir = dir_.path() / "state";
    options.kill_grace = 2000ms;
    auto opened = engine::Engine::open(options);
    ASSERT_TRUE(opened) << opened.error().message;
    engine_ = std::move(opened.value());
    registry_ = std::make_unique<ToolRegistry>(*engine_);
    NativeTaskOptions o;
    o.list_page = 2;
    o.poll_interval = 500ms;
    tasks_ = std::make_unique<NativeTasks>(*engine_, *registry_, o);
  }
  void TearDown() override {
    tasks_.reset();
    registry_.reset();
    if (engine_) engine_->shutdown(0ms);
  }

  NativeTask create(const std::string& owner, const json& args, mcp::NativeTaskListener listener = {},
                    std::optional<std::int64_t> ttl = std::nullopt, const std::string& tool = "runTask") {
    auto made = tasks_->create(owner, tool, args, ttl, std::move(listener));
    EXPECT_TRUE(made) << made.error().message;
    return made ? *made : NativeTask{};
  }

  test::TempDir dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<ToolRegistry> registry_;
  std::unique_ptr<NativeTasks> tasks_;
};

TEST_F(NativeTasksTest, ANativeTaskIsTheEngineTask) {
  // Held until the gate file exists, so that it is still working when looked at.
  const std::string gate = (dir_.path() / "gate").string();
  NativeTask t = create("a",
                        {{"command", "while [ ! -e '" + gate + "' ]; do sleep 0.01; done; echo out; echo err >&2"},
                         {"name", "native-1"}},
                        {}, 60000);
  EXPECT_TRUE(engine::looks_like_task_id(t.id));
  EXPECT_EQ(t.status, NativeTaskStatus::Working);
  EXPECT_EQ(t.ttl_ms, 60000);
  EXPECT_EQ(t.poll_interval_ms, 500);
  EXPECT_GT(t.created_at_ms, 0);
  auto view = engine_->get(t.id);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->task.spec.name, "native-1");
  std::ofstream(gate).put('\n');

  auto result = tasks_->result("a", t.id, {});
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_FALSE(result->value("isError", false));
  EXPECT_EQ(result->at("structuredContent").at("status"), "completed");
  EXPECT_EQ(result->at("structuredContent").at("stdout").at("text"), "out\n");
  EXPECT_EQ(result->at("structuredContent").at("stderr").at("text"), "err\n");
  auto got = tasks_->get("a", t.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, NativeTaskStatus::Completed);
  EXPECT_GE(got->last_updated_at_ms, got->created_at_ms);
  auto done = tasks_->result_if_done("a", t.id);
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->has_value());
}

TEST_F(NativeTasksTest, AFailedCommandIsAFailedTaskWithAnErrorResult) {
  NativeTask t = create("a", {{"command", "exit 4"}}, {}, std::nullopt, "submitTask");
  auto result = tasks_->result("a", t.id, {});
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->value("isError", false));
  EXPECT_EQ(result->at("structuredContent").at("exitCode"), 4);
  EXPECT_EQ(tasks_->get("a", t.id)->status, NativeTaskStatus::Failed);
  EXPECT_EQ(tasks_->get("a", t.id)->status_message, "exited with code 4");
}

TEST_F(NativeTasksTest, OtherOwnersSeeNothing) {
  NativeTask t = create("a", {{"command", "true"}});
  EXPECT_EQ(tasks_->get("b", t.id).error().code, ErrorCode::NotFound);
  EXPECT_EQ(tasks_->cancel("b", t.id).error().code, ErrorCode::NotFound);
  EXPECT_EQ(tasks_->result("b", t.id, {}).error().code, ErrorCode::NotFound);
  EXPECT_TRUE(tasks_->list("b", "")->tasks.empty());
  EXPECT_EQ(tasks_->list("a", "")->tasks.size(), 1u);
  // The same wording as a made-up id: the error is no oracle for ids.
  auto foreign = tasks_->get("b", t.id).error().message;
  auto made_up = tasks_->get("b", "tzzzzzzzzzzzzzzzzzzzzzzzzzz").error().message;
  EXPECT_EQ(foreign.substr(0, 15), made_up.substr(0, 15));
}

TEST_F(NativeTasksTest, AnIdempotencyKeyCannotReachAnotherOwnersTask) {
  create("a", {{"command", "true"}, {"idempotencyKey", "k1"}});
  auto again = tasks_->create("b", "runTask", {{"command", "true"}, {"idempotencyKey", "k1"}}, std::nullopt, {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::InvalidArgument);
}

TEST_F(NativeTasksTest, BadArgumentsAndUnknownToolsStartNothing) {
  auto bad = tasks_->create("a", "runTask", {{"command", "true"}, {"priority", 5.7}}, std::nullopt, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(bad.error().message.find("priority"), std::string::npos);
  EXPECT_EQ(tasks_->create("a", "noSuchTool", json::object(), std::nullopt, {}).error().code, ErrorCode::NotFound);
  EXPECT_EQ(tasks_->create("a", "getStatus", json::object(), std::nullopt, {}).error().code,
            ErrorCode::InvalidArgument);
  EXPECT_TRUE(engine_->list({}, 10, "")->tasks.empty());
}

TEST_F(NativeTasksTest, CancelIsImmediateAndFinal) {
  NativeTask t = create("a", {{"command", "sleep 30"}});
  ASSERT_TRUE(test::wait_until([&] { return engine_->get(t.id)->task.status == engine::TaskStatus::Running; }, 10s));
  auto cancelled = tasks_->cancel("a", t.id);
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  EXPECT_EQ(cancelled->status, NativeTaskStatus::Cancelled);
  EXPECT_EQ(tasks_->get("a", t.id)->status, NativeTaskStatus::Cancelled);
  EXPECT_EQ(tasks_->cancel("a", t.id).error().code, ErrorCode::Conflict);
  ASSERT_TRUE(test::wait_until([&] { return engine_->get(t.id)->task.status == engine::TaskStatus::Cancelled; }, 10s));
  auto result = tasks_->result("a", t.id, {});
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->value("isError", false));
  EXPECT_EQ(tasks_->get("a", t.id)->status, NativeTaskStatus::Cancelled);
}

TEST_F(NativeTasksTest, ListenersHearTheEnd) {
  std::mutex mu;
  std::vector<NativeTask> heard;
  NativeTask t = create("a", {{"command", "sleep 0.2"}}, [&](const NativeTask& changed) {
    std::lock_guard lock(mu);
    heard.push_back(changed);
  });
  ASSERT_TRUE(test::wait_until([&] {
    std::lock_guard lock(mu);
    return !heard.empty();
  }, 10s));
  std::lock_guard lock(mu);
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].id, t.id);
  EXPECT_EQ(heard[0].status, NativeTaskStatus::Completed);
}

TEST_F(NativeTasksTest, WatchersOfTheOwnerHearTheEndBesideTheCreator) {
  const auto go = dir_.path() / "go";
  NativeTask t = create("a", {{"command", "until [ -e '" + go.string() + "' ]; do sleep 0.02; done"}});
  EXPECT_FALSE(tasks_->watch("b", t.id, [](const NativeTask&) {}));  // another owner's id is unknown
  std::mutex mu;
  std::vector<NativeTask> heard;
  auto record = [&](const NativeTask& changed) {
    std::lock_guard lock(mu);
    heard.push_back(changed);
  };
  auto now = tasks_->watch("a", t.id, record);
  ASSERT_TRUE(now) << now.error().message;
  EXPECT_EQ(now->status, NativeTaskStatus::Working);
  ASSERT_TRUE(tasks_->watch("a", t.id, record));
  std::ofstream(go).put('\n');
  ASSERT_TRUE(test::wait_until([&] {
    std::lock_guard lock(mu);
    return heard.size() == 2;
  }, 10s));
  std::lock_guard lock(mu);
  for (const NativeTask& h : heard) EXPECT_EQ(h.status, NativeTaskStatus::Completed);
  // An ended task can still be watched: the answer is its end.
  auto ended = tasks_->watch("a", t.id, record);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->status, NativeTaskStatus::Completed);
}

TEST_F(NativeTasksTest, TheTtlEndsTheBindingNotTheEngineTask) {
  NativeTask t = create("a", {{"command", "true"}}, {}, 1);
  EXPECT_EQ(t.ttl_ms, 1);
  ASSERT_TRUE(test::wait_until([&] { return !tasks_->get("a", t.id); }, 10s));
  EXPECT_EQ(tasks_->get("a", t.id).error().code, ErrorCode::NotFound);
  EXPECT_TRUE(engine_->get(t.id));
  // A ttl beyond the maximum is shortened; none asked gets the default.
  EXPECT_EQ(create("a", {{"command", "true"}}, {}, std::int64_t{1} << 50).ttl_ms,
            NativeTaskOptions{}.max_ttl.count());
  EXPECT_EQ(create("a", {{"command", "true"}}).ttl_ms, NativeTaskOptions{}.default_ttl.count());
}

TEST_F(NativeTasksTest, ListPagesNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(create("a", {{"command", "true"}}).id);
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = tasks_->list("a", cursor);
    ASSERT_TRUE(page) << page.error().message;
    EXPECT_LE(page->tasks.size(), 2u);
    for (const NativeTask& t : page->tasks) seen.push_back(t.id);
    cursor = page->next_cursor.value_or("");
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
  for (const char* bad : {"x", "n", "n12z", "12"}) {
    EXPECT_EQ(tasks_->list("a", bad).error().code, ErrorCode::InvalidArgument) << bad;
  }
}

TEST_F(NativeTasksTest, ResultStopsWhenAsked) {
  NativeTask t = create("a", {{"command", "sleep 30"}});
  std::stop_source stop;
  stop.request_stop();
  auto r = tasks_->result("a", t.id, stop.get_token());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Unavailable);
}

}  // namespace
}  // namespace orch::tools
