// Every tool behaviour over stdio with real /bin/sh tasks (SPEC §3, §4):
// submit forms and options, status, output windows, long-poll and progress,
// concurrency of requests, priorities, dependencies, retries, idempotency,
// delays, timeouts, exit codes, cancellation, queue bounds and listing.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

using Clock = std::chrono::steady_clock;

bool has_status(const json& task, const char* status) { return task.value("status", "") == status; }

class StdioTasks : public IntegrationTest {
 protected:
  void SetUp() override {
    server_ = &start_server();
    server_->initialize();
  }

  ServerProcess& server() { return *server_; }

  // A task that runs until the test creates `gate` (a file in dir_).
  std::string gated(const std::string& gate, const std::string& then = "true") const {
    return "while [ ! -e '" + (dir_.path() / gate).string() + "' ]; do sleep 0.02; done; " + then;
  }
  void open_gate(const std::string& gate) const { write_file(dir_.path() / gate, ""); }

  ServerProcess* server_ = nullptr;
  TempDir dir_;
};

// --- submit forms and options -------------------------------------------------

TEST_F(StdioTasks, CommandFormRunsThroughTheShell) {
  json submitted = structured(server().call_tool("submitTask", {{"command", "echo hello; echo oops >&2"}}));
  ASSERT_TRUE(submitted.contains("taskId"));
  const std::string id = submitted["taskId"];
  EXPECT_EQ(id.size(), 27u);
  EXPECT_EQ(id[0], 't');
  std::string status = submitted.value("status", "");
  EXPECT_TRUE(status == "queued" || status == "running") << status;
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "completed");
  EXPECT_EQ(result.value("exitCode", -1), 0);
  EXPECT_EQ(result["stdout"].value("text", ""), "hello\n");
  EXPECT_EQ(result["stderr"].value("text", ""), "oops\n");
}

TEST_F(StdioTasks, ArgvFormRunsWithoutAShell) {
  std::string id =
      server().submit({{"argv", {"/bin/sh", "-c", "printf '%s|' \"$@\"", "sh", "a b", "$HOME", "c"}}});
  json result = server().wait_result(id);
  EXPECT_EQ(result["stdout"].value("text", ""), "a b|$HOME|c|");
  // argv[0] without a slash is looked up in PATH; nothing is expanded.
  std::string literal = server().submit({{"argv", {"printf", "%s", "no $SHELL; here"}}});
  EXPECT_EQ(server().wait_result(literal)["stdout"].value("text", ""), "no $SHELL; here");
}

TEST_F(StdioTasks, ProgramThatCannotStartFailsWithSpawnError) {
  std::string id = server().submit({{"argv", {"/nonexistent/program-xyz"}}});
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "failed") << result.dump();
  EXPECT_EQ(result.value("reason", ""), "spawn_error") << result.dump();
}

TEST_F(StdioTasks, EnvIsMergedOverTheServersEnvironment) {
  std::string id = server().submit({{"command", "echo \"$FOO/$EMPTY/\"; test -n \"$PATH\" && echo path-kept"},
                                    {"env", {{"FOO", "bar baz"}, {"EMPTY", ""}}}});
  json result = server().wait_result(id);
  EXPECT_EQ(result["stdout"].value("text", ""), "bar baz//\npath-kept\n");
}

TEST_F(StdioTasks, CwdIsWhereTheTaskRuns) {
  std::string id = server().submit({{"command", "pwd -P"}, {"cwd", dir_.path().string()}});
  json result = server().wait_result(id);
  EXPECT_EQ(result["stdout"].value("text", ""), std::filesystem::canonical(dir_.path()).string() + "\n");
}

TEST_F(StdioTasks, StdinTextIsFedToTheTask) {
  std::string input = "line one\nline two\n\xc3\xa9t\xc3\xa9\n";
  std::string id = server().submit({{"command", "cat"}, {"stdin", input}});
  json result = server().wait_result(id);
  EXPECT_EQ(result["stdout"].value("text", ""), input);
}

TEST_F(StdioTasks, DefaultStdinIsDevNull) {
  auto start = Clock::now();
  std::string id = server().submit({{"command", "cat; echo end"}, {"timeoutSec", 20}});
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "completed") << "cat must see EOF at once: " << result.dump();
  EXPECT_EQ(result["stdout"].value("text", ""), "end\n");
  EXPECT_LT(Clock::now() - start, scaled(5s));
  std::string tty = server().submit({{"command", "readlink /proc/self/fd/0"}});
  EXPECT_EQ(server().wait_result(tty)["stdout"].value("text", ""), "/dev/null\n");
}

