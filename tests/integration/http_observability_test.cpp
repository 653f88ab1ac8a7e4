// /healthz and /metrics against the real binary (SPEC §7): health facts as
// JSON, metrics in the Prometheus text format checked by promtool itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/support/http_peer.h"
#include "tests/support/server_process.h"

namespace orch::test {
namespace {

class HttpObservability : public IntegrationTest {};

TEST_F(HttpObservability, HealthzReportsUptimeRestartsAndTheStore) {
  ServerProcess& server = start_server(std::vector<std::string>{"--http", "127.0.0.1:0"});
  const std::string url = server.http_url();  // waits for the server; the token file is written first
  HttpPeer peer(url, server.http_token());
  HttpReply reply = peer.get("/healthz", {}, /*with_auth=*/false);
  ASSERT_EQ(reply.status, 200) << reply.body;
  json health = reply.json();
  EXPECT_EQ(health["status"], "ok");
  EXPECT_TRUE(health["uptimeMs"].is_number_integer());
  EXPECT_EQ(health["restarts"]["count"], 0);
  EXPECT_EQ(health["restarts"]["lastReason"], "");
  EXPECT_EQ(health["pid"], server.pid());
  EXPECT_EQ(health["health"]["status"], "ok");
  EXPECT_EQ(health["store"]["ok"], true);
}

TEST_F(HttpObservability, MetricsCountTasksAndPassPromtool) {
  ServerProcess& server = start_server(std::vector<std::string>{"--http", "127.0.0.1:0"});
  const std::string url = server.http_url();  // waits for the server; the token file is written first
  HttpPeer peer(url, server.http_token());
  McpHttpSession s(peer);
  s.initialize();
  std::string done = structured(s.call_tool("submitTask", {{"command", "true"}})).value("taskId", "");
  std::string failed = structured(s.call_tool("submitTask", {{"command", "exit 4"}})).value("taskId", "");
  s.call_tool("getResult", {{"taskId", done}, {"waitSec", 20}});
  s.call_tool("getResult", {{"taskId", failed}, {"waitSec", 20}});

  HttpReply reply = peer.get("/metrics");
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type").rfind("text/plain", 0), 0u);
  const std::string& text = reply.body;
  EXPECT_NE(text.find("orchestrator_tasks{status=\"completed\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("orchestrator_tasks{status=\"failed\"} 1"), std::string::npos);
  EXPECT_NE(text.find("orchestrator_task_duration_seconds_count 2"), std::string::npos);
  EXPECT_NE(text.find("orchestrator_restarts_total 0"), std::string::npos);
  EXPECT_NE(text.find("orchestrator_healthy 1"), std::string::npos);
  EXPECT_NE(text.find("orchestrator_restart_limited 0"), std::string::npos);
  EXPECT_NE(text.find("orchestrator_resident_memory_bytes"), std::string::npos);

  if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool is not installed (scripts/setup installs it)";
  RunResult check = run_program({"/usr/bin/promtool", "check", "metrics"}, text);
  ASSERT_TRUE(check.status);
  EXPECT_EQ(check.status->code, 0) << check.out << check.err;
}

}  // namespace
}  // namespace orch::test
