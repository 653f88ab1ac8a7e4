// Torn and corrupt state (docs/STORE.md, Corruption; the Jepsen NATS
// findings in research §4 test 8): a truncated database file, a flipped byte
// in the write-ahead log, and kills while checkpoints copy the log back. The
// server either refuses to start, naming the file and what to do, or comes
// back with the last good state; it never drops an acknowledged task
// silently. store_persistence_test.cpp covers a file that is not a database.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace orch::test {
namespace {

namespace fs = std::filesystem;

class TornState : public IntegrationTest {
 protected:
  fs::path state() const { return dir_.path() / "state"; }
  fs::path db() const { return state() / "tasks.db"; }
  fs::path wal() const { return state() / "tasks.db-wal"; }

  ServerProcess& start_on_state() {
    ServerOptions options;
    options.state_dir = state();
    return start_server(std::move(options));
  }

  ServerProcess& serve() {
    ServerProcess& server = start_on_state();
    server.initialize();
    return server;
  }

  // Tasks that wait an hour: they stay in the store and start no process.
  std::vector<std::string> submit_waiting(ServerProcess& server, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(server.submit({{"command", "true"}, {"delaySec", 3600}, {"name", "w" + std::to_string(i)}}));
    }
    return ids;
  }

  // A store holding `n` waiting tasks, left by a clean stop (everything in
  // tasks.db) or by a kill -9 (the commits still in the WAL).
  enum class Leave { Stopped, Killed };
  std::vector<std::string> leave_store(int n, Leave how) {
    ServerProcess& first = serve();
    std::vector<std::string> ids = submit_waiting(first, n);
    if (how == Leave::Stopped) {
      stop_cleanly(first);
    } else {
      crash(first);
    }
    return ids;
  }

  void crash(ServerProcess& server) {
    server.kill(SIGKILL);
    ASSERT_TRUE(server.wait_exit(scaled(5s)));
    stop_server(server);
  }

  void stop_cleanly(ServerProcess& server) {
    server.close_stdin();
    auto status = server.wait_exit(scaled(10s));
    ASSERT_TRUE(status && status->ok());
    stop_server(server);
  }

  // Starts on the damaged state and expects a refusal that names `file` and
  // says what to do, with the store's files left as they were.
  void expect_refusal_naming(const fs::path& file) {
    const std::string db_before = read_file(db());
    const std::string wal_before = fs::exists(wal()) ? read_file(wal()) : "";
    ServerProcess& server = start_on_state();
    auto status = server.wait_exit(scaled(10s));
    ASSERT_TRUE(status) << "the server started on a damaged store";
    EXPECT_FALSE(status->ok()) << status->describe();
    server.wait_pipes_closed(scaled(2s));
    const std::string err = server.stderr_text();
    EXPECT_NE(err.find(file.string()), std::string::npos) << "the message should name " << file << ":\n" << err;
    EXPECT_NE(err.find("move"), std::string::npos) << "the message should say what to do:\n" << err;
    EXPECT_EQ(read_file(db()), db_before) << "a refused store is never rewritten";
    RecordProperty("figure: damaged stores refused", 1);
    if (!wal_before.empty()) {
      EXPECT_EQ(read_file(wal()), wal_before);
    }
    stop_server(server);
  }

  // Every id in `ids` is known to the server.
  void expect_all_known(ServerProcess& server, const std::vector<std::string>& ids) {
    int missing = 0;
    for (const std::string& id : ids) {
      json r = server.call_tool("getStatus", {{"taskId", id}});
      if (is_tool_error(r)) ++missing;
    }
    EXPECT_EQ(missing, 0) << missing << " of " << ids.size() << " acknowledged tasks are gone";
  }

  TempDir dir_;
};

void flip_byte(const fs::path& file, std::uintmax_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x20));
}

TEST_F(TornState, ADatabaseTruncatedToHalfIsRefusedAndLeftUntouched) {
  leave_store(200, Leave::Stopped);
  ASSERT_FALSE(fs::exists(wal()));
  const auto size = fs::file_size(db());
  ASSERT_GT(size, 8192u);
  fs::resize_file(db(), size / 2);
  expect_refusal_naming(db());
}