TEST_F(StdioTasks, NameAndTagsAreKept) {
  std::string id = server().submit({{"command", "true"}, {"name", "build all"}, {"tags", {"ci", "fast"}}});
  server().wait_result(id);
  json task = server().task(id);
  EXPECT_EQ(task.value("name", ""), "build all");
  EXPECT_EQ(task.value("tags", json::array()), json::array({"ci", "fast"}));
}

// --- getStatus ----------------------------------------------------------------

TEST_F(StdioTasks, GetStatusOfOneTaskHasTheDocumentedFields) {
  std::string id = server().submit({{"command", "exit 0"}, {"name", "status-check"}});
  server().wait_result(id);
  json task = server().task(id);
  EXPECT_EQ(task.value("taskId", ""), id);
  EXPECT_EQ(task.value("status", ""), "completed");
  EXPECT_EQ(task.value("exitCode", -1), 0);
  EXPECT_EQ(task.value("attempt", 0), 1);
  EXPECT_EQ(task.value("maxAttempts", 0), 1);
  for (const char* key : {"submittedAt", "startedAt", "finishedAt"}) {
    ASSERT_TRUE(task.contains(key)) << key;
    EXPECT_GT(parse_iso_ms(task[key]), 0) << task[key];
  }
  EXPECT_LE(parse_iso_ms(task["submittedAt"]), parse_iso_ms(task["startedAt"]));
  EXPECT_LE(parse_iso_ms(task["startedAt"]), parse_iso_ms(task["finishedAt"]));
  EXPECT_TRUE(task.contains("durationMs"));
  EXPECT_TRUE(task["dependsOn"].is_array());
  EXPECT_FALSE(task.contains("pid")) << "a finished task's pid may belong to someone else now";
}

TEST_F(StdioTasks, GetStatusOfARunningTaskHasItsPid) {
  std::string id = server().submit({{"command", gated("go")}});
  ASSERT_TRUE(
      server().wait_task(id, [](const json& t) { return has_status(t, "running") && t.contains("pid"); }));
  json task = server().task(id);
  EXPECT_GT(task.value("pid", 0), 0);
  open_gate("go");
  EXPECT_EQ(server().wait_result(id).value("status", ""), "completed");
}

TEST_F(StdioTasks, GetStatusOfSeveralTasksListsTheUnknownOnes) {
  std::string a = server().submit({{"command", "true"}});
  std::string b = server().submit({{"command", "false"}});
  json out = structured(server().call_tool("getStatus", {{"taskIds", {a, b, "tnotatask"}}}));
  ASSERT_TRUE(out.contains("tasks"));
  ASSERT_EQ(out["tasks"].size(), 2u);
  EXPECT_EQ(out["tasks"][0].value("taskId", ""), a);
  EXPECT_EQ(out["tasks"][1].value("taskId", ""), b);
  EXPECT_EQ(out.value("unknown", json::array()), json::array({"tnotatask"}));
  server().wait_result(a);
  server().wait_result(b);
}

TEST_F(StdioTasks, GetStatusWithoutArgumentsDescribesTheOrchestrator) {
  std::string done = server().submit({{"command", "true"}});
  server().wait_result(done);
  std::string running = server().submit({{"command", gated("go")}});
  ASSERT_TRUE(server().wait_task(running, [](const json& t) { return has_status(t, "running"); }));
  json out = structured(server().call_tool("getStatus"));
  ASSERT_TRUE(out.contains("orchestrator")) << out.dump();
  const json& o = out["orchestrator"];
  for (const char* s : {"queued", "waiting", "running", "completed", "failed", "cancelled"}) {
    EXPECT_TRUE(o["tasks"].contains(s)) << s;
  }
  EXPECT_EQ(o["tasks"].value("completed", 0), 1);
  EXPECT_EQ(o["tasks"].value("running", 0), 1);
  EXPECT_EQ(o.value("running", 0), 1);
  EXPECT_EQ(o.value("queueDepth", -1), 0);
  EXPECT_GT(o.value("queueLimit", 0), 0);
  EXPECT_GT(o.value("maxConcurrent", 0), 0);
  ASSERT_TRUE(o.contains("workers"));
  EXPECT_TRUE(o["workers"].is_object());
  ASSERT_TRUE(o.contains("memory"));
  EXPECT_GT(o["memory"].value("rssKb", 0), 0);
  EXPECT_GE(o["memory"].value("peakRssKb", 0), o["memory"].value("rssKb", 0));
  EXPECT_GE(o.value("uptimeMs", -1), 0);
  ASSERT_TRUE(o.contains("restarts"));
  EXPECT_EQ(o["restarts"].value("count", -1), 0);
  EXPECT_FALSE(o.value("version", "").empty());
  EXPECT_EQ(o.value("stateDir", ""), server().state_dir().string());
  open_gate("go");
  server().wait_result(running);
}

// --- getResult windows ----------------------------------------------------------

