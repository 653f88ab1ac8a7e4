#include "app/dashboard.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::app {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kToken = "dashboard-test-token";

class DashboardTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<transport::HttpServer> http;  // after the engine: stopped first

  void SetUp() override {
    engine::EngineOptions o;
    o.state_dir = dir.path();
    o.max_concurrent = 4;
    o.kill_grace = 1000ms;
    auto e = engine::Engine::open(o);
    ASSERT_TRUE(e.ok()) << e.error().message;
    engine = std::move(*e);
    engine->set_restart_info({2, "SIGHUP", 1'700'000'000'000});

    transport::HttpServerOptions options;
    options.token = kToken;
    auto h = transport::HttpServer::listen(options);
    ASSERT_TRUE(h.ok()) << h.error().message;
    http = std::move(*h);
    add_dashboard_routes(*http, *engine, [] {
      engine::ProcessFacts f;
      f.mcp_sessions = 3;
      return f;
    });
    http->start();
  }

  httplib::Client client(bool with_token = true) const {
    httplib::Client c("127.0.0.1", http->port());
    c.set_read_timeout(10, 0);
    if (with_token) c.set_bearer_token_auth(kToken);
    return c;
  }

  engine::TaskId submit(const std::string& command, engine::TaskSpec spec = {}) {
    spec.kind = engine::TaskKind::Command;
    spec.command = command;
    auto r = engine->submit(std::move(spec));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->view.task.id : engine::TaskId{};
  }

  engine::TaskView wait_end(const engine::TaskId& id) {
    auto v = engine->wait(id, std::chrono::steady_clock::now() + 20s, {}, {});
    EXPECT_TRUE(v.ok());
    return *v;
  }

  // GET or POST with the token; the body parsed as JSON (null if it is not).
  std::pair<int, json> call(const std::string& method, const std::string& path) {
    auto c = client();
    auto res = method == "POST" ? c.Post(path) : c.Get(path);
    if (!res) return {0, nullptr};
    return {res->status, json::parse(res->body, nullptr, false)};
  }

  static std::string error_message(const json& body) {
    if (!body.is_object() || !body.contains("error")) return "<no error object>";
    return body.at("error").value("message", "<no message>");
  }
};

