// Profiles and allow lists with the real binary (SPEC §5, §7, §8): argv
// templates, per-profile concurrency observed from the processes themselves,
// rate limits, the circuit breaker, clear errors, and allow lists that no
// spelling of a command gets around.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

namespace fs = std::filesystem;

const std::string kFakeAgent = std::string(ORCH_WORKERS_DIR) + "/fake_agent.py";

class Profiles : public IntegrationTest {
 protected:
  TempDir dir_;

  ServerProcess& start_with(const json& config) {
    const fs::path file = dir_.path() / "config.json";
    std::ofstream(file) << config.dump(2);
    ServerProcess& server = start_server({"--config", file.string()});
    server.initialize();
    return server;
  }

  static json submit_result(ServerProcess& server, const json& args) { return server.call_tool("submitTask", args); }

  static json profile(ServerProcess& server, const std::string& name) {
    json status = structured(server.call_tool("getStatus", json::object()));
    for (const json& p : status["orchestrator"]["profiles"]) {
      if (p.value("name", "") == name) return p;
    }
    ADD_FAILURE() << "no profile " << name << " in " << status.dump();
    return json::object();
  }
};

TEST_F(Profiles, EightAgentTasksWithMaxConcurrentThreeNeverRunMoreThanThree) {
  const fs::path pids = dir_.path() / "pids";
  fs::create_directories(pids);
  ServerProcess& server = start_with(
      {{"profiles",
        {{"agent",
          {{"argv", {"python3", kFakeAgent, "-p", "{prompt}", "--sleep", "0.4", "--pid-dir", pids.string()}},
           {"maxConcurrent", 3}}}}}});
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    ids.push_back(server.submit({{"profile", "agent"}, {"params", {{"prompt", "task " + std::to_string(i)}}}}));
  }
  int most_alive = 0;
  for (const auto& id : ids) {
    json r = server.wait_result(id, scaled(60s));
    EXPECT_EQ(r.value("status", ""), "completed") << r.dump();
    EXPECT_NE(r["stdout"].value("text", "").find("\"type\": \"result\""), std::string::npos) << "stream-JSON lines";
  }
  int seen_files = 0;
  for (const auto& entry : fs::directory_iterator(pids)) {
    if (entry.path().extension() == ".alive") ADD_FAILURE() << "still alive: " << entry.path();
    if (entry.path().extension() != ".seen") continue;
    ++seen_files;
    std::ifstream in(entry.path());
    int n = 0;
    in >> n;
    most_alive = std::max(most_alive, n);
  }
  EXPECT_EQ(seen_files, 8);
  EXPECT_LE(most_alive, 3) << "the processes saw more than 3 of their kind alive";
  EXPECT_EQ(most_alive, 3) << "8 tasks of 0.4 s with room for 3 should have run 3 at once";
}

TEST_F(Profiles, ParamsAreSubstitutedWithoutAShellAndStdinIsDevNull) {
  ServerProcess& server = start_with(
      {{"profiles", {{"agent", {{"argv", {"python3", kFakeAgent, "--check-stdin", "-p", "{prompt}"}}}}}}});
  const std::string prompt = "it's $(echo injected); `id` \"quoted\"\nline two";
  json r = server.wait_result(server.submit({{"profile", "agent"}, {"params", {{"prompt", prompt}}}}));
  ASSERT_EQ(r.value("status", ""), "completed") << r.dump();
  const std::string out = r["stdout"].value("text", "");
  EXPECT_NE(out.find(json("done: " + prompt).dump()), std::string::npos) << "the prompt arrives verbatim: " << out;
  EXPECT_NE(out.find("\"eof\": true"), std::string::npos) << "stdin is /dev/null, so agent CLIs never hang: " << out;
}

