// Several real servers sharing one PostgreSQL store (docs/CLUSTER.md): each
// with its own state directory and spool, the same --store, its own
// --node-name, serving MCP on stdio (where the test talks to it) and HTTP on
// 127.0.0.1 port 0 (where the other nodes read its output). A short lease
// and heartbeat keep the rescue quick. Each test gets a fresh database on
// the test PostgreSQL (ORCH_TEST_POSTGRES_URL, started by scripts/test).
//
// Which node ran a task is read from the spools: a node makes
// <state-dir>/spool/<id>/ when it starts the task, and only then.
#include <gtest/gtest.h>
#include <signal.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/postgres_db.h"
#include "tests/support/process_probe.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

namespace fs = std::filesystem;

constexpr auto kLease = 2000ms;
constexpr auto kHeartbeat = 250ms;

bool has_status(const json& task, const char* status) { return task.value("status", "") == status; }
// Running with its process started (the pid follows the status by a moment).
bool running_with_pid(const json& task) { return has_status(task, "running") && task.value("pid", 0) > 0; }

struct Node {
  std::string name;
  ServerProcess* server = nullptr;
  std::string url;
};

class Cluster : public IntegrationTest {
 protected:
  void SetUp() override {
    db_ = PostgresDb::create();
    if (!db_) {
      ASSERT_FALSE(HasFailure());
      GTEST_SKIP() << kNoTestPostgres;
    }
    config_ = dir_.path() / "cluster.json";
    write_file(config_, json{{"cluster", {{"leaseMs", kLease.count()}, {"heartbeatMs", kHeartbeat.count()}}}}.dump(2));
  }

  Node& start_node(const std::string& name, std::vector<std::string> extra = {}) {
    ServerOptions options;
    options.state_dir = dir_.path() / name;
    options.args = {"--store",  db_->url(),  "--config", config_.string(), "--node-name",
                    name,       "--http",    "127.0.0.1:0", "--stdio"};
    options.args.insert(options.args.end(), extra.begin(), extra.end());
    Node node;
    node.name = name;
    node.server = &start_server(std::move(options));
    node.server->initialize();
    node.url = node.server->http_url();
    nodes_.push_back(node);
    return nodes_.back();
  }

  // Until every node sees `count` live nodes: a task submitted before a node
  // joined could all go to the first one.
  void wait_joined(std::size_t count) {
    for (const Node& node : nodes_) {
      if (node.server->exited()) continue;
      json last;
      EXPECT_TRUE(wait_until(
          [&] {
            last = structured(node.server->call_tool("getStatus")).value("orchestrator", json::object());
            std::size_t alive = 0;
            for (const auto& n : last.value("nodes", json::array())) alive += n.value("alive", false) ? 1 : 0;
            return alive >= count;
          },
          scaled(10s), 50ms))
          << node.name << " does not see " << count << " live nodes: " << last.dump();
    }
  }

  // A task runs or ran on a node when one of that node's keepers runs it (its
  // command line names the task's directory in that node's spool), or when
  // its keeper's record is in the node's status logs (a silent task leaves
  // no other file).
  bool ran_on(const Node& node, const std::string& id) const {
    const fs::path spool = node.server->state_dir() / "spool";
    const std::string dir_arg = std::string("\0--dir\0", 7) + (spool / id).string() + std::string(1, '\0');
    for (pid_t pid : all_processes()) {
      if (process_cmdline(pid).find(dir_arg) != std::string::npos) return true;
    }
    std::error_code ec;
    for (fs::directory_iterator it(spool, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->path().filename().string().starts_with("exits.log")) continue;
      std::ifstream in(it->path());
      for (std::string line; std::getline(in, line);) {
        if (line.starts_with("v1 " + id + " ")) return true;
      }
    }
    return false;
  }

  // The nodes whose spools hold the task (exactly one when it ran once).
  std::vector<std::string> runners(const std::string& id) const {
    std::vector<std::string> out;
    for (const Node& node : nodes_) {
      if (ran_on(node, id)) out.push_back(node.name);
    }
    return out;
  }

  // The task's `node` field, when the task view has one, agrees with the spools.
  void expect_node_field(const json& task, const std::string& id) {
    if (!task.contains("node")) return;
    auto where = runners(id);
    ASSERT_EQ(where.size(), 1u) << id;
    EXPECT_EQ(task.value("node", ""), where[0]) << task.dump();
  }

