// The command-line client (SPEC §9) against a real HTTP server: each
// subcommand run as its own process, the way a person or a script runs it.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/server_process.h"

namespace orch::test {
namespace {

class CliClient : public IntegrationTest {
 protected:
  void SetUp() override {
    server_ = &start_server(std::vector<std::string>{"--http", "127.0.0.1:0"});
    ASSERT_FALSE(server_->http_url().empty());
  }
  // The subcommand, then --state-dir (before any "--", after which words
  // belong to the task), then `rest`.
  RunResult cli(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--state-dir", server_->state_dir().string()});
    return run_binary(std::move(args), {}, scaled(30s));
  }
  static int code(const RunResult& r) { return r.status && r.status->exited ? r.status->code : -1; }
  static std::string first_word_after(const std::string& text, const std::string& prefix) {
    auto at = text.find(prefix);
    if (at == std::string::npos) return "";
    at += prefix.size();
    return text.substr(at, text.find_first_of(" \n", at) - at);
  }
  ServerProcess* server_ = nullptr;
};

TEST_F(CliClient, SubmitThenWaitMirrorsTheTasksExitCode) {
  RunResult submitted = cli({"submit", "--name", "three", "--", "sh", "-c", "echo hi; exit 3"});
  ASSERT_EQ(code(submitted), 0) << submitted.err;
  std::string id = first_word_after(submitted.out, "submitted ");
  ASSERT_FALSE(id.empty()) << submitted.out;
  RunResult waited = cli({"result", "--wait", id});
  EXPECT_EQ(code(waited), 3) << waited.err;
  EXPECT_EQ(waited.out, "hi\n");
  EXPECT_NE(waited.err.find("failed"), std::string::npos);

  RunResult listed = cli({"list"});
  EXPECT_EQ(code(listed), 0);
  EXPECT_NE(listed.out.find(id), std::string::npos);
  EXPECT_NE(listed.out.find("three"), std::string::npos);

  RunResult as_json = cli({"status", "--json", id});
  ASSERT_EQ(code(as_json), 0);
  json parsed = json::parse(as_json.out, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << as_json.out;
  EXPECT_EQ(parsed["tasks"][0]["exitCode"], 3);
}

TEST_F(CliClient, FollowStreamsOutputInOrderAndLogsTails) {
  RunResult r = cli({"submit", "--follow", "--", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.1; done"});
  EXPECT_EQ(code(r), 0) << r.err;
  EXPECT_EQ(r.out, "line1\nline2\nline3\n");
  std::string id = first_word_after(r.err, "submitted ");
  RunResult tail = cli({"logs", "--tail", "6", "--stream", "stdout", id});
  EXPECT_EQ(code(tail), 0);
  EXPECT_EQ(tail.out, "line3\n");
}

TEST_F(CliClient, StatusShowsTheServerAndCancelStopsATask) {
  RunResult status = cli({"status"});
  EXPECT_EQ(code(status), 0);
  EXPECT_NE(status.out.find("maxConcurrent"), std::string::npos) << status.out;
  RunResult sleeper = cli({"submit", "sleep 600"});
  std::string id = first_word_after(sleeper.out, "submitted ");
  ASSERT_FALSE(id.empty());
  RunResult cancelled = cli({"cancel", id});
  EXPECT_EQ(code(cancelled), 0);
  EXPECT_NE(cancelled.out.find("cancelled " + id), std::string::npos);
  RunResult waited = cli({"result", "--wait", id});
  EXPECT_EQ(code(waited), 130);
}

TEST_F(CliClient, ClearErrorsForAWrongTokenNoServerAndBadUsage) {
  RunResult wrong = cli({"list", "--token", std::string(64, '0')});
  EXPECT_EQ(code(wrong), 1);
  EXPECT_NE(wrong.err.find("token"), std::string::npos) << wrong.err;
  TempDir empty;
  RunResult none = run_binary({"list", "--state-dir", empty.path().string()});
  EXPECT_EQ(code(none), 1);
  EXPECT_NE(none.err.find("no running server"), std::string::npos) << none.err;
  RunResult usage = cli({"submit"});
  EXPECT_EQ(code(usage), 2);
  RunResult bad_flag = cli({"list", "--limit", "0"});
  EXPECT_EQ(code(bad_flag), 2);
  RunResult help = run_binary({"result", "--help"});
  EXPECT_EQ(code(help), 0);
  EXPECT_NE(help.out.find("--follow"), std::string::npos);
}

}  // namespace
}  // namespace orch::test
