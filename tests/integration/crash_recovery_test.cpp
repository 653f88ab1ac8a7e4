// Crash recovery (SPEC §4 Store, docs/RECOVERY.md): after a kill -9 of the
// server, a task whose process still runs is adopted by the next start and
// followed to its true end, output written while no server ran included; a
// task that ended while no server ran keeps its real exit code; with
// `--orphans kill` nothing outlives the server. And the fault-injection
// round trip: tasks running and queued, kill -9, restart, many times over,
// with no acknowledged task lost and the queue's order kept.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "tests/support/process_probe.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

bool has_status(const json& task, const char* status) { return task.value("status", "") == status; }

class CrashRecovery : public IntegrationTest {
 protected:
  ServerProcess& server_on_state(std::vector<std::string> args = {}) {
    // Every task of the fault-injection rounds stays countable.
    const auto config = dir_.path() / "config.json";
    write_file(config, R"({"retention": {"count": 100000}})");
    ServerOptions options;
    options.state_dir = dir_.path() / "state";
    options.args = {"--config", config.string()};
    options.args.insert(options.args.end(), args.begin(), args.end());
    ServerProcess& server = start_server(std::move(options));
    server.initialize();
    return server;
  }

  // Waits until the task runs and returns its pid (its process group).
  pid_t running_pid(ServerProcess& server, const std::string& id) {
    EXPECT_TRUE(server.wait_task(id, [](const json& t) { return has_status(t, "running") && t.contains("pid"); }));
    const pid_t pid = server.task(id).value("pid", 0);
    if (pid > 0) kill_group_at_teardown(pid);
    return pid;
  }

  void crash(ServerProcess& server) {
    server.kill(SIGKILL);
    auto status = server.wait_exit(scaled(5s));
    ASSERT_TRUE(status);
    EXPECT_EQ(status->signal, SIGKILL);
    stop_server(server);
  }

  // Every task the server knows, by id, through listTasks' pages.
  std::map<std::string, json> list_all(ServerProcess& server) {
    std::map<std::string, json> out;
    json args{{"limit", 200}};
    for (;;) {
      json page = structured(server.call_tool("listTasks", args));
      for (const json& t : page.value("tasks", json::array())) out[t.value("taskId", "")] = t;
      if (!page.contains("nextCursor")) return out;
      args["cursor"] = page["nextCursor"];
    }
  }

  // Runs `sql` on the store of a server that is not running: to recreate the
  // rows a crash at a precise moment leaves behind.
  void edit_store(const std::string& sql) {
    sqlite3* db = nullptr;
    const auto path = dir_.path() / "state" / "tasks.db";
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    EXPECT_EQ(sqlite3_changes(db), 1) << sql;
    sqlite3_close(db);
  }

  std::string marker(const std::string& name) const { return (dir_.path() / name).string(); }
  std::filesystem::path spool_file(const std::string& id, const char* stream) const {
    return dir_.path() / "state" / "spool" / id / stream;
  }

  TempDir dir_;
};

// A shell snippet that waits until `path` exists (the task's own pacing; the
// test never sleeps).
std::string await_file(const std::string& path) {
  return "while [ ! -e '" + path + "' ]; do sleep 0.1; done";
}

// A task that has printed nothing has no spool directory yet: its keeper
// creates it when it takes over the output.
TEST_F(CrashRecovery, ATaskSilentUntilTheCrashKeepsWhatItPrintsAfterIt) {
  const std::string go = marker("go");
  std::string id;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", await_file(go) + "; echo after; echo err >&2"}});
    ASSERT_GT(running_pid(first, id), 0);
    crash(first);
  }
  write_file(go, "");
  ASSERT_TRUE(wait_until([&] { return read_file(spool_file(id, "stdout")) == "after\n"; }, scaled(10s)))
      << "output printed while no server ran is spooled by the task's keeper";
  ServerProcess& second = server_on_state();
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "completed") << r.dump();
  EXPECT_EQ(r["stdout"].value("text", ""), "after\n");
  EXPECT_EQ(r["stderr"].value("text", ""), "err\n");
}