  // Submits `count` tasks `echo <name> >> file`, round-robin over the nodes,
  // waits for each to complete and checks that every name is in the file
  // exactly once. Returns how many each node ran.
  std::map<std::string, int> run_names(int count) {
    const fs::path file = dir_.path() / "names.txt";
    std::vector<std::pair<std::string, Node*>> submitted;
    for (int i = 0; i < count; ++i) {
      Node& via = nodes_[static_cast<std::size_t>(i) % nodes_.size()];
      const std::string name = "name-" + std::to_string(i);
      std::string id = via.server->submit({{"command", "echo " + name + " >> '" + file.string() + "'"}});
      EXPECT_FALSE(id.empty());
      submitted.emplace_back(id, &via);
    }
    std::map<std::string, int> ran;
    for (const auto& [id, via] : submitted) {
      json result = via->server->wait_result(id, scaled(30s));
      EXPECT_EQ(result.value("status", ""), "completed") << id << ": " << result.dump();
      auto where = runners(id);
      EXPECT_EQ(where.size(), 1u) << id << " ran on " << where.size() << " nodes";
      if (where.size() == 1) ++ran[where[0]];
      expect_node_field(via->server->task(id), id);
    }
    std::multiset<std::string> names;
    std::istringstream lines(read_file(file));
    for (std::string line; std::getline(lines, line);) names.insert(line);
    EXPECT_EQ(names.size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ(names.count("name-" + std::to_string(i)), 1u) << "name-" << i;
    }
    return ran;
  }

  // Submits `sleep 300` on `via` until some node in `on` runs one; returns
  // the ids of every one submitted, and of the one running there in `found`.
  std::vector<std::string> sleep_until_running_on(Node& via, const Node& on, std::string& found) {
    std::vector<std::string> ids;
    for (int i = 0; i < 16 && found.empty(); ++i) {
      std::string id = via.server->submit({{"command", "sleep 300"}});
      ids.push_back(id);
      via.server->wait_task(id, running_with_pid, scaled(10s));
      wait_until([&] { return !runners(id).empty(); }, scaled(2s));
      if (const pid_t pid = via.server->task(id).value("pid", 0); pid > 0) kill_group_at_teardown(pid);
      if (ran_on(on, id)) found = id;
    }
    return ids;
  }

  std::unique_ptr<PostgresDb> db_;
  TempDir dir_;
  fs::path config_;
  std::deque<Node> nodes_;  // a deque: start_node's references stay valid
};

TEST_F(Cluster, TwoNodesRunEveryTaskExactlyOnceAndShareTheWork) {
  start_node("a");
  start_node("b");
  wait_joined(2);
  auto ran = run_names(40);
  EXPECT_GT(ran["a"], 0) << "node a ran nothing";
  EXPECT_GT(ran["b"], 0) << "node b ran nothing";
  EXPECT_EQ(ran["a"] + ran["b"], 40);

  // getStatus of either node shows both, and which one it is.
  json o = structured(nodes_[0].server->call_tool("getStatus")).value("orchestrator", json::object());
  EXPECT_EQ(o.value("node", ""), "a") << o.dump();
  ASSERT_EQ(o.value("nodes", json::array()).size(), 2u) << o.dump();
  for (const auto& n : o["nodes"]) {
    EXPECT_TRUE(n.value("alive", false)) << n.dump();
    EXPECT_EQ(n.value("url", ""), n.value("name", "") == "a" ? nodes_[0].url : nodes_[1].url) << n.dump();
    EXPECT_FALSE(n.contains("token")) << n.dump();
  }
}

