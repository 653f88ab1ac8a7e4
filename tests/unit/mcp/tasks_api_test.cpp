// Native tasks in the 2025-11-25 era through a real Session: the capability,
// execution.taskSupport rules, CreateTaskResult, tasks/get|result|list|cancel,
// notifications/tasks/status and the error code of each bad request
// (MCP-NOTES §9a). The TaskProvider is an in-memory one: the engine-backed
// provider has its own tests (tests/unit/tools/native_tasks_test.cpp).
#include "mcp/tasks_api.h"

#include <condition_variable>
#include <map>
#include <mutex>

#include <gtest/gtest.h>

#include "mcp/server.h"
#include "tests/support/mcp_doubles.h"
#include "tests/support/wait_until.h"

namespace orch::mcp {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::ThreadPerJob;
using test::Wire;

class Tools final : public ToolProvider {
 public:
  json list_tools() const override {
    return json::array({
        {{"name", "quick"}, {"description", "Answers at once"}, {"inputSchema", {{"type", "object"}}}},
        {{"name", "either"}, {"description", "Optional task"}, {"inputSchema", {{"type", "object"}}},
         {"execution", {{"taskSupport", "optional"}}}},
        {{"name", "only"}, {"description", "Required task"}, {"inputSchema", {{"type", "object"}}},
         {"execution", {{"taskSupport", "required"}}}},
    });
  }
  std::optional<json> call_tool(const std::string& name, const json&, ToolCallContext&) override {
    if (name == "quick" || name == "either" || name == "only") {
      return json{{"content", json::array({{{"type", "text"}, {"text", "direct " + name}}})}};
    }
    return std::nullopt;
  }
};

// Tasks in memory; finish() ends one and tells its listener.
class FakeTasks final : public TaskProvider {
 public:
  Result<NativeTask> create(const std::string& owner, const std::string& tool, const json& arguments,
                            std::optional<std::int64_t> ttl_ms, NativeTaskListener listener) override {
    if (tool == "missing") return make_error(ErrorCode::NotFound, "no tool");
    if (arguments.contains("bad")) return make_error(ErrorCode::InvalidArgument, "bad: fix the arguments");
    std::lock_guard lock(mu_);
    NativeTask t;
    t.id = "task-" + std::to_string(tasks_.size() + 1);
    t.created_at_ms = t.last_updated_at_ms = 1700000000000;
    t.ttl_ms = ttl_ms.value_or(1000);
    t.poll_interval_ms = 250;
    last_owner_ = owner;
    tasks_[t.id] = Entry{owner, t, std::move(listener)};
    return t;
  }
  Result<NativeTask> get(const std::string& owner, const std::string& id) override {
    std::lock_guard lock(mu_);
    auto e = find(owner, id);
    if (!e) return make_error(ErrorCode::NotFound, "unknown task " + id);
    return e->task;
  }
  Result<json> result(const std::string& owner, const std::string& id, std::stop_token stop) override {
    std::unique_lock lock(mu_);
    if (!find(owner, id)) return make_error(ErrorCode::NotFound, "unknown task " + id);
    if (!cv_.wait(lock, stop, [&] { return is_terminal(find(owner, id)->task.status); })) {
      return make_error(ErrorCode::Unavailable, "stopped");
    }
    return json{{"content", json::array({{{"type", "text"}, {"text", "done " + id}}})}};
  }
  Result<std::optional<json>> result_if_done(const std::string&, const std::string&) override {
    return std::optional<json>();
  }
  Result<NativeTaskPage> list(const std::string& owner, const std::string& cursor) override {
    if (!cursor.empty()) return make_error(ErrorCode::InvalidArgument, "bad cursor");
    std::lock_guard lock(mu_);
    NativeTaskPage page;
    for (auto& [id, e] : tasks_) {
      if (e.owner == owner) page.tasks.push_back(e.task);
    }
    return page;
  }
  Result<NativeTask> cancel(const std::string& owner, const std::string& id) override {
    std::lock_guard lock(mu_);
    auto e = find(owner, id);
    if (!e) return make_error(ErrorCode::NotFound, "unknown task " + id);
    if (is_terminal(e->task.status)) return make_error(ErrorCode::Conflict, "already ended");
    e->task.status = NativeTaskStatus::Cancelled;
    cv_.notify_all();
    return e->task;
  }