TEST_F(StdioTasks, GetResultPagesThroughOutputByOffset) {
  std::string expected;
  for (int i = 1; i <= 1000; ++i) expected += std::to_string(i) + "\n";
  std::string id = server().submit({{"command", "seq 1 1000; echo to-stderr >&2"}});
  ASSERT_EQ(server().wait_result(id).value("status", ""), "completed");

  json first =
      structured(server().call_tool("getResult", {{"taskId", id}, {"stream", "stdout"}, {"maxBytes", 100}}));
  ASSERT_TRUE(first.contains("stdout"));
  EXPECT_FALSE(first.contains("stderr")) << "stream stdout returns only stdout";
  const json& w = first["stdout"];
  EXPECT_EQ(w.value("text", ""), expected.substr(0, 100));
  EXPECT_EQ(w.value("offset", -1), 0);
  EXPECT_EQ(w.value("nextOffset", -1), 100);
  EXPECT_EQ(w.value("totalBytes", 0u), expected.size());
  EXPECT_TRUE(w.value("truncated", false));
  EXPECT_FALSE(w.value("capped", true));

  std::string all;
  std::uint64_t offset = 0;
  std::set<std::uint64_t> seen;
  while (offset < expected.size()) {
    ASSERT_TRUE(seen.insert(offset).second) << "offset did not advance";
    json page = structured(server().call_tool(
        "getResult", {{"taskId", id}, {"stream", "stdout"}, {"offset", offset}, {"maxBytes", 777}}));
    const json& p = page["stdout"];
    EXPECT_EQ(p.value("offset", 0u), offset);
    all += p.value("text", "");
    offset = p.value("nextOffset", 0u);
  }
  EXPECT_EQ(all, expected);
  json last = structured(server().call_tool(
      "getResult", {{"taskId", id}, {"stream", "stdout"}, {"offset", 3000}, {"maxBytes", 100000}}));
  EXPECT_EQ(last["stdout"].value("text", ""), expected.substr(3000));
  EXPECT_EQ(last["stdout"].value("nextOffset", 0u), expected.size());
  EXPECT_TRUE(last["stdout"].value("truncated", false)) << "bytes before the offset exist";
  json whole = structured(server().call_tool("getResult", {{"taskId", id}, {"maxBytes", 1 << 20}}));
  EXPECT_EQ(whole["stdout"].value("text", ""), expected);
  EXPECT_FALSE(whole["stdout"].value("truncated", true));
}

TEST_F(StdioTasks, GetResultTailAndStreams) {
  std::string id = server().submit({{"command", "seq 1 100; printf 'e1\\ne2\\n' >&2"}});
  server().wait_result(id);
  json tail = structured(server().call_tool(
      "getResult", {{"taskId", id}, {"stream", "stdout"}, {"tail", true}, {"maxBytes", 8}}));
  const json& w = tail["stdout"];
  EXPECT_EQ(w.value("text", ""), "\n99\n100\n");
  EXPECT_EQ(w.value("nextOffset", 0u), w.value("totalBytes", 1u));
  EXPECT_EQ(w.value("offset", 0u) + 8, w.value("totalBytes", 0u));
  EXPECT_TRUE(w.value("truncated", false));

  json err = structured(server().call_tool("getResult", {{"taskId", id}, {"stream", "stderr"}}));
  EXPECT_FALSE(err.contains("stdout"));
  EXPECT_EQ(err["stderr"].value("text", ""), "e1\ne2\n");
  EXPECT_EQ(err["stderr"].value("totalBytes", 0), 6);
  json both = structured(server().call_tool("getResult", {{"taskId", id}, {"stream", "both"}}));
  EXPECT_TRUE(both.contains("stdout") && both.contains("stderr"));
  json dflt = structured(server().call_tool("getResult", {{"taskId", id}}));
  EXPECT_TRUE(dflt.contains("stdout") && dflt.contains("stderr")) << "default is both";
  EXPECT_TRUE(
      is_tool_error(server().call_tool("getResult", {{"taskId", id}, {"tail", true}, {"offset", 3}})));
}

TEST_F(StdioTasks, ResultIsTheSameAsTextContent) {
  std::string id = server().submit({{"command", "echo same"}});
  server().wait_result(id);
  json result = server().call_tool("getResult", {{"taskId", id}});
  json parsed = json::parse(result_text(result));
  EXPECT_EQ(parsed, result["structuredContent"]);
}

// --- long-poll and progress -------------------------------------------------------

TEST_F(StdioTasks, WaitSecReturnsAsSoonAsTheTaskEnds) {
  std::string id = server().submit({{"command", "sleep 0.5; echo finished"}});
  auto start = Clock::now();
  json result = structured(server().call_tool("getResult", {{"taskId", id}, {"waitSec", 30}}, scaled(40s)));
  auto took = Clock::now() - start;
  EXPECT_EQ(result.value("status", ""), "completed");
  EXPECT_EQ(result["stdout"].value("text", ""), "finished\n");
  EXPECT_LT(took, scaled(5s)) << "the long-poll should end with the task, not the wait";
  EXPECT_GE(took, 300ms);
}

