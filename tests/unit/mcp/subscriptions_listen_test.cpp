// subscriptions/listen (MCP-NOTES §5b): one test per rule of the stream, over
// in-memory providers and the era's own entry point.
#include "mcp/subscriptions_listen.h"

#include <gtest/gtest.h>

#include "mcp/modern_era.h"
#include "tests/support/mcp_doubles.h"

namespace orch::mcp {
namespace {

using nlohmann::json;

class Tools final : public ToolProvider {
 public:
  json list_tools() const override { return json::array(); }
  std::optional<json> call_tool(const std::string&, const json&, ToolCallContext&) override { return std::nullopt; }
};

// One task, tk1, owned by "ctx"; watch() keeps the listeners to fire by hand.
class Tasks final : public TaskProvider {
 public:
  Result<NativeTask> create(const std::string&, const std::string&, const json&, std::optional<std::int64_t>,
                            NativeTaskListener) override {
    return make_error(ErrorCode::NotFound, "no tools");
  }
  Result<NativeTask> get(const std::string& owner, const std::string& id) override {
    if (owner != "ctx" || id != task.id) return make_error(ErrorCode::NotFound, "unknown task");
    return task;
  }
  Result<json> result(const std::string&, const std::string&, std::stop_token) override { return json::object(); }
  Result<std::optional<json>> result_if_done(const std::string&, const std::string&) override {
    return std::optional<json>();
  }
  Result<NativeTaskPage> list(const std::string&, const std::string&) override { return NativeTaskPage{}; }
  Result<NativeTask> cancel(const std::string&, const std::string&) override { return task; }
  Result<NativeTask> watch(const std::string& owner, const std::string& id, NativeTaskListener l) override {
    auto got = get(owner, id);
    if (got) listeners.push_back(std::move(l));
    return got;
  }
  void change(NativeTaskStatus status) {
    task.status = status;
    for (auto& l : listeners) l(task);
  }

  NativeTask task = [] {
    NativeTask t;
    t.id = "tk1";
    return t;
  }();
  std::vector<NativeTaskListener> listeners;
};

class Resources final : public ResourceProvider {
 public:
  Result<ResourcePage> list(const std::string&) override { return ResourcePage{}; }
  json templates() override { return json::array(); }
  Result<json> read(const std::string&) override { return json::array(); }
  Status check(const std::string& uri) override {
    if (uri.rfind("task://", 0) == 0) return {};
    return make_error(ErrorCode::NotFound, "no such resource");
  }
  void on_updated(ResourceUpdated callback) override { updated = std::move(callback); }
  ResourceUpdated updated;
};

json meta(bool tasks) {
  json caps = json::object();
  if (tasks) caps["extensions"] = {{kTasksExtension, json::object()}};
  return {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
          {"io.modelcontextprotocol/clientCapabilities", caps}};
}

// What the stream holds so far, parsed back from its SSE events.
std::vector<json> drain(transport::EventStream& stream) {
  std::vector<json> out;
  std::string chunk;
  while (stream.pull(chunk, std::chrono::milliseconds(0)) == transport::EventSource::Pull::Chunk) {
    const std::string prefix = "event: message\ndata: ";
    EXPECT_EQ(chunk.rfind(prefix, 0), 0u) << chunk;
    out.push_back(json::parse(chunk.substr(prefix.size())));
  }
  return out;
}

struct Fixture {
  Tools tools;
  Tasks tasks;
  Resources resources;
  test::ThreadPerJob pool;
  Server server{ServerInfo{"orch", "Orch", "9.9", ""}, tools, pool.executor()};
  std::unique_ptr<ListenHub> hub;
  std::unique_ptr<ModernEra> era;
  explicit Fixture(std::size_t max_listeners = 4) {
    server.serve_tasks(tasks);
    server.serve_resources(resources);
    hub = std::make_unique<ListenHub>(server, ListenOptions{max_listeners, 1 << 20});
    era = std::make_unique<ModernEra>(server, "ctx", hub.get());
  }
  ModernReply listen(json notifications, bool tasks_ext = true, json id = 7) {
    return era->handle(Request{std::move(id), "subscriptions/listen",
                               {{"_meta", meta(tasks_ext)}, {"notifications", std::move(notifications)}}},
                       nullptr);
  }
};

json sub_id(const json& m) { return m["params"]["_meta"][kSubscriptionIdMeta]; }

TEST(SubscriptionsListen, TheAcknowledgementComesFirstWithOnlyWhatWeDeliver) {
  Fixture f;
  ModernReply r = f.listen({{"toolsListChanged", true},
                            {"promptsListChanged", true},
                            {"resourcesListChanged", true},
                            {"resourceSubscriptions", {"task://tk1/stdout", "file:///etc/passwd"}},
                            {"taskIds", {"tk1", "someone-elses"}}});
  ASSERT_TRUE(r.stream);
  auto events = drain(*r.stream);
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0]["method"], "notifications/subscriptions/acknowledged");
  EXPECT_EQ(events[0]["params"]["notifications"],
            json({{"resourceSubscriptions", {"task://tk1/stdout"}}, {"taskIds", {"tk1"}}}));
  EXPECT_EQ(sub_id(events[0]), 7);
}

