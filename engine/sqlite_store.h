// SqliteStore: the embedded default store, one SQLite (WAL) file under the
// state directory (SPEC §4 Store, docs/STORE.md).
//
// Durability: WAL with synchronous=NORMAL. A committed transaction survives a
// kill -9 of the server (the WAL is in the OS page cache); only a power loss
// may drop the last few commits. Every acknowledged submit is committed before
// the tool answers.
//
// Thread-safety: all methods are thread-safe (one connection, one mutex).
// Failures are those of Store, with SQLite's message: Unavailable when the
// file stays locked, Io for file trouble. A damaged file says so, names the
// file and says what to do; it is never emptied or recreated (docs/STORE.md).
#pragma once

#include <filesystem>
#include <memory>

#include "engine/store.h"

namespace orch::engine {

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database file, sets WAL and
  // synchronous=NORMAL, runs migrations, and runs `PRAGMA quick_check`: a
  // corrupt file is refused with a message naming it, never emptied.
  static Result<std::unique_ptr<SqliteStore>> open(const std::filesystem::path& db_file);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status insert(const TaskRecord& task) override;
  Status update(const TaskRecord& task, TaskStatus from) override;
  Status update_progress(const TaskRecord& task) override;
  // All in one transaction, each write under a savepoint of its own.
  std::vector<Status> write(std::span<const Write> writes) override;
  Result<std::vector<TaskRecord>> load_all() override;
  Result<std::optional<TaskId>> find_by_idempotency_key(const std::string& key) override;
  Status remove(const std::vector<TaskId>& ids) override;
  Result<std::vector<Transition>> transitions(const TaskId& id) override;
  Result<std::int64_t> max_seq() override;
  // Reads the seq index's last entry through the connection the engine writes with.
  Status probe() override;
  std::string location() const override { return file_.string(); }
  const std::filesystem::path& file() const { return file_; }

 private:
  struct Impl;
  SqliteStore(std::filesystem::path file, std::unique_ptr<Impl> impl);
  std::filesystem::path file_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::engine