TEST_F(CrashRecovery, ARunningTaskIsAdoptedAndFollowedToItsTrueEnd) {
  const std::string during = marker("during"), after = marker("after");
  std::string id;
  pid_t pid = 0;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "echo before; " + await_file(during) + "; echo during; " +
                                       await_file(after) + "; echo after; echo err >&2; exit 7"}});
    pid = running_pid(first, id);
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(wait_until([&] { return read_file(spool_file(id, "stdout")) == "before\n"; }, scaled(10s)));
    crash(first);
  }
  // No server runs: the task goes on, and its output still reaches the spool.
  EXPECT_FALSE(processes_in_group(pid).empty()) << "the task must outlive the crash";
  write_file(during, "");
  ASSERT_TRUE(wait_until([&] { return read_file(spool_file(id, "stdout")) == "before\nduring\n"; }, scaled(10s)))
      << "output printed while no server ran is spooled by the task's keeper";

  ServerProcess& second = server_on_state();
  json t = second.task(id);
  EXPECT_EQ(t.value("status", ""), "running") << "adopted, not lost: " << t.dump();
  EXPECT_EQ(t.value("pid", 0), pid);
  EXPECT_TRUE(second.wait_stderr_contains("still run and were adopted"));
  write_file(after, "");
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "failed") << r.dump();
  EXPECT_EQ(r.value("reason", ""), "exit_code") << r.dump();
  EXPECT_EQ(r.value("exitCode", -1), 7) << "the real exit code, not a guess: " << r.dump();
  EXPECT_EQ(r["stdout"].value("text", ""), "before\nduring\nafter\n");
  EXPECT_EQ(r["stderr"].value("text", ""), "err\n");
  EXPECT_EQ(second.task(id).value("attempt", 0), 1) << "followed, not run again";
  EXPECT_TRUE(wait_until([&] { return processes_in_group(pid).empty(); }, scaled(5s)));
}

TEST_F(CrashRecovery, ATaskThatEndedWhileNoServerRanKeepsItsExitCode) {
  const std::string go = marker("go");
  std::string id;
  pid_t pid = 0;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", await_file(go) + "; echo done; exit 3"}});
    pid = running_pid(first, id);
    crash(first);
  }
  write_file(go, "");
  ASSERT_TRUE(wait_until([&] { return processes_in_group(pid).empty(); }, scaled(10s)));

  ServerProcess& second = server_on_state();
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "failed") << r.dump();
  EXPECT_EQ(r.value("reason", ""), "exit_code") << r.dump();
  EXPECT_EQ(r.value("exitCode", -1), 3) << r.dump();
  EXPECT_EQ(r["stdout"].value("text", ""), "done\n");
}

// The server records a start before it spawns the keeper, and the pid with
// its next batch of writes. A crash before the spawn leaves `running` with
// no pid: the lost-task checker (tests/reliability/lost_task_check.py) saw
// such tasks end `lost` without ever having run.
TEST_F(CrashRecovery, AStartRecordedButNeverSpawnedRunsOnceAfterTheCrash) {
  const std::string ran = marker("ran");
  std::string id;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "echo once >> '" + ran + "'"}, {"delaySec", 3600}});
    ASSERT_TRUE(first.wait_task(id, [](const json& t) { return has_status(t, "waiting"); }));
    crash(first);
  }
  edit_store("UPDATE tasks SET status = 'running', attempt = 1, not_before_ms = 0, pid = NULL, "
             "started_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) WHERE id = '" + id + "'");

  ServerProcess& second = server_on_state();
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "completed") << r.dump();
  EXPECT_EQ(second.task(id).value("attempt", 0), 1) << "the attempt that never began is not counted";
  EXPECT_EQ(read_file(ran), "once\n");
  EXPECT_TRUE(second.wait_stderr_contains("1 had not started and were queued again"));
}

// The same crash a moment later: the keeper runs, but its pid has not
// reached the store yet. It is found by its command line and followed, not
// run twice, and its pid is known again.
TEST_F(CrashRecovery, AKeeperWhosePidWasNeverRecordedIsFoundAndAdopted) {
  const std::string go = marker("go");
  const std::string ran = marker("ran");
  std::string id;
  pid_t pid = 0;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "echo run >> '" + ran + "'; " + await_file(go) + "; echo done"}});
    pid = running_pid(first, id);
    crash(first);
  }
  edit_store("UPDATE tasks SET pid = NULL WHERE id = '" + id + "'");

  ServerProcess& second = server_on_state();
  EXPECT_TRUE(second.wait_stderr_contains("1 still run and were adopted"));
  EXPECT_EQ(second.task(id).value("status", ""), "running");
  EXPECT_EQ(second.task(id).value("pid", 0), pid);
  write_file(go, "");
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "completed") << r.dump();
  EXPECT_EQ(r["stdout"].value("text", ""), "done\n");
  EXPECT_EQ(second.task(id).value("attempt", 0), 1);
  EXPECT_EQ(read_file(ran), "run\n") << "a running keeper found again must not run its task twice";
  EXPECT_TRUE(wait_until([&] { return processes_in_group(pid).empty(); }, scaled(10s)));
}

