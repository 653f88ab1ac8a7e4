#include "app/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace orch::app {
namespace {

TEST(Config, ReadsLimitsRetentionAndOutput) {
  Config c;
  auto st = parse_config_text(
      R"({"limits":{"maxConcurrent":3,"queueSize":50},"retention":{"count":10,"maxAgeHours":2},
          "output":{"streamCapMb":1}})",
      "config.json", c);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(c.max_concurrent, 3);
  EXPECT_EQ(c.queue_size, 50u);
  EXPECT_EQ(c.retention_count, 10u);
  EXPECT_EQ(c.retention_hours, 2);
  EXPECT_EQ(c.stream_cap_bytes, 1u << 20);
}

TEST(Config, RefusesAWrongTypeNamingTheFileAndThePath) {
  Config c;
  auto st = parse_config_text(R"({"limits":{"maxConcurrent":2.5}})", "my.json", c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("my.json"), std::string::npos);
  EXPECT_NE(st.error().message.find("limits.maxConcurrent"), std::string::npos);
  EXPECT_NE(st.error().message.find("integer"), std::string::npos);
  EXPECT_EQ(c.max_concurrent, Config{}.max_concurrent) << "nothing applied from a bad file";
}

// Found by fuzz/config_fuzz.cpp: a number past a double's range made
// nlohmann throw out_of_range, which nothing caught (std::terminate at start).
TEST(Config, ANumberTooLargeForADoubleIsRefusedNotACrash) {
  Config c;
  const std::string fuzzed("0.8E444444444<8ol\"88\x02#\0*\0)0}l}", 30);
  for (const std::string& text : {fuzzed, std::string(R"({"limits":{"maxConcurrent":1e400}})")}) {
    auto st = parse_config_text(text, "my.json", c);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("my.json: not valid JSON"), std::string::npos) << st.error().message;
  }
}

TEST(Config, RecoveryOrphansIsAdoptOrKillAndNothingElse) {
  Config c;
  EXPECT_TRUE(c.adopt_orphans) << "adopting is the default";
  ASSERT_TRUE(parse_config_text(R"({"recovery":{"orphans":"kill"}})", "f", c).ok());
  EXPECT_FALSE(c.adopt_orphans);
  for (const char* bad : {R"({"recovery":{"orphans":"keep"}})", R"({"recovery":{"orphans":true}})",
                          R"({"recovery":{"orfans":"kill"}})", R"({"recovery":"adopt"})"}) {
    Config d;
    auto st = parse_config_text(bad, "f", d);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.error().message.find("recovery"), std::string::npos) << st.error().message;
    EXPECT_TRUE(d.adopt_orphans) << "nothing applied from a bad file";
  }
}

