// MCP over Streamable HTTP against the real binary (SPEC §7, MCP-NOTES §5a):
// sessions, JSON and SSE answers, the GET stream, DELETE, and each bad
// request followed by a check that the server still serves.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_peer.h"
#include "tests/support/server_process.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

class HttpMcp : public IntegrationTest {
 protected:
  void SetUp() override {
    server_ = &start_server(std::vector<std::string>{"--http", "127.0.0.1:0"});
    url_ = server_->http_url();
    ASSERT_FALSE(url_.empty());
    peer_ = std::make_unique<HttpPeer>(url_, server_->http_token());
  }

  // The server still initializes a fresh session and answers ping.
  void expect_still_serving() {
    McpHttpSession fresh(*peer_);
    fresh.initialize();
    json pong = fresh.request("ping");
    EXPECT_TRUE(pong.contains("result")) << pong.dump();
  }

  ServerProcess* server_ = nullptr;
  std::string url_;
  std::unique_ptr<HttpPeer> peer_;
};

TEST_F(HttpMcp, InitializeOpensASessionWithARandomId) {
  McpHttpSession a(*peer_);
  json init = a.initialize();
  EXPECT_EQ(init["result"]["protocolVersion"], "2025-11-25");
  EXPECT_EQ(init["result"]["serverInfo"]["name"], "mcp-orchestrator");
  McpHttpSession b(*peer_);
  b.initialize();
  EXPECT_NE(a.session_id(), b.session_id());
  EXPECT_GE(a.session_id().size(), 32u);
  for (char c : a.session_id()) EXPECT_TRUE(c >= 0x21 && c <= 0x7e);
}

TEST_F(HttpMcp, ToolsListAndATaskRoundTrip) {
  McpHttpSession s(*peer_);
  s.initialize();
  json tools = s.request("tools/list");
  ASSERT_TRUE(tools.contains("result")) << tools.dump();
  EXPECT_EQ(tools["result"]["tools"].size(), 6u);
  EXPECT_EQ(s.last_reply().header("content-type").rfind("application/json", 0), 0u);

  json submitted = s.call_tool("submitTask", {{"command", "echo over-http"}});
  std::string id = structured(submitted).value("taskId", "");
  ASSERT_FALSE(id.empty());
  json result = s.call_tool("getResult", {{"taskId", id}, {"waitSec", 20}});
  EXPECT_EQ(structured(result)["status"], "completed") << result.dump();
  EXPECT_NE(structured(result)["stdout"]["text"].get<std::string>().find("over-http"), std::string::npos);
}

TEST_F(HttpMcp, ProgressTurnsTheAnswerIntoAnSseStream) {
  McpHttpSession s(*peer_);
  s.initialize();
  json submitted = s.call_tool("submitTask", {{"command", "sleep 1.2"}});
  std::string id = structured(submitted).value("taskId", "");
  ASSERT_FALSE(id.empty());
  // getResult with a progress token reports seconds waited before it ends.
  json result = s.call_tool("getResult", {{"taskId", id}, {"waitSec", 20}}, json("tok-1"));
  HttpReply reply = s.last_reply();
  ASSERT_EQ(reply.header("content-type").rfind("text/event-stream", 0), 0u) << reply.body;
  std::vector<json> messages = reply.sse_messages();
  ASSERT_GE(messages.size(), 2u) << reply.body;
  EXPECT_EQ(messages.front()["method"], "notifications/progress");
  EXPECT_EQ(messages.front()["params"]["progressToken"], "tok-1");
  EXPECT_TRUE(messages.back().contains("result"));
  EXPECT_EQ(structured(result)["status"], "completed");
}

TEST_F(HttpMcp, NotificationsAreAccepted202) {
  McpHttpSession s(*peer_);
  s.initialize();
  HttpReply reply = s.post(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"},
                                {"params", {{"requestId", 99}}}});
  EXPECT_EQ(reply.status, 202);
  EXPECT_TRUE(reply.body.empty());
}

TEST_F(HttpMcp, DeleteEndsTheSessionAndItsIdThen404s) {
  McpHttpSession s(*peer_);
  s.initialize();
  HttpReply ended = s.end();
  EXPECT_EQ(ended.status, 200) << ended.body;
  HttpReply after = s.post(json{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "ping"}});
  EXPECT_EQ(after.status, 404);
  EXPECT_EQ(after.json()["error"]["code"], -32000) << after.body;
  expect_still_serving();
}

TEST_F(HttpMcp, UnknownSessionIs404AndMissingSessionIs400) {
  HttpReply unknown = peer_->post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                                  {{"Accept", "application/json, text/event-stream"},
                                   {"Mcp-Session-Id", "deadbeef"}});
  EXPECT_EQ(unknown.status, 404);
  HttpReply missing = peer_->post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping"})", mcp_post_headers());
  EXPECT_EQ(missing.status, 400);
  EXPECT_TRUE(missing.json().contains("error")) << missing.body;
  expect_still_serving();
}

TEST_F(HttpMcp, BadProtocolVersionHeaderIs400) {
  McpHttpSession s(*peer_);
  s.initialize();
  HttpReply only_bad = peer_->post("/mcp", R"({"jsonrpc":"2.0","id":8,"method":"ping"})",
                                   {{"Accept", "application/json, text/event-stream"},
                                    {"Mcp-Session-Id", s.session_id()},
                                    {"MCP-Protocol-Version", "1999-01-01"}});
  EXPECT_EQ(only_bad.status, 400) << only_bad.body;
  EXPECT_NE(only_bad.body.find("1999-01-01"), std::string::npos);
  EXPECT_TRUE(s.request("ping").contains("result"));
}

