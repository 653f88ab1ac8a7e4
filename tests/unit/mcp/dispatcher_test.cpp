#include "mcp/dispatcher.h"

#include <atomic>
#include <condition_variable>
#include <deque>
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

// Keeps jobs until the test runs or destroys them.
class HeldJobs {
 public:
  Executor executor() {
    return [this](std::function<void()> job) {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
      return true;
    };
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return jobs_.size();
  }
  void run_all() {
    std::deque<std::function<void()>> jobs;
    {
      std::lock_guard lock(mu_);
      jobs.swap(jobs_);
    }
    for (auto& job : jobs) job();
  }
  void destroy_all() {
    std::deque<std::function<void()>> jobs;
    {
      std::lock_guard lock(mu_);
      jobs.swap(jobs_);
    }
  }

 private:
  std::mutex mu_;
  std::deque<std::function<void()>> jobs_;
};

// A latch a handler waits on until the test opens it or the request is stopped.
class Gate {
 public:
  // True when opened, false when stopped first.
  bool wait(std::stop_token stop) {
    std::unique_lock lock(mu_);
    ++waiting_;
    return cv_.wait(lock, stop, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool open_ = false;
  int waiting_ = 0;
};

std::string request(const json& id, std::string_view method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}}.dump();
}

std::string cancelled(const json& id) {
  return json{{"jsonrpc", "2.0"},
              {"method", "notifications/cancelled"},
              {"params", {{"requestId", id}, {"reason", "user pressed stop"}}}}
      .dump();
}

int error_code(const json& reply) { return reply.at("error").at("code").get<int>(); }
std::string error_message(const json& reply) {
  return reply.at("error").at("message").get<std::string>();
}

TEST(Dispatcher, ExecutorHandlerAnswersWithTheRequestId) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.on_request("echo", Run::OnExecutor,
                        [](const json& params, Responder r) { r.result(params); });
  dispatcher.handle(request("a-1", "echo", {{"x", 1}}));
  json reply = wire.wait_reply("a-1");
  ASSERT_FALSE(reply.is_null());
  EXPECT_EQ(reply.at("jsonrpc"), "2.0");
  EXPECT_EQ(reply.at("result"), json({{"x", 1}}));
}

TEST(Dispatcher, InlineHandlerAnswersBeforeHandleReturns) {
  Wire wire;
  HeldJobs jobs;
  Dispatcher dispatcher(wire.sink(), jobs.executor());
  dispatcher.on_request("ping", Run::Inline, [](const json&, Responder r) { r.result(json::object()); });
  dispatcher.handle(request(1, "ping"));
  EXPECT_EQ(wire.reply(1).at("result"), json::object());
  EXPECT_EQ(jobs.size(), 0u);
}

TEST(Dispatcher, UnknownMethodIsMethodNotFound) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.handle(request(9, "no/such"));
  json reply = wire.reply(9);
  EXPECT_EQ(error_code(reply), kMethodNotFound);
  EXPECT_EQ(error_message(reply), "Method not found: no/such");
}

TEST(Dispatcher, InvalidMessageIsAnsweredWithItsError) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.handle("{oops");
  dispatcher.handle(R"({"jsonrpc":"2.0","id":null,"method":"ping"})");
  auto messages = wire.messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_TRUE(messages[0].at("id").is_null());
  EXPECT_EQ(error_code(messages[0]), kParseError);
  EXPECT_TRUE(messages[1].at("id").is_null());
  EXPECT_EQ(error_code(messages[1]), kInvalidRequest);
}

TEST(Dispatcher, UnknownNotificationsAndPeerResponsesAreIgnored) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.handle(R"({"jsonrpc":"2.0","method":"notifications/whatever"})");
  dispatcher.handle(R"({"jsonrpc":"2.0","id":5,"result":{}})");
  dispatcher.handle(cancelled(12345));
  EXPECT_EQ(wire.size(), 0u);
}

TEST(Dispatcher, NotificationHandlerReceivesParams) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  json seen;
  dispatcher.on_notification("notifications/initialized", [&](const json& p) { seen = p; });
  dispatcher.handle(R"({"jsonrpc":"2.0","method":"notifications/initialized","params":{"k":1}})");
  EXPECT_EQ(seen, json({{"k", 1}}));
  EXPECT_EQ(wire.size(), 0u);
}

TEST(Dispatcher, DroppedResponderAnswersInternalError) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.on_request("forgetful", Run::OnExecutor, [](const json&, Responder) {});
  dispatcher.handle(request(3, "forgetful"));
  json reply = wire.wait_reply(3);
  EXPECT_EQ(error_code(reply), kInternalError);
  EXPECT_EQ(error_message(reply), "internal error: the request was dropped");
  EXPECT_TRUE(test::wait_until([&] { return dispatcher.in_flight() == 0; }, kDeadline));
}

