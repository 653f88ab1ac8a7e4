// The 2026-07-28 era against the real binary over HTTP: stateless requests
// beside a legacy session, and a native task through the Tasks extension
// that is the engine task the tools see; subscriptions/listen streams task
// status and output until the server's teardown cancels it.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/support/http_peer.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
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

// A subscriptions/listen POST read as it streams, on a thread of its own.
class ListenStream {
 public:
  ListenStream(const std::string& url, const std::string& token, const json& message) {
    thread_ = std::thread([this, url, token, body = message.dump()] {
      httplib::Client client(url);
      client.set_read_timeout(std::chrono::seconds(120));
      httplib::Request req;
      req.method = "POST";
      req.path = "/mcp";
      req.headers = {{"Accept", "application/json, text/event-stream"}, {"Content-Type", "application/json"},
                     {"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "subscriptions/listen"}};
      if (!token.empty()) req.headers.emplace("Authorization", "Bearer " + token);
      req.body = body;
      req.content_receiver = [this](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
        std::lock_guard lock(mu_);
        bytes_.append(data, n);
        return true;
      };
      auto result = client.send(req);
      status_ = result ? result->status : -1;
      ended_ = true;
    });
  }
  ~ListenStream() { thread_.join(); }
  // The JSON of each complete SSE event so far (keep-alive comments skipped).
  std::vector<json> events() const {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    std::size_t start = 0;
    for (std::size_t end; (end = bytes_.find("\n\n", start)) != std::string::npos; start = end + 2) {
      std::string event = bytes_.substr(start, end - start);
      auto data = event.find("data: ");
      if (data != std::string::npos) out.push_back(json::parse(event.substr(data + 6)));
    }
    return out;
  }
  bool has(const std::function<bool(const json&)>& match) const {
    for (const json& e : events()) {
      if (match(e)) return true;
    }
    return false;
  }
  bool ended() const { return ended_; }
  int status() const { return status_; }

 private:
  mutable std::mutex mu_;
  std::string bytes_;  // guarded by mu_
  std::atomic<bool> ended_{false};
  std::atomic<int> status_{0};
  std::thread thread_;
};

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

TEST_F(ModernEraHttp, ListenStreamsTaskStatusAndOutputUntilTeardown) {
  TempDir dir;
  const std::string go = (dir.path() / "go").string();
  // The task waits for the test's word, so the stream is open before it ends.
  HttpReply created = call("tools/call", {{"name", "runTask"}, {"arguments", {{"command",
      "until [ -e '" + go + "' ]; do sleep 0.02; done; echo listened"}}}}, true, "runTask");
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = created.json()["result"].at("taskId");
  const std::string stdout_uri = "task://" + id + "/stdout";
  json params{{"_meta", modern_meta(true)},
              {"notifications", {{"toolsListChanged", true}, {"resourceSubscriptions", {stdout_uri}},
                                 {"taskIds", {id, "not-a-task"}}}}};
  ListenStream listen(server_->http_url(), server_->http_token(),
                      {{"jsonrpc", "2.0"}, {"id", "listen-1"}, {"method", "subscriptions/listen"}, {"params", params}});
  auto method_is = [](const char* m) { return [m](const json& e) { return e.value("method", "") == m; }; };
  ASSERT_TRUE(wait_until([&] { return listen.has(method_is("notifications/tasks")); }, scaled(10s)));
  json ack = listen.events().at(0);
  EXPECT_EQ(ack["method"], "notifications/subscriptions/acknowledged");
  EXPECT_EQ(ack["params"]["notifications"], json({{"resourceSubscriptions", {stdout_uri}}, {"taskIds", {id}}}));

  write_file(go, "");
  ASSERT_TRUE(wait_until([&] {
    return listen.has([](const json& e) { return e.value("method", "") == "notifications/tasks" &&
                                                 e["params"].value("status", "") == "completed"; }) &&
           listen.has(method_is("notifications/resources/updated"));
  }, scaled(20s))) << json(listen.events()).dump();
  // Teardown ends the stream with notifications/cancelled for the listen request.
  server_->kill(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return listen.ended(); }, scaled(20s)));
  EXPECT_EQ(listen.status(), 200);
  std::vector<json> events = listen.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["method"], "notifications/cancelled");
  EXPECT_EQ(events.back()["params"]["requestId"], "listen-1");
  for (const json& e : events) {
    EXPECT_EQ(e["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen-1") << e.dump();
    EXPECT_FALSE(e.contains("id")) << "only notifications go on a listen stream: " << e.dump();
    EXPECT_NE(e.value("method", ""), "notifications/message");
    EXPECT_NE(e.value("method", ""), "notifications/progress");
    if (e.value("method", "") == "notifications/resources/updated") {
      EXPECT_EQ(e["params"]["uri"], stdout_uri);
    }
  }
  EXPECT_TRUE(server_->wait_exit(scaled(20s)).has_value());
}

TEST_F(ModernEraHttp, TheRulesGiveTheirStatusAndCode) {
  HttpReply discover = call("server/discover", json::object());
  EXPECT_EQ(discover.status, 200);
  EXPECT_EQ(discover.json()["result"]["supportedVersions"], json::array({"2026-07-28"}));
  EXPECT_TRUE(discover.header("mcp-session-id").empty());
  EXPECT_EQ(discover.json()["result"]["capabilities"]["resources"]["subscribe"], true);  // via subscriptions/listen
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