// Keepers record each attempt's end under its number: the record of a failed
// attempt must not be taken for the end of its retry, which the store has as
// started when the server dies before the retry's keeper is spawned.
TEST_F(CrashRecovery, AFailedAttemptsRecordIsNotTakenForItsRetrysEnd) {
  const std::string ran = marker("ran");
  std::string id;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "test -e '" + ran + "' && exit 0; touch '" + ran + "'; exit 4"},
                       {"retry", {{"maxAttempts", 2}, {"backoff", "fixed"}, {"delayMs", 3600000}}}});
    ASSERT_TRUE(first.wait_task(id, [](const json& t) { return t.value("attempt", 0) == 1 && has_status(t, "waiting"); }));
    crash(first);
  }
  edit_store("UPDATE tasks SET status = 'running', attempt = 2, not_before_ms = 0, pid = NULL, "
             "started_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) WHERE id = '" + id + "'");

  ServerProcess& second = server_on_state();
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "completed") << "attempt 1's exit 4 was taken for attempt 2's end: " << r.dump();
  EXPECT_EQ(second.task(id).value("attempt", 0), 2);
  EXPECT_TRUE(second.wait_stderr_contains("1 had not started and were queued again"));
}

TEST_F(CrashRecovery, AKilledTaskIsReportedByItsSignal) {
  std::string id;
  pid_t pid = 0;
  {
    ServerProcess& first = server_on_state();
    id = first.submit({{"command", "sleep 300"}});
    pid = running_pid(first, id);
    crash(first);
  }
  // Someone else stops the work while no server runs; the keeper records it.
  std::vector<pid_t> members = processes_in_group(pid);
  for (pid_t member : members) {
    if (member != pid) ::kill(member, SIGTERM);
  }
  ASSERT_TRUE(wait_until([&] { return processes_in_group(pid).empty(); }, scaled(10s)));
  ServerProcess& second = server_on_state();
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "failed") << r.dump();
  EXPECT_EQ(r.value("reason", ""), "signal") << r.dump();
  EXPECT_EQ(r.value("signal", 0), SIGTERM) << r.dump();
}

TEST_F(CrashRecovery, WithOrphansKillNothingOutlivesTheServer) {
  std::string id, retried;
  pid_t pid = 0, retried_pid = 0;
  {
    ServerProcess& first = server_on_state({"--orphans", "kill"});
    id = first.submit({{"command", "trap '' TERM; sleep 300"}});
    retried = first.submit({{"command", "if [ -e '" + marker("second") + "' ]; then echo again; else sleep 300; fi"},
                            {"retry", {{"maxAttempts", 2}, {"backoff", "fixed"}, {"delayMs", 0}}}});
    pid = running_pid(first, id);
    retried_pid = running_pid(first, retried);
    crash(first);
  }
  // SIGTERM first (ignored here), SIGKILL after the keeper's grace.
  EXPECT_TRUE(wait_until([&] { return processes_in_group(pid).empty(); }, scaled(10s)))
      << "a task that ignores SIGTERM is still stopped";
  EXPECT_TRUE(wait_until([&] { return processes_in_group(retried_pid).empty(); }, scaled(10s)));
  write_file(marker("second"), "");

  ServerProcess& second = server_on_state({"--orphans", "kill"});
  json r = second.wait_result(id);
  EXPECT_EQ(r.value("status", ""), "failed") << r.dump();
  EXPECT_EQ(r.value("reason", ""), "lost") << r.dump();
  json again = second.wait_result(retried);
  EXPECT_EQ(again.value("status", ""), "completed") << "lost, then retried per its policy: " << again.dump();
  EXPECT_EQ(again["stdout"].value("text", ""), "again\n");
}