TEST(Dispatcher, HandlerExceptionIsAnsweredInternalError) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.on_request("throws", Run::OnExecutor,
                        [](const json&, Responder) { throw std::runtime_error("boom"); });
  dispatcher.on_request("throws-inline", Run::Inline,
                        [](const json&, Responder) { throw 42; });
  dispatcher.handle(request(4, "throws"));
  dispatcher.handle(request(5, "throws-inline"));
  EXPECT_EQ(error_code(wire.wait_reply(4)), kInternalError);
  EXPECT_EQ(error_code(wire.wait_reply(5)), kInternalError);
}

TEST(Dispatcher, RefusingExecutorAnswersServerBusy) {
  Wire wire;
  ThreadPerJob pool;
  pool.refuse(true);
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.on_request("work", Run::OnExecutor, [](const json&, Responder r) { r.result(1); });
  dispatcher.handle(request(6, "work"));
  json reply = wire.reply(6);
  EXPECT_EQ(error_code(reply), kInternalError);
  EXPECT_EQ(error_message(reply), "server busy, retry");
  EXPECT_EQ(wire.size(), 1u);
  EXPECT_EQ(dispatcher.in_flight(), 0u);
}

TEST(Dispatcher, JobDestroyedWithoutRunningAnswersDropped) {
  Wire wire;
  HeldJobs jobs;
  Dispatcher dispatcher(wire.sink(), jobs.executor());
  dispatcher.on_request("work", Run::OnExecutor, [](const json&, Responder r) { r.result(1); });
  dispatcher.handle(request(7, "work"));
  EXPECT_EQ(dispatcher.in_flight(), 1u);
  EXPECT_EQ(wire.size(), 0u);
  jobs.destroy_all();
  EXPECT_EQ(error_code(wire.reply(7)), kInternalError);
  EXPECT_EQ(wire.size(), 1u);
  EXPECT_EQ(dispatcher.in_flight(), 0u);
}

TEST(Dispatcher, SlowRequestDoesNotBlockOthers) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  Gate gate;
  dispatcher.on_request("slow", Run::OnExecutor, [&](const json&, Responder r) {
    gate.wait(r.stop_token());
    r.result("slow done");
  });
  dispatcher.on_request("fast", Run::OnExecutor, [](const json&, Responder r) { r.result("fast"); });
  dispatcher.handle(request(1, "slow"));
  ASSERT_TRUE(test::wait_until([&] { return gate.waiting() == 1; }, kDeadline));
  dispatcher.handle(request(2, "fast"));
  EXPECT_EQ(wire.wait_reply(2).at("result"), "fast");
  EXPECT_TRUE(wire.reply(1).is_null());
  gate.open();
  EXPECT_EQ(wire.wait_reply(1).at("result"), "slow done");
}

TEST(Dispatcher, CancelledRequestIsStoppedAndItsReplySuppressed) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  Gate gate;
  std::atomic<bool> saw_stop{false};
  dispatcher.on_request("slow", Run::OnExecutor, [&](const json&, Responder r) {
    bool opened = gate.wait(r.stop_token());
    saw_stop = !opened;
    r.result("finished anyway");
  });
  dispatcher.on_request("fast", Run::Inline, [](const json&, Responder r) { r.result(1); });
  dispatcher.handle(request("job", "slow"));
  ASSERT_TRUE(test::wait_until([&] { return gate.waiting() == 1; }, kDeadline));
  dispatcher.handle(cancelled("job"));
  ASSERT_TRUE(test::wait_until([&] { return dispatcher.in_flight() == 0; }, kDeadline));
  EXPECT_TRUE(saw_stop.load());
  // Still answers other requests, and never sent the cancelled one's reply.
  dispatcher.handle(request(2, "fast"));
  EXPECT_TRUE(wire.reply("job").is_null());
  EXPECT_EQ(wire.size(), 1u);
}

TEST(Dispatcher, CancelBeforeTheJobStartsSkipsTheHandler) {
  Wire wire;
  HeldJobs jobs;
  Dispatcher dispatcher(wire.sink(), jobs.executor());
  std::atomic<bool> ran{false};
  dispatcher.on_request("work", Run::OnExecutor, [&](const json&, Responder r) {
    ran = true;
    r.result(1);
  });
  dispatcher.handle(request(8, "work"));
  dispatcher.handle(cancelled(8));
  jobs.run_all();
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(wire.size(), 0u);
  EXPECT_EQ(dispatcher.in_flight(), 0u);
}