TEST(Config, StoreIsAFileOrAUrlAndEmptyByDefault) {
  Config c;
  EXPECT_EQ(c.store, "") << "empty: <state-dir>/tasks.db";
  ASSERT_TRUE(parse_config_text(R"({"store":"postgresql://orch@127.0.0.1:5432/tasks"})", "f", c).ok());
  EXPECT_EQ(c.store, "postgresql://orch@127.0.0.1:5432/tasks");
  Config d;
  auto st = parse_config_text(R"({"store":{"url":"x"}})", "f", d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("store"), std::string::npos) << st.error().message;
  EXPECT_EQ(d.store, "") << "nothing applied from a bad file";
}

TEST(Config, RefusesUnknownKeysOutOfRangeValuesAndBadJson) {
  Config c;
  EXPECT_FALSE(parse_config_text(R"({"limitz":{}})", "f", c).ok());
  EXPECT_FALSE(parse_config_text(R"({"limits":{"maxConcurent":2}})", "f", c).ok());
  EXPECT_FALSE(parse_config_text(R"({"limits":{"maxConcurrent":0}})", "f", c).ok());
  auto bad = parse_config_text("{\"limits\": ", "f", c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not valid JSON"), std::string::npos);
  EXPECT_FALSE(parse_config_text("[1,2]", "f", c).ok());
}

TEST(Config, MissingDefaultFileMeansDefaultsButAnExplicitOneMustExist) {
  test::TempDir dir;
  Config c;
  EXPECT_TRUE(load_config_file(dir.path() / "none.json", false, c).ok());
  auto st = load_config_file(dir.path() / "none.json", true, c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("none.json"), std::string::npos);
  std::ofstream(dir.path() / "ok.json") << R"({"limits":{"maxConcurrent":7}})";
  ASSERT_TRUE(load_config_file(dir.path() / "ok.json", true, c).ok());
  EXPECT_EQ(c.max_concurrent, 7);
}

}  // namespace
}  // namespace orch::app

namespace orch::app {
namespace {

TEST(Config, DefaultConfigTextReadsBackAsTheDefaults) {
  const std::string text = config_file_text(Config{});
  Config modified;
  modified.max_concurrent = 3;
  modified.retention_hours = 1;
  modified.stream_cap_bytes = 1u << 20;
  modified.http_max_threads = 7;
  auto st = parse_config_text(text, "defaults", modified);
  ASSERT_TRUE(st.ok()) << st.error().message;
  const Config defaults;
  EXPECT_EQ(modified.max_concurrent, defaults.max_concurrent);
  EXPECT_EQ(modified.queue_size, defaults.queue_size);
  EXPECT_EQ(modified.max_message_bytes, defaults.max_message_bytes);
  EXPECT_EQ(modified.stream_cap_bytes, defaults.stream_cap_bytes);
  EXPECT_EQ(modified.retention_count, defaults.retention_count);
  EXPECT_EQ(modified.retention_hours, defaults.retention_hours);
  EXPECT_EQ(modified.http_max_threads, defaults.http_max_threads);
  EXPECT_EQ(modified.http_max_sessions, defaults.http_max_sessions);
  EXPECT_EQ(modified.max_rss_mb, defaults.max_rss_mb);
  EXPECT_EQ(text.back(), '\n');
}

TEST(Config, ReadsProfilesIntoEngineValues) {
  Config c;
  auto st = parse_config_text(R"({"profiles": {
      "claude": {"argv": ["claude", "-p", "{prompt}"], "maxConcurrent": 3, "timeoutSec": 1800,
                 "rateLimit": {"perMinute": 10}, "memoryLimitMb": 768, "env": {"A": "1"},
                 "retry": {"maxAttempts": 2, "backoff": "fixed"}, "circuitBreaker": {"failures": 3, "cooldownSec": 30},
                 "cpuLimitSec": 60, "openFilesLimit": 256},
      "echo": {"mode": "pool", "argv": ["python3", "w.py"],
               "pool": {"min": 1, "max": 4, "maxTasksPerWorker": 100, "maxWorkerRssMb": 512, "idleTimeoutSec": 300}}},
    "security": {"allowCommands": ["claude", "/usr/bin/python3"], "allowedDirs": ["/tmp"]},
    "limits": {"memoryFloorMb": 64}})",
                              "config.json", c);
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(c.profiles.size(), 2u);
  const engine::Profile& claude = c.profiles[0];
  EXPECT_EQ(claude.name, "claude");
  EXPECT_EQ(claude.max_concurrent, 3);
  EXPECT_EQ(claude.timeout_ms, 1800000);
  EXPECT_EQ(claude.rate_limit.per_minute, 10);
  EXPECT_EQ(claude.limits.memory_mb, 768);
  EXPECT_EQ(claude.limits.cpu_sec, 60);
  EXPECT_EQ(claude.limits.open_files, 256);
  EXPECT_EQ(claude.retry->max_attempts, 2);
  EXPECT_EQ(claude.breaker.failures, 3);
  EXPECT_EQ(claude.breaker.cooldown_ms, 30000);
  const engine::Profile& echo = c.profiles[1];
  EXPECT_EQ(echo.mode, engine::ProfileMode::Pool);
  EXPECT_EQ(echo.pool.max, 4);
  EXPECT_EQ(echo.pool.max_worker_rss_mb, 512);
  EXPECT_EQ(echo.pool.idle_timeout_ms, 300000);
  EXPECT_EQ(c.security.allow_commands, (std::vector<std::string>{"claude", "/usr/bin/python3"}));
  EXPECT_EQ(c.security.allowed_dirs, std::vector<std::string>{"/tmp"});
  EXPECT_EQ(c.memory_floor_mb, 64);
}

