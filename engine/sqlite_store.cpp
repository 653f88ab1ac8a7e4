#include "engine/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include "engine/store_row.h"
#include "engine/wal_check.h"
#include "engine/wal_checkpointer.h"

namespace orch::engine {

namespace fs = std::filesystem;

namespace {

// Schema steps, oldest first: step i takes `PRAGMA user_version` from i to
// i + 1. A released step is never edited; a change is a new step appended
// here and the same change to engine/postgres_store.cpp, so both backends
// keep one schema: the same tables and columns, and one version number;
// indexes follow each backend's queries (docs/STORE.md, Migrations).
constexpr const char* kMigrations[] = {
    // 1: tasks and their transitions. name, tags, priority and
    // idempotency_key repeat parts of `spec` so that SQL can filter on them;
    // `spec` is the one that is read back.
    R"sql(
CREATE TABLE tasks (
  id              TEXT PRIMARY KEY NOT NULL,
  seq             INTEGER NOT NULL UNIQUE,
  spec            TEXT NOT NULL,
  name            TEXT NOT NULL DEFAULT '',
  tags            TEXT NOT NULL DEFAULT '[]',
  priority        INTEGER NOT NULL DEFAULT 5,
  idempotency_key TEXT,
  status          TEXT NOT NULL,
  reason          TEXT,
  message         TEXT NOT NULL DEFAULT '',
  progress        TEXT,
  attempt         INTEGER NOT NULL DEFAULT 0,
  exit_code       INTEGER,
  signal          INTEGER,
  pid             INTEGER,
  peak_rss_kb     INTEGER NOT NULL DEFAULT 0,
  submitted_at_ms INTEGER NOT NULL DEFAULT 0,
  started_at_ms   INTEGER NOT NULL DEFAULT 0,
  finished_at_ms  INTEGER NOT NULL DEFAULT 0,
  not_before_ms   INTEGER NOT NULL DEFAULT 0,
  stdout_bytes    INTEGER NOT NULL DEFAULT 0,
  stderr_bytes    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks(idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_status ON tasks(status);
CREATE TABLE transitions (
  seq         INTEGER PRIMARY KEY,
  task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  from_status TEXT,
  to_status   TEXT NOT NULL,
  reason      TEXT,
  message     TEXT NOT NULL DEFAULT '',
  at_ms       INTEGER NOT NULL
);
CREATE INDEX transitions_task ON transitions(task_id, seq);
)sql",
    // 2: the columns and the nodes table of several servers on one store
    // (PostgreSQL, docs/CLUSTER.md), kept here so that both backends have
    // one schema. A SQLite store has one server: node stays NULL and the
    // nodes table empty.
    R"sql(
ALTER TABLE tasks ADD COLUMN node TEXT;
ALTER TABLE tasks ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN depends_on TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_node ON tasks(node) WHERE node IS NOT NULL;
CREATE INDEX tasks_claimable ON tasks(priority DESC, seq) WHERE status = 'queued' AND node IS NULL;
CREATE TABLE nodes (
  name            TEXT PRIMARY KEY NOT NULL,
  url             TEXT NOT NULL DEFAULT '',
  token           TEXT NOT NULL DEFAULT '',
  pid             INTEGER NOT NULL DEFAULT 0,
  started_at_ms   INTEGER NOT NULL DEFAULT 0,
  heartbeat_at_ms INTEGER NOT NULL DEFAULT 0,
  running         INTEGER NOT NULL DEFAULT 0,
  max_concurrent  INTEGER NOT NULL DEFAULT 0,
  health          TEXT NOT NULL DEFAULT ''
);
)sql",
    // 3: indexes follow each backend's own queries. This one reads tasks by
    // id, by seq and by idempotency key only; the status index and the
    // claim index (PostgreSQL's claims) cost a page of log on every start
    // and end here and served nothing.
    R"sql(
DROP INDEX tasks_status;
DROP INDEX tasks_claimable;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

const std::string kSelectTasks =
    std::string("SELECT ") + store_row::kTaskColumns + " FROM tasks ORDER BY seq";
constexpr const char* kInsertTask =
    "INSERT INTO tasks (id, seq, spec, name, tags, priority, idempotency_key, status, reason, "
    "message, progress, attempt, exit_code, signal, pid, peak_rss_kb, submitted_at_ms, "
    "started_at_ms, finished_at_ms, not_before_ms, stdout_bytes, stderr_bytes, node, profile, "
    "depends_on) VALUES (:id, :seq, "
    ":spec, :name, :tags, :priority, :idempotency_key, :status, :reason, :message, :progress, "
    ":attempt, :exit_code, :signal, :pid, :peak_rss_kb, :submitted_at_ms, :started_at_ms, "
    ":finished_at_ms, :not_before_ms, :stdout_bytes, :stderr_bytes, :node, :profile, :depends_on)";
// What changes as a task runs: its id, seq, submit time and spec never
// change once inserted.
constexpr const char* kUpdateTask =
    "UPDATE tasks SET status = :status, reason = :reason, message = :message, "
    "progress = :progress, attempt = :attempt, exit_code = :exit_code, signal = :signal, "
    "pid = :pid, peak_rss_kb = :peak_rss_kb, started_at_ms = :started_at_ms, "
    "finished_at_ms = :finished_at_ms, not_before_ms = :not_before_ms, "
    "stdout_bytes = :stdout_bytes, stderr_bytes = :stderr_bytes, node = :node WHERE id = :id";
constexpr const char* kUpdateProgress =
    "UPDATE tasks SET progress = :progress, pid = :pid, stdout_bytes = :stdout_bytes, "
    "stderr_bytes = :stderr_bytes WHERE id = :id";
constexpr const char* kInsertTransition =
    "INSERT INTO transitions (task_id, from_status, to_status, reason, message, at_ms) "
    "VALUES (:id, :from, :to, :reason, :message, :at_ms)";
constexpr const char* kSelectTransitions =
    "SELECT from_status, to_status, reason, message, at_ms FROM transitions "
    "WHERE task_id = :id ORDER BY seq";
constexpr const char* kSelectByKey = "SELECT id FROM tasks WHERE idempotency_key = :key";
constexpr const char* kDeleteTask = "DELETE FROM tasks WHERE id = :id";
constexpr const char* kMaxSeq = "SELECT COALESCE(MAX(seq), 0) FROM tasks";

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct FinalizeStmt {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, CloseDb>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, FinalizeStmt>;

bool is_damage(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

ErrorCode code_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return ErrorCode::Conflict;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ErrorCode::Unavailable;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return ErrorCode::Io;
    default: return ErrorCode::Internal;
  }
}

// The advice every refusal of a damaged file carries. The -wal file must go
// with it: SQLite would replay an old WAL into a new, empty database file.
std::string move_aside_advice(const fs::path& file) {
  return "The server never empties or rewrites it. Stop the server, move " + file.string() +
         " (and its -wal and -shm files, if present) aside, and start again with an empty store; "
         "the sqlite3 shell's .recover command may salvage the moved copy.";
}

Error damaged(const fs::path& file, const std::string& detail) {
  return make_error(ErrorCode::Io, "store: " + file.string() +
                                       " is not a SQLite database or is corrupt (" + detail +
                                       "). " + move_aside_advice(file));
}

// SQLite reads a file lazily; check its header ourselves so that a file which
// is not a database at all is refused before SQLite opens it.
Status check_header(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec == std::errc::no_such_file_or_directory) return {};
  if (ec) {
    return make_error(ErrorCode::Io, "store: cannot read " + file.string() + ": " + ec.message());
  }
  if (size == 0) {
    // SQLite would take an empty file for a new database and the tasks it
    // held would be gone without a word. The server writes the header within
    // its first open, so an empty file was truncated (or that first open was
    // killed, when moving it aside loses nothing). Commits still in the log
    // rebuild the file (the log is checked next).
    const fs::path wal = file.string() + "-wal";
    if (fs::file_size(wal, ec) > 0 && !ec) return {};
    return damaged(file, "it is empty (0 bytes): truncated, the tasks it held are not in it");
  }
  constexpr std::string_view kMagic("SQLite format 3\0", 16);
  char header[16] = {};
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::Io, "store: cannot read " + file.string());
  in.read(header, sizeof header);
  if (in.gcount() != static_cast<std::streamsize>(sizeof header) ||
      std::string_view(header, sizeof header) != kMagic) {
    return damaged(file, "it does not start with the SQLite header");
  }
  return {};
}

// One use of a cached statement: binds by name, steps, reads columns, and on
// scope exit resets the statement and clears its bindings for the next use.
class Query {
 public:
  explicit Query(sqlite3_stmt* stmt) : s_(stmt) {}
  ~Query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // A name the statement does not use is skipped, so one binder serves
  // INSERT and UPDATE alike; a misspelt name shows up as a NULL in tests.
  void text(const char* name, std::string_view v) {
    if (int i = index(name)) {
      note(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
  }
  // Empty text is stored as NULL ("none"), and read back as empty.
  void text_or_null(const char* name, std::string_view v) {
    if (v.empty()) null(name);
    else text(name, v);
  }
  void integer(const char* name, std::int64_t v) {
    if (int i = index(name)) note(sqlite3_bind_int64(s_, i, v));
  }
  void integer(const char* name, std::optional<int> v) {
    if (v) integer(name, std::int64_t{*v});
    else null(name);
  }
  void null(const char* name) {
    if (int i = index(name)) note(sqlite3_bind_null(s_, i));
  }

  // SQLITE_ROW, SQLITE_DONE, or an error code (a failed bind comes first).
  int step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(s_); }

  std::string column_text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    if (!p) return {};
    return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)));
  }
  std::int64_t column_int(int col) const { return sqlite3_column_int64(s_, col); }
  std::optional<int> column_optional_int(int col) const {
    if (sqlite3_column_type(s_, col) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int(s_, col);
  }
  bool column_is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  int index(const char* name) const { return sqlite3_bind_parameter_index(s_, name); }
  void note(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  sqlite3_stmt* s_;
  int bind_rc_ = SQLITE_OK;
};

// The columns that change as the task runs (kUpdateTask); the insert binds
// the rest too.
void bind_task_state(Query& q, const TaskRecord& t) {
  q.text(":id", t.id);
  q.text(":status", to_string(t.status));
  q.text_or_null(":reason", to_string(t.reason));
  q.text(":message", t.message);
  q.text_or_null(":progress", progress_to_storage_json(t.progress));
  q.integer(":attempt", t.attempt);
  q.integer(":exit_code", t.exit_code);
  q.integer(":signal", t.signal);
  q.integer(":pid", t.pid);
  q.integer(":peak_rss_kb", t.peak_rss_kb);
  q.integer(":submitted_at_ms", t.submitted_at_ms);
  q.integer(":started_at_ms", t.started_at_ms);
  q.integer(":finished_at_ms", t.finished_at_ms);
  q.integer(":not_before_ms", t.not_before_ms);
  q.integer(":stdout_bytes", static_cast<std::int64_t>(t.stdout_bytes));
  q.integer(":stderr_bytes", static_cast<std::int64_t>(t.stderr_bytes));
  q.text_or_null(":node", t.node);
}

void bind_task(Query& q, const TaskRecord& t) {
  bind_task_state(q, t);
  q.integer(":seq", t.seq);
  q.text(":spec", spec_to_storage_json(t.spec));
  q.text(":name", t.spec.name);
  q.text(":tags", nlohmann::json(t.spec.tags).dump());
  q.integer(":priority", t.spec.priority);
  q.text_or_null(":idempotency_key", t.spec.idempotency_key);
  q.text(":profile", t.spec.profile);
  q.text(":depends_on", nlohmann::json(t.spec.depends_on).dump());
}

}  // namespace

