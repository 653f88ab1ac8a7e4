// Task output as resources over a real Engine: URI parsing, windows, the
// list, and update reports when a task writes and ends.
#include "tools/task_resources.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "tests/support/temp_dir.h"
#include "tests/support/test_engine.h"
#include "tests/support/wait_until.h"
#include "tools/tool_registry.h"

namespace orch::tools {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

TEST(TaskResourceUri, ParsesStreamsAndWindows) {
  auto plain = parse_task_uri("task://tabc/stdout");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->task_id, "tabc");
  EXPECT_EQ(plain->stream, engine::StreamKind::Stdout);
  EXPECT_EQ(plain->window.offset, 0u);
  EXPECT_EQ(plain->window.max_bytes, 65536u);
  auto window = parse_task_uri("task://tabc/stderr?offset=10&maxBytes=5");
  ASSERT_TRUE(window);
  EXPECT_EQ(window->stream, engine::StreamKind::Stderr);
  EXPECT_EQ(window->window.offset, 10u);
  EXPECT_EQ(window->window.max_bytes, 5u);
  auto tail = parse_task_uri("task://tabc/stdout?tail=100");
  ASSERT_TRUE(tail);
  EXPECT_TRUE(tail->window.tail);
  EXPECT_EQ(tail->window.max_bytes, 100u);
  for (const char* bad : {"file:///x", "task://tabc", "task:///stdout", "task://tabc/log", "task://tabc/stdout?x=1",
                          "task://tabc/stdout?offset=-1", "task://tabc/stdout?maxBytes=0",
                          "task://tabc/stdout?tail=2000000", "task://tabc/stdout?offset=1&tail=5",
                          "task://tabc/stdout?offset"}) {
    auto r = parse_task_uri(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument) << bad;
  }
}

class TaskResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(engine_ = test::open_engine(dir_.path() / "state"));
    resources_ = std::make_unique<TaskResources>(*engine_);
  }
  void TearDown() override {
    resources_.reset();
    if (engine_) engine_->shutdown(0ms);
  }
  std::string run(const std::string& command) {
    engine::TaskSpec spec;
    spec.command = command;
    auto out = engine_->submit(spec);
    EXPECT_TRUE(out);
    const std::string id = out->view.task.id;
    EXPECT_TRUE(test::wait_until([&] { return engine::is_terminal(engine_->get(id)->task.status); }, 10s));
    return id;
  }
  test::TempDir dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<TaskResources> resources_;
};

TEST_F(TaskResourcesTest, ReadsWindowsOfEitherStream) {
  const std::string id = run("printf 0123456789; printf oops >&2");
  auto all = resources_->read("task://" + id + "/stdout");
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ((*all)[0]["text"], "0123456789");
  EXPECT_EQ((*all)[0]["mimeType"], "text/plain");
  EXPECT_EQ((*all)[0]["_meta"]["totalBytes"], 10);
  EXPECT_EQ((*all)[0]["_meta"]["status"], "completed");
  auto mid = resources_->read("task://" + id + "/stdout?offset=3&maxBytes=4");
  EXPECT_EQ((*mid)[0]["text"], "3456");
  EXPECT_EQ((*mid)[0]["_meta"]["nextOffset"], 7);
  EXPECT_EQ((*mid)[0]["_meta"]["truncated"], true);
  EXPECT_EQ((*resources_->read("task://" + id + "/stdout?tail=2"))[0]["text"], "89");
  EXPECT_EQ((*resources_->read("task://" + id + "/stderr"))[0]["text"], "oops");
  EXPECT_EQ(resources_->read("task://tzzzzzzzzzzzzzzzzzzzzzzzzzz/stdout").error().code, ErrorCode::NotFound);
  EXPECT_TRUE(resources_->check("task://" + id + "/stderr"));
  EXPECT_EQ(resources_->check("task://tzzzzzzzzzzzzzzzzzzzzzzzzzz/stderr").error().code, ErrorCode::NotFound);
}

TEST_F(TaskResourcesTest, ListsBothStreamsOfEachTask) {
  const std::string id = run("echo hi");
  auto page = resources_->list("");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->resources.size(), 2u);
  EXPECT_EQ(page->resources[0]["uri"], "task://" + id + "/stdout");
  EXPECT_EQ(page->resources[0]["size"], 3);
  EXPECT_EQ(page->resources[1]["uri"], "task://" + id + "/stderr");
  EXPECT_EQ(resources_->list("garbage").error().code, ErrorCode::InvalidArgument);
  json templates = resources_->templates();
  ASSERT_EQ(templates.size(), 2u);
  EXPECT_EQ(templates[0]["uriTemplate"], "task://{taskId}/stdout");
  EXPECT_EQ(templates[1]["uriTemplate"], "task://{taskId}/stderr");
}

TEST_F(TaskResourcesTest, ReportsOutputAndTheEnd) {
  std::mutex mu;
  std::set<std::string> updated;
  resources_->on_updated([&](const std::string& uri) {
    std::lock_guard lock(mu);
    updated.insert(uri);
  });
  const std::string id = run("echo hi; sleep 0.2");
  ASSERT_TRUE(test::wait_until([&] {
    std::lock_guard lock(mu);
    return updated.count("task://" + id + "/stdout") && updated.count("task://" + id + "/stderr");
  }, 10s));
  resources_->on_updated({});
}

}  // namespace
}  // namespace orch::tools
