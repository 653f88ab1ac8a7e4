#include "app/restart.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace orch::app::restart {
namespace {

HandOver sample() {
  HandOver h;
  h.restarts = {3, "health: rss: 600.0 MiB over the limit of 512.0 MiB", 1'700'000'000'123};
  h.automatic_ms = {1'700'000'000'000, 1'700'000'000'100};
  h.exec_at_ns = 987654321;
  h.state_dir = "/state/instances/2";
  h.stdio = true;
  h.stdin_fd = 7;
  h.stdio_session = {"2025-06-18", true, false, mcp::LogLevel::Error};
  h.listen_fd = 5;
  h.http_sessions = {{"abc", {"2025-11-25", true, true, mcp::LogLevel::Debug}}};
  engine::RunningProcess p;
  p.task_id = "t-1";
  p.pid = 4242;
  p.elapsed_ms = 1500;
  p.fds = {{"stdout", 10}, {"stderr", 11}, {"exit", 12}, {"lifeline", 13}};
  p.stdout_progress = {100, 90, true};
  p.stderr_progress = {3, 3, false};
  p.stop_requested = true;
  h.processes = {p};
  return h;
}

TEST(RestartHandOver, EncodesAndDecodesEveryField) {
  HandOver h = sample();
  auto back = decode(encode(h));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->restarts.count, 3);
  EXPECT_EQ(back->restarts.last_reason, h.restarts.last_reason);
  EXPECT_EQ(back->restarts.last_at_ms, h.restarts.last_at_ms);
  EXPECT_EQ(back->automatic_ms, h.automatic_ms);
  EXPECT_EQ(back->exec_at_ns, h.exec_at_ns);
  EXPECT_EQ(back->state_dir, h.state_dir);
  EXPECT_TRUE(back->stdio);
  EXPECT_EQ(back->stdin_fd, 7);
  EXPECT_EQ(back->stdio_session.protocol_version, "2025-06-18");
  EXPECT_TRUE(back->stdio_session.initialized);
  EXPECT_FALSE(back->stdio_session.ready);
  EXPECT_EQ(back->stdio_session.log_level, mcp::LogLevel::Error);
  EXPECT_EQ(back->listen_fd, 5);
  ASSERT_EQ(back->http_sessions.size(), 1u);
  EXPECT_EQ(back->http_sessions[0].id, "abc");
  EXPECT_EQ(back->http_sessions[0].state.log_level, mcp::LogLevel::Debug);
  ASSERT_EQ(back->processes.size(), 1u);
  const auto& p = back->processes[0];
  EXPECT_EQ(p.task_id, "t-1");
  EXPECT_EQ(p.pid, 4242);
  EXPECT_EQ(p.elapsed_ms, 1500);
  EXPECT_EQ(p.fd("stdout"), 10);
  EXPECT_EQ(p.fd("exit"), 12);
  EXPECT_EQ(p.fd("lifeline"), 13) << "roles this version does not use still travel";
  EXPECT_EQ(p.stdout_progress.total_bytes, 100u);
  EXPECT_EQ(p.stdout_progress.stored_bytes, 90u);
  EXPECT_TRUE(p.stdout_progress.capped);
  EXPECT_TRUE(p.stop_requested);
  EXPECT_EQ(fds_to_keep(*back), (std::vector<int>{7, 5, 10, 11, 12, 13}));
}

TEST(RestartHandOver, RefusesOtherVersionsAndBrokenText) {
  std::string text = encode(sample());
  auto at = text.find("\"version\":1");
  ASSERT_NE(at, std::string::npos);
  std::string other = text;
  other.replace(at, 11, "\"version\":2");
  auto refused = decode(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("version 2"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(decode("{\"version\":1}").ok());
  EXPECT_FALSE(decode("not json").ok());
}

TEST(RestartHandOver, StdinLeftoversSurviveAMemfdByteForByte) {
  std::string bytes = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n{\"partial\":";
  bytes.push_back('\0');
  bytes += "\xff\xfe";
  auto fd = make_memfd("orch-test", bytes);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  EXPECT_NE(::fcntl(*fd, F_GETFD) & FD_CLOEXEC, 0) << "only exec_self lets it through";
  auto back = read_and_close(*fd);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bytes);
  EXPECT_EQ(::fcntl(*fd, F_GETFD), -1) << "closed";
}

TEST(RestartHandOver, TakenFromTheEnvironmentOnceAndTheVariableRemoved) {
  auto none = take_from_environment();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value()) << "an ordinary start";

  auto fd = make_memfd("orch-test", encode(sample()));
  ASSERT_TRUE(fd.ok());
  ::setenv(kStateEnv, std::to_string(*fd).c_str(), 1);
  auto taken = take_from_environment();
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  ASSERT_TRUE(taken->has_value());
  EXPECT_EQ((*taken)->restarts.count, 3);
  EXPECT_EQ(std::getenv(kStateEnv), nullptr) << "tasks started later must not see it";
  EXPECT_EQ(::fcntl(*fd, F_GETFD), -1) << "the memfd is closed";

  ::setenv(kStateEnv, "banana", 1);
  EXPECT_FALSE(take_from_environment().ok());
  EXPECT_EQ(std::getenv(kStateEnv), nullptr);
}

TEST(RestartHandOver, PreflightPassesOnLinux) {
  auto ready = preflight();
  EXPECT_TRUE(ready.ok()) << ready.error().message;
}

}  // namespace
}  // namespace orch::app::restart