TEST_F(Cluster, AnyNodeAnswersForATaskThatRunsOrRanOnAnother) {
  // A takes one task at a time: once it runs a sleep, what it is given next runs on B.
  Node& a = start_node("a", {"--max-concurrent", "1"});
  Node& b = start_node("b");
  wait_joined(2);
  std::string on_a, on_b;
  auto sleeps = sleep_until_running_on(a, a, on_a);
  ASSERT_FALSE(on_a.empty()) << "no sleep ran on a";
  auto more = sleep_until_running_on(a, b, on_b);
  ASSERT_FALSE(on_b.empty()) << "no sleep ran on b";

  // A running task of B, asked on A: its status and a (non-waiting) result.
  json task = a.server->task(on_b);
  EXPECT_TRUE(has_status(task, "running")) << task.dump();
  expect_node_field(task, on_b);
  json running = structured(a.server->call_tool("getResult", {{"taskId", on_b}}));
  EXPECT_EQ(running.value("status", ""), "running") << running.dump();

  // A finished task of B, its output read through A.
  const std::string printed = a.server->submit({{"command", "echo out-from-b; echo err-from-b >&2"}});
  json done = a.server->wait_result(printed, scaled(20s));
  EXPECT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_TRUE(ran_on(b, printed)) << "the task should have run on b (a was full)";
  EXPECT_FALSE(ran_on(a, printed));
  json read = structured(a.server->call_tool("getResult", {{"taskId", printed}}));
  EXPECT_EQ(read["stdout"].value("text", ""), "out-from-b\n") << read.dump();
  EXPECT_EQ(read["stderr"].value("text", ""), "err-from-b\n") << read.dump();
  json tail = structured(a.server->call_tool("getResult", {{"taskId", printed}, {"stream", "stdout"},
                                                            {"tail", true}, {"maxBytes", 3}}));
  EXPECT_EQ(tail["stdout"].value("text", ""), "-b\n") << tail.dump();

  // listTasks on either node sees every task.
  json listed = structured(b.server->call_tool("listTasks", {{"limit", 100}}));
  EXPECT_EQ(listed["tasks"].size(), sleeps.size() + more.size() + 1) << listed.dump();

  // The sleeps end with the test.
  a.server->call_tool("cancelTask", {{"all", true}});
}

TEST_F(Cluster, ACancelOnOneNodeStopsTheTaskOnAnother) {
  Node& a = start_node("a", {"--max-concurrent", "1"});
  Node& b = start_node("b");
  wait_joined(2);
  std::string on_a, on_b;
  sleep_until_running_on(a, a, on_a);
  ASSERT_FALSE(on_a.empty());
  sleep_until_running_on(a, b, on_b);
  ASSERT_FALSE(on_b.empty());
  json task = b.server->task(on_b);
  const pid_t pid = task.value("pid", 0);
  ASSERT_GT(pid, 0) << task.dump();
  kill_group_at_teardown(pid);
  ASSERT_TRUE(process_alive(pid));

  json cancelled = a.server->call_tool("cancelTask", {{"taskId", on_b}});
  EXPECT_FALSE(is_tool_error(cancelled)) << cancelled.dump();
  EXPECT_TRUE(a.server->wait_task(on_b, [](const json& t) { return has_status(t, "cancelled"); }, scaled(10s)));
  EXPECT_TRUE(b.server->wait_task(on_b, [](const json& t) { return has_status(t, "cancelled"); }, scaled(10s)));
  EXPECT_TRUE(wait_until([&] { return processes_in_group(pid).empty(); }, scaled(10s)))
      << "the task's processes outlived the cancel";
  EXPECT_FALSE(process_alive(pid));

  a.server->call_tool("cancelTask", {{"all", true}});
}

TEST_F(Cluster, TasksOfAKilledNodeRunAgainOnAnotherWithinTheLease) {
  // B alone takes the tasks, then A joins, then B dies with them running.
  // First attempt: leaves a marker and sleeps; second: sees it and ends.
  Node& b = start_node("b");
  std::vector<std::string> ids;
  std::map<std::string, pid_t> first_pids;
  for (int i = 0; i < 3; ++i) {
    const std::string marker = (dir_.path() / ("marker-" + std::to_string(i))).string();
    ids.push_back(b.server->submit({{"command", "if [ -e '" + marker + "' ]; then echo second; else touch '" + marker +
                                                     "'; sleep 300; fi"},
                                    {"retry", {{"maxAttempts", 2}}}}));
  }
  for (const auto& id : ids) {
    ASSERT_TRUE(b.server->wait_task(id, running_with_pid, scaled(10s)));
    const pid_t pid = b.server->task(id).value("pid", 0);
    ASSERT_GT(pid, 0);
    first_pids[id] = pid;
    kill_group_at_teardown(pid);
  }
  Node& a = start_node("a");
  wait_joined(2);

  const auto killed_at = std::chrono::steady_clock::now();
  b.server->kill(SIGKILL);
  ASSERT_TRUE(b.server->wait_exit(scaled(5s)));

  for (const auto& id : ids) {
    // Given back after the lease, plus a few heartbeats for the rescuer.
    EXPECT_TRUE(a.server->wait_task(
        id, [](const json& t) { return t.value("attempt", 0) >= 2 || has_status(t, "completed"); },
        scaled(kLease + 12 * kHeartbeat + 3s)))
        << id << " was not given back in time";
  }
  const auto given_back_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at).count();
  std::cerr << "tasks of the killed node given back within " << given_back_ms << " ms\n";
  for (const auto& id : ids) {
    json result = a.server->wait_result(id, scaled(20s));
    EXPECT_EQ(result.value("status", ""), "completed") << result.dump();
    EXPECT_EQ(result["stdout"].value("text", ""), "second\n") << result.dump();
    EXPECT_TRUE(ran_on(a, id));
    json task = a.server->task(id);
    EXPECT_EQ(task.value("attempt", 0), 2) << task.dump();
    EXPECT_EQ(task.value("node", ""), "a") << task.dump();
  }
  // Nothing of the first attempts is left running.
  for (const auto& [id, pid] : first_pids) {
    EXPECT_TRUE(wait_until([&] { return processes_in_group(pid).empty(); }, scaled(10s)))
        << "the first attempt of " << id << " (pid " << pid << ") outlived its node";
  }
}