struct SqliteStore::Impl {
  fs::path file;
  std::mutex mu;
  DbPtr db;  // declared before the statements: finalized first, closed last
  StmtPtr begin, commit, rollback, savepoint, release, rollback_to, insert_task, update_task, update_progress, insert_transition,
      select_tasks, select_transitions, select_by_key, delete_task, max_seq;
  std::unique_ptr<WalCheckpointer> checkpointer;  // after db: stopped before it closes

  // "store: <what> failed: <SQLite's message>", built at once, before another
  // call replaces SQLite's message.
  Error fail(int rc, const std::string& what) const {
    std::string message = "store: " + what + " failed: " + sqlite3_errmsg(db.get());
    if (is_damage(rc)) message += ". " + file.string() + " is damaged. " + move_aside_advice(file);
    return make_error(code_for(rc), std::move(message));
  }

  Status exec(const char* sql, const std::string& what) {
    if (int rc = sqlite3_exec(db.get(), sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      return fail(rc, what);
    }
    return {};
  }

  Result<StmtPtr> prepare(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return fail(rc, "prepare \"" + std::string(sql).substr(0, 40) + "…\"");
    return StmtPtr(stmt);
  }

  Status prepare_all() {
    std::pair<StmtPtr*, const char*> all[] = {
        {&begin, "BEGIN IMMEDIATE"},
        {&commit, "COMMIT"},
        {&rollback, "ROLLBACK"},
        {&savepoint, "SAVEPOINT one_write"},
        {&release, "RELEASE one_write"},
        {&rollback_to, "ROLLBACK TO one_write"},
        {&insert_task, kInsertTask},
        {&update_task, kUpdateTask},
        {&update_progress, kUpdateProgress},
        {&insert_transition, kInsertTransition},
        {&select_tasks, kSelectTasks.c_str()},
        {&select_transitions, kSelectTransitions},
        {&select_by_key, kSelectByKey},
        {&delete_task, kDeleteTask},
        {&max_seq, kMaxSeq},
    };
    for (auto& [slot, sql] : all) {
      auto stmt = prepare(sql);
      if (!stmt) return stmt.error();
      *slot = std::move(*stmt);
    }
    return {};
  }

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT: the write lock is taken up
  // front, so a transaction never fails half-way for want of it.
  template <typename Body>
  Status transaction(const std::string& what, Body&& body) {
    if (auto st = run(begin.get(), what); !st) return st;
    Status st = body();
    if (st) st = run(commit.get(), what);
    // Some errors (full disk, I/O) make SQLite roll back by itself.
    if (!st && !sqlite3_get_autocommit(db.get())) (void)run(rollback.get(), what);
    return st;
  }

  // `body` under a savepoint inside the open transaction: when it fails,
  // what it wrote goes and the transaction goes on.
  template <typename Body>
  Status savepoint_scope(const std::string& what, Body&& body) {
    if (auto st = run(savepoint.get(), what); !st) return st;
    Status st = body();
    if (!st) (void)run(rollback_to.get(), what);
    (void)run(release.get(), what);
    return st;
  }

  Status write_insert(const TaskRecord& task, const std::string& what) {
    Query q(insert_task.get());
    bind_task(q, task);
    if (int rc = q.step(); rc != SQLITE_DONE) return fail(rc, what);
    return add_transition(task.id, "", task, task.submitted_at_ms, what);
  }

  Status write_update(const TaskRecord& task, TaskStatus from, const std::string& what) {
    Query q(update_task.get());
    bind_task_state(q, task);
    if (int rc = q.step(); rc != SQLITE_DONE) return fail(rc, what);
    if (sqlite3_changes(db.get()) == 0) {
      return make_error(ErrorCode::NotFound, "store: " + what + " failed: no such task");
    }
    return add_transition(task.id, to_string(from), task, store_row::transition_at_ms(task), what);
  }

  Status write_progress(const TaskRecord& task, const std::string& what) {
    Query q(update_progress.get());
    q.text(":id", task.id);
    q.text_or_null(":progress", progress_to_storage_json(task.progress));
    q.integer(":pid", task.pid);
    q.integer(":stdout_bytes", static_cast<std::int64_t>(task.stdout_bytes));
    q.integer(":stderr_bytes", static_cast<std::int64_t>(task.stderr_bytes));
    if (int rc = q.step(); rc != SQLITE_DONE) return fail(rc, what);
    if (sqlite3_changes(db.get()) == 0) {
      return make_error(ErrorCode::NotFound, "store: " + what + " failed: no such task");
    }
    return {};
  }

  // Steps a statement that returns no rows; the error is built before the
  // statement is reset.
  Status run(sqlite3_stmt* stmt, const std::string& what) {
    Query q(stmt);
    if (int rc = q.step(); rc != SQLITE_DONE) return fail(rc, what);
    return {};
  }

  Status add_transition(const TaskId& id, std::string_view from, const TaskRecord& t,
                        std::int64_t at_ms, const std::string& what) {
    Query q(insert_transition.get());
    q.text(":id", id);
    q.text_or_null(":from", from);
    q.text(":to", to_string(t.status));
    q.text_or_null(":reason", to_string(t.reason));
    q.text(":message", t.message);
    q.integer(":at_ms", at_ms);
    if (int rc = q.step(); rc != SQLITE_DONE) return fail(rc, what);
    return {};
  }

  // A one-row, one-integer read (PRAGMAs, MAX).
  Result<std::int64_t> read_int(const char* sql, const std::string& what) {
    auto stmt = prepare(sql);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    int rc = q.step();
    if (rc != SQLITE_ROW) return fail(rc, what);
    return q.column_int(0);
  }

  // PRAGMA quick_check reads every page (but skips the slow index-content
  // cross-checks of integrity_check): O(size), milliseconds for a store kept
  // small by retention.
  Status quick_check() {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db.get(), "PRAGMA quick_check(5)", -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) {
      if (is_damage(rc)) return damaged(file, sqlite3_errmsg(db.get()));
      return fail(rc, "integrity check of " + file.string());
    }
    Query q(stmt.get());
    std::string problems;
    while ((rc = q.step()) == SQLITE_ROW) {
      std::string line = q.column_text(0);
      if (line == "ok") continue;
      std::replace(line.begin(), line.end(), '\n', ' ');  // the message is one line
      problems += (problems.empty() ? "" : "; ") + line;
    }
    if (rc != SQLITE_DONE) {
      if (is_damage(rc)) return damaged(file, sqlite3_errmsg(db.get()));
      return fail(rc, "integrity check of " + file.string());
    }
    if (!problems.empty()) return damaged(file, "integrity check: " + problems);
    return {};
  }