TEST_F(StdioTasks, WaitSecRunningOutReturnsTheOutputSoFar) {
  std::string id = server().submit({{"command", "echo partial; " + gated("go")}});
  ASSERT_TRUE(wait_until(
      [&] {
        json r = structured(server().call_tool("getResult", {{"taskId", id}}));
        return r["stdout"].value("text", "") == "partial\n";
      },
      scaled(10s), 20ms));
  auto start = Clock::now();
  json result = structured(server().call_tool("getResult", {{"taskId", id}, {"waitSec", 0.5}}));
  EXPECT_GE(Clock::now() - start, 450ms);
  EXPECT_EQ(result.value("status", ""), "running");
  EXPECT_EQ(result["stdout"].value("text", ""), "partial\n");
  open_gate("go");
  EXPECT_EQ(server().wait_result(id).value("status", ""), "completed");
}

TEST_F(StdioTasks, ProgressLinesBecomeProgressNotificationsWhileWaiting) {
  std::string id = server().submit(
      {{"command",
        "echo '::progress 1/3 step one'; sleep 0.3; echo '::progress 2/3 step two'; sleep 0.3; "
        "echo '::progress 3/3 step three'; sleep 0.3; echo done"}});
  json result = structured(server().call_tool("getResult", {{"taskId", id}, {"waitSec", 30}}, scaled(40s),
                                              json("progress-token-1")));
  EXPECT_EQ(result.value("status", ""), "completed");
  // The progress lines stay in the output.
  EXPECT_NE(result["stdout"].value("text", "").find("::progress 2/3 step two\n"), std::string::npos);
  ASSERT_TRUE(result.contains("progress"));
  EXPECT_EQ(result["progress"].value("current", 0), 3);
  EXPECT_EQ(result["progress"].value("total", 0), 3);
  EXPECT_EQ(result["progress"].value("message", ""), "step three");

  std::vector<json> notes = server().take_notifications("notifications/progress");
  ASSERT_GE(notes.size(), 2u) << "expected progress while the task moved from 1/3 to 3/3";
  double last = -1;
  bool saw_step = false;
  for (const json& n : notes) {
    const json& p = n["params"];
    EXPECT_EQ(p.value("progressToken", json()), json("progress-token-1"));
    ASSERT_TRUE(p["progress"].is_number());
    double value = p["progress"].get<double>();
    EXPECT_GT(value, last) << "progress must strictly increase: " << n.dump();
    last = value;
    if (p.value("message", "").find("step t") != std::string::npos) saw_step = true;
  }
  EXPECT_TRUE(saw_step) << "the task's own progress message should reach the user";
  json task = server().task(id);
  EXPECT_EQ(task["progress"].value("current", 0), 3);
}

TEST_F(StdioTasks, NoProgressNotificationsWithoutAToken) {
  std::string id =
      server().submit({{"command", "echo '::progress 1/2'; sleep 0.2; echo '::progress 2/2'; sleep 0.2"}});
  json result = structured(server().call_tool("getResult", {{"taskId", id}, {"waitSec", 30}}, scaled(40s)));
  EXPECT_EQ(result.value("status", ""), "completed");
  EXPECT_TRUE(server().notifications("notifications/progress").empty());
}

TEST_F(StdioTasks, RequestsAreServedWhileALongPollWaits) {
  std::string id = server().submit({{"command", "sleep 5"}});
  ASSERT_TRUE(server().wait_task(id, [](const json& t) { return has_status(t, "running"); }));
  // The long-poll goes first on the pipe, so the server reads it before the rest.
  ASSERT_TRUE(
      server().send({{"jsonrpc", "2.0"},
                     {"id", "long-poll"},
                     {"method", "tools/call"},
                     {"params", {{"name", "getResult"}, {"arguments", {{"taskId", id}, {"waitSec", 20}}}}}}));
  auto start = Clock::now();
  EXPECT_TRUE(server().request("ping").contains("result"));
  EXPECT_LT(Clock::now() - start, scaled(1s));
  start = Clock::now();
  json status = server().task(id);
  EXPECT_LT(Clock::now() - start, scaled(1s));
  EXPECT_EQ(status.value("status", ""), "running");
  // A second long-poll on another task ends with its task, not after the first.
  std::string quick = server().submit({{"command", "sleep 0.2"}});
  start = Clock::now();
  EXPECT_EQ(server().wait_result(quick).value("status", ""), "completed");
  EXPECT_LT(Clock::now() - start, scaled(3s));
  EXPECT_FALSE(server().wait_response(json("long-poll"), 0ms)) << "the first long-poll ended early";
  structured(server().call_tool("cancelTask", {{"taskId", id}}));
  auto polled = server().wait_response(json("long-poll"));
  ASSERT_TRUE(polled && polled->contains("result"));
  EXPECT_EQ(structured(polled->at("result")).value("status", ""), "cancelled");
}

