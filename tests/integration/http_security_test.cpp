// The HTTP side's security rules against the real binary (SPEC §7,
// MCP-NOTES §5a): bearer token, Host and Origin checks against DNS
// rebinding, loopback-only --no-auth, the token file, oversized heads and
// clients that trickle their headers in (slowloris). Each refusal is
// followed by a check that the server still serves.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_peer.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

class HttpSecurity : public IntegrationTest {
 protected:
  HttpPeer start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--http", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = &start_server(args);
    std::string url = server_->http_url();
    return HttpPeer(url, server_->http_token());
  }
  void expect_still_serving(const HttpPeer& peer) {
    McpHttpSession s(peer);
    s.initialize();
    EXPECT_TRUE(s.request("ping").contains("result"));
  }
  ServerProcess* server_ = nullptr;
};

// A bare TCP connection to the server, for what an HTTP client library will
// not send: a head without an end, bytes one at a time.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool send(std::string_view bytes) {
    while (connected_ && !bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return connected_;
  }
  // The server has answered or hung up (a slow client's only news).
  bool closed_by_server() const {
    pollfd p{fd_, POLLIN, 0};
    return !connected_ || ::poll(&p, 1, 0) != 0;
  }
  // Everything the server sends until it closes the connection; nullopt if
  // it is still open at the deadline.
  std::optional<std::string> read_to_end(std::chrono::milliseconds timeout) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return got;  // closed (or reset: it hung up on unread bytes)
      got.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

const char* kPing = R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})";