  Status set_wal() {
    auto stmt = prepare("PRAGMA journal_mode=WAL");
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    int rc = q.step();
    if (rc != SQLITE_ROW) return fail(rc, "switch " + file.string() + " to WAL");
    if (std::string mode = q.column_text(0); mode != "wal") {
      return make_error(ErrorCode::Io,
                        "store: " + file.string() + " could not be switched to WAL journaling " +
                            "(SQLite kept '" + mode + "'); is it on a network or read-only " +
                            "file system?");
    }
    return {};
  }

  // Applies the steps this file lacks, all in one transaction, so a crash
  // mid-migration leaves the old schema intact.
  Status migrate() {
    const std::string what = "migrate " + file.string();
    if (auto st = exec("BEGIN IMMEDIATE", what); !st) return st;
    auto version = read_int("PRAGMA user_version", what);
    Status st;
    if (!version) st = version.error();
    const int from = version ? static_cast<int>(*version) : kSchemaVersion;
    for (int v = from; st && v < kSchemaVersion; ++v) {
      st = exec(kMigrations[v], what + " to schema " + std::to_string(v + 1));
      if (st) st = exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str(), what);
    }
    if (st) st = exec("COMMIT", what);
    if (!st && !sqlite3_get_autocommit(db.get())) (void)exec("ROLLBACK", what);
    return st;
  }

  // Open order matters: everything that only reads (header, quick_check,
  // schema version) comes before the first write (WAL switch, migrations), so
  // a refused file is left byte for byte as it was.
  Status open() {
    if (auto st = check_header(file); !st) return st;
    const fs::path wal = file.string() + "-wal";
    if (auto damage = find_wal_damage(wal); !damage.empty()) {
      return make_error(ErrorCode::Io, "store: " + wal.string() + ", the write-ahead log of " + file.string() +
                                           ", is damaged: " + damage + ". " + move_aside_advice(file));
    }
    sqlite3* raw = nullptr;
    // NOMUTEX: this class's own mutex already serialises every use of the handle.
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
    db.reset(raw);  // a handle comes back even on failure, and must be closed
    if (rc != SQLITE_OK) {
      return make_error(code_for(rc), "store: cannot open " + file.string() + ": " +
                                          (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), 5000);
    if (auto st = quick_check(); !st) return st;
    auto version = read_int("PRAGMA user_version", "read the schema version of " + file.string());
    if (!version) return version.error();
    if (*version > kSchemaVersion) {
      return make_error(ErrorCode::Conflict,
                        "store: " + file.string() + " was created by a newer mcp-orchestrator " +
                            "(schema " + std::to_string(*version) + ", this build knows " +
                            std::to_string(kSchemaVersion) + "); run that version, or move the " +
                            "file aside to start with an empty store");
    }
    if (auto st = set_wal(); !st) return st;
    // NORMAL: in WAL mode a commit is not fsynced, only checkpoints are. A
    // commit survives a crash of this process; a power loss may lose the last
    // few (docs/STORE.md, Durability).
    const std::string what = "configure " + file.string();
    if (auto st = exec("PRAGMA synchronous=NORMAL", what); !st) return st;
    if (auto st = exec("PRAGMA foreign_keys=ON", what); !st) return st;
    // The WAL file is reused, not shrunk, after a checkpoint; cap what it keeps.
    if (auto st = exec("PRAGMA journal_size_limit=16777216", what); !st) return st;
    if (auto st = migrate(); !st) return st;
    auto attached = WalCheckpointer::attach(db.get(), file);
    if (!attached) return attached.error();
    checkpointer = std::move(*attached);
    return prepare_all();
  }
};

