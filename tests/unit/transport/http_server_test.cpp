// HttpServer over real sockets on 127.0.0.1, with httplib's client as the peer.
#include "transport/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/support/wait_until.h"

namespace orch::transport {
namespace {

using namespace std::chrono_literals;

class HttpServerTest : public ::testing::Test {
 protected:
  void start(std::string token = "", std::size_t max_body = 1 << 20) {
    HttpServerOptions o;
    o.token = std::move(token);
    o.max_body_bytes = max_body;
    auto s = HttpServer::listen(o);
    ASSERT_TRUE(s) << s.error().message;
    server = std::move(*s);
    server->route("GET", "/items/([a-z]+)", Access::Public, [](const HttpRequest& r) {
      return HttpResponse::json(200, R"({"item":")" + r.captures.at(0) + R"(","q":")" +
                                         (r.query.count("q") ? r.query.at("q") : "") + "\"}");
    });
    server->route("POST", "/secret", Access::Token, [](const HttpRequest& r) { return HttpResponse::json(200, r.body); });
    server->route("GET", "/boom", Access::Public, [](const HttpRequest&) -> HttpResponse {
      throw std::runtime_error("kaboom");
    });
    server->route("GET", "/stream", Access::Public, [this](const HttpRequest&) {
      HttpResponse r;
      r.content_type = "text/event-stream";
      auto made = std::make_shared<EventStream>();
      {
        std::lock_guard lock(mu);
        stream = made;
      }
      r.stream = made;
      r.keepalive_interval = 50ms;
      r.keepalive_chunk = ": ka\n\n";
      return r;
    });
    server->route("GET", "/hold", Access::Public, [this](const HttpRequest&) {
      std::unique_lock lock(mu);
      ++holding;
      cv.notify_all();
      cv.wait(lock, [&] { return released; });
      return HttpResponse::json(200, "{}");
    });
    server->start();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(20s);
    return c;
  }
  std::shared_ptr<EventStream> opened() {
    std::lock_guard lock(mu);
    return stream;
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  void TearDown() override {
    release();
    if (server) server->stop();
  }

  std::unique_ptr<HttpServer> server;
  std::mutex mu;
  std::shared_ptr<EventStream> stream;  // guarded by mu: the last /stream opened
  std::condition_variable cv;
  int holding = 0;       // guarded by mu
  bool released = false;  // guarded by mu
};

TEST_F(HttpServerTest, RoutesWithCapturesAndQuery) {
  start();
  auto r = client().Get("/items/abc?q=x%20y");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"item":"abc","q":"x y"})");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405WithJsonBodies) {
  start();
  auto nope = client().Get("/nope");
  ASSERT_TRUE(nope);
  EXPECT_EQ(nope->status, 404);
  EXPECT_NE(nope->body.find("\"error\""), std::string::npos);
  auto wrong = client().Delete("/items/abc");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "GET");
}

TEST_F(HttpServerTest, HostAndOriginMustNameThisServer) {
  start();
  const std::string port = std::to_string(server->port());
  auto c = client();
  EXPECT_EQ(c.Get("/items/a", {{"Host", "evil.example.com"}})->status, 403);
  EXPECT_EQ(c.Get("/items/a", {{"Host", "127.0.0.1:1"}})->status, 403) << "another port is another server";
  EXPECT_EQ(c.Get("/items/a", {{"Host", "localhost:" + port}})->status, 200);
  EXPECT_EQ(c.Get("/items/a", {{"Origin", "http://evil.example.com"}})->status, 403);
  EXPECT_EQ(c.Get("/items/a", {{"Origin", "null"}})->status, 403);
  EXPECT_EQ(c.Get("/items/a", {{"Origin", "http://127.0.0.1:" + port}})->status, 200);
  EXPECT_EQ(c.Get("/items/a", {{"Origin", "https://localhost:" + port}})->status, 200);
}

// Tests bind nothing but 127.0.0.1: the socket is made here on loopback and
// adopted (as after a restart in place) by a server told it is on 0.0.0.0.
TEST(HttpServerWildcard, AnyHostButOnlyItsOwnOriginWhenBoundToEveryInterface) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  HttpServerOptions o;
  o.host = "0.0.0.0";
  o.adopt_fd = fd;
  o.token = "t";
  auto s = HttpServer::listen(o);
  ASSERT_TRUE(s) << s.error().message;
  (*s)->route("GET", "/x", Access::Public, [](const HttpRequest&) { return HttpResponse::json(200, "{}"); });
  (*s)->start();
  httplib::Client c("127.0.0.1", (*s)->port());
  EXPECT_EQ(c.Get("/x", {{"Host", "build-box.lan:8765"}})->status, 200) << "names it cannot know";
  EXPECT_EQ(c.Get("/x", {{"Host", "build-box.lan:8765"}, {"Origin", "http://build-box.lan:8765"}})->status, 200);
  EXPECT_EQ(c.Get("/x", {{"Host", "build-box.lan:8765"}, {"Origin", "http://evil.example.com"}})->status, 403);
  (*s)->stop();
}

