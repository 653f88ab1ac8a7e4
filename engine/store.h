// Store: every task and its transitions, kept where a crash cannot reach them
// (SPEC §4 Store). The engine writes through on every change and reads
// everything back once at start, so the store is the truth across crashes and
// the in-memory tables are a cache of it.
//
// Two backends share one schema (docs/STORE.md): an embedded SQLite file, the
// default (engine/sqlite_store.h), and a PostgreSQL database that several
// servers can share (engine/postgres_store.h). open_store() picks one.
//
// Thread-safety: every method of every backend is thread-safe (calls run one
// at a time, each as one short transaction).
// Failures come back as Result errors with the operation and the backend's
// message: Conflict for a duplicate id, seq or idempotency key (nothing is
// written), NotFound for an update of an unknown id, Unavailable when the
// store cannot be reached or stays locked, Io for file or disk trouble.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/task.h"

namespace orch::engine {

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new task (all columns) and its first transition, atomically.
  virtual Status insert(const TaskRecord& task) = 0;
  // Writes the task's changing columns and appends a transition row
  // (from → to status, reason, message, time), atomically. The time is
  // finished_at_ms for an end, started_at_ms for a start, else the wall clock.
  virtual Status update(const TaskRecord& task, TaskStatus from) = 0;
  // Writes only progress, the pid and live counters: no transition row. Cheap.
  virtual Status update_progress(const TaskRecord& task) = 0;
  // One of a batch of writes: insert(*task) when `insert` is set, else
  // update(*task, *from) when `from` is set, update_progress(*task) otherwise.
  struct Write {
    const TaskRecord* task = nullptr;
    std::optional<TaskStatus> from;
    bool insert = false;
  };
  // The writes in order, each as atomic as its own call and failing alone;
  // one Status per write. By default one call each; SQLite commits them all
  // at once, so a burst of submits, starts and ends costs one commit, not
  // one each.
  virtual std::vector<Status> write(std::span<const Write> writes);
  // Every task in submission order.
  virtual Result<std::vector<TaskRecord>> load_all() = 0;
  // The task with this idempotency key, if any.
  virtual Result<std::optional<TaskId>> find_by_idempotency_key(const std::string& key) = 0;
  // Deletes tasks and their transitions, atomically; unknown ids are skipped.
  virtual Status remove(const std::vector<TaskId>& ids) = 0;
  // The transitions of one task, oldest first: (from, to, reason, message, at_ms).
  struct Transition {
    std::string from;
    std::string to;
    std::string reason;
    std::string message;
    std::int64_t at_ms = 0;
  };
  virtual Result<std::vector<Transition>> transitions(const TaskId& id) = 0;
  // The highest seq stored (0 when empty), so new tasks continue the order.
  virtual Result<std::int64_t> max_seq() = 0;
  // A cheap liveness probe for health checks.
  virtual Status probe() = 0;
  // Where the store is, for messages: the file, or the URL without its password.
  virtual std::string location() const = 0;
};

// True for a spec open_store() sends to PostgreSQL: postgresql:// or postgres://.
bool is_postgres_url(const std::string& spec);

// Opens the store a spec names: a postgresql:// or postgres:// URL opens a
// PostgreSQL store, anything else is a SQLite file (a leading sqlite:// is
// dropped). Errors are those of the backend's open.
Result<std::unique_ptr<Store>> open_store(const std::string& spec);

}  // namespace orch::engine