// --- scheduling -------------------------------------------------------------------

TEST_F(StdioTasks, HigherPriorityRunsFirstAndFifoWithinALevel) {
  ServerProcess& s = start_server(std::vector<std::string>{"--max-concurrent", "1"});
  s.initialize();
  const std::string order = (dir_.path() / "order").string();
  std::string blocker = s.submit({{"command", gated("go")}});
  ASSERT_TRUE(s.wait_task(blocker, [](const json& t) { return has_status(t, "running"); }));
  auto appender = [&](const std::string& name, int priority) {
    return s.submit(
        {{"command", "echo " + name + " >> '" + order + "'"}, {"priority", priority}, {"name", name}});
  };
  std::string low = appender("low", 1);
  std::string mid_a = appender("mid-a", 5);
  std::string mid_b = appender("mid-b", 5);
  std::string high = appender("high", 9);
  json queued = s.task(low);
  EXPECT_EQ(queued.value("status", ""), "queued");
  EXPECT_EQ(queued.value("queuePosition", 0), 4) << "lowest priority waits behind three others";
  EXPECT_EQ(s.task(high).value("queuePosition", 0), 1);
  open_gate("go");
  for (const std::string& id : {low, mid_a, mid_b, high}) {
    EXPECT_EQ(s.wait_result(id).value("status", ""), "completed");
  }
  EXPECT_EQ(read_file(order), "high\nmid-a\nmid-b\nlow\n");
  EXPECT_LE(parse_iso_ms(s.task(high)["startedAt"]), parse_iso_ms(s.task(low)["startedAt"]));
}

TEST_F(StdioTasks, DependentTaskWaitsForItsDependency) {
  const std::string order = (dir_.path() / "order").string();
  std::string a = server().submit({{"command", gated("go", "echo a >> '" + order + "'")}});
  std::string b = server().submit({{"command", "echo b >> '" + order + "'"}, {"dependsOn", {a}}});
  json waiting = server().task(b);
  EXPECT_EQ(waiting.value("status", ""), "waiting") << waiting.dump();
  EXPECT_EQ(waiting.value("dependsOn", json::array()), json::array({a}));
  open_gate("go");
  EXPECT_EQ(server().wait_result(b).value("status", ""), "completed");
  EXPECT_EQ(read_file(order), "a\nb\n");
  EXPECT_GE(parse_iso_ms(server().task(b)["startedAt"]), parse_iso_ms(server().task(a)["finishedAt"]));
}

TEST_F(StdioTasks, FailedDependencyCancelsDependentsTransitively) {
  std::string a = server().submit({{"command", gated("go", "exit 1")}});
  std::string b = server().submit({{"command", "echo never"}, {"dependsOn", {a}}});
  std::string c = server().submit({{"command", "echo never"}, {"dependsOn", {b}}});
  std::string d = server().submit({{"command", "echo independent"}});
  open_gate("go");
  json ra = server().wait_result(a);
  EXPECT_EQ(ra.value("status", ""), "failed");
  for (const std::string& id : {b, c}) {
    json r = server().wait_result(id);
    EXPECT_EQ(r.value("status", ""), "cancelled") << r.dump();
    EXPECT_EQ(r.value("reason", ""), "dependency_failed") << r.dump();
    EXPECT_EQ(r["stdout"].value("text", ""), "");
    EXPECT_FALSE(server().task(id).contains("startedAt")) << "it never ran";
  }
  EXPECT_EQ(server().wait_result(d).value("status", ""), "completed");
}

TEST_F(StdioTasks, CancelledDependencyCancelsDependents) {
  std::string a = server().submit({{"command", gated("go")}});
  std::string b = server().submit({{"command", "true"}, {"dependsOn", {a}}});
  structured(server().call_tool("cancelTask", {{"taskId", a}}));
  json r = server().wait_result(b);
  EXPECT_EQ(r.value("status", ""), "cancelled");
  EXPECT_EQ(r.value("reason", ""), "dependency_failed");
}

TEST_F(StdioTasks, UnknownDependencyIsRefusedAtSubmit) {
  json result = server().call_tool("submitTask", {{"command", "true"}, {"dependsOn", {"tunknowntask"}}});
  ASSERT_TRUE(is_tool_error(result));
  EXPECT_NE(result_text(result).find("dependsOn"), std::string::npos) << result_text(result);
  EXPECT_NE(result_text(result).find("tunknowntask"), std::string::npos) << result_text(result);
  EXPECT_TRUE(structured(server().call_tool("listTasks"))["tasks"].empty());
}