TEST_F(Profiles, UnknownProfileAndMissingOrUnknownParamsAreClearErrors) {
  ServerProcess& server = start_with({{"profiles", {{"agent", {{"argv", {"python3", kFakeAgent, "-p", "{prompt}"}}}}}}});
  json unknown = submit_result(server, {{"profile", "nope"}});
  EXPECT_TRUE(unknown.value("isError", false));
  EXPECT_NE(result_text(unknown).find("unknown profile 'nope'"), std::string::npos);
  EXPECT_NE(result_text(unknown).find("agent"), std::string::npos) << "names the configured ones";
  json missing = submit_result(server, {{"profile", "agent"}});
  EXPECT_TRUE(missing.value("isError", false));
  EXPECT_NE(result_text(missing).find("needs params.prompt"), std::string::npos) << result_text(missing);
  json extra = submit_result(server, {{"profile", "agent"}, {"params", {{"prompt", "p"}, {"model", "m"}}}});
  EXPECT_TRUE(extra.value("isError", false));
  EXPECT_NE(result_text(extra).find("params.model"), std::string::npos);
  json wrong_type = submit_result(server, {{"profile", "agent"}, {"params", {{"prompt", 5}}}});
  EXPECT_TRUE(wrong_type.value("isError", false));
  EXPECT_EQ(server.request("ping").value("result", json()).dump(), "{}") << "still answering";
}

TEST_F(Profiles, ProfileTimeoutRetryAndEnvApply) {
  ServerProcess& server = start_with(
      {{"profiles",
        {{"slow", {{"argv", {"python3", kFakeAgent, "--sleep", "30"}}, {"timeoutSec", 0.5}}},
         {"flaky", {{"argv", {"sh", "-c", "echo \"$GREETING\"; exit 3"}},
                    {"env", {{"GREETING", "from the profile"}}},
                    {"retry", {{"maxAttempts", 2}, {"delayMs", 10}}}}}}}});
  json slow = server.wait_result(server.submit({{"profile", "slow"}}), scaled(30s));
  EXPECT_EQ(slow.value("reason", ""), "timeout") << slow.dump();
  const std::string id = server.submit({{"profile", "flaky"}});
  json flaky = server.wait_result(id, scaled(30s));
  EXPECT_EQ(flaky.value("status", ""), "failed");
  EXPECT_EQ(server.task(id).value("attempt", 0), 2) << "the profile's retry policy";
  EXPECT_EQ(flaky["stdout"].value("text", ""), "from the profile\n");
  json overridden = server.wait_result(server.submit({{"profile", "flaky"}, {"env", {{"GREETING", "caller"}}}}), scaled(30s));
  EXPECT_EQ(overridden["stdout"].value("text", ""), "caller\n") << "the caller's env merges over the profile's";
}

TEST_F(Profiles, ARateLimitOfTenPerMinuteAdmitsTenThenHolds) {
  ServerProcess& server = start_with({{"profiles", {{"api", {{"argv", {"true"}}, {"rateLimit", {{"perMinute", 10}}}}}}}});
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(server.submit({{"profile", "api"}}));
  std::string first_start;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(server.wait_result(ids[i], scaled(20s)).value("status", ""), "completed");
    const std::string started = server.task(ids[i]).value("startedAt", "");
    if (first_start.empty() || started < first_start) first_start = started;
  }
  // The bucket of 10 is spent; it refills one start every 6 s.
  json eleventh = server.task(ids[10]);
  if (eleventh.value("status", "") == "queued") {
    EXPECT_NE(eleventh.value("message", "").find("rate limit"), std::string::npos) << eleventh.dump();
    json p = profile(server, "api");
    EXPECT_NE(p.value("held", "").find("10 starts per minute"), std::string::npos) << p.dump();
  }
  EXPECT_EQ(server.wait_result(ids[10], scaled(30s)).value("status", ""), "completed");
  const std::string eleventh_start = server.task(ids[10]).value("startedAt", "");
  auto ms_of = [](const std::string& iso) {  // "…THH:MM:SS.mmmZ" within one day is enough here
    return ((std::stoll(iso.substr(11, 2)) * 60 + std::stoll(iso.substr(14, 2))) * 60 + std::stoll(iso.substr(17, 2))) *
               1000 + std::stoll(iso.substr(20, 3));
  };
  ASSERT_GE(eleventh_start.size(), 23u);
  const std::int64_t day = 24 * 3600 * 1000;
  EXPECT_GE((ms_of(eleventh_start) - ms_of(first_start) + day) % day, 5900) << first_start << " → " << eleventh_start
                                                               << ": the 11th start did not wait for a token";
  server.call_tool("cancelTask", {{"all", true}});
}

