#include "mcp/server.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/mcp_doubles.h"
#include "tests/support/wait_until.h"

namespace orch::mcp {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::ThreadPerJob;
using test::Wire;

constexpr auto kDeadline = 20s;

// A fake provider: "echo", "block" (waits for release() or stop), "progress",
// and "throws".
class FakeTools final : public ToolProvider {
 public:
  json list_tools() const override {
    return json::array({
        {{"name", "echo"}, {"description", "Echoes text"}, {"inputSchema", {{"type", "object"}}}},
        {{"name", "block"}, {"description", "Waits"}, {"inputSchema", {{"type", "object"}}}},
    });
  }

  std::optional<json> call_tool(const std::string& name, const json& arguments,
                                ToolCallContext& ctx) override {
    if (name == "echo") return text_result(arguments.value("text", ""));
    if (name == "throws") throw std::runtime_error("tool exploded");
    if (name == "progress") {
      saw_token_ = ctx.has_progress_token;
      ctx.report_progress(1, 3, "one");
      ctx.report_progress(1, 3, "again one");   // not an increase: dropped
      ctx.report_progress(0.5, 3, "backwards");  // dropped
      ctx.report_progress(2, std::nullopt, "");
      ctx.report_progress(3, 3, "done");
      return text_result("progressed");
    }
    if (name == "block") {
      std::unique_lock lock(mu_);
      ++blocked_;
      cv_.notify_all();
      bool released = cv_.wait(lock, ctx.stop, [&] { return released_; });
      stopped_ += released ? 0 : 1;
      return text_result(released ? "released" : "stopped");
    }
    if (name == "tally") return text_result("alone");
    return std::nullopt;
  }

  // "tally" answers at once, and in a batch holds its replies back until the
  // batch ends, then tells each how many shared it.
  bool answers_at_once(const std::string& name) const override { return name == "tally"; }
  void call_tool_in_batch(const std::string& name, const json& arguments, ToolCallContext& ctx,
                          ToolReply reply) override {
    if (name != "tally") {
      reply(call_tool(name, arguments, ctx));
      return;
    }
    held_.push_back(std::move(reply));
  }
  void end_batch() override {
    ++batches_ended_;
    std::vector<ToolReply> held;
    held.swap(held_);
    for (ToolReply& reply : held) reply(text_result(std::to_string(held.size()) + " in batch"));
  }
  int batches_ended() const { return batches_ended_; }

  void release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  int blocked() {
    std::lock_guard lock(mu_);
    return blocked_;
  }
  int stopped() {
    std::lock_guard lock(mu_);
    return stopped_;
  }
  bool saw_token() const { return saw_token_.load(); }

  static json text_result(const std::string& text) {
    return json{{"content", json::array({{{"type", "text"}, {"text", text}}})}};
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool released_ = false;
  int blocked_ = 0;
  int stopped_ = 0;
  std::atomic<bool> saw_token_{false};
  std::vector<ToolReply> held_;  // the reader thread's only
  int batches_ended_ = 0;
};

std::string request(const json& id, std::string_view method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}}.dump();
}

std::string notification(std::string_view method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}}.dump();
}

int error_code(const json& reply) { return reply.at("error").at("code").get<int>(); }
std::string error_message(const json& reply) {
  return reply.at("error").at("message").get<std::string>();
}

// A server with the fake tools, one session, and the initialize handshake done
// unless the test says otherwise. Members are destroyed in reverse: the
// session closes before the executor joins its threads.
struct Fixture {
  FakeTools tools;
  ThreadPerJob pool;
  Server server{ServerInfo{"orch-test", "Orchestrator Test", "1.2.3", "Use submitTask."}, tools,
                pool.executor()};
  Wire wire;
  std::unique_ptr<Session> session = server.open_session(wire.sink());

  explicit Fixture(bool initialize = true) {
    if (!initialize) return;
    session->handle(request("init", "initialize",
                            {{"protocolVersion", "2025-11-25"},
                             {"capabilities", json::object()},
                             {"clientInfo", {{"name", "test-client"}, {"version", "0"}}}}));
    session->handle(notification("notifications/initialized"));
  }
  // Answers ping right now (ping runs inline).
  bool answers_ping(const json& id) {
    session->handle(request(id, "ping"));
    json reply = wire.reply(id);
    return !reply.is_null() && reply.contains("result") && reply.at("result") == json::object();
  }
};