TEST_F(HttpServerTest, TokenRoutesNeedTheBearerToken) {
  start("s3cret");
  auto c = client();
  auto none = c.Post("/secret", "{}", "application/json");
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(c.Post("/secret", {{"Authorization", "Bearer wrong"}}, "{}", "application/json")->status, 401);
  EXPECT_EQ(c.Post("/secret", {{"Authorization", "bearer s3cret"}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(c.Get("/items/a")->status, 200) << "public routes need none";
}

TEST_F(HttpServerTest, OversizedBodyIs413AndExceptionsAre500WithJsonBodies) {
  start("", 64);
  auto c = client();
  auto big = c.Post("/secret", std::string(1000, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_NE(big->body.find("\"error\""), std::string::npos);
  auto boom = c.Get("/boom");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  EXPECT_NE(boom->body.find("kaboom"), std::string::npos);
}

TEST_F(HttpServerTest, StreamsChunksPushedLaterThenEnds) {
  start();
  std::string received;
  std::thread reader([&] {
    client().Get("/stream", [&](const char* data, std::size_t n) {
      received.append(data, n);
      return true;
    });
  });
  ASSERT_TRUE(test::wait_until([&] { return opened() != nullptr; }));
  opened()->push("data: one\n\n");
  opened()->push("data: two\n\n");
  opened()->close();
  reader.join();
  EXPECT_NE(received.find("data: one\n\ndata: two\n\n"), std::string::npos) << received;
}

TEST_F(HttpServerTest, IdleStreamsGetKeepalivesAndADepartedPeerIsNoticed) {
  start();
  std::atomic<int> keepalives{0};
  std::atomic<bool> leave{false};
  std::thread reader([&] {
    client().Get("/stream", [&](const char* data, std::size_t n) {
      if (std::string(data, n).find(": ka") != std::string::npos) ++keepalives;
      return !leave.load();  // false: the client hangs up
    });
  });
  ASSERT_TRUE(test::wait_until([&] { return keepalives.load() >= 2; }));
  leave = true;
  reader.join();
  EXPECT_TRUE(test::wait_until([&] { return opened()->gone(); }));
}

TEST_F(HttpServerTest, StopEndsOpenStreams) {
  start();
  std::thread reader([&] { client().Get("/stream", [](const char*, std::size_t) { return true; }); });
  ASSERT_TRUE(test::wait_until([&] { return server->stats().open_streams == 1; }));
  server->stop();
  reader.join();
  EXPECT_TRUE(opened()->gone());
}

TEST_F(HttpServerTest, SixtyFourBlockedHandlersDoNotStarveOthers) {
  start();
  std::vector<std::thread> holders;
  for (int i = 0; i < 64; ++i) holders.emplace_back([&] { client().Get("/hold"); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return holding == 64; }));
  }
  auto r = client().Get("/items/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(server->stats().busy, 64u);
  release();
  for (auto& t : holders) t.join();
}

// Without TCP_NODELAY every response waited ~40 ms for the client's delayed
// ACK (httplib writes headers and body apart); accepted sockets inherit it.
TEST_F(HttpServerTest, TheListenerHasNagleOff) {
  start();
  int on = 0;
  socklen_t len = sizeof on;
  ASSERT_EQ(::getsockopt(server->listening_fd(), IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
  EXPECT_EQ(on, 1);
}

TEST_F(HttpServerTest, ASecondServerOnTheSamePortFails) {
  start();
  HttpServerOptions o;
  o.port = server->port();
  auto second = HttpServer::listen(o);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
}

TEST(HttpServerLoopback, KnowsLoopbackNames) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.5"));
}

// Restart in place: the listener is handed from one server to the next
// without being closed. A connection made while neither serves waits in the
// kernel's queue and is answered by the second.
TEST(HttpServerRestart, AReleasedListenerIsAdoptedAndQueuedConnectionsAreServed) {
  auto first = HttpServer::listen({});
  ASSERT_TRUE(first) << first.error().message;
  (*first)->route("GET", "/who", Access::Public, [](const HttpRequest&) { return HttpResponse::json(200, R"("first")"); });
  (*first)->start();
  const int port = (*first)->port();
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(20s);
  ASSERT_EQ(c.Get("/who")->body, R"("first")");

  ASSERT_TRUE((*first)->stop_accepting());
  auto fd = (*first)->release_listener(std::chrono::steady_clock::now() + 5s);
  ASSERT_TRUE(fd) << fd.error().message;
  first->reset();

  // Nobody accepts now; this request waits in the listen queue.
  std::atomic<int> status{0};
  std::string body;
  std::thread queued([&] {
    httplib::Client q("127.0.0.1", port);
    q.set_read_timeout(20s);
    auto r = q.Get("/who");
    if (r) body = r->body;
    status = r ? r->status : -1;
  });
  HttpServerOptions o;
  o.adopt_fd = *fd;
  auto second = HttpServer::listen(o);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ((*second)->port(), port);
  (*second)->route("GET", "/who", Access::Public, [](const HttpRequest&) { return HttpResponse::json(200, R"("second")"); });
  (*second)->start();
  queued.join();
  EXPECT_EQ(status.load(), 200);
  EXPECT_EQ(body, R"("second")");
  EXPECT_EQ(c.Get("/who")->body, R"("second")");
  (*second)->stop();
}

}  // namespace
}  // namespace orch::transport