SqliteStore::SqliteStore(fs::path file, std::unique_ptr<Impl> impl)
    : file_(std::move(file)), impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const fs::path& db_file) {
  if (db_file.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(db_file.parent_path(), ec);
    if (ec) {
      return make_error(ErrorCode::Io, "store: cannot create the directory of " + db_file.string() +
                                           ": " + ec.message());
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->file = db_file;
  if (auto st = impl->open(); !st) return st.error();
  return std::unique_ptr<SqliteStore>(new SqliteStore(db_file, std::move(impl)));
}

Status SqliteStore::insert(const TaskRecord& task) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "insert task " + task.id;
  return im.transaction(what, [&] { return im.write_insert(task, what); });
}

Status SqliteStore::update(const TaskRecord& task, TaskStatus from) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "update task " + task.id;
  return im.transaction(what, [&] { return im.write_update(task, from, what); });
}

Status SqliteStore::update_progress(const TaskRecord& task) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  return im.write_progress(task, "save progress of task " + task.id);
}

std::vector<Status> SqliteStore::write(std::span<const Write> writes) {
  if (writes.size() == 1) return Store::write(writes);  // its own transaction is the batch
  std::vector<Status> results(writes.size());
  if (writes.empty()) return results;
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "write " + std::to_string(writes.size()) + " task changes";
  Status committed = im.transaction(what, [&]() -> Status {
    for (std::size_t i = 0; i < writes.size(); ++i) {
      const TaskRecord& t = *writes[i].task;
      if (writes[i].insert) {
        const std::string one = "insert task " + t.id;
        results[i] = im.savepoint_scope(one, [&] { return im.write_insert(t, one); });
      } else if (writes[i].from) {
        const std::string one = "update task " + t.id;
        results[i] = im.savepoint_scope(one, [&] { return im.write_update(t, *writes[i].from, one); });
      } else {
        results[i] = im.write_progress(t, "save progress of task " + t.id);  // one statement: atomic alone
      }
      // Some errors (full disk, I/O) roll the whole transaction back: the
      // rest must not go on outside it.
      if (!results[i] && sqlite3_get_autocommit(im.db.get())) return results[i];
    }
    return {};
  });
  // Nothing of the batch stands when its commit failed.
  if (!committed) {
    for (Status& r : results) {
      if (r) r = committed.error();
    }
  }
  return results;
}