  void finish(const std::string& id) {
    NativeTaskListener listener;
    NativeTask task;
    {
      std::lock_guard lock(mu_);
      Entry& e = tasks_.at(id);
      e.task.status = NativeTaskStatus::Completed;
      e.task.status_message = "all good";
      listener = e.listener;
      task = e.task;
    }
    cv_.notify_all();
    if (listener) listener(task);
  }
  std::string last_owner() {
    std::lock_guard lock(mu_);
    return last_owner_;
  }

 private:
  struct Entry {
    std::string owner;
    NativeTask task;
    NativeTaskListener listener;
  };
  Entry* find(const std::string& owner, const std::string& id) {
    auto it = tasks_.find(id);
    return it == tasks_.end() || it->second.owner != owner ? nullptr : &it->second;
  }
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<std::string, Entry> tasks_;
  std::string last_owner_;
};

std::string request(const json& id, std::string_view method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}}.dump();
}

int code(const json& reply) { return reply.at("error").at("code").get<int>(); }

struct Fixture {
  Tools tools;
  FakeTasks tasks;
  ThreadPerJob pool;
  Server server{ServerInfo{"orch-test", "", "1", ""}, tools, pool.executor()};
  Wire wire;
  std::unique_ptr<Session> session;

  explicit Fixture(std::string version = "2025-11-25", std::string owner = "ctx-a") {
    server.serve_tasks(tasks);
    session = server.open_session(wire.sink(), SessionOptions{std::move(owner)});
    session->handle(request("init", "initialize",
                            {{"protocolVersion", version}, {"capabilities", json::object()},
                             {"clientInfo", {{"name", "t"}, {"version", "0"}}}}));
  }
  json call(const json& id, std::string_view method, json params = json::object()) {
    session->handle(request(id, method, std::move(params)));
    return wire.wait_reply(id);
  }
};

TEST(NativeTasks, DeclaredIn20251125Only) {
  Fixture f;
  EXPECT_EQ(f.wire.reply("init")["result"]["capabilities"]["tasks"],
            (json{{"list", json::object()}, {"cancel", json::object()},
                  {"requests", {{"tools", {{"call", json::object()}}}}}}));
  Fixture old("2025-06-18");
  EXPECT_FALSE(old.wire.reply("init")["result"]["capabilities"].contains("tasks"));
  EXPECT_EQ(code(old.call(1, "tasks/get", {{"taskId", "task-1"}})), kMethodNotFound);
  EXPECT_EQ(code(old.call(2, "tasks/list")), kMethodNotFound);
  // Without the capability params.task is ignored: the call runs normally.
  json r = old.call(3, "tools/call", {{"name", "either"}, {"task", json::object()}});
  EXPECT_EQ(r["result"]["content"][0]["text"], "direct either") << r.dump();
}

