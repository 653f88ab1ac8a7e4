// PostgresStore: the store in a PostgreSQL database, so that several servers
// can share one (SPEC §4 Store, docs/STORE.md, PostgreSQL), on libpq loaded
// when the first one is opened (engine/libpq.h). Same tables and columns as
// SqliteStore (TEXT and BIGINT; JSON kept as TEXT), with its own numbered
// migrations recorded in a `schema_version` table.
//
// Migrations run in one transaction under a transaction-scoped advisory lock,
// so servers starting at the same moment apply each step exactly once.
//
// Several servers may share one database: it is also their SharedQueue
// (engine/shared_queue.h, docs/CLUSTER.md; the code is in
// engine/postgres_queue.cpp). A task row names the node that holds it, and
// only that node's writes of it land.
//
// Thread-safety: all methods are thread-safe (one connection, one mutex;
// calls run one at a time, each as one transaction; waiting for news uses a
// second connection). A connection found broken is reset once before the
// call's first statement, which is always safe to send again; if that fails
// too the call is Unavailable with libpq's message. No message ever holds
// the URL's password.
#pragma once

#include <memory>
#include <string>

#include "engine/shared_queue.h"
#include "engine/store.h"

namespace orch::engine {

class PostgresStore final : public Store, public SharedQueue {
 public:
  // Connects (connect_timeout 10 s unless the URL sets one), runs the
  // migrations this database lacks, and refuses a schema newer than this
  // build. A bad URL or a server that cannot be reached is Unavailable with
  // a message naming host:port and database.
  static Result<std::unique_ptr<PostgresStore>> open(const std::string& url);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  Status insert(const TaskRecord& task) override;
  Status update(const TaskRecord& task, TaskStatus from) override;
  Status update_progress(const TaskRecord& task) override;
  Result<std::vector<TaskRecord>> load_all() override;
  Result<std::optional<TaskId>> find_by_idempotency_key(const std::string& key) override;
  Status remove(const std::vector<TaskId>& ids) override;
  Result<std::vector<Transition>> transitions(const TaskId& id) override;
  Result<std::int64_t> max_seq() override;
  // A round trip that reads the seq index; reconnects a broken connection.
  Status probe() override;
  // postgresql://user@host:port/database, never with the password.
  std::string location() const override;

  // SharedQueue (engine/shared_queue.h).
  Result<HeartbeatReply> heartbeat(const NodeReport& report) override;
  Status leave(const std::string& node) override;
  Result<std::vector<NodeInfo>> nodes(std::int64_t lease_ms) override;
  Result<std::int64_t> next_seq() override;
  Result<std::vector<TaskRecord>> claim(const std::string& node, int max, std::int64_t lease_ms,
                                        const std::map<std::string, ProfileRules>& rules) override;
  Result<std::vector<TaskRecord>> held_by(const std::string& node) override;
  Result<std::optional<TaskRecord>> find(const TaskId& id) override;
  Result<std::vector<TaskRecord>> page(const TaskQuery& query, std::int64_t before_seq, std::size_t limit) override;
  Result<std::size_t> backlog() override;
  Result<std::vector<TaskId>> live_ids(const std::string& tag) override;
  Result<SharedCancel> cancel(const TaskId& id, const std::string& message) override;
  Result<RescueReport> rescue(std::int64_t lease_ms, const RescueDecision& decide, std::int64_t retention_ms,
                              std::size_t retention_count) override;
  void wait_for_news(std::chrono::milliseconds timeout) override;
  void wake() override;

 private:
  struct Impl;
  explicit PostgresStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The URL with any password replaced by "***", for messages and logs.
std::string redact_postgres_url(const std::string& url);

}  // namespace orch::engine
