// MCP native tasks (2025-11-25) against the real binary: over stdio, and over
// Streamable HTTP with the auth context rules — with a bearer token every
// session of that token shares its tasks; with --no-auth each session is its
// own context (MCP-NOTES §9a; docs/PROTOCOL.md).
#include <gtest/gtest.h>

#include <string>

#include "tests/support/http_peer.h"
#include "tests/support/server_process.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

using namespace std::chrono_literals;

json task_call(const std::string& tool, json arguments, json task = json::object()) {
  return {{"name", tool}, {"arguments", std::move(arguments)}, {"task", std::move(task)}};
}

class NativeTasksStdio : public IntegrationTest {};

TEST_F(NativeTasksStdio, ATaskAugmentedCallRunsToItsResult) {
  ServerProcess& s = start_server();
  json init = s.initialize();
  ASSERT_TRUE(init["capabilities"].contains("tasks")) << init.dump();

  json created = s.request("tools/call", task_call("runTask", {{"command", "echo from-task"}, {"name", "native-it"}},
                                                   {{"ttl", 120000}}));
  ASSERT_TRUE(created.contains("result")) << created.dump();
  const json task = created["result"]["task"];
  const std::string id = task.at("taskId");
  EXPECT_EQ(task.at("status"), "working");
  EXPECT_EQ(task.at("ttl"), 120000);

  json result = s.request("tasks/result", {{"taskId", id}}, scaled(20s));
  ASSERT_TRUE(result.contains("result")) << result.dump();
  EXPECT_EQ(result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], id);
  EXPECT_EQ(result["result"]["structuredContent"]["stdout"]["text"], "from-task\n");

  // The same engine task through the plain tools.
  json status = s.call_tool("getStatus", {{"taskId", id}});
  EXPECT_EQ(status["structuredContent"]["task"]["status"], "completed");
  EXPECT_EQ(status["structuredContent"]["task"]["name"], "native-it");
  json listed = s.call_tool("listTasks", {{"name", "native-it"}});
  ASSERT_EQ(listed["structuredContent"]["tasks"].size(), 1u);
  EXPECT_EQ(listed["structuredContent"]["tasks"][0]["taskId"], id);

  EXPECT_TRUE(wait_until([&] {
    for (const json& n : s.notifications("notifications/tasks/status")) {
      if (n["params"]["taskId"] == id && n["params"]["status"] == "completed") return true;
    }
    return false;
  }, scaled(5s)));
  json got = s.request("tasks/get", {{"taskId", id}});
  EXPECT_EQ(got["result"]["status"], "completed");
  json page = s.request("tasks/list");
  ASSERT_EQ(page["result"]["tasks"].size(), 1u);
  EXPECT_EQ(page["result"]["tasks"][0]["taskId"], id);
}

TEST_F(NativeTasksStdio, TaskSupportAndBadRequestsGetTheirCodes) {
  ServerProcess& s = start_server();
  s.initialize();
  auto code = [](const json& r) { return r.at("error").at("code").get<int>(); };
  EXPECT_EQ(code(s.request("tools/call", {{"name", "runTask"}, {"arguments", {{"command", "true"}}}})), -32601);
  EXPECT_EQ(code(s.request("tools/call", task_call("getStatus", json::object()))), -32601);
  EXPECT_EQ(code(s.request("tools/call", task_call("nope", json::object()))), -32602);
  EXPECT_EQ(code(s.request("tools/call", task_call("runTask", {{"command", "true"}}, {{"ttl", "soon"}}))), -32602);
  EXPECT_EQ(code(s.request("tools/call", task_call("runTask", {{"priority", 11}, {"command", "true"}}))), -32602);
  EXPECT_EQ(code(s.request("tasks/get", {{"taskId", "tnosuchtaskaaaaaaaaaaaaaaaa"}})), -32602);
  EXPECT_EQ(code(s.request("tasks/result", json::object())), -32602);
  EXPECT_EQ(code(s.request("tasks/list", {{"cursor", "bogus"}})), -32602);
  // Nothing was started by the refused calls, and the server still serves.
  EXPECT_TRUE(s.call_tool("listTasks")["structuredContent"]["tasks"].empty());
  EXPECT_TRUE(s.request("ping").contains("result"));
}