TEST_F(DashboardTest, ServesThePageAndItsAssetsWithoutTheToken) {
  auto c = client(/*with_token=*/false);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script type=\"module\" src=\"/dashboard.js\">"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("frame-ancestors 'none'"), std::string::npos);

  auto js = c.Get("/dashboard.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_NE(js->body.find("/api/events"), std::string::npos);

  auto css = c.Get("/dashboard.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->status, 200);
  EXPECT_EQ(css->get_header_value("Content-Type"), "text/css; charset=utf-8");
  EXPECT_NE(css->body.find("prefers-color-scheme"), std::string::npos);
}

TEST_F(DashboardTest, ApiNeedsTheToken) {
  auto c = client(/*with_token=*/false);
  for (const char* path : {"/api/overview", "/api/events", "/api/tasks/x/output"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
  }
  auto res = c.Post("/api/tasks/x/cancel");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
}

TEST_F(DashboardTest, OverviewHasEngineAndProcessFacts) {
  auto [status, body] = call("GET", "/api/overview");
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body.at("version"), ORCH_VERSION);
  EXPECT_EQ(body.at("maxConcurrent"), 4);
  EXPECT_EQ(body.at("restarts").at("count"), 2);
  EXPECT_EQ(body.at("restarts").at("lastReason"), "SIGHUP");
  EXPECT_EQ(body.at("http").at("sessions"), 3);
  EXPECT_TRUE(body.at("memory").at("rssKb").is_number_integer());
  EXPECT_TRUE(body.at("workers").contains("busy"));
  EXPECT_TRUE(body.at("serverTimeMs").is_number_integer());
}

TEST_F(DashboardTest, OutputReadsTheTailOrAWindow) {
  auto id = submit("printf 'hello\\nworld\\n'; printf oops >&2");
  wait_end(id);

  auto [status, tail] = call("GET", "/api/tasks/" + id + "/output");
  ASSERT_EQ(status, 200) << tail.dump();
  EXPECT_EQ(tail.at("text"), "hello\nworld\n");
  EXPECT_EQ(tail.at("nextOffset"), 12);
  EXPECT_EQ(tail.at("totalBytes"), 12);
  EXPECT_EQ(tail.at("stream"), "stdout");
  EXPECT_EQ(tail.at("status"), "completed");

  auto [s2, window] = call("GET", "/api/tasks/" + id + "/output?offset=6&limit=3");
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(window.at("text"), "wor");
  EXPECT_EQ(window.at("offset"), 6);
  EXPECT_EQ(window.at("nextOffset"), 9);
  EXPECT_EQ(window.at("truncated"), true);

  auto [s3, short_tail] = call("GET", "/api/tasks/" + id + "/output?limit=6");
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(short_tail.at("text"), "world\n");

  auto [s4, err] = call("GET", "/api/tasks/" + id + "/output?stream=stderr&offset=0");
  ASSERT_EQ(s4, 200);
  EXPECT_EQ(err.at("text"), "oops");
  EXPECT_EQ(err.at("stream"), "stderr");
}

TEST_F(DashboardTest, BadOutputQueriesAre400WithAFix) {
  auto id = submit("true");
  struct Case {
    std::string query, says;
  };
  for (const Case& c : {Case{"stream=both", "stream must be stdout or stderr"},
                        Case{"offset=-1", "offset must be a whole number"},
                        Case{"offset=1.5", "offset must be a whole number"},
                        Case{"offset=", "offset must be a whole number"},
                        Case{"limit=0", "limit must be a whole number from 1"},
                        Case{"limit=99999999", "limit must be a whole number from 1"},
                        Case{"limit=abc", "limit must be"},
                        Case{"tail=1", "use stream=stdout|stderr, offset=N and limit=N"}}) {
    auto [status, body] = call("GET", "/api/tasks/" + id + "/output?" + c.query);
    EXPECT_EQ(status, 400) << c.query;
    EXPECT_NE(error_message(body).find(c.says), std::string::npos) << c.query << ": " << body.dump();
  }
  // Still answering.
  EXPECT_EQ(call("GET", "/api/tasks/" + id + "/output").first, 200);
}

TEST_F(DashboardTest, UnknownTasksAre404) {
  for (auto [method, path] : {std::pair{"GET", "/api/tasks/tnosuchtask/output"},
                              std::pair{"POST", "/api/tasks/tnosuchtask/cancel"},
                              std::pair{"POST", "/api/tasks/tnosuchtask/retry"}}) {
    auto [status, body] = call(method, path);
    EXPECT_EQ(status, 404) << path;
    EXPECT_NE(error_message(body).find("unknown task id 'tnosuchtask'"), std::string::npos) << body.dump();
  }
}

TEST_F(DashboardTest, CancelStopsALiveTaskAndRefusesAFinishedOne) {
  auto id = submit("sleep 600");
  ASSERT_TRUE(test::wait_until([&] { return engine->get(id)->task.status == engine::TaskStatus::Running; }));
  auto [status, body] = call("POST", "/api/tasks/" + id + "/cancel");
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body.at("task").at("taskId"), id);
  EXPECT_EQ(wait_end(id).task.status, engine::TaskStatus::Cancelled);

  auto [again, refusal] = call("POST", "/api/tasks/" + id + "/cancel");
  EXPECT_EQ(again, 409);
  EXPECT_NE(error_message(refusal).find("nothing to cancel"), std::string::npos) << refusal.dump();
}