TEST_F(Cluster, ANodeStoppedPastItsLeaseGivesUpItsTasksAndItsLateResultIsIgnored) {
  // B runs two tasks and is stopped (SIGSTOP) past its lease; A runs them
  // again. One first attempt sleeps on, the other ends while B is stopped.
  // When B runs again it must stop the one and drop the result of the other.
  Node& b = start_node("b");
  const fs::path release = dir_.path() / "release";
  auto first_then_second = [&](const std::string& marker, const std::string& first) {
    const std::string m = (dir_.path() / marker).string();
    return b.server->submit({{"command", "if [ -e '" + m + "' ]; then echo second; else touch '" + m + "'; " + first + "; fi"},
                             {"retry", {{"maxAttempts", 2}}}});
  };
  const std::string sleeper = first_then_second("marker-sleep", "sleep 300");
  const std::string late = first_then_second(
      "marker-late", "until [ -e '" + release.string() + "' ]; do sleep 0.05; done; echo first");
  std::map<std::string, pid_t> first_pids;
  for (const auto& id : {sleeper, late}) {
    ASSERT_TRUE(b.server->wait_task(id, running_with_pid, scaled(10s)));
    first_pids[id] = b.server->task(id).value("pid", 0);
    ASSERT_GT(first_pids[id], 0);
    kill_group_at_teardown(first_pids[id]);
  }
  Node& a = start_node("a");
  wait_joined(2);

  b.server->kill(SIGSTOP);
  struct Resume {
    ServerProcess* server;
    ~Resume() { server->kill(SIGCONT); }
  } resume_at_teardown{b.server};
  auto second_on_a = [](const json& t) {
    return has_status(t, "completed") && t.value("attempt", 0) == 2 && t.value("node", "") == "a";
  };
  for (const auto& id : {sleeper, late}) {
    EXPECT_TRUE(a.server->wait_task(id, second_on_a, scaled(kLease + 12 * kHeartbeat + 10s)))
        << id << " did not run again on a: " << a.server->task(id).dump();
  }
  // The late first attempt ends while its node is stopped, and prints "first".
  write_file(release, "");
  EXPECT_TRUE(wait_until([&] { return processes_in_group(first_pids[late]).empty(); }, scaled(10s)));
  b.server->kill(SIGCONT);

  // B, running again, learns on its heartbeat that both are no longer its own.
  EXPECT_TRUE(wait_until([&] { return processes_in_group(first_pids[sleeper]).empty(); }, scaled(10s)))
      << "the first attempt of " << sleeper << " outlived its node's lost lease";
  for (const auto& id : {sleeper, late}) {
    EXPECT_TRUE(b.server->wait_task(id, second_on_a, scaled(10s))) << id << ": " << b.server->task(id).dump();
    for (Node* node : {&a, &b}) {
      json result = structured(node->server->call_tool("getResult", {{"taskId", id}}));
      EXPECT_EQ(result.value("status", ""), "completed") << node->name << ": " << result.dump();
      EXPECT_EQ(result["stdout"].value("text", ""), "second\n") << node->name << ": " << result.dump();
    }
  }
  // And B takes its share of the work again.
  wait_joined(2);
  auto ran = run_names(20);
  EXPECT_EQ(ran["a"] + ran["b"], 20);
}

TEST_F(Cluster, ThreeNodesRunEveryTaskExactlyOnce) {
  start_node("a");
  start_node("b");
  start_node("c");
  wait_joined(3);
  auto ran = run_names(60);
  EXPECT_EQ(ran["a"] + ran["b"] + ran["c"], 60);
  std::cerr << "ran: a " << ran["a"] << ", b " << ran["b"] << ", c " << ran["c"] << "\n";
}

}  // namespace
}  // namespace orch::test
