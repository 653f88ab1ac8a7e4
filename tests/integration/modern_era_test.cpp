// The 2026-07-28 era against the real binary over HTTP: stateless requests
// beside a legacy session, and a native task through the Tasks extension
// that is the engine task the tools see.
#include <gtest/gtest.h>

#include "tests/support/http_peer.h"
#include "tests/support/server_process.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

using namespace std::chrono_literals;

json modern_meta(bool tasks) {
  json caps = json::object();
  if (tasks) caps["extensions"] = {{"io.modelcontextprotocol/tasks", json::object()}};
  return {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
          {"io.modelcontextprotocol/clientInfo", {{"name", "it"}, {"version", "1"}}},
          {"io.modelcontextprotocol/clientCapabilities", caps}};
}

class ModernEraHttp : public IntegrationTest {
 protected:
  void SetUp() override {
    server_ = &start_server(std::vector<std::string>{"--http", "127.0.0.1:0"});
    const std::string url = server_->http_url();
    peer_ = std::make_unique<HttpPeer>(url, server_->http_token());
  }
  // One stateless request with the headers the era requires.
  HttpReply call(const std::string& method, json params, bool tasks = true, const std::string& name = "") {
    params["_meta"] = modern_meta(tasks);
    Headers h = mcp_post_headers();
    h.emplace_back("MCP-Protocol-Version", "2026-07-28");
    h.emplace_back("Mcp-Method", method);
    if (!name.empty()) h.emplace_back("Mcp-Name", name);
    return peer_->post("/mcp", json{{"jsonrpc", "2.0"}, {"id", ++id_}, {"method", method}, {"params", params}}.dump(), h);
  }
  ServerProcess* server_ = nullptr;
  std::unique_ptr<HttpPeer> peer_;
  int id_ = 0;
};

TEST_F(ModernEraHttp, ATaskThroughTheExtensionIsTheEngineTask) {
  HttpReply created = call("tools/call", {{"name", "runTask"}, {"arguments", {{"command", "echo modern"}}}}, true, "runTask");
  ASSERT_EQ(created.status, 200) << created.body;
  json task = created.json()["result"];
  EXPECT_EQ(task["resultType"], "task");
  const std::string id = task.at("taskId");
  json got;
  ASSERT_TRUE(wait_until([&] {
    got = call("tasks/get", {{"taskId", id}}, true, id).json()["result"];
    return got.value("status", "") == "completed";
  }, scaled(20s))) << got.dump();
  EXPECT_EQ(got["result"]["structuredContent"]["stdout"]["text"], "modern\n");
  EXPECT_EQ(got["resultType"], "complete");
  json status = call("tools/call", {{"name", "getStatus"}, {"arguments", {{"taskId", id}}}}, false, "getStatus").json();
  EXPECT_EQ(status["result"]["structuredContent"]["task"]["status"], "completed");
  EXPECT_EQ(call("tasks/cancel", {{"taskId", id}}, true, id).json()["result"]["resultType"], "complete");
  // Without the extension the same call runs to its answer.
  json sync = call("tools/call", {{"name", "runTask"}, {"arguments", {{"command", "echo sync"}}}}, false, "runTask").json();
  EXPECT_EQ(sync["result"]["resultType"], "complete");
  EXPECT_EQ(sync["result"]["structuredContent"]["stdout"]["text"], "sync\n");
}

TEST_F(ModernEraHttp, TheRulesGiveTheirStatusAndCode) {
  HttpReply discover = call("server/discover", json::object());
  EXPECT_EQ(discover.status, 200);
  EXPECT_EQ(discover.json()["result"]["supportedVersions"], json::array({"2026-07-28"}));
  EXPECT_TRUE(discover.header("mcp-session-id").empty());
  HttpReply unknown = call("ping", json::object());
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.json()["error"]["code"], -32601);
  HttpReply mismatch = call("tools/call", {{"name", "listTasks"}}, false, "getStatus");
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_EQ(mismatch.json()["error"]["code"], -32020);
  HttpReply no_ext = call("tasks/get", {{"taskId", "tx"}}, false, "tx");
  EXPECT_EQ(no_ext.status, 400);
  EXPECT_EQ(no_ext.json()["error"]["code"], -32021);
  Headers h = mcp_post_headers();
  h.emplace_back("MCP-Protocol-Version", "2024-01-01");
  h.emplace_back("Mcp-Method", "tools/list");
  json params{{"_meta", modern_meta(false)}};
  params["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2024-01-01";
  HttpReply old = peer_->post("/mcp", json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}, {"params", params}}.dump(), h);
  EXPECT_EQ(old.status, 400);
  EXPECT_EQ(old.json()["error"]["code"], -32022);
  // A legacy session beside it works as before.
  McpHttpSession legacy(*peer_);
  legacy.initialize();
  EXPECT_TRUE(legacy.request("tasks/list").contains("result"));
}

}  // namespace
}  // namespace orch::test