TEST_F(StdioTasks, RetryRunsAgainUntilTheCommandSucceeds) {
  const std::string counter = (dir_.path() / "count").string();
  std::string id = server().submit(
      {{"command", "n=$(cat '" + counter + "' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '" + counter +
                       "'; echo attempt $n; [ $n -ge 3 ]"},
       {"retry", {{"maxAttempts", 3}, {"backoff", "fixed"}, {"delayMs", 100}}}});
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "completed") << result.dump();
  EXPECT_EQ(result["stdout"].value("text", ""), "attempt 3\n") << "each attempt starts a fresh output";
  json task = server().task(id);
  EXPECT_EQ(task.value("attempt", 0), 3);
  EXPECT_EQ(task.value("maxAttempts", 0), 3);
  EXPECT_EQ(read_file(counter), "3\n");
}

TEST_F(StdioTasks, RetriesRunOutAndTheTaskFails) {
  std::string id = server().submit({{"command", "exit 7"}, {"retry", {{"maxAttempts", 2}, {"delayMs", 50}}}});
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "failed");
  EXPECT_EQ(result.value("reason", ""), "exit_code");
  EXPECT_EQ(result.value("exitCode", 0), 7);
  EXPECT_EQ(server().task(id).value("attempt", 0), 2);
}

TEST_F(StdioTasks, IdempotencyKeyReturnsTheFirstTask) {
  json first = structured(
      server().call_tool("submitTask", {{"command", "echo once"}, {"idempotencyKey", "deploy-42"}}));
  json second = structured(
      server().call_tool("submitTask", {{"command", "echo twice"}, {"idempotencyKey", "deploy-42"}}));
  ASSERT_TRUE(first.contains("taskId") && second.contains("taskId"));
  EXPECT_EQ(first["taskId"], second["taskId"]);
  EXPECT_TRUE(second.value("deduplicated", false));
  EXPECT_FALSE(first.value("deduplicated", false));
  json other =
      structured(server().call_tool("submitTask", {{"command", "true"}, {"idempotencyKey", "deploy-43"}}));
  EXPECT_NE(other["taskId"], first["taskId"]);
  EXPECT_EQ(server().wait_result(first["taskId"])["stdout"].value("text", ""), "once\n");
  server().wait_result(other["taskId"]);
}

TEST_F(StdioTasks, DelaySecHoldsTheTaskThenRunsIt) {
  json submitted = structured(server().call_tool("submitTask", {{"command", "echo later"}, {"delaySec", 1}}));
  const std::string id = submitted.value("taskId", "");
  EXPECT_EQ(submitted.value("status", ""), "waiting");
  EXPECT_EQ(server().task(id).value("status", ""), "waiting");
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "completed");
  EXPECT_EQ(result["stdout"].value("text", ""), "later\n");
  json task = server().task(id);
  EXPECT_GE(parse_iso_ms(task["startedAt"]) - parse_iso_ms(task["submittedAt"]), 950);
}

TEST_F(StdioTasks, RunAtInThePastRunsAtOnce) {
  std::string id = server().submit({{"command", "echo now"}, {"runAt", "2001-01-01T00:00:00Z"}});
  EXPECT_EQ(server().wait_result(id).value("status", ""), "completed");
  json both = server().call_tool("submitTask",
                                 {{"command", "true"}, {"runAt", "2001-01-01T00:00:00Z"}, {"delaySec", 1}});
  EXPECT_TRUE(is_tool_error(both));
}

// --- how tasks end ------------------------------------------------------------------

TEST_F(StdioTasks, TimeoutKillsTheTaskAndSaysSo) {
  auto start = Clock::now();
  std::string id = server().submit({{"command", "echo started; sleep 30; echo never"}, {"timeoutSec", 1}});
  json result = server().wait_result(id, scaled(20s));
  EXPECT_EQ(result.value("status", ""), "failed") << result.dump();
  EXPECT_EQ(result.value("reason", ""), "timeout") << result.dump();
  EXPECT_EQ(result["stdout"].value("text", ""), "started\n");
  EXPECT_LT(Clock::now() - start, scaled(10s));
  EXPECT_EQ(server().task(id).value("status", ""), "failed") << "a killed task is never completed";
}

TEST_F(StdioTasks, NonZeroExitFailsWithTheExitCode) {
  std::string id = server().submit({{"command", "echo bad >&2; exit 3"}});
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "failed");
  EXPECT_EQ(result.value("reason", ""), "exit_code");
  EXPECT_EQ(result.value("exitCode", 0), 3);
  EXPECT_EQ(result["stderr"].value("text", ""), "bad\n");
}

