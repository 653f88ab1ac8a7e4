// The HTTP side's security rules against the real binary (SPEC §7,
// MCP-NOTES §5a): bearer token, Host and Origin checks against DNS
// rebinding, loopback-only --no-auth, the token file. Each refusal is
// followed by a check that the server still serves.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/support/http_peer.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

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
