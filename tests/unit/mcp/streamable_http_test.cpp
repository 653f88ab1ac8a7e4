// The /mcp endpoint's rules, driven with HttpRequest values (no sockets): the
// session table, JSON or SSE answers, the GET stream, DELETE and bad input.
#include "mcp/streamable_http.h"

#include <gtest/gtest.h>

#include "tests/support/mcp_doubles.h"

namespace orch::mcp {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using transport::EventSource;
using transport::HttpRequest;
using transport::HttpResponse;

// "slow" reports progress twice before its result; "quick" answers at once.
class Tools : public ToolProvider {
 public:
  json list_tools() const override {
    return json::array({{{"name", "quick"}, {"inputSchema", {{"type", "object"}}}}});
  }
  std::optional<json> call_tool(const std::string& name, const json&, ToolCallContext& ctx) override {
    if (name == "slow" && ctx.report_progress) {
      ctx.report_progress(1, 2, "half");
      ctx.report_progress(2, 2, "done");
    }
    return json{{"content", json::array({{{"type", "text"}, {"text", name}}})}};
  }
};

class StreamableHttpTest : public ::testing::Test {
 protected:
  StreamableHttpTest() : server(ServerInfo{"t", "", "1", ""}, tools, jobs.executor()), http(server, options()) {}
  static StreamableHttpOptions options() {
    StreamableHttpOptions o;
    o.max_sessions = 2;
    o.idle_timeout = 0ms;
    return o;
  }
  HttpRequest post(const json& body, const std::string& session = "") {
    HttpRequest r;
    r.method = "POST";
    r.path = "/mcp";
    r.body = body.is_string() ? body.get<std::string>() : body.dump();
    r.headers = {{"accept", "application/json, text/event-stream"}, {"content-type", "application/json"}};
    if (!session.empty()) r.headers.emplace_back("mcp-session-id", session);
    return r;
  }
  std::string initialize() {
    HttpResponse r = http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                                            {"params", {{"protocolVersion", "2025-11-25"}}}}));
    EXPECT_EQ(r.status, 200) << r.body;
    std::string id;
    for (const auto& [k, v] : r.headers) {
      if (k == "Mcp-Session-Id") id = v;
    }
    EXPECT_EQ(id.size(), 64u);
    return id;
  }
  static std::string drain(EventSource& s) {
    std::string all, chunk;
    while (s.pull(chunk, 10s) == EventSource::Pull::Chunk) all += chunk;
    return all;
  }

  Tools tools;
  test::ThreadPerJob jobs;
  Server server;
  StreamableHttp http;
};

TEST_F(StreamableHttpTest, InitializeOpensASessionAndRequestsAnswerJson) {
  std::string id = initialize();
  EXPECT_EQ(http.session_count(), 1u);
  EXPECT_EQ(http.handle(post(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, id)).status, 202);
  HttpResponse r = http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}, id));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(json::parse(r.body)["result"]["tools"][0]["name"], "quick");
}

TEST_F(StreamableHttpTest, ProgressFirstMakesTheAnswerAnSseStream) {
  std::string id = initialize();
  HttpResponse r = http.handle(post(json{{"jsonrpc", "2.0"}, {"id", "a"}, {"method", "tools/call"},
                                         {"params", {{"name", "slow"}, {"_meta", {{"progressToken", 7}}}}}},
                                    id));
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.content_type, "text/event-stream");
  ASSERT_TRUE(r.stream);
  std::string events = drain(*r.stream);
  auto first = events.find("notifications/progress");
  auto result = events.find("\"id\":\"a\"");
  ASSERT_NE(first, std::string::npos) << events;
  ASSERT_NE(result, std::string::npos) << events;
  EXPECT_LT(first, result);
  EXPECT_EQ(events.rfind("event: message\ndata: ", 0), 0u);
}