TEST(SubscriptionsListen, AnAcceptedTaskIsReportedAsItIsNowThenOnEachChange) {
  Fixture f;
  ModernReply r = f.listen({{"taskIds", {"tk1"}}}, true, "L1");
  ASSERT_TRUE(r.stream);
  auto events = drain(*r.stream);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["method"], "notifications/tasks");
  EXPECT_EQ(events[1]["params"]["taskId"], "tk1");
  EXPECT_EQ(events[1]["params"]["status"], "working");
  f.tasks.change(NativeTaskStatus::Completed);
  events = drain(*r.stream);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["method"], "notifications/tasks");
  EXPECT_EQ(events[0]["params"]["status"], "completed");
  EXPECT_EQ(sub_id(events[0]), "L1");
}

TEST(SubscriptionsListen, ResourceUpdatesCarryTheSubscriptionId) {
  Fixture f;
  ModernReply r = f.listen({{"resourceSubscriptions", {"task://tk1/stdout"}}});
  ASSERT_TRUE(r.stream);
  drain(*r.stream);
  f.resources.updated("task://tk1/stderr");  // not asked for
  f.resources.updated("task://tk1/stdout");
  auto events = drain(*r.stream);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["method"], "notifications/resources/updated");
  EXPECT_EQ(events[0]["params"]["uri"], "task://tk1/stdout");
  EXPECT_EQ(sub_id(events[0]), 7);
}

TEST(SubscriptionsListen, TaskIdsNeedTheTasksExtension) {
  Fixture f;
  ModernReply r = f.listen({{"taskIds", {"tk1"}}}, false);
  ASSERT_TRUE(r.stream);
  auto events = drain(*r.stream);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["params"]["notifications"], json::object());
  EXPECT_TRUE(f.tasks.listeners.empty());
}

TEST(SubscriptionsListen, ClosingTheStreamEndsTheSubscription) {
  Fixture f;
  ModernReply r = f.listen({{"resourceSubscriptions", {"task://tk1/stdout"}}, {"taskIds", {"tk1"}}});
  ASSERT_TRUE(r.stream);
  EXPECT_EQ(f.hub->count(), 1u);
  EXPECT_EQ(f.server.subscriptions().count("task://tk1/stdout"), 1u);
  r.stream->mark_gone();  // the client closed it: cancellation
  EXPECT_EQ(f.hub->count(), 0u);
  EXPECT_EQ(f.server.subscriptions().count("task://tk1/stdout"), 0u);
  f.tasks.change(NativeTaskStatus::Completed);  // its watcher sends nothing, and nothing breaks
}

TEST(SubscriptionsListen, TeardownSendsCancelledForTheListenRequest) {
  Fixture f;
  ModernReply r = f.listen({{"resourceSubscriptions", {"task://tk1/stdout"}}});
  ASSERT_TRUE(r.stream);
  drain(*r.stream);
  f.hub->close_all(true);
  auto events = drain(*r.stream);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["method"], "notifications/cancelled");
  EXPECT_EQ(events[0]["params"]["requestId"], 7);
  EXPECT_EQ(sub_id(events[0]), 7);
  std::string chunk;
  EXPECT_EQ(r.stream->pull(chunk, std::chrono::milliseconds(0)), transport::EventSource::Pull::End);
  EXPECT_EQ(f.listen({{"taskIds", {"tk1"}}}).http_status, 503);
}

TEST(SubscriptionsListen, ListenersAreBoundedSoTheyCannotTakeEveryThread) {
  Fixture f(1);
  ModernReply first = f.listen({{"taskIds", {"tk1"}}});
  ASSERT_TRUE(first.stream);
  ModernReply second = f.listen({{"taskIds", {"tk1"}}}, true, 8);
  EXPECT_FALSE(second.stream);
  EXPECT_EQ(second.http_status, 503);
  EXPECT_EQ(second.message["id"], 8);
  first.stream->mark_gone();
  EXPECT_TRUE(f.listen({{"taskIds", {"tk1"}}}, true, 9).stream);
}

TEST(SubscriptionsListen, AFilterThatIsNotOneIsInvalidParams) {
  Fixture f;
  EXPECT_EQ(f.listen("all").message["error"]["code"], kInvalidParams);
  EXPECT_EQ(f.listen({{"taskIds", "tk1"}}).message["error"]["code"], kInvalidParams);
  EXPECT_EQ(f.hub->count(), 0u);
}

TEST(SubscriptionsListen, DiscoverAdvertisesItOnlyWhereItIsServed) {
  Fixture f;
  auto discover = [](ModernEra& era) {
    return era.handle(Request{json(1), "server/discover", {{"_meta", meta(false)}}}, nullptr).message["result"];
  };
  EXPECT_EQ(discover(*f.era)["capabilities"]["resources"]["subscribe"], true);
  ModernEra without(f.server, "ctx");
  EXPECT_EQ(discover(without)["capabilities"]["resources"]["subscribe"], false);
  ModernReply r = without.handle(
      Request{json(2), "subscriptions/listen", {{"_meta", meta(false)}, {"notifications", json::object()}}}, nullptr);
  EXPECT_EQ(r.http_status, 404);
  EXPECT_EQ(r.message["error"]["code"], kMethodNotFound);
}

}  // namespace
}  // namespace orch::mcp