TEST(Server, NegotiatesTheRequestedVersionWhenSupported) {
  EXPECT_EQ(negotiate_protocol_version("2025-06-18"), "2025-06-18");
  EXPECT_EQ(negotiate_protocol_version("2025-03-26"), "2025-03-26");
  EXPECT_EQ(negotiate_protocol_version("2025-11-25"), "2025-11-25");
  EXPECT_EQ(negotiate_protocol_version("1999-01-01"), "2025-11-25");
  EXPECT_EQ(negotiate_protocol_version("2026-07-28"), "2025-11-25");
}

TEST(Server, LogLevelsParseByTheirRfc5424Names) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::Debug);
  EXPECT_EQ(parse_log_level("emergency"), LogLevel::Emergency);
  EXPECT_EQ(parse_log_level("warn"), std::nullopt);
  EXPECT_STREQ(to_string(LogLevel::Notice), "notice");
}

TEST(Server, InitializeAnswersVersionCapabilitiesAndServerInfo) {
  Fixture f(false);
  f.session->handle(request(1, "initialize",
                            {{"protocolVersion", "2025-06-18"}, {"capabilities", {{"roots", json::object()}}},
                             {"clientInfo", {{"name", "claude-code"}, {"version", "2"}}}}));
  json reply = f.wire.reply(1);
  ASSERT_TRUE(reply.contains("result")) << reply.dump();
  const json& result = reply.at("result");
  EXPECT_EQ(result.at("protocolVersion"), "2025-06-18");
  EXPECT_EQ(result.at("capabilities"),
            json::parse(R"({"tools":{"listChanged":false},"logging":{}})"));
  EXPECT_EQ(result.at("serverInfo"),
            json::parse(R"({"name":"orch-test","title":"Orchestrator Test","version":"1.2.3"})"));
  EXPECT_EQ(result.at("instructions"), "Use submitTask.");
  EXPECT_TRUE(f.session->initialized());
  EXPECT_EQ(f.session->protocol_version(), "2025-06-18");
}

TEST(Server, InitializeWithAnUnknownVersionAnswersTheLatest) {
  Fixture f(false);
  f.session->handle(request(1, "initialize", {{"protocolVersion", "1999-01-01"}}));
  EXPECT_EQ(f.wire.reply(1).at("result").at("protocolVersion"), "2025-11-25");
}

TEST(Server, InitializeWithoutAStringProtocolVersionIsInvalidParams) {
  Fixture f(false);
  f.session->handle(request(1, "initialize", json::object()));
  f.session->handle(request(2, "initialize", {{"protocolVersion", 20251125}}));
  EXPECT_EQ(error_code(f.wire.reply(1)), kInvalidParams);
  EXPECT_EQ(error_code(f.wire.reply(2)), kInvalidParams);
  EXPECT_FALSE(f.session->initialized());
  // The session is still usable.
  f.session->handle(request(3, "initialize", {{"protocolVersion", "2025-11-25"}}));
  EXPECT_TRUE(f.wire.reply(3).contains("result"));
}

TEST(Server, SecondInitializeIsInvalidRequest) {
  Fixture f;
  f.session->handle(request(2, "initialize", {{"protocolVersion", "2025-11-25"}}));
  EXPECT_EQ(error_code(f.wire.reply(2)), kInvalidRequest);
  EXPECT_TRUE(f.answers_ping(3));
}

TEST(Server, PingAnswersBeforeInitialize) {
  Fixture f(false);
  EXPECT_TRUE(f.answers_ping("p"));
}

TEST(Server, RequestsBeforeInitializeAreRefused) {
  Fixture f(false);
  f.session->handle(request(1, "tools/list"));
  f.session->handle(request(2, "tools/call", {{"name", "echo"}}));
  json reply = f.wire.reply(1);
  EXPECT_EQ(error_code(reply), kInvalidRequest);
  EXPECT_NE(error_message(reply).find("initialize first"), std::string::npos);
  EXPECT_EQ(error_code(f.wire.reply(2)), kInvalidRequest);
}