TEST_F(DashboardTest, RetrySubmitsTheSameSpecAsANewTask) {
  engine::TaskSpec spec;
  spec.name = "say hi";
  spec.tags = {"t1"};
  spec.idempotency_key = "only-once";
  auto id = submit("echo hi", spec);
  wait_end(id);

  auto [status, body] = call("POST", "/api/tasks/" + id + "/retry");
  ASSERT_EQ(status, 200) << body.dump();
  const json& task = body.at("task");
  const std::string new_id = task.at("taskId");
  EXPECT_NE(new_id, id);
  EXPECT_EQ(task.at("name"), "say hi");
  EXPECT_EQ(task.at("command"), "echo hi");
  EXPECT_EQ(task.at("tags"), json::array({"t1"}));
  auto done = wait_end(new_id);
  EXPECT_EQ(done.task.status, engine::TaskStatus::Completed);
  EXPECT_TRUE(done.task.spec.idempotency_key.empty());

  auto live = submit("sleep 600");
  auto [refused, why] = call("POST", "/api/tasks/" + live + "/retry");
  EXPECT_EQ(refused, 409);
  EXPECT_NE(error_message(why).find("still"), std::string::npos) << why.dump();
  ASSERT_TRUE(engine->cancel(live).ok());
}

// The SSE body so far, read on a thread until `stop`.
class EventReader {
 public:
  EventReader(int port, std::string token) {
    thread_ = std::jthread([this, port, token = std::move(token)] {
      httplib::Client c("127.0.0.1", port);
      c.set_bearer_token_auth(token);
      c.set_read_timeout(10, 0);
      // Returning false ends the read; the server sends an event every
      // couple of seconds, so a stop is noticed soon.
      c.Get("/api/events", [this](const char* data, std::size_t size) {
        std::lock_guard lock(mu_);
        body_.append(data, size);
        return !stop_;
      });
    });
  }
  ~EventReader() { stop_ = true; }
  std::string body() const {
    std::lock_guard lock(mu_);
    return body_;
  }

 private:
  mutable std::mutex mu_;
  std::string body_;  // guarded by mu_
  std::atomic<bool> stop_{false};
  std::jthread thread_;  // declared last: joined first
};

// The `data:` of each event with this name, parsed.
std::vector<json> events_named(const std::string& body, const std::string& name) {
  std::vector<json> out;
  const std::string head = "event: " + name + "\ndata: ";
  for (auto pos = body.find(head); pos != std::string::npos; pos = body.find(head, pos + 1)) {
    auto start = pos + head.size();
    auto end = body.find("\n\n", start);
    if (end == std::string::npos) break;
    out.push_back(json::parse(body.substr(start, end - start), nullptr, false));
  }
  return out;
}

TEST_F(DashboardTest, EventsSendASnapshotThenDeltas) {
  auto first = submit("true");
  wait_end(first);
  EventReader reader(http->port(), kToken);
  ASSERT_TRUE(test::wait_until([&] { return !events_named(reader.body(), "snapshot").empty(); }, 10s))
      << reader.body();
  json snapshot = events_named(reader.body(), "snapshot").at(0);
  ASSERT_EQ(snapshot.at("tasks").size(), 1u) << snapshot.dump();
  EXPECT_EQ(snapshot.at("tasks").at(0).at("taskId"), first);
  EXPECT_EQ(snapshot.at("tasks").at(0).at("status"), "completed");
  EXPECT_TRUE(snapshot.at("overview").contains("queueDepth"));
  EXPECT_TRUE(snapshot.at("cursor").is_number_unsigned());

  auto second = submit("echo delta");
  auto saw_completed = [&] {
    for (const json& e : events_named(reader.body(), "tasks")) {
      for (const json& t : e.at("changed")) {
        if (t.at("taskId") == second && t.at("status") == "completed") return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(test::wait_until(saw_completed, 10s)) << reader.body();
  for (const json& e : events_named(reader.body(), "tasks")) {
    EXPECT_TRUE(e.at("removed").is_array());
    for (const json& t : e.at("changed")) EXPECT_NE(t.at("taskId"), first) << "an unchanged task was resent";
  }
  EXPECT_EQ(events_named(reader.body(), "snapshot").size(), 1u);
  // Overview events follow every couple of seconds.
  EXPECT_TRUE(test::wait_until([&] { return !events_named(reader.body(), "overview").empty(); }, 10s));
  http->stop();  // ends the stream, so the reader's thread can finish
}

}  // namespace
}  // namespace orch::app