// SQLite alone would take an empty file for a new database.
TEST_F(TornState, ADatabaseTruncatedToNothingIsRefusedNotTakenForANewStore) {
  leave_store(20, Leave::Stopped);
  ASSERT_FALSE(fs::exists(wal()));
  fs::resize_file(db(), 0);
  expect_refusal_naming(db());
}

TEST_F(TornState, ADatabaseCutByOnePageIsRefused) {
  leave_store(200, Leave::Stopped);
  fs::resize_file(db(), fs::file_size(db()) - 4096);
  expect_refusal_naming(db());
}

// Frames of the WAL after a kill -9: the commits since the last checkpoint.
// A byte flipped in the middle of the log would make SQLite drop that frame
// and every commit after it; the server must refuse instead.
TEST_F(TornState, AFlippedByteInTheWalIsRefusedNotReplayedUpToTheDamage) {
  leave_store(40, Leave::Killed);
  ASSERT_TRUE(fs::exists(wal()));
  const auto size = fs::file_size(wal());
  ASSERT_GT(size, 32u + 3 * (24 + 4096)) << "the commits should still be in the log";
  // A byte inside a page in the first third of the frames.
  const std::uintmax_t frames = (size - 32) / (24 + 4096);
  flip_byte(wal(), 32 + (frames / 3) * (24 + 4096) + 24 + 1000);
  expect_refusal_naming(wal());
}

TEST_F(TornState, AFlippedByteInTheWalHeaderIsRefused) {
  leave_store(10, Leave::Killed);
  flip_byte(wal(), 17);  // the first salt
  expect_refusal_naming(wal());
}

// A kill in the middle of a transaction leaves frames without a commit after
// the last good one: SQLite drops them, and so it must, since nothing in them
// was acknowledged. Cutting the log at a frame boundary makes that state.
TEST_F(TornState, AWalCutAfterItsLastCommitRecoversEveryAcknowledgedTask) {
  const std::vector<std::string> ids = leave_store(20, Leave::Killed);
  // One more frame than the log holds, half written: a torn last write.
  std::ofstream(wal(), std::ios::app | std::ios::binary) << std::string(24 + 2048, '\x5a');
  ServerProcess& second = serve();
  expect_all_known(second, ids);
}

// Many writes so that checkpoints (about every 1000 pages) run often, and a
// kill -9 after a varying number of them, round after round on one store:
// every acknowledged task is there at the end and the file checks clean.
TEST_F(TornState, KillsWhileCheckpointsRunLoseNoAcknowledgedTask) {
  const std::string padding(6000, 'p');  // two pages a task: a checkpoint every ~250 submits
  std::vector<std::string> acked;
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    ServerProcess& server = serve();
    const int n = 300 + 97 * round;
    std::vector<json> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(server.next_id());
      json arguments{{"command", "true"}, {"delaySec", 3600}, {"env", {{"PAD", padding}}}};
      json params{{"name", "submitTask"}, {"arguments", std::move(arguments)}};
      server.send({{"jsonrpc", "2.0"}, {"id", ids.back()}, {"method", "tools/call"}, {"params", std::move(params)}});
    }
    // Kill once most have been answered; what was answered counts as acknowledged.
    for (int i = 0; i < n - 20; ++i) {
      auto reply = server.wait_response(ids[static_cast<std::size_t>(i)], scaled(30s));
      ASSERT_TRUE(reply);
      acked.push_back((*reply)["result"]["structuredContent"].value("taskId", ""));
    }
    crash(server);
  }
  ServerProcess& last = serve();
  expect_all_known(last, acked);
  // Figures for docs/RELIABILITY.md (tests/reliability/gtest_figures.py).
  RecordProperty("figure: kills during checkpoints", kRounds);
  RecordProperty("figure: acknowledged tasks checked", static_cast<int>(acked.size()));
  json counts = structured(last.call_tool("getStatus"))["orchestrator"]["tasks"];
  EXPECT_GE(counts.value("waiting", 0), static_cast<int>(acked.size()));
}

}  // namespace
}  // namespace orch::test