// Restart in place: what one session agreed is taken over by a fresh one,
// which then serves requests without a new initialize.
TEST(Server, ARestoredSessionGoesOnWithoutInitialize) {
  Fixture before;
  before.session->handle(request(1, "logging/setLevel", {{"level", "debug"}}));
  ASSERT_TRUE(before.wire.reply(1).contains("result"));
  SessionState state = before.session->snapshot();
  EXPECT_EQ(state.protocol_version, "2025-11-25");
  EXPECT_TRUE(state.initialized);
  EXPECT_TRUE(state.ready);
  EXPECT_EQ(state.log_level, LogLevel::Debug);

  Fixture after(false);
  after.session->restore(state);
  EXPECT_TRUE(after.session->initialized());
  EXPECT_EQ(after.session->protocol_version(), "2025-11-25");
  EXPECT_EQ(after.session->log_level(), LogLevel::Debug);
  after.session->handle(request(2, "tools/list"));
  EXPECT_TRUE(after.wire.wait_reply(2).contains("result"));
  after.session->handle(request(3, "initialize", {{"protocolVersion", "2025-11-25"}}));
  EXPECT_EQ(error_code(after.wire.reply(3)), kInvalidRequest) << "still initialized once";
}

TEST(Server, ToolsListReturnsTheProvidersTools) {
  Fixture f;
  f.session->handle(request(1, "tools/list", {{"cursor", "ignored"}}));
  json reply = f.wire.wait_reply(1);
  EXPECT_EQ(reply.at("result"), json({{"tools", f.tools.list_tools()}}));
}

TEST(Server, ToolsCallReturnsTheProvidersResult) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "hi"}}}}));
  EXPECT_EQ(f.wire.wait_reply(1).at("result"), FakeTools::text_result("hi"));
  // arguments are optional
  f.session->handle(request(2, "tools/call", {{"name", "echo"}}));
  EXPECT_EQ(f.wire.wait_reply(2).at("result"), FakeTools::text_result(""));
}

TEST(Server, InABatchAToolThatAnswersAtOnceMayAnswerWhenTheBatchEnds) {
  Fixture f;
  f.session->handle_in_batch(request(1, "tools/call", {{"name", "tally"}}));
  f.session->handle_in_batch(request(2, "tools/call", {{"name", "tally"}}));
  f.session->handle_in_batch(request(3, "ping"));
  EXPECT_TRUE(f.wire.reply(1).is_null());
  EXPECT_TRUE(f.wire.reply(2).is_null());
  EXPECT_FALSE(f.wire.reply(3).is_null());  // the others answer as ever
  f.session->end_batch();
  EXPECT_EQ(f.tools.batches_ended(), 1);
  EXPECT_EQ(f.wire.reply(1).at("result"), FakeTools::text_result("2 in batch"));
  EXPECT_EQ(f.wire.reply(2).at("result"), FakeTools::text_result("2 in batch"));
}

TEST(Server, OutsideABatchOrWithAProgressTokenAToolCallAnswersAtOnce) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "tally"}}));
  EXPECT_EQ(f.wire.reply(1).at("result"), FakeTools::text_result("alone"));
  f.session->handle_in_batch(
      request(2, "tools/call", {{"name", "tally"}, {"_meta", {{"progressToken", "p"}}}}));
  EXPECT_EQ(f.wire.reply(2).at("result"), FakeTools::text_result("alone"));
  f.session->end_batch();
  // A batch that ended leaves the thread's next call unbatched.
  f.session->handle(request(3, "tools/call", {{"name", "tally"}}));
  EXPECT_EQ(f.wire.reply(3).at("result"), FakeTools::text_result("alone"));
}

TEST(Server, ToolsCallWithBadParamsIsInvalidParams) {
  Fixture f;
  f.session->handle(request(1, "tools/call", json::object()));
  f.session->handle(request(2, "tools/call", {{"name", 5}}));
  f.session->handle(request(3, "tools/call", {{"name", "echo"}, {"arguments", json::array({1})}}));
  f.session->handle(request(4, "tools/call", {{"name", "echo"}, {"arguments", "text"}}));
  for (int id = 1; id <= 4; ++id) EXPECT_EQ(error_code(f.wire.wait_reply(id)), kInvalidParams) << id;
  EXPECT_TRUE(f.answers_ping("after"));
}

TEST(Server, UnknownToolIsInvalidParamsNamingIt) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "nope"}}));
  json reply = f.wire.wait_reply(1);
  EXPECT_EQ(error_code(reply), kInvalidParams);
  EXPECT_EQ(error_message(reply), "Unknown tool: nope");
}

TEST(Server, UnknownMethodIsMethodNotFound) {
  Fixture f;
  f.session->handle(request(1, "resources/list"));
  EXPECT_EQ(error_code(f.wire.reply(1)), kMethodNotFound);
  EXPECT_EQ(error_message(f.wire.reply(1)), "Method not found: resources/list");
}