TEST(NativeTasks, WithoutAProviderNoTasksCapability) {
  Tools tools;
  ThreadPerJob pool;
  Server server{ServerInfo{"orch-test", "", "1", ""}, tools, pool.executor()};
  Wire wire;
  auto session = server.open_session(wire.sink());
  session->handle(request("init", "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                                 {"clientInfo", {{"name", "t"}, {"version", "0"}}}}));
  EXPECT_FALSE(wire.reply("init")["result"]["capabilities"].contains("tasks"));
  session->handle(request(1, "tasks/list"));
  EXPECT_EQ(code(wire.wait_reply(1)), kMethodNotFound);
}

TEST(NativeTasks, TaskSupportDecidesHowAToolMayBeCalled) {
  Fixture f;
  // forbidden (the default) with a task: -32601.
  EXPECT_EQ(code(f.call(1, "tools/call", {{"name", "quick"}, {"task", json::object()}})), kMethodNotFound);
  // required without a task: -32601, with a message that says what to do.
  json r = f.call(2, "tools/call", {{"name", "only"}});
  EXPECT_EQ(code(r), kMethodNotFound);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("params.task"), std::string::npos);
  // optional either way.
  EXPECT_EQ(f.call(3, "tools/call", {{"name", "either"}})["result"]["content"][0]["text"], "direct either");
  EXPECT_TRUE(f.call(4, "tools/call", {{"name", "either"}, {"task", json::object()}})["result"].contains("task"));
  // An unknown tool stays -32602, task or not.
  EXPECT_EQ(code(f.call(5, "tools/call", {{"name", "nope"}, {"task", json::object()}})), kInvalidParams);
  // task.null reads as no task.
  EXPECT_EQ(code(f.call(6, "tools/call", {{"name", "only"}, {"task", nullptr}})), kMethodNotFound);
}

TEST(NativeTasks, BadTaskParamsAreInvalidParams) {
  Fixture f;
  EXPECT_EQ(code(f.call(1, "tools/call", {{"name", "only"}, {"task", "soon"}})), kInvalidParams);
  EXPECT_EQ(code(f.call(2, "tools/call", {{"name", "only"}, {"task", {{"ttl", -1}}}})), kInvalidParams);
  EXPECT_EQ(code(f.call(3, "tools/call", {{"name", "only"}, {"task", {{"ttl", 1.5}}}})), kInvalidParams);
  EXPECT_EQ(code(f.call(4, "tools/call", {{"name", "only"}, {"task", {{"ttl", "60000"}}}})), kInvalidParams);
  json bad = f.call(5, "tools/call", {{"name", "only"}, {"arguments", {{"bad", true}}}, {"task", json::object()}});
  EXPECT_EQ(code(bad), kInvalidParams);
  EXPECT_EQ(bad["error"]["message"], "bad: fix the arguments");
  // The session still serves.
  EXPECT_TRUE(f.call(6, "ping").contains("result"));
}

TEST(NativeTasks, CreateTaskResultCarriesTheTask) {
  Fixture f;
  json r = f.call(1, "tools/call", {{"name", "only"}, {"task", {{"ttl", 60000}}}});
  const json& task = r.at("result").at("task");
  EXPECT_EQ(task.at("taskId"), "task-1");
  EXPECT_EQ(task.at("status"), "working");
  EXPECT_EQ(task.at("ttl"), 60000);
  EXPECT_EQ(task.at("pollInterval"), 250);
  EXPECT_EQ(task.at("createdAt"), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(task.at("lastUpdatedAt"), "2023-11-14T22:13:20.000Z");
  EXPECT_FALSE(task.contains("statusMessage"));
  EXPECT_TRUE(r["result"]["_meta"]["io.modelcontextprotocol/model-immediate-response"].is_string());
  EXPECT_EQ(f.tasks.last_owner(), "ctx-a");
}

TEST(NativeTasks, ResultBlocksUntilTheEndAndNamesTheTask) {
  Fixture f;
  f.call(1, "tools/call", {{"name", "only"}, {"task", json::object()}});
  f.session->handle(request(2, "tasks/result", {{"taskId", "task-1"}}));
  // Still working: no answer yet, while other requests are served.
  EXPECT_TRUE(f.call(3, "tasks/get", {{"taskId", "task-1"}}).contains("result"));
  EXPECT_TRUE(f.wire.reply(2).is_null());
  f.tasks.finish("task-1");
  json r = f.wire.wait_reply(2);
  EXPECT_EQ(r["result"]["content"][0]["text"], "done task-1");
  EXPECT_EQ(r["result"]["_meta"][kRelatedTaskMeta], (json{{"taskId", "task-1"}}));
  json got = f.call(4, "tasks/get", {{"taskId", "task-1"}})["result"];
  EXPECT_EQ(got.at("status"), "completed");
  EXPECT_EQ(got.at("statusMessage"), "all good");
  EXPECT_FALSE(got.contains("task")) << "GetTaskResult is the Task itself, not wrapped";
}

TEST(NativeTasks, StatusChangesAreNotifiedUntilTheSessionCloses) {
  Fixture f;
  f.call(1, "tools/call", {{"name", "only"}, {"task", json::object()}});
  f.call(2, "tools/call", {{"name", "only"}, {"task", json::object()}});
  f.tasks.finish("task-1");
  auto notes = f.wire.notifications("notifications/tasks/status");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0]["params"]["taskId"], "task-1");
  EXPECT_EQ(notes[0]["params"]["status"], "completed");
  EXPECT_FALSE(notes[0]["params"].contains("_meta"));
  f.session->close();
  f.tasks.finish("task-2");  // the listener outlives the session: it must send nothing
  EXPECT_EQ(f.wire.notifications("notifications/tasks/status").size(), 1u);
}