TEST_F(StdioTasks, KilledBySignalFailsWithTheSignal) {
  std::string id = server().submit({{"command", "kill -9 $$"}});
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "failed");
  EXPECT_EQ(result.value("reason", ""), "signal");
  EXPECT_EQ(result.value("signal", 0), 9);
}

TEST_F(StdioTasks, CancelARunningTask) {
  std::string id = server().submit({{"command", "echo begun; sleep 30; echo never"}});
  ASSERT_TRUE(server().wait_task(id, [](const json& t) { return has_status(t, "running"); }));
  json out = structured(server().call_tool("cancelTask", {{"taskId", id}}));
  EXPECT_EQ(out.value("cancelled", json::array()), json::array({id}));
  ASSERT_TRUE(out.contains("task"));
  json result = server().wait_result(id);
  EXPECT_EQ(result.value("status", ""), "cancelled");
  EXPECT_EQ(result.value("reason", ""), "cancelled");
  EXPECT_EQ(result["stdout"].value("text", "").find("never"), std::string::npos);
  json again = server().call_tool("cancelTask", {{"taskId", id}});
  ASSERT_TRUE(is_tool_error(again)) << "a finished task cannot be cancelled";
  EXPECT_NE(result_text(again).find("already"), std::string::npos) << result_text(again);
}

TEST_F(StdioTasks, CancelAQueuedTask) {
  ServerProcess& s = start_server(std::vector<std::string>{"--max-concurrent", "1"});
  s.initialize();
  std::string blocker = s.submit({{"command", gated("go")}});
  std::string queued = s.submit({{"command", "echo never"}});
  EXPECT_EQ(s.task(queued).value("status", ""), "queued");
  json out = structured(s.call_tool("cancelTask", {{"taskId", queued}}));
  EXPECT_EQ(out["task"].value("status", ""), "cancelled");
  open_gate("go");
  EXPECT_EQ(s.wait_result(blocker).value("status", ""), "completed");
  EXPECT_EQ(s.wait_result(queued)["stdout"].value("text", "x"), "");
}

TEST_F(StdioTasks, CancelAllOptionallyByTag) {
  std::vector<std::string> tagged;
  for (int i = 0; i < 3; ++i)
    tagged.push_back(server().submit({{"command", "sleep 30"}, {"tags", {"batch"}}}));
  std::string untagged = server().submit({{"command", "sleep 30"}});
  std::string finished = server().submit({{"command", "true"}, {"tags", {"batch"}}});
  server().wait_result(finished);
  json by_tag = structured(server().call_tool("cancelTask", {{"all", true}, {"tag", "batch"}}));
  std::set<std::string> ids;
  for (const json& id : by_tag.value("cancelled", json::array())) ids.insert(id.get<std::string>());
  EXPECT_EQ(ids, std::set<std::string>(tagged.begin(), tagged.end()));
  EXPECT_NE(server().task(untagged).value("status", ""), "cancelled");
  for (const std::string& id : tagged) EXPECT_EQ(server().wait_result(id).value("status", ""), "cancelled");
  json rest = structured(server().call_tool("cancelTask", {{"all", true}}));
  EXPECT_EQ(rest.value("cancelled", json::array()), json::array({untagged}));
  EXPECT_EQ(server().wait_result(untagged).value("status", ""), "cancelled");
  EXPECT_EQ(server().task(finished).value("status", ""), "completed");
}

TEST_F(StdioTasks, CancelAllDoesNotReportTasksAlreadyBeingStopped) {
  // Tasks that ignore SIGTERM stay "being stopped" until the grace period
  // ends in SIGKILL; a second cancel-all meanwhile cancels nothing new.
  ServerProcess& s = start_server(std::vector<std::string>{"--kill-grace-sec", "1"});
  s.initialize();
  std::string stubborn =
      s.submit({{"command", "trap '' TERM; echo ready; sleep 30"}, {"tags", {"stubborn"}}});
  // "ready" means the trap is in place (and sleep inherits the ignored TERM).
  ASSERT_TRUE(wait_until(
      [&] {
        return structured(s.call_tool("getResult", {{"taskId", stubborn}}))["stdout"].value("text", "") ==
               "ready\n";
      },
      scaled(10s), 10ms));
  json first = structured(s.call_tool("cancelTask", {{"all", true}}));
  EXPECT_EQ(first.value("cancelled", json::array()), json::array({stubborn}));
  json during = s.task(stubborn);
  ASSERT_EQ(during.value("status", ""), "running") << "still in its grace period";
  EXPECT_TRUE(during.value("cancelRequested", false));
  json second = structured(s.call_tool("cancelTask", {{"all", true}}));
  EXPECT_EQ(second.value("cancelled", json::array()), json::array())
      << "the task was already cancelled by the first call";
  json result = s.wait_result(stubborn);
  EXPECT_EQ(result.value("status", ""), "cancelled");
  EXPECT_EQ(result.value("signal", 0), 9) << "SIGKILL after the grace period";
}