TEST(Server, ToolThatThrowsIsAnsweredInternalError) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "throws"}}));
  EXPECT_EQ(error_code(f.wire.wait_reply(1)), kInternalError);
  EXPECT_TRUE(f.answers_ping(2));
}

TEST(Server, PingAnswersWhileAToolCallIsInFlight) {
  Fixture f;
  f.session->handle(request("call", "tools/call", {{"name", "block"}}));
  ASSERT_TRUE(test::wait_until([&] { return f.tools.blocked() == 1; }, kDeadline));
  EXPECT_TRUE(f.answers_ping("ping-1"));
  f.session->handle(request("list", "tools/list"));
  EXPECT_TRUE(f.wire.wait_reply("list").contains("result"));
  EXPECT_TRUE(f.wire.reply("call").is_null());
  f.tools.release();
  EXPECT_EQ(f.wire.wait_reply("call").at("result"), FakeTools::text_result("released"));
}

TEST(Server, CancelledToolCallStopsAndSendsNoReply) {
  Fixture f;
  f.session->handle(request(7, "tools/call", {{"name", "block"}}));
  ASSERT_TRUE(test::wait_until([&] { return f.tools.blocked() == 1; }, kDeadline));
  f.session->handle(notification("notifications/cancelled", {{"requestId", 7}, {"reason", "timeout"}}));
  ASSERT_TRUE(test::wait_until([&] { return f.tools.stopped() == 1; }, kDeadline));
  // close() returns once the stopped handler has returned and its (suppressed)
  // answer has been given.
  f.session->close();
  EXPECT_TRUE(f.wire.reply(7).is_null());
}

TEST(Server, ProgressNotificationsStrictlyIncreaseAndPrecedeTheResult) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "progress"}, {"_meta", {{"progressToken", "tok"}}}}));
  ASSERT_FALSE(f.wire.wait_reply(1).is_null());
  EXPECT_TRUE(f.tools.saw_token());
  auto progress = f.wire.notifications("notifications/progress");
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_EQ(progress[0].at("params"), json::parse(R"({"progressToken":"tok","progress":1.0,"total":3.0,"message":"one"})"));
  EXPECT_EQ(progress[1].at("params"), json::parse(R"({"progressToken":"tok","progress":2.0})"));
  EXPECT_EQ(progress[2].at("params").at("progress"), 3.0);
  // All of them before the reply.
  auto messages = f.wire.messages();
  int reply_at = f.wire.index_of_reply(1);
  int last_progress_at = -1;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].value("method", "") == "notifications/progress") last_progress_at = static_cast<int>(i);
  }
  EXPECT_LT(last_progress_at, reply_at);
}

TEST(Server, IntegerProgressTokenIsEchoed) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "progress"}, {"_meta", {{"progressToken", 99}}}}));
  ASSERT_FALSE(f.wire.wait_reply(1).is_null());
  auto progress = f.wire.notifications("notifications/progress");
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress[0].at("params").at("progressToken"), 99);
}

TEST(Server, NoProgressWithoutAToken) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "progress"}}));
  f.session->handle(request(2, "tools/call", {{"name", "progress"}, {"_meta", {{"progressToken", 1.5}}}}));
  ASSERT_FALSE(f.wire.wait_reply(1).is_null());
  ASSERT_FALSE(f.wire.wait_reply(2).is_null());
  EXPECT_FALSE(f.tools.saw_token());
  EXPECT_TRUE(f.wire.notifications("notifications/progress").empty());
}

TEST(Server, SetLevelFiltersLogNotifications) {
  Fixture f;
  EXPECT_EQ(f.session->log_level(), LogLevel::Warning);
  EXPECT_FALSE(f.session->hears(LogLevel::Info));
  EXPECT_TRUE(f.session->hears(LogLevel::Warning));
  EXPECT_FALSE(f.session->log(LogLevel::Info, "engine", "quiet by default"));
  EXPECT_TRUE(f.session->log(LogLevel::Error, "engine", json{{"task", "t1"}}));

  f.session->handle(request(1, "logging/setLevel", {{"level", "debug"}}));
  EXPECT_EQ(f.wire.reply(1).at("result"), json::object());
  EXPECT_TRUE(f.session->hears(LogLevel::Debug));
  EXPECT_TRUE(f.session->log(LogLevel::Debug, "", "now visible"));

  auto logs = f.wire.notifications("notifications/message");
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].at("params"), json::parse(R"({"level":"error","logger":"engine","data":{"task":"t1"}})"));
  EXPECT_EQ(logs[1].at("params"), json::parse(R"({"level":"debug","data":"now visible"})"));
}