Result<std::vector<TaskRecord>> SqliteStore::load_all() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  std::vector<TaskRecord> tasks;
  Query q(im.select_tasks.get());
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto task = store_row::decode_task(q);
    if (!task) return task.error();
    tasks.push_back(std::move(*task));
  }
  if (rc != SQLITE_DONE) return im.fail(rc, "load tasks");
  return tasks;
}

Result<std::optional<TaskId>> SqliteStore::find_by_idempotency_key(const std::string& key) {
  if (key.empty()) return std::optional<TaskId>();
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Query q(im.select_by_key.get());
  q.text(":key", key);
  int rc = q.step();
  if (rc == SQLITE_ROW) return std::optional<TaskId>(q.column_text(0));
  if (rc != SQLITE_DONE) return im.fail(rc, "look up idempotency key");
  return std::optional<TaskId>();
}

Status SqliteStore::remove(const std::vector<TaskId>& ids) {
  if (ids.empty()) return {};
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "remove " + std::to_string(ids.size()) + " tasks";
  // Transitions go with their task by ON DELETE CASCADE; an id already gone is not an error.
  return im.transaction(what, [&]() -> Status {
    for (const TaskId& id : ids) {
      Query q(im.delete_task.get());
      q.text(":id", id);
      if (int rc = q.step(); rc != SQLITE_DONE) return im.fail(rc, what + " (at " + id + ")");
    }
    return {};
  });
}

Result<std::vector<Store::Transition>> SqliteStore::transitions(const TaskId& id) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  std::vector<Transition> out;
  Query q(im.select_transitions.get());
  q.text(":id", id);
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out.push_back({q.column_text(0), q.column_text(1), q.column_text(2), q.column_text(3),
                   q.column_int(4)});
  }
  if (rc != SQLITE_DONE) return im.fail(rc, "read transitions of task " + id);
  return out;
}

Result<std::int64_t> SqliteStore::max_seq() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Query q(im.max_seq.get());
  int rc = q.step();
  if (rc != SQLITE_ROW) return im.fail(rc, "read the highest seq");
  return q.column_int(0);
}

// Reads the seq index's last entry: a real read of the file through the same
// connection the engine writes with, without scanning anything.
Status SqliteStore::probe() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Query q(im.max_seq.get());
  if (int rc = q.step(); rc != SQLITE_ROW) return im.fail(rc, "probe");
  return {};
}

}  // namespace orch::engine
