#include "engine/wal_checkpointer.h"

#include <spdlog/spdlog.h>

#include <string>

#include "common/thread_name.h"

namespace orch::engine {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::attach(sqlite3* writer,
                                                                  const std::filesystem::path& file) {
  std::unique_ptr<WalCheckpointer> c(new WalCheckpointer());
  // NOMUTEX: the connection is used by the thread alone.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (int rc = sqlite3_open_v2(file.c_str(), &c->own_, flags, nullptr); rc != SQLITE_OK) {
    std::string message = "store: cannot open " + file.string() + " to checkpoint it: " +
                          (c->own_ ? sqlite3_errmsg(c->own_) : sqlite3_errstr(rc));
    sqlite3_close_v2(c->own_);
    c->own_ = nullptr;
    return make_error(ErrorCode::Io, std::move(message));
  }
  sqlite3_busy_timeout(c->own_, 5000);
  // SQLite opens the file at the first read; until then the connection does
  // not know the file is in WAL mode, and a checkpoint through it does nothing.
  if (int rc = sqlite3_exec(c->own_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return make_error(ErrorCode::Io, "store: cannot read " + file.string() + " to checkpoint it: " +
                                         sqlite3_errmsg(c->own_));
  }
  c->thread = std::thread([raw = c.get()] {
    name_this_thread("orch-checkpoint");
    raw->run();
  });
  c->writer_ = writer;
  sqlite3_wal_hook(writer, &WalCheckpointer::on_commit, c.get());
  return c;
}

WalCheckpointer::~WalCheckpointer() {
  if (writer_) sqlite3_wal_hook(writer_, nullptr, nullptr);
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  wanted_cv.notify_one();
  if (thread.joinable()) thread.join();
  sqlite3_close_v2(own_);
}

int WalCheckpointer::on_commit(void* self, sqlite3* writer, const char* schema, int log_pages) {
  auto& c = *static_cast<WalCheckpointer*>(self);
  int from = c.checkpointed_to_.load(std::memory_order_relaxed);
  if (log_pages < from) {  // the log was rewound
    from = 0;
    c.checkpointed_to_.store(0, std::memory_order_relaxed);
  }
  if (log_pages >= kForcePages) {
    // BUSY when the thread is checkpointing: then it finishes the work.
    if (sqlite3_wal_checkpoint_v2(writer, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) == SQLITE_OK) {
      c.forced_runs_.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (log_pages - from >= kPages) {
    c.checkpointed_to_.store(log_pages, std::memory_order_relaxed);
    {
      std::lock_guard lock(c.mu);
      c.wanted = true;
    }
    c.wanted_cv.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::run() {
  std::unique_lock lock(mu);
  for (;;) {
    wanted_cv.wait(lock, [this] { return wanted || stop; });
    if (stop) return;
    wanted = false;
    lock.unlock();
    int rc = sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc == SQLITE_OK) {
      background_runs_.fetch_add(1, std::memory_order_relaxed);
    } else if (rc != SQLITE_BUSY) {
      // Not fatal: the log only grows until the next one, or the forced one.
      spdlog::warn("store: a checkpoint of the write-ahead log failed: {}", sqlite3_errmsg(own_));
    }
    lock.lock();
  }
}

}  // namespace orch::engine