TEST(Server, InvalidLogLevelIsInvalidParams) {
  Fixture f;
  f.session->handle(request(1, "logging/setLevel", {{"level", "verbose"}}));
  f.session->handle(request(2, "logging/setLevel", json::object()));
  EXPECT_EQ(error_code(f.wire.reply(1)), kInvalidParams);
  EXPECT_NE(error_message(f.wire.reply(1)).find("emergency"), std::string::npos);
  EXPECT_EQ(error_code(f.wire.reply(2)), kInvalidParams);
  EXPECT_EQ(f.session->log_level(), LogLevel::Warning);
}

TEST(Server, NoLogNotificationsBeforeInitialize) {
  Fixture f(false);
  EXPECT_FALSE(f.session->hears(LogLevel::Emergency));
  EXPECT_FALSE(f.session->log(LogLevel::Emergency, "engine", "too early"));
  EXPECT_EQ(f.wire.size(), 0u);
}

TEST(Server, OversizedMessageIsInvalidRequestWithNullId) {
  Fixture f;
  std::size_t before = f.wire.size();
  f.session->handle_oversized(5000000, 4194304);
  auto messages = f.wire.messages();
  ASSERT_EQ(messages.size(), before + 1);
  const json& reply = messages.back();
  EXPECT_TRUE(reply.at("id").is_null());
  EXPECT_EQ(error_code(reply), kInvalidRequest);
  EXPECT_EQ(error_message(reply), "message too large: 5000000 bytes, the limit is 4194304");
  EXPECT_TRUE(f.answers_ping("after"));
}

TEST(Server, BadInputIsAnsweredAndTheSessionKeepsWorking) {
  Fixture f;
  f.session->handle("{not json");
  f.session->handle(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  f.session->handle(R"({"jsonrpc":"2.0","id":null,"method":"ping"})");
  f.session->handle(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":[]})");
  f.session->handle(R"({"jsonrpc":"2.0","id":3,"result":{}})");  // a stray response: ignored
  auto messages = f.wire.messages();
  ASSERT_EQ(messages.size(), 5u);  // initialize reply + 4 errors
  EXPECT_EQ(error_code(messages[1]), kParseError);
  EXPECT_EQ(error_code(messages[2]), kInvalidRequest);
  EXPECT_EQ(error_code(messages[3]), kInvalidRequest);
  EXPECT_EQ(error_code(messages[4]), kInvalidParams);
  EXPECT_EQ(messages[4].at("id"), 2);
  EXPECT_TRUE(f.answers_ping("still-here"));
}

TEST(Server, CloseStopsToolCallsAndWaitsForThem) {
  Fixture f;
  f.session->handle(request(1, "tools/call", {{"name", "block"}}));
  f.session->handle(request(2, "tools/call", {{"name", "block"}}));
  ASSERT_TRUE(test::wait_until([&] { return f.tools.blocked() == 2; }, kDeadline));
  f.session->close();
  EXPECT_EQ(f.tools.stopped(), 2);
  EXPECT_EQ(f.wire.reply(1).at("result"), FakeTools::text_result("stopped"));
  EXPECT_EQ(f.wire.reply(2).at("result"), FakeTools::text_result("stopped"));
}

TEST(Server, ConcurrentRequestsFromSeveralThreadsAreAllAnswered) {
  Fixture f;
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  {
    std::vector<std::jthread> clients;
    for (int t = 0; t < kThreads; ++t) {
      clients.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          std::string id = std::to_string(t) + "-" + std::to_string(i);
          if (i % 2 == 0) {
            f.session->handle(request(id, "ping"));
          } else {
            f.session->handle(request(id, "tools/call", {{"name", "echo"}, {"arguments", {{"text", id}}}}));
          }
        }
      });
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) {
      std::string id = std::to_string(t) + "-" + std::to_string(i);
      json reply = f.wire.wait_reply(id);
      ASSERT_TRUE(reply.contains("result")) << id;
      if (i % 2 == 1) {
        EXPECT_EQ(reply.at("result"), FakeTools::text_result(id));
      }
    }
  }
}

}  // namespace
}  // namespace orch::mcp
