// Store: every task and its transitions in SQLite (WAL) under the state
// directory (SPEC §4 Store). The engine writes through on every change and
// reads everything back once at start, so the store is the truth across
// crashes and the in-memory tables are a cache of it.
//
// Durability: WAL with synchronous=NORMAL. A committed transaction survives a
// kill -9 of the server (the WAL is in the OS page cache); only a power loss
// may drop the last few commits. Every acknowledged submit is committed before
// the tool answers.
//
// Thread-safety: all methods are thread-safe (one connection, one mutex;
// calls run one at a time, each as one short transaction).
// Failures come back as Result errors with the operation and the SQLite
// message: Conflict for a duplicate id, seq or idempotency key (nothing is
// written), NotFound for an update of an unknown id, Unavailable when the
// file stays locked, Io for file trouble. A damaged file says so, names the
// file and says what to do; it is never emptied or recreated (docs/STORE.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/task.h"

namespace orch::engine {

class Store {
 public:
  // Opens (creating if needed) the database file, sets WAL and
  // synchronous=NORMAL, runs migrations, and runs `PRAGMA quick_check`: a
  // corrupt file is refused with a message naming it, never emptied.
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& db_file);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Inserts a new task (all columns) and its first transition, atomically.
  Status insert(const TaskRecord& task);
  // Writes the task's changing columns and appends a transition row
  // (from → to status, reason, message, time), atomically. The time is
  // finished_at_ms for an end, started_at_ms for a start, else the wall clock.
  Status update(const TaskRecord& task, TaskStatus from);
  // Writes only progress, the pid and live counters: no transition row. Cheap.
  Status update_progress(const TaskRecord& task);
  // Every task in submission order.
  Result<std::vector<TaskRecord>> load_all();
  // The task with this idempotency key, if any.
  Result<std::optional<TaskId>> find_by_idempotency_key(const std::string& key);
  // Deletes tasks and their transitions, atomically; unknown ids are skipped.
  Status remove(const std::vector<TaskId>& ids);
  // The transitions of one task, oldest first: (from, to, reason, message, at_ms).
  struct Transition {
    std::string from;
    std::string to;
    std::string reason;
    std::string message;
    std::int64_t at_ms = 0;
  };
  Result<std::vector<Transition>> transitions(const TaskId& id);
  // The highest seq stored (0 when empty), so new tasks continue the order.
  Result<std::int64_t> max_seq();
  // A cheap liveness probe for health checks.
  Status probe();
  const std::filesystem::path& file() const { return file_; }

 private:
  struct Impl;
  Store(std::filesystem::path file, std::unique_ptr<Impl> impl);
  std::filesystem::path file_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::engine
