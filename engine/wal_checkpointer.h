// Checkpoints a SQLite write-ahead log on a thread of its own (docs/STORE.md,
// Durability). SQLite's own automatic checkpoint runs inside the commit that
// takes the log past 1000 pages and fsyncs the log and the database file
// there: milliseconds, in a commit the engine makes under its lock, so every
// thread of the server stood still for it. Here the commit only wakes this
// thread, which checkpoints through a connection of its own; in WAL mode a
// checkpoint and a writer do not wait for each other.
//
// Bounded: while commits keep coming, a checkpoint run beside them cannot
// catch up with the log's end, and SQLite rewinds the log only once all of it
// is in the database. So when the log reaches kForcePages the committing
// connection checkpoints it itself, as SQLite would have (rarely: a quarter as
// often as SQLite's own threshold).
//
// Thread-safety: attach() once, before the connection is used; the hook runs
// on whichever thread commits (under the caller's own serialisation of that
// connection). Ownership: the destructor stops and joins the thread and closes
// its connection; destroy it before the attached connection is closed.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.h"

namespace orch::engine {

class WalCheckpointer {
 public:
  static constexpr int kPages = 1000;       // SQLite's default threshold, now in the background
  static constexpr int kForcePages = 4000;  // ≈16 MiB: the committing connection checkpoints itself

  // Opens a second connection to `file` (which must exist, in WAL mode) and
  // installs the commit hook on `writer`, which replaces SQLite's automatic
  // checkpoint there.
  static Result<std::unique_ptr<WalCheckpointer>> attach(sqlite3* writer, const std::filesystem::path& file);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Checkpoints run so far: by the thread, and by committing connections.
  std::int64_t background_runs() const { return background_runs_.load(std::memory_order_relaxed); }
  std::int64_t forced_runs() const { return forced_runs_.load(std::memory_order_relaxed); }

 private:
  WalCheckpointer() = default;
  static int on_commit(void* self, sqlite3* writer, const char* schema, int log_pages);
  void run();

  sqlite3* writer_ = nullptr;  // the attached connection
  sqlite3* own_ = nullptr;     // the thread's connection
  std::mutex mu;
  std::condition_variable wanted_cv;
  bool wanted = false;  // guarded by mu
  bool stop = false;    // guarded by mu
  // The log's length in pages when the last checkpoint began: the next is
  // wanted kPages after it (the log does not shrink until it is rewound).
  std::atomic<int> checkpointed_to_{0};
  std::atomic<std::int64_t> background_runs_{0};
  std::atomic<std::int64_t> forced_runs_{0};
  std::thread thread;
};

}  // namespace orch::engine