TEST_F(HttpSecurity, TokenFileIsPrivateAndReusedAcrossStarts) {
  TempDir dir;  // outlives both servers (a server's own temp dir goes with it)
  const auto state = dir.path() / "state";
  ServerOptions options;
  options.args = {"--http", "127.0.0.1:0"};
  options.state_dir = state;
  server_ = &start_server(options);
  std::string url = server_->http_url();
  HttpPeer peer(url, server_->http_token());
  const auto token_file = state / "http-token";
  struct stat st {};
  ASSERT_EQ(::stat(token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(peer.token().size(), 64u);
  EXPECT_TRUE(server_->wait_stderr_contains(peer.token())) << "the token is printed at start";
  stop_server(*server_);
  EXPECT_FALSE(std::filesystem::exists(state / "http.json")) << "removed when the server stops";
  ServerProcess& again = start_server(options);
  again.http_url();
  EXPECT_EQ(again.http_token(), peer.token());
}

TEST_F(HttpSecurity, McpMetricsAndDashboardDataNeedTheToken) {
  HttpPeer peer = start();
  for (const char* path : {"/metrics", "/api/overview"}) {
    HttpReply none = peer.get(path, {}, /*with_auth=*/false);
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_NE(none.header("www-authenticate").find("Bearer"), std::string::npos) << path;
    EXPECT_TRUE(none.json().contains("error")) << path << ": " << none.body;
  }
  HttpReply none = peer.post("/mcp", kPing, mcp_post_headers(), /*with_auth=*/false);
  EXPECT_EQ(none.status, 401);
  HttpReply wrong = peer.post("/mcp", kPing, {{"Accept", "application/json, text/event-stream"},
                                              {"Authorization", "Bearer " + std::string(64, '0')}},
                              /*with_auth=*/false);
  EXPECT_EQ(wrong.status, 401);
  HttpReply not_bearer = peer.post("/mcp", kPing, {{"Accept", "application/json, text/event-stream"},
                                                   {"Authorization", "Basic " + peer.token()}},
                                   /*with_auth=*/false);
  EXPECT_EQ(not_bearer.status, 401);
  // The page itself and /healthz hold nothing secret.
  EXPECT_EQ(peer.get("/", {}, false).status, 200);
  EXPECT_EQ(peer.get("/healthz", {}, false).status, 200);
  EXPECT_EQ(peer.get("/metrics").status, 200);
  expect_still_serving(peer);
}

TEST_F(HttpSecurity, ForeignHostOrOriginIs403) {
  HttpPeer peer = start();
  const std::string port = std::to_string(peer.port());
  HttpReply rebinding = peer.post("/mcp", kPing,
                                  {{"Accept", "application/json, text/event-stream"},
                                   {"Host", "evil.example.com"},
                                   {"Origin", "http://evil.example.com"}});
  EXPECT_EQ(rebinding.status, 403);
  EXPECT_TRUE(rebinding.json().contains("error")) << rebinding.body;
  HttpReply foreign_host = peer.get("/healthz", {{"Host", "evil.example.com:" + port}});
  EXPECT_EQ(foreign_host.status, 403);
  HttpReply foreign_origin = peer.get("/healthz", {{"Origin", "https://evil.example.com"}});
  EXPECT_EQ(foreign_origin.status, 403);
  HttpReply null_origin = peer.get("/healthz", {{"Origin", "null"}});
  EXPECT_EQ(null_origin.status, 403);
  // Our own names pass.
  EXPECT_EQ(peer.get("/healthz", {{"Host", "localhost:" + port}}).status, 200);
  EXPECT_EQ(peer.get("/healthz", {{"Host", "127.0.0.1:" + port}, {"Origin", "http://127.0.0.1:" + port}}).status,
            200);
  EXPECT_EQ(peer.get("/healthz", {{"Origin", "http://localhost:" + port}}).status, 200);
  expect_still_serving(peer);
}

TEST_F(HttpSecurity, NoAuthServesWithoutAToken) {
  HttpPeer peer = start({"--no-auth"});
  EXPECT_TRUE(peer.token().empty());
  EXPECT_EQ(peer.get("/metrics", {}, false).status, 200);
  expect_still_serving(peer);
}

TEST_F(HttpSecurity, OversizedHeadsAreRefusedAndTheServerGoesOn) {
  HttpPeer peer = start();
  // One header line past httplib's 8 KiB, and a head of many short lines
  // past our 64 KiB: both refused (400, or the connection closed), never
  // buffered without end.
  const std::string start_line = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  std::string many_lines;
  for (int i = 0; i < 2000; ++i) many_lines += "X-Pad-" + std::to_string(i) + ": " + std::string(40, 'p') + "\r\n";
  for (const std::string& head : {start_line + "X-Big: " + std::string(100'000, 'b') + "\r\n\r\n",
                                  start_line + many_lines + "\r\n"}) {
    RawClient client(peer.port());
    client.send(head);
    std::optional<std::string> answer = client.read_to_end(scaled(10s));
    ASSERT_TRUE(answer.has_value()) << "the server kept a connection with a " << head.size() << "-byte head open";
    EXPECT_EQ(answer->rfind("HTTP/1.1 200", 0), std::string::npos) << "a " << head.size() << "-byte head was served";
  }
  expect_still_serving(peer);
}

TEST_F(HttpSecurity, SlowClientsCannotHoldTheServer) {
  TempDir dir;
  const auto config = dir.path() / "config.json";
  std::ofstream(config) << R"({"limits": {"httpThreads": 4, "httpHeaderTimeoutSec": 2}})";
  HttpPeer peer = start({"--config", config.string()});
  // Twice as many slow clients as threads, each sending one header byte a
  // second and reconnecting when cut off, as slowloris does.
  constexpr int kSlowClients = 8;
  std::atomic<int> cut_off{0};
  std::promise<void> all_connected;
  std::jthread attack([&](std::stop_token stop) {
    auto connect = [&] {
      auto c = std::make_unique<RawClient>(peer.port());
      c->send("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
      return c;
    };
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < kSlowClients; ++i) clients.push_back(connect());
    all_connected.set_value();
    std::mutex mu;
    std::condition_variable_any pace;
    while (!stop.stop_requested()) {
      for (auto& c : clients) {
        if (c->closed_by_server() || !c->send("a")) {
          ++cut_off;
          c = connect();
        }
      }
      // The attack's own pace (a byte a second), not a wait for the server.
      std::unique_lock lock(mu);
      pace.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
    }
  });
  all_connected.get_future().wait();
  const auto started = std::chrono::steady_clock::now();
  McpHttpSession s(peer);
  s.initialize();
  EXPECT_TRUE(s.request("ping").contains("result"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, scaled(30s)) << "ping waited behind the slow clients";
  EXPECT_TRUE(wait_until([&] { return cut_off.load() > 0; }, scaled(10s))) << "no slow client was ever cut off";
}

TEST_F(HttpSecurity, NoAuthIsRefusedOffLoopback) {
  RunResult run = run_binary({"--http", "0.0.0.0:0", "--no-auth"});
  ASSERT_TRUE(run.status);
  EXPECT_EQ(run.status->code, 2);
  EXPECT_NE(run.err.find("loopback"), std::string::npos) << run.err;
}

TEST_F(HttpSecurity, ABusyPortIsAStartUpError) {
  HttpPeer peer = start();
  RunResult run = run_binary({"--http", "127.0.0.1:" + std::to_string(peer.port()), "--state-dir",
                              (server_->state_dir() / "other").string()});
  ASSERT_TRUE(run.status);
  EXPECT_EQ(run.status->code, 1);
  EXPECT_NE(run.err.find("127.0.0.1:" + std::to_string(peer.port())), std::string::npos) << run.err;
  expect_still_serving(peer);
}

TEST_F(HttpSecurity, BadListenAddressIsAUsageError) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:99999", ":80", "127.0.0.1:http"}) {
    RunResult run = run_binary({"--http", bad});
    ASSERT_TRUE(run.status) << bad;
    EXPECT_EQ(run.status->code, 2) << bad;
    EXPECT_NE(run.err.find("--http"), std::string::npos) << bad << ": " << run.err;
  }
}

}  // namespace
}  // namespace orch::test