TEST_F(StreamableHttpTest, SessionsAreRequiredKnownAndEndWithDelete) {
  EXPECT_EQ(http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}})).status, 400);
  EXPECT_EQ(http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, "nope")).status, 404);
  std::string id = initialize();
  HttpRequest del;
  del.method = "DELETE";
  del.headers = {{"mcp-session-id", id}};
  EXPECT_EQ(http.handle(del).status, 200);
  EXPECT_EQ(http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, id)).status, 404);
}

// Restart in place: the sessions of one endpoint are re-opened, same ids and
// agreed state, in a fresh one (the next image), and go on without initialize.
TEST_F(StreamableHttpTest, SnapshottedSessionsGoOnInAFreshEndpoint) {
  std::string id = initialize();
  EXPECT_TRUE(http.wait_idle(std::chrono::steady_clock::now() + 1s));
  std::vector<HttpSessionState> saved = http.snapshot_sessions();
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0].id, id);
  EXPECT_EQ(saved[0].state.protocol_version, "2025-11-25");

  StreamableHttp next(server, options());
  next.restore_sessions(saved);
  EXPECT_EQ(next.session_count(), 1u);
  HttpResponse r = next.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}, id));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["result"]["tools"][0]["name"], "quick");
  EXPECT_EQ(next.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, "other")).status, 404);
}

TEST_F(StreamableHttpTest, BadHeadersAndBodiesAreRefusedWithJsonErrors) {
  std::string id = initialize();
  HttpRequest r = post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, id);
  r.headers[0].second = "application/json";
  EXPECT_EQ(http.handle(r).status, 406);
  r = post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, id);
  r.headers[1].second = "text/plain";
  EXPECT_EQ(http.handle(r).status, 415);
  r = post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, id);
  r.headers.emplace_back("mcp-protocol-version", "1999-01-01");
  EXPECT_EQ(http.handle(r).status, 400);
  HttpResponse broken = http.handle(post(json("{\"jsonrpc\":"), id));
  EXPECT_EQ(broken.status, 400);
  EXPECT_EQ(json::parse(broken.body)["error"]["code"], kParseError);
  HttpResponse batch = http.handle(post(json::array({{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}}), id));
  EXPECT_EQ(batch.status, 400);
  EXPECT_EQ(http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}}, id)).status, 200);
}

TEST_F(StreamableHttpTest, TheGetStreamCarriesLogsAndIsSingle) {
  EXPECT_FALSE(http.hears(LogLevel::Emergency)) << "no session yet";
  std::string id = initialize();
  EXPECT_FALSE(http.hears(LogLevel::Info)) << "warning by default";
  http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "logging/setLevel"}, {"params", {{"level", "info"}}}}, id));
  EXPECT_TRUE(http.hears(LogLevel::Info));
  EXPECT_FALSE(http.hears(LogLevel::Debug));
  HttpRequest get;
  get.method = "GET";
  get.headers = {{"accept", "text/event-stream"}, {"mcp-session-id", id}};
  HttpResponse stream = http.handle(get);
  ASSERT_EQ(stream.status, 200);
  ASSERT_TRUE(stream.stream);
  EXPECT_EQ(http.handle(get).status, 409);
  http.log(LogLevel::Info, "test", "hello");
  std::string chunk;
  ASSERT_EQ(stream.stream->pull(chunk, 10s), EventSource::Pull::Chunk);
  EXPECT_NE(chunk.find("notifications/message"), std::string::npos);
  EXPECT_NE(chunk.find("hello"), std::string::npos);
}

TEST_F(StreamableHttpTest, AFullTableClosesIdleSessionsFirst) {
  initialize();
  initialize();
  std::string third = initialize();  // the idle timeout is 0: the others make room
  EXPECT_FALSE(third.empty());
  EXPECT_LE(http.session_count(), 2u);
}

TEST_F(StreamableHttpTest, CloseAllRefusesLaterRequests) {
  std::string id = initialize();
  http.close_all();
  EXPECT_EQ(http.session_count(), 0u);
  EXPECT_EQ(http.handle(post(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}, id)).status, 503);
}

}  // namespace
}  // namespace orch::mcp