// SPEC §4: "the server can be killed at any moment". Each round leaves 20
// tasks running and 100 queued, kills the server, and the next round checks
// what the store brought back.
TEST_F(CrashRecovery, RepeatedKillNineLosesNothingAndKeepsTheQueueOrder) {
  const char* env_rounds = std::getenv("ORCH_CRASH_ROUNDS");
  const int rounds = env_rounds ? std::max(1, std::atoi(env_rounds)) : 20;
  constexpr int kRunning = 20;
  constexpr int kQueued = 100;
  std::mt19937 random(12345);
  struct Expected {
    int exit_code = 0;
    bool runs_first = false;  // one of the round's blocking tasks
  };
  std::map<std::string, Expected> all;                // every acknowledged id
  std::vector<std::string> previous_running, previous_queued;
  std::map<std::string, int> previous_priority;

  for (int round = 0; round <= rounds; ++round) {
    ServerProcess& server = server_on_state({"--max-concurrent", std::to_string(kRunning)});
    // 1. Nothing acknowledged is missing; the queue is as it was left.
    std::map<std::string, json> listed = list_all(server);
    for (const auto& [id, expected] : all) {
      ASSERT_TRUE(listed.count(id)) << "acknowledged task " << id << " is gone after round " << round - 1;
    }
    std::vector<std::pair<std::int64_t, std::string>> by_position;
    for (const std::string& id : previous_queued) {
      const json& t = listed[id];
      EXPECT_EQ(t.value("status", ""), "queued") << t.dump();
      EXPECT_GT(t.value("queuePosition", 0), 0) << t.dump();
      by_position.emplace_back(t.value("queuePosition", 0), id);
    }
    // The positions alone carry the priorities: they must order the tasks
    // exactly as priority, then submission, would.
    std::sort(by_position.begin(), by_position.end());
    for (std::size_t i = 1; i < by_position.size(); ++i) {
      const std::string& a = by_position[i - 1].second;
      const std::string& b = by_position[i].second;
      // Higher priority first; FIFO (submission order) within a level.
      const bool ordered = previous_priority[a] > previous_priority[b] ||
                           (previous_priority[a] == previous_priority[b] &&
                            std::find(previous_queued.begin(), previous_queued.end(), a) <
                                std::find(previous_queued.begin(), previous_queued.end(), b));
      EXPECT_TRUE(ordered) << "queue order changed across the crash: " << a << " before " << b;
    }
    for (const std::string& id : previous_running) {
      const json& t = listed[id];
      EXPECT_TRUE(has_status(t, "running")) << "a task still running must be adopted: " << t.dump();
    }
    // 2. Let the previous round finish: each running task ends with its own code.
    write_file(marker("release-" + std::to_string(round - 1)), "");
    for (const std::string& id : previous_running) {
      json r = server.wait_result(id, scaled(30s));
      const int code = all[id].exit_code;
      EXPECT_EQ(r.value("exitCode", -1), code) << r.dump();
      EXPECT_EQ(r.value("status", ""), code == 0 ? "completed" : "failed") << r.dump();
    }
    for (const std::string& id : previous_queued) {
      json r = server.wait_result(id, scaled(30s));
      EXPECT_EQ(r.value("status", ""), "completed") << r.dump();
    }
    if (round == rounds) {
      // 4. The store is sound after all of it.
      json counts = structured(server.call_tool("getStatus"))["orchestrator"]["tasks"];
      EXPECT_EQ(counts.value("completed", 0) + counts.value("failed", 0), static_cast<int>(all.size()))
          << counts.dump();
      stop_server(server);
      break;
    }
    // 3. This round: 20 that block until released, then 100 that must wait.
    previous_running.clear();
    previous_queued.clear();
    previous_priority.clear();
    const std::string release = marker("release-" + std::to_string(round));
    for (int i = 0; i < kRunning; ++i) {
      const int code = (round + i) % 4;
      std::string id = server.submit({{"command", await_file(release) + "; exit " + std::to_string(code)},
                                      {"priority", 10}});
      all[id] = {code, true};
      previous_running.push_back(id);
    }
    for (const std::string& id : previous_running) running_pid(server, id);
    for (int i = 0; i < kQueued; ++i) {
      const int priority = static_cast<int>(random() % 11);
      std::string id = server.submit({{"command", "true"}, {"priority", priority}});
      all[id] = {0, false};
      previous_queued.push_back(id);
      previous_priority[id] = priority;
    }
    crash(server);
  }
  RunResult check = run_program({"/usr/bin/sqlite3", (dir_.path() / "state" / "tasks.db").string(),
                                 "PRAGMA integrity_check;"});
  ASSERT_TRUE(check.status && check.status->ok()) << check.err;
  EXPECT_EQ(check.out, "ok\n");
  // Figures for docs/RELIABILITY.md (tests/reliability/gtest_figures.py).
  RecordProperty("figure: kill -9 rounds", rounds);
  RecordProperty("figure: acknowledged tasks checked", static_cast<int>(all.size()));
}

}  // namespace
}  // namespace orch::test