TEST_F(Profiles, TheCircuitBreakerOpensPausesAndHalfOpens) {
  ServerProcess& server = start_with(
      {{"profiles",
        {{"flaky", {{"argv", {"python3", kFakeAgent, "--exit", "{code}"}},
                    {"circuitBreaker", {{"failures", 2}, {"cooldownSec", 5}}}}}}}});
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(server.wait_result(server.submit({{"profile", "flaky"}, {"params", {{"code", "1"}}}})).value("status", ""),
              "failed");
  }
  json open = profile(server, "flaky");
  EXPECT_EQ(open.value("breaker", ""), "open") << open.dump();
  EXPECT_EQ(open.value("consecutiveFailures", 0), 2);
  EXPECT_TRUE(open.contains("breakerOpenUntil"));
  const std::string id = server.submit({{"profile", "flaky"}, {"params", {{"code", "0"}}}});
  json held = server.task(id);
  EXPECT_EQ(held.value("status", ""), "queued");
  EXPECT_NE(held.value("message", "").find("circuit breaker is open"), std::string::npos) << held.dump();
  // After the cool-down one trial runs; it succeeds and closes the breaker.
  EXPECT_EQ(server.wait_result(id, scaled(30s)).value("status", ""), "completed");
  EXPECT_EQ(profile(server, "flaky").value("breaker", ""), "closed");
}