TEST(Config, RefusesBadProfilesWithTheirJsonPath) {
  struct Case {
    const char* text;
    const char* path;
  };
  const Case cases[] = {
      {R"({"profiles": {"a": {}}})", "profiles.a"},
      {R"({"profiles": {"a": {"argv": []}}})", "profiles.a.argv"},
      {R"({"profiles": {"a": {"argv": ["x", 3]}}})", "profiles.a.argv[1]"},
      {R"({"profiles": {"a": {"argv": ["x", "{open"]}}})", "profiles.a.argv"},
      {R"({"profiles": {"a": {"argv": ["x"], "maxConcurrent": 0}}})", "profiles.a.maxConcurrent"},
      {R"({"profiles": {"a": {"argv": ["x"], "rateLimit": {"perMinute": -1}}}})", "profiles.a.rateLimit.perMinute"},
      {R"({"profiles": {"a": {"argv": ["x"], "bogus": 1}}})", "profiles.a.bogus"},
      {R"({"profiles": {"a": {"argv": ["x"], "pool": {"min": 1}}}})", "profiles.a.pool"},
      {R"({"profiles": {"a": {"argv": ["x", "{p}"], "mode": "pool"}}})", "profiles.a.argv"},
      {R"({"profiles": {"a": {"argv": ["x"], "mode": "pool", "pool": {"min": 5, "max": 2}}}})", "profiles.a.pool"},
      {R"({"profiles": {"a": {"argv": ["x"], "cwd": "/no/such/dir"}}})", "profiles.a.cwd"},
      {R"({"profiles": {"a b": {"argv": ["x"]}}})", "profiles.a b"},
      {R"({"security": {"allowCommands": ["bin/ls"]}})", "security.allowCommands[0]"},
      {R"({"security": {"allowedDirs": ["rel"]}})", "security.allowedDirs[0]"},
      {R"({"security": {"allowedDirs": []}})", "security.allowedDirs"},
      {R"({"security": {"deny": []}})", "security.deny"},
  };
  for (const Case& k : cases) {
    Config c;
    auto st = parse_config_text(k.text, "cfg.json", c);
    ASSERT_FALSE(st.ok()) << k.text;
    EXPECT_NE(st.error().message.find(std::string("cfg.json: ") + k.path), std::string::npos)
        << k.text << " → " << st.error().message;
    EXPECT_TRUE(c.profiles.empty()) << "nothing applied from a bad file";
  }
}

TEST(Config, ReadsTheClusterKeysAndRefusesAHeartbeatThatCouldLoseTheLease) {
  Config c;
  ASSERT_TRUE(parse_config_text(R"({"cluster":{"nodeName":"build-1","leaseMs":4000,"heartbeatMs":500}})", "c.json", c));
  EXPECT_EQ(c.cluster_node_name, "build-1");
  EXPECT_EQ(c.cluster_lease_ms, 4000);
  EXPECT_EQ(c.cluster_heartbeat_ms, 500);
  Config d;
  auto st = parse_config_text(R"({"cluster":{"leaseMs":1000,"heartbeatMs":600}})", "d.json", d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("cluster.heartbeatMs"), std::string::npos) << st.error().message;
  EXPECT_EQ(d.cluster_lease_ms, 30000) << "a refused file changes nothing";
  EXPECT_FALSE(parse_config_text(R"({"cluster":{"leader":true}})", "e.json", d).ok());
}

}  // namespace
}  // namespace orch::app