TEST(Dispatcher, DuplicateInFlightIdIsInvalidRequest) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  Gate gate;
  dispatcher.on_request("slow", Run::OnExecutor, [&](const json&, Responder r) {
    gate.wait(r.stop_token());
    r.result("first");
  });
  dispatcher.handle(request(1, "slow"));
  ASSERT_TRUE(test::wait_until([&] { return gate.waiting() == 1; }, kDeadline));
  dispatcher.handle(request(1, "slow"));
  json duplicate = wire.reply(1);
  EXPECT_EQ(error_code(duplicate), kInvalidRequest);
  EXPECT_NE(error_message(duplicate).find("already used"), std::string::npos);
  gate.open();
  ASSERT_TRUE(test::wait_until([&] { return wire.size() == 2; }, kDeadline));
  EXPECT_EQ(wire.messages()[1].at("result"), "first");
  EXPECT_EQ(dispatcher.in_flight(), 0u);
}

TEST(Dispatcher, ResponderMayAnswerLaterFromAnotherThread) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  std::mutex mu;
  std::optional<Responder> parked;
  dispatcher.on_request("park", Run::Inline, [&](const json&, Responder r) {
    std::lock_guard lock(mu);
    parked.emplace(std::move(r));
  });
  dispatcher.handle(request(11, "park"));
  EXPECT_EQ(dispatcher.in_flight(), 1u);
  std::jthread later([&] {
    std::lock_guard lock(mu);
    parked->result("later");
  });
  later.join();
  EXPECT_EQ(wire.reply(11).at("result"), "later");
  EXPECT_EQ(dispatcher.in_flight(), 0u);
}

TEST(Dispatcher, AdmissionFaultIsTheReply) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.on_request("gated", Run::Inline, [](const json&, Responder r) { r.result(1); });
  dispatcher.set_admission([](const std::string& method) -> std::optional<RpcFault> {
    if (method == "gated") return RpcFault{kInvalidRequest, "not yet"};
    return std::nullopt;
  });
  dispatcher.handle(request(1, "gated"));
  EXPECT_EQ(error_code(wire.reply(1)), kInvalidRequest);
  EXPECT_EQ(error_message(wire.reply(1)), "not yet");
}

TEST(Dispatcher, CloseStopsRequestsInFlightAndWaitsForTheirAnswers) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  Gate gate;
  dispatcher.on_request("slow", Run::OnExecutor, [&](const json&, Responder r) {
    bool opened = gate.wait(r.stop_token());
    r.result(opened ? "opened" : "stopped");
  });
  dispatcher.handle(request(1, "slow"));
  dispatcher.handle(request(2, "slow"));
  ASSERT_TRUE(test::wait_until([&] { return gate.waiting() == 2; }, kDeadline));
  dispatcher.close();
  // Stopped by the session, not cancelled by the peer: the replies are sent.
  EXPECT_EQ(wire.reply(1).at("result"), "stopped");
  EXPECT_EQ(wire.reply(2).at("result"), "stopped");
  EXPECT_EQ(dispatcher.in_flight(), 0u);

  dispatcher.handle(request(3, "slow"));
  EXPECT_EQ(error_code(wire.reply(3)), kInternalError);
  dispatcher.close();  // idempotent
}

TEST(Dispatcher, RequestQueuedAtCloseStillRunsWithItsStopRequested) {
  Wire wire;
  HeldJobs jobs;
  Dispatcher dispatcher(wire.sink(), jobs.executor());
  Gate never_opened;
  dispatcher.on_request("list", Run::OnExecutor, [&](const json&, Responder r) {
    bool opened = never_opened.wait(r.stop_token());
    r.result(opened ? "opened" : "ran, stopped");
  });
  dispatcher.handle(request(1, "list"));
  std::jthread closer([&] { dispatcher.close(); });
  ASSERT_TRUE(test::wait_until([&] { return dispatcher.closing(); }, kDeadline));
  jobs.run_all();
  closer.join();
  EXPECT_EQ(wire.reply(1).at("result"), "ran, stopped");
}

TEST(Dispatcher, AnsweringTwiceIsABug) {
  Wire wire;
  ThreadPerJob pool;
  Dispatcher dispatcher(wire.sink(), pool.executor());
  dispatcher.on_request("twice", Run::Inline, [](const json&, Responder r) {
    r.result(1);
    r.result(2);
  });
#ifdef NDEBUG
  dispatcher.handle(request(1, "twice"));
  EXPECT_EQ(wire.size(), 1u);
  EXPECT_EQ(wire.reply(1).at("result"), 1);
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(dispatcher.handle(request(1, "twice")), "exactly once");
#endif
}

}  // namespace
}  // namespace orch::mcp