TEST_F(HttpMcp, WrongAcceptIs406AndWrongContentTypeIs415) {
  McpHttpSession s(*peer_);
  s.initialize();
  HttpReply json_only = peer_->post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                                    {{"Accept", "application/json"}, {"Mcp-Session-Id", s.session_id()}});
  EXPECT_EQ(json_only.status, 406);
  EXPECT_TRUE(json_only.json().contains("error"));
  HttpReply text = peer_->post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                               {{"Accept", "application/json, text/event-stream"},
                                {"Mcp-Session-Id", s.session_id()}},
                               true, "text/plain");
  EXPECT_EQ(text.status, 415);
  EXPECT_TRUE(s.request("ping").contains("result"));
}

TEST_F(HttpMcp, MalformedJsonAndBatchesGetJsonRpcErrorsNeverHtml) {
  McpHttpSession s(*peer_);
  s.initialize();
  HttpReply broken = peer_->post("/mcp", "{\"jsonrpc\": \"2.0\", \"id\": 1, ", s.session_headers());
  EXPECT_EQ(broken.status, 400);
  EXPECT_EQ(broken.json()["error"]["code"], -32700) << broken.body;
  EXPECT_TRUE(broken.json()["id"].is_null());
  HttpReply batch = peer_->post("/mcp", R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", s.session_headers());
  EXPECT_EQ(batch.status, 400);
  EXPECT_EQ(batch.json()["error"]["code"], -32600) << batch.body;
  HttpReply nothing = peer_->get("/no/such/page");
  EXPECT_EQ(nothing.status, 404);
  EXPECT_TRUE(nothing.json().contains("error")) << nothing.body;
  EXPECT_TRUE(s.request("ping").contains("result"));
}

TEST_F(HttpMcp, UnknownMethodIsAJsonRpcError) {
  McpHttpSession s(*peer_);
  s.initialize();
  json reply = s.request("no/such/method");
  EXPECT_EQ(reply["error"]["code"], -32601) << reply.dump();
}

TEST_F(HttpMcp, OversizedBodyIs413AndTheServerGoesOn) {
  McpHttpSession s(*peer_);
  s.initialize();
  std::string huge = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":")" +
                     std::string(5u << 20, 'x') + "\"}}";
  HttpReply reply = peer_->post("/mcp", huge, s.session_headers());
  EXPECT_EQ(reply.status, 413) << reply.error;
  EXPECT_TRUE(reply.json().contains("error")) << reply.body.substr(0, 200);
  EXPECT_TRUE(s.request("ping").contains("result"));
}

TEST_F(HttpMcp, GetStreamIsOpenAndASecondOneIsRefused) {
  McpHttpSession s(*peer_);
  s.initialize();
  // The first GET stream stays open; read it from another thread and give up
  // when the session ends.
  std::promise<HttpReply> first;
  auto first_done = first.get_future();
  std::thread reader([&] { first.set_value(peer_->get("/mcp", {{"Accept", "text/event-stream"},
                                                                {"Mcp-Session-Id", s.session_id()}})); });
  // The server counts the open stream in /metrics once it is streaming.
  ASSERT_TRUE(wait_until(
      [&] { return peer_->get("/metrics").body.find("orchestrator_http_open_streams 1") != std::string::npos; },
      scaled(5s), 20ms));
  HttpReply second = peer_->get("/mcp", {{"Accept", "text/event-stream"}, {"Mcp-Session-Id", s.session_id()}});
  EXPECT_EQ(second.status, 409) << second.body;
  HttpReply wrong_accept = peer_->get("/mcp", {{"Accept", "application/json"}, {"Mcp-Session-Id", s.session_id()}});
  EXPECT_EQ(wrong_accept.status, 406);
  EXPECT_EQ(s.end().status, 200);
  ASSERT_EQ(first_done.wait_for(scaled(10s)), std::future_status::ready);
  reader.join();
  EXPECT_EQ(first_done.get().status, 200);
}

TEST_F(HttpMcp, SixtyFourLongPollsDoNotStarvePing) {
  McpHttpSession s(*peer_);
  s.initialize();
  std::string id = structured(s.call_tool("submitTask", {{"command", "sleep 600"}})).value("taskId", "");
  ASSERT_FALSE(id.empty());
  constexpr int kPolls = 64;
  std::atomic<int> answered{0};
  std::vector<std::thread> polls;
  for (int i = 0; i < kPolls; ++i) {
    polls.emplace_back([&] {
      json r = s.call_tool("getResult", {{"taskId", id}, {"waitSec", 50}});
      if (r.contains("structuredContent")) ++answered;
    });
  }
  // While all 64 block in the server, other requests are still answered.
  for (int i = 0; i < 20; ++i) {
    auto started = std::chrono::steady_clock::now();
    json pong = s.request("ping");
    EXPECT_TRUE(pong.contains("result")) << pong.dump();
    EXPECT_LT(std::chrono::steady_clock::now() - started, scaled(2s));
  }
  json status = s.call_tool("getStatus", {{"taskId", id}});
  EXPECT_EQ(structured(status)["task"]["status"], "running");
  EXPECT_EQ(answered.load(), 0) << "the long-polls should still be waiting";
  // Cancelling the task ends every long-poll at once.
  s.call_tool("cancelTask", {{"taskId", id}});
  for (auto& t : polls) t.join();
  EXPECT_EQ(answered.load(), kPolls);
}

}  // namespace
}  // namespace orch::test