TEST_F(Profiles, ABadConfigIsRefusedAtStartWithFileAndPath) {
  const fs::path file = dir_.path() / "bad.json";
  std::ofstream(file) << R"({"profiles": {"claude": {"argv": ["claude", "-p", "{prompt"]}}})";
  RunResult run = run_binary({"--config", file.string()});
  ASSERT_TRUE(run.status.has_value());
  EXPECT_FALSE(run.status->ok());
  EXPECT_NE(run.err.find(file.string()), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("profiles.claude.argv"), std::string::npos) << run.err;
}

// --- allow lists (SPEC §7) --------------------------------------------------

class AllowLists : public Profiles {
 protected:
  ServerProcess& start_restricted() {
    fs::create_directories(dir_.path() / "work");
    return start_with({{"security", {{"allowCommands", {"python3", "true"}}, {"allowedDirs", {(dir_.path() / "work").string()}}}},
                       {"profiles", {{"any", {{"argv", {"{program}", "{arg}"}}}}, {"agent", {{"argv", {"python3", kFakeAgent}}}}}}});
  }
  std::string work() const { return (dir_.path() / "work").string(); }

  void expect_refused(ServerProcess& server, json args, const std::string& why) {
    json r = submit_result(server, args);
    EXPECT_TRUE(r.value("isError", false)) << args.dump() << " was accepted";
    EXPECT_NE(result_text(r).find(why), std::string::npos) << args.dump() << ": " << result_text(r);
  }
};

TEST_F(AllowLists, AllowedProgramsRunInAllowedDirectories) {
  ServerProcess& server = start_restricted();
  EXPECT_EQ(server.wait_result(server.submit({{"argv", {"true"}}, {"cwd", work()}})).value("status", ""), "completed");
  EXPECT_EQ(server.wait_result(server.submit({{"profile", "agent"}, {"cwd", work()}})).value("status", ""), "completed");
}

TEST_F(AllowLists, NoSpellingOfAForbiddenProgramGetsThrough) {
  ServerProcess& server = start_restricted();
  const std::string cwd = work();
  expect_refused(server, {{"argv", {"rm", "-rf", cwd}}, {"cwd", cwd}}, "not allowed");
  expect_refused(server, {{"argv", {"/usr/bin/rm", cwd}}, {"cwd", cwd}}, "not allowed");
  expect_refused(server, {{"argv", {"/usr/bin/../bin/rm", cwd}}, {"cwd", cwd}}, "not allowed");
  expect_refused(server, {{"command", "true; rm -rf " + cwd}, {"cwd", cwd}}, "/bin/sh");
  expect_refused(server, {{"command", "true\nrm -rf " + cwd}, {"cwd", cwd}}, "/bin/sh");
  expect_refused(server, {{"argv", {"sh", "-c", "rm -rf " + cwd}}, {"cwd", cwd}}, "not allowed");
  expect_refused(server, {{"profile", "any"}, {"params", {{"program", "rm"}, {"arg", cwd}}}, {"cwd", cwd}}, "not allowed");
  expect_refused(server, {{"profile", "any"}, {"params", {{"program", "$(which rm)"}, {"arg", cwd}}}, {"cwd", cwd}},
                 "not allowed");
  // A PATH of the task's own with an "true" that is really rm.
  fs::create_directories(dir_.path() / "evil");
  fs::create_symlink("/usr/bin/rm", dir_.path() / "evil" / "true");
  expect_refused(server, {{"argv", {"true", cwd}}, {"cwd", cwd}, {"env", {{"PATH", (dir_.path() / "evil").string()}}}},
                 "not allowed");
  expect_refused(server, {{"argv", {"true"}}, {"cwd", cwd}, {"env", {{"LD_PRELOAD", "/tmp/x.so"}}}}, "LD_PRELOAD");
  EXPECT_TRUE(fs::exists(work())) << "nothing ran";
  EXPECT_EQ(server.request("ping").value("result", json()).dump(), "{}");
}

// The bypasses reported against other servers' command lists
// (research: peers §2.7) — command and process substitution, quotes,
// wildcards, newlines, absolute paths, `sh -c`, another way in than the
// submit tool, a call that widens the list itself. Each probe would create
// a file; none may.
TEST_F(AllowLists, KnownBypassesOfCommandListsAreRefused) {
  ServerProcess& server = start_restricted();
  const std::string cwd = work();
  int n = 0;
  auto canary = [&] { return cwd + "/pwned-" + std::to_string(++n); };
  for (const std::string& command : {"true $(touch " + canary() + ")", "true `touch " + canary() + "`",
                                     "cat <(touch " + canary() + ")", "true\ntouch " + canary(),
                                     "'touch' " + canary(), "tou''ch " + canary(), "/usr/bin/tou* " + canary()}) {
    expect_refused(server, {{"command", command}, {"cwd", cwd}}, "/bin/sh");
  }
  const std::vector<std::vector<std::string>> argvs = {
      {"$(touch " + canary() + ")"}, {"`touch " + canary() + "`"}, {"'touch'", canary()},
      {"\"touch\"", canary()}, {"/usr/bin/tou*", canary()}, {"/usr/bin/tou?h", canary()},
      {"true;touch", canary()}, {"true\ntouch", canary()}, {"true touch", canary()},
      {"/usr/bin/touch", canary()}, {"/bin/sh", "-c", "touch " + canary()}, {"env", "touch", canary()},
      {"python3/../touch", canary()}};
  for (const auto& argv : argvs) expect_refused(server, {{"argv", argv}, {"cwd", cwd}}, "not allowed");
  // Through a profile's placeholder, and as a native task instead of submitTask.
  expect_refused(server, {{"profile", "any"}, {"params", {{"program", "touch"}, {"arg", canary()}}}, {"cwd", cwd}},
                 "not allowed");
  json native = server.request("tools/call", {{"name", "runTask"},
                                              {"arguments", {{"argv", {"touch", canary()}}, {"cwd", cwd}}},
                                              {"task", json::object()}});
  EXPECT_TRUE(native.contains("error") || native["result"].value("isError", false)) << native.dump();
  // No call can widen the list: it is not an argument, and no tool sets config.
  expect_refused(server, {{"argv", {"touch", canary()}}, {"cwd", cwd}, {"security", {{"allowCommands", {"*"}}}}},
                 "security");
  const json listed = server.request("tools/list");
  for (const json& tool : listed["result"]["tools"]) {
    EXPECT_TRUE(tool["name"] == "submitTask" || tool["name"] == "getStatus" || tool["name"] == "getResult" ||
                tool["name"] == "cancelTask" || tool["name"] == "listTasks" || tool["name"] == "runTask")
        << "unexpected tool " << tool["name"];
  }
  EXPECT_TRUE(structured(server.call_tool("listTasks", json::object()))["tasks"].empty()) << "nothing was queued";
  for (int i = 1; i <= n; ++i) EXPECT_FALSE(fs::exists(cwd + "/pwned-" + std::to_string(i))) << "probe " << i << " ran";
  EXPECT_EQ(server.request("ping").value("result", json()).dump(), "{}");
  RecordProperty("figure: bypasses tried", n);
}

TEST_F(AllowLists, CwdOutsideTheAllowedDirectoriesIsRefused) {
  ServerProcess& server = start_restricted();
  expect_refused(server, {{"argv", {"true"}}, {"cwd", dir_.path().string()}}, "outside the allowed directories");
  expect_refused(server, {{"argv", {"true"}}, {"cwd", work() + "/.."}}, "outside the allowed directories");
  expect_refused(server, {{"argv", {"true"}}}, "outside the allowed directories");
  json listed = structured(server.call_tool("listTasks", json::object()));
  EXPECT_TRUE(listed["tasks"].empty()) << "refused tasks were never queued";
}

}  // namespace
}  // namespace orch::test