TEST(NativeTasks, EachBadTasksRequestGetsItsCode) {
  Fixture f;
  f.call(1, "tools/call", {{"name", "only"}, {"task", json::object()}});
  EXPECT_EQ(code(f.call(2, "tasks/get")), kInvalidParams);                             // no taskId
  EXPECT_EQ(code(f.call(3, "tasks/get", {{"taskId", 7}})), kInvalidParams);            // not a string
  EXPECT_EQ(code(f.call(4, "tasks/get", {{"taskId", "task-9"}})), kInvalidParams);     // unknown
  EXPECT_EQ(code(f.call(5, "tasks/result", {{"taskId", "task-9"}})), kInvalidParams);  // unknown
  EXPECT_EQ(code(f.call(6, "tasks/cancel", {{"taskId", "task-9"}})), kInvalidParams);  // unknown
  EXPECT_EQ(code(f.call(7, "tasks/list", {{"cursor", 3}})), kInvalidParams);           // cursor not a string
  EXPECT_EQ(code(f.call(8, "tasks/list", {{"cursor", "zz"}})), kInvalidParams);        // cursor not ours
  json cancelled = f.call(9, "tasks/cancel", {{"taskId", "task-1"}});
  EXPECT_EQ(cancelled["result"]["status"], "cancelled");
  EXPECT_EQ(code(f.call(10, "tasks/cancel", {{"taskId", "task-1"}})), kInvalidParams);  // already ended
  EXPECT_TRUE(f.call(11, "ping").contains("result"));
}

TEST(NativeTasks, AnotherAuthContextCannotSeeTheTask) {
  Tools tools;
  FakeTasks tasks;
  ThreadPerJob pool;
  Server server{ServerInfo{"orch-test", "", "1", ""}, tools, pool.executor()};
  server.serve_tasks(tasks);
  Wire wa, wb;
  auto a = server.open_session(wa.sink(), SessionOptions{"ctx-a"});
  auto b = server.open_session(wb.sink(), SessionOptions{"ctx-b"});
  for (auto* s : {a.get(), b.get()}) {
    s->handle(request("init", "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                             {"clientInfo", {{"name", "t"}, {"version", "0"}}}}));
  }
  a->handle(request(1, "tools/call", {{"name", "only"}, {"task", json::object()}}));
  ASSERT_TRUE(wa.wait_reply(1).contains("result"));
  b->handle(request(2, "tasks/get", {{"taskId", "task-1"}}));
  EXPECT_EQ(code(wb.wait_reply(2)), kInvalidParams);
  b->handle(request(3, "tasks/list"));
  EXPECT_TRUE(wb.wait_reply(3)["result"]["tasks"].empty());
  a->handle(request(4, "tasks/list"));
  EXPECT_EQ(wa.wait_reply(4)["result"]["tasks"].size(), 1u);
}

TEST(NativeTasks, LegacyTaskJsonHasEveryRequiredField) {
  NativeTask t;
  t.id = "x";
  t.created_at_ms = 0;
  t.last_updated_at_ms = 1000;
  json j = legacy_task_json(t);
  EXPECT_EQ(j.at("ttl"), nullptr) << "ttl is required; null means unlimited";
  EXPECT_EQ(j.at("lastUpdatedAt"), "1970-01-01T00:00:01.000Z");
  EXPECT_FALSE(j.contains("pollInterval"));
}

}  // namespace
}  // namespace orch::mcp