TEST_F(NativeTasksStdio, CancelEndsTheEngineTask) {
  ServerProcess& s = start_server();
  s.initialize();
  json created = s.request("tools/call", task_call("submitTask", {{"command", "sleep 60"}}));
  const std::string id = created["result"]["task"]["taskId"];
  ASSERT_TRUE(s.wait_task(id, [](const json& t) { return t["status"] == "running"; }));
  json cancelled = s.request("tasks/cancel", {{"taskId", id}});
  EXPECT_EQ(cancelled["result"]["status"], "cancelled") << cancelled.dump();
  ASSERT_TRUE(s.wait_task(id, [](const json& t) { return t["status"] == "cancelled"; }));
  json again = s.request("tasks/cancel", {{"taskId", id}});
  EXPECT_EQ(again["error"]["code"], -32602);
  json result = s.request("tasks/result", {{"taskId", id}});
  EXPECT_EQ(result["result"]["isError"], true);
}

TEST_F(NativeTasksStdio, AnOlderRevisionHasNoTasks) {
  ServerProcess& s = start_server();
  json init = s.initialize("2025-06-18");
  EXPECT_FALSE(init["capabilities"].contains("tasks"));
  EXPECT_EQ(s.request("tasks/list")["error"]["code"], -32601);
  // params.task is ignored: submitTask answers with its id as usual.
  json plain = s.request("tools/call", task_call("submitTask", {{"command", "true"}}));
  EXPECT_TRUE(plain["result"]["structuredContent"].contains("taskId")) << plain.dump();
}

class NativeTasksHttp : public IntegrationTest {};

TEST_F(NativeTasksHttp, WithoutAuthEachSessionIsItsOwnContext) {
  ServerProcess& s = start_server(std::vector<std::string>{"--http", "127.0.0.1:0", "--no-auth"});
  HttpPeer peer(s.http_url());
  McpHttpSession a(peer), b(peer);
  a.initialize();
  b.initialize();
  json created = a.request("tools/call", task_call("runTask", {{"command", "echo mine"}}));
  ASSERT_TRUE(created.contains("result")) << created.dump();
  const std::string id = created["result"]["task"]["taskId"];
  json result = a.request("tasks/result", {{"taskId", id}});
  EXPECT_EQ(result["result"]["structuredContent"]["stdout"]["text"], "mine\n");
  // Session b knows the id but not the task; the plain tools still see it.
  EXPECT_EQ(b.request("tasks/get", {{"taskId", id}})["error"]["code"], -32602);
  EXPECT_EQ(b.request("tasks/cancel", {{"taskId", id}})["error"]["code"], -32602);
  EXPECT_TRUE(b.request("tasks/list")["result"]["tasks"].empty());
  EXPECT_EQ(b.call_tool("getStatus", {{"taskId", id}})["structuredContent"]["task"]["status"], "completed");
}

TEST_F(NativeTasksHttp, WithATokenItsSessionsShareTasks) {
  ServerProcess& s = start_server(std::vector<std::string>{"--http", "127.0.0.1:0"});
  const std::string url = s.http_url();  // waits for the endpoint file, which names the token too
  HttpPeer peer(url, s.http_token());
  McpHttpSession a(peer);
  a.initialize();
  json created = a.request("tools/call", task_call("runTask", {{"command", "echo shared"}}));
  const std::string id = created["result"]["task"]["taskId"];
  a.end();
  McpHttpSession b(peer);
  b.initialize();
  json result = b.request("tasks/result", {{"taskId", id}});
  EXPECT_EQ(result["result"]["structuredContent"]["stdout"]["text"], "shared\n") << result.dump();
  EXPECT_EQ(b.request("tasks/list")["result"]["tasks"].size(), 1u);
}

}  // namespace
}  // namespace orch::test