TEST_F(StdioTasks, FullQueueIsRefusedWithAClearError) {
  auto config = dir_.path() / "config.json";
  write_file(config, R"({"limits":{"queueSize":3,"maxConcurrent":1}})");
  ServerProcess& s = start_server(std::vector<std::string>{"--config", config.string()});
  s.initialize();
  std::string blocker = s.submit({{"command", gated("go")}});
  ASSERT_TRUE(s.wait_task(blocker, [](const json& t) { return has_status(t, "running"); }));
  std::vector<std::string> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(s.submit({{"command", "echo " + std::to_string(i)}}));
  json refused = s.call_tool("submitTask", {{"command", "echo overflow"}, {"name", "overflow"}});
  ASSERT_TRUE(is_tool_error(refused)) << refused.dump();
  EXPECT_NE(result_text(refused).find("queue is full"), std::string::npos) << result_text(refused);
  json status = structured(s.call_tool("getStatus"));
  EXPECT_EQ(status["orchestrator"].value("queueDepth", 0), 3);
  EXPECT_EQ(status["orchestrator"].value("queueLimit", 0), 3);
  open_gate("go");
  for (const std::string& id : queued) EXPECT_EQ(s.wait_result(id).value("status", ""), "completed");
  EXPECT_TRUE(structured(s.call_tool("listTasks", {{"name", "overflow"}}))["tasks"].empty())
      << "a refused task is not queued behind the caller's back";
  std::string later = s.submit({{"command", "true"}});
  EXPECT_EQ(s.wait_result(later).value("status", ""), "completed");
}

// --- listTasks ------------------------------------------------------------------------

TEST_F(StdioTasks, ListTasksNewestFirstWithFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(server().submit({{"command", i == 4 ? "exit 1" : "true"},
                                   {"name", "job-" + std::to_string(i)},
                                   {"tags", {i % 2 == 0 ? "even" : "odd"}}}));
  }
  for (const std::string& id : ids) server().wait_result(id);
  json all = structured(server().call_tool("listTasks"));
  ASSERT_EQ(all["tasks"].size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all["tasks"][i].value("taskId", ""), ids[4 - i]) << i;
  EXPECT_FALSE(all.contains("nextCursor"));

  json named = structured(server().call_tool("listTasks", {{"name", "job-3"}}));
  ASSERT_EQ(named["tasks"].size(), 1u);
  EXPECT_EQ(named["tasks"][0].value("taskId", ""), ids[3]);
  json even = structured(server().call_tool("listTasks", {{"tag", "even"}}));
  EXPECT_EQ(even["tasks"].size(), 3u);
  json failed = structured(server().call_tool("listTasks", {{"status", "failed"}}));
  ASSERT_EQ(failed["tasks"].size(), 1u);
  EXPECT_EQ(failed["tasks"][0].value("taskId", ""), ids[4]);
  json completed_odd = structured(server().call_tool("listTasks", {{"status", "completed"}, {"tag", "odd"}}));
  EXPECT_EQ(completed_odd["tasks"].size(), 2u);
  EXPECT_TRUE(structured(server().call_tool("listTasks", {{"status", "running"}}))["tasks"].empty());
}

TEST_F(StdioTasks, ListTasksPaginatesWithoutDuplicatesOrGaps) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i)
    ids.push_back(server().submit({{"command", "true"}, {"name", "page-" + std::to_string(i)}}));
  std::vector<std::string> listed;
  json args{{"limit", 2}};
  int pages = 0;
  while (true) {
    json page = structured(server().call_tool("listTasks", args));
    ASSERT_TRUE(page.contains("tasks"));
    EXPECT_LE(page["tasks"].size(), 2u);
    for (const json& t : page["tasks"]) listed.push_back(t.value("taskId", ""));
    ++pages;
    ASSERT_LT(pages, 10) << "pagination does not end";
    if (!page.contains("nextCursor")) break;
    args["cursor"] = page["nextCursor"];
  }
  EXPECT_EQ(pages, 4);
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  EXPECT_EQ(listed, newest_first);
  // A task submitted between pages does not shift the pages being read.
  json first = structured(server().call_tool("listTasks", {{"limit", 3}}));
  std::string extra = server().submit({{"command", "true"}});
  json second = structured(server().call_tool("listTasks", {{"limit", 3}, {"cursor", first["nextCursor"]}}));
  ASSERT_EQ(second["tasks"].size(), 3u);
  EXPECT_EQ(second["tasks"][0].value("taskId", ""), ids[3]);
  for (const std::string& id : ids) server().wait_result(id);
  server().wait_result(extra);
}

}  // namespace
}  // namespace orch::test
