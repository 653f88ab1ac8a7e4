// The command-line client's pure parts: flags into submitTask arguments,
// tables, durations, the progress bar, SSE bodies.
#include <gtest/gtest.h>

#include "app/client/mcp_http_client.h"
#include "app/client/render.h"

namespace orch::app::client {
namespace {

using nlohmann::json;

TEST(ClientRender, SubmitFlagsBecomeTheToolsArguments) {
  SubmitFlags f;
  f.argv = {"make", "-j2", "test"};
  f.name = "build";
  f.tags = {"ci", "nightly"};
  f.env = {"A=1", "B=x=y"};
  f.priority = 7;
  f.timeout_sec = 90;
  f.depends_on = {"tabc"};
  f.retries = 2;
  f.idempotency_key = "k1";
  auto args = submit_arguments(f);
  ASSERT_TRUE(args);
  EXPECT_EQ((*args)["argv"], json({"make", "-j2", "test"}));
  EXPECT_FALSE(args->contains("command"));
  EXPECT_EQ((*args)["tags"], json({"ci", "nightly"}));
  EXPECT_EQ((*args)["env"], json({{"A", "1"}, {"B", "x=y"}}));
  EXPECT_EQ((*args)["priority"], 7);
  EXPECT_EQ((*args)["timeoutSec"], 90.0);
  EXPECT_EQ((*args)["dependsOn"], json({"tabc"}));
  EXPECT_EQ((*args)["retry"]["maxAttempts"], 3);
  EXPECT_EQ((*args)["idempotencyKey"], "k1");
}

TEST(ClientRender, CommandFormAndBadFlags) {
  SubmitFlags f;
  f.command = "echo hi | wc -c";
  auto args = submit_arguments(f);
  ASSERT_TRUE(args);
  EXPECT_EQ(*args, json({{"command", "echo hi | wc -c"}}));
  f.env = {"NOEQUALS"};
  auto bad = submit_arguments(f);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("KEY=VALUE"), std::string::npos);
  f.env.clear();
  f.retries = -1;
  EXPECT_FALSE(submit_arguments(f));
}

TEST(ClientRender, DurationsReadLikeAHumanWouldWriteThem) {
  EXPECT_EQ(format_duration(850), "850ms");
  EXPECT_EQ(format_duration(1234), "1.2s");
  EXPECT_EQ(format_duration(184'000), "3m04s");
  EXPECT_EQ(format_duration(7'320'000), "2h02m");
  EXPECT_EQ(format_duration(-5), "0ms");
}

TEST(ClientRender, TableColumnsAlign) {
  json tasks = json::array({
      {{"taskId", "t1"}, {"status", "completed"}, {"durationMs", 1200}, {"exitCode", 0}, {"name", "build"}},
      {{"taskId", "t22"}, {"status", "running"}, {"progress", {{"current", 1}, {"total", 4}}}, {"command", "make\ttest"}},
      {{"taskId", "t333"}, {"status", "failed"}, {"reason", "timeout"}, {"signal", 15}, {"command", std::string(80, 'x')}},
  });
  std::string table = render_task_table(tasks, 0);
  std::istringstream lines(table);
  std::string header, first, second, third;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, third);
  EXPECT_EQ(header.find("STATUS"), first.find("completed"));
  EXPECT_EQ(header.find("STATUS"), second.find("running"));
  EXPECT_NE(second.find("25%"), std::string::npos);
  EXPECT_NE(second.find("make test"), std::string::npos) << "tabs become spaces";
  EXPECT_NE(third.find("failed (timeout)"), std::string::npos);
  EXPECT_NE(third.find("sig 15"), std::string::npos);
  EXPECT_NE(third.find("..."), std::string::npos) << "long commands are cut";
  EXPECT_EQ(render_task_table(json::array(), 0).find("(no tasks)") != std::string::npos, true);
}

TEST(ClientRender, ProgressBarShowsShareAndMessage) {
  std::string bar = progress_line({{"current", 5}, {"total", 10}, {"message", "compiling"}});
  EXPECT_EQ(bar.front(), '\r');
  EXPECT_NE(bar.find("############............"), std::string::npos) << bar;
  EXPECT_NE(bar.find(" 50%"), std::string::npos);
  EXPECT_NE(bar.find("compiling"), std::string::npos);
  EXPECT_NE(progress_line({{"current", 3}}).find("] 3"), std::string::npos) << "no total: the value itself";
}

TEST(ClientRender, SseBodiesYieldTheirJsonMessages) {
  auto messages = parse_sse(
      "event: message\ndata: {\"method\":\"notifications/progress\"}\n\n"
      ": keepalive\n\n"
      "event: message\r\ndata: {\"id\":1,\"result\":{}}\r\n\r\n"
      "data: not json\n\n");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]["method"], "notifications/progress");
  EXPECT_EQ(messages[1]["id"], 1);
}

TEST(ClientRender, SubmitAndResultSentences) {
  EXPECT_EQ(describe_submit({{"taskId", "t1"}, {"status", "queued"}, {"queuePosition", 3}}),
            "submitted t1 (queued, position 3)");
  EXPECT_EQ(describe_result({{"taskId", "t1"}, {"status", "completed"}, {"durationMs", 1500}, {"exitCode", 0}}),
            "t1 completed in 1.5s, exit 0");
}

}  // namespace
}  // namespace orch::app::client
