// PostgresStore: the store in a PostgreSQL database, so that several servers
// can share one (SPEC §4 Store, docs/STORE.md, PostgreSQL), on libpq loaded
// when the first one is opened (engine/libpq.h). Same tables and columns as
// SqliteStore (TEXT and BIGINT; JSON kept as TEXT), with its own numbered
// migrations recorded in a `schema_version` table.
//
// Migrations run in one transaction under a transaction-scoped advisory lock,
// so servers starting at the same moment apply each step exactly once.
//
// One server per database for now: open takes a session-level advisory lock
// and a second server is refused (Unavailable, "in use by another
// mcp-orchestrator server") until tasks are claimed with leases (issue 11).
//
// Thread-safety: all methods are thread-safe (one connection, one mutex;
// calls run one at a time, each as one transaction). A connection found
// broken is reset once before the call's first statement, which is always
// safe to send again (after taking the database's lock again on the new
// session); if that fails too the call is Unavailable with libpq's message.
// No message ever holds the URL's password.
#pragma once

#include <memory>
#include <string>

#include "engine/store.h"

namespace orch::engine {

class PostgresStore final : public Store {
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

 private:
  struct Impl;
  explicit PostgresStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The URL with any password replaced by "***", for messages and logs.
std::string redact_postgres_url(const std::string& url);

}  // namespace orch::engine
