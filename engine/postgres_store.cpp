#include "engine/postgres_store.h"

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

#include "engine/libpq.h"
#include "engine/store_row.h"

namespace orch::engine {

namespace {

// Schema steps, oldest first: step i takes the database from version i to
// i + 1 and is recorded as row i + 1 of schema_version. A released step is
// never edited; a change is a new step appended here, and the same change is
// appended to the SQLite steps (engine/sqlite_store.cpp) so that both
// backends keep one schema (docs/STORE.md, Migrations).
constexpr const char* kMigrations[] = {
    // 1: tasks and their transitions, column for column as in SQLite (its
    // INTEGER is 64-bit: BIGINT here). JSON stays TEXT: it is read back
    // whole, and TEXT keeps the bytes exactly as they were written.
    R"sql(
CREATE TABLE tasks (
  id              TEXT PRIMARY KEY NOT NULL,
  seq             BIGINT NOT NULL UNIQUE,
  spec            TEXT NOT NULL,
  name            TEXT NOT NULL DEFAULT '',
  tags            TEXT NOT NULL DEFAULT '[]',
  priority        BIGINT NOT NULL DEFAULT 5,
  idempotency_key TEXT,
  status          TEXT NOT NULL,
  reason          TEXT,
  message         TEXT NOT NULL DEFAULT '',
  progress        TEXT,
  attempt         BIGINT NOT NULL DEFAULT 0,
  exit_code       BIGINT,
  signal          BIGINT,
  pid             BIGINT,
  peak_rss_kb     BIGINT NOT NULL DEFAULT 0,
  submitted_at_ms BIGINT NOT NULL DEFAULT 0,
  started_at_ms   BIGINT NOT NULL DEFAULT 0,
  finished_at_ms  BIGINT NOT NULL DEFAULT 0,
  not_before_ms   BIGINT NOT NULL DEFAULT 0,
  stdout_bytes    BIGINT NOT NULL DEFAULT 0,
  stderr_bytes    BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks(idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_status ON tasks(status);
CREATE TABLE transitions (
  seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  from_status TEXT,
  to_status   TEXT NOT NULL,
  reason      TEXT,
  message     TEXT NOT NULL DEFAULT '',
  at_ms       BIGINT NOT NULL
);
CREATE INDEX transitions_task ON transitions(task_id, seq);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Taken for the length of the migration transaction: a second server that
// starts at the same moment waits here, then finds the steps already applied.
// The key is a fixed number ("orchschm" in ASCII); advisory locks are per
// database, so it only has to be unique among this database's users.
constexpr const char* kLockMigrations = "SELECT pg_advisory_xact_lock(8030590385818658925)";
// Held by the one server that uses this database, for its whole session.
// Until servers claim tasks with leases (issue 11), a second server would
// load the first one's running tasks, find no process for them and run them
// again; so it is refused. "orchnode" in ASCII.
constexpr const char* kTakeDatabase = "SELECT pg_try_advisory_lock(8030590385735558245)";
constexpr const char* kCreateSchemaVersion =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version BIGINT PRIMARY KEY NOT NULL, applied_at_ms BIGINT NOT NULL)";
constexpr const char* kReadSchemaVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
constexpr const char* kRecordSchemaVersion =
    "INSERT INTO schema_version (version, applied_at_ms) VALUES ($1, $2)";

// The columns insert writes, in the order task_values() gives them.
constexpr const char* kWrittenColumns[] = {
    "id", "seq", "spec", "name", "tags", "priority", "idempotency_key", "status", "reason",
    "message", "progress", "attempt", "exit_code", "signal", "pid", "peak_rss_kb",
    "submitted_at_ms", "started_at_ms", "finished_at_ms", "not_before_ms", "stdout_bytes",
    "stderr_bytes"};
// id, seq and submitted_at_ms never change after insert.
bool changes_on_update(std::string_view column) {
  return column != "id" && column != "seq" && column != "submitted_at_ms";
}

std::string insert_task_sql() {
  std::string columns, values;
  int n = 0;
  for (const char* c : kWrittenColumns) {
    const char* sep = n ? ", " : "";
    ++n;
    columns += sep + std::string(c);
    values += sep + std::string("$") + std::to_string(n);
  }
  return "INSERT INTO tasks (" + columns + ") VALUES (" + values + ")";
}

// $1 is the id; the changing columns follow in kWrittenColumns order.
std::string update_task_sql() {
  std::string sets;
  int n = 1;
  for (const char* c : kWrittenColumns) {
    if (!changes_on_update(c)) continue;
    const char* sep = n > 1 ? ", " : "";
    ++n;
    sets += sep + std::string(c) + " = $" + std::to_string(n);
  }
  return "UPDATE tasks SET " + sets + " WHERE id = $1";
}

const std::string kInsertTask = insert_task_sql();
const std::string kUpdateTask = update_task_sql();
const std::string kSelectTasks =
    std::string("SELECT ") + store_row::kTaskColumns + " FROM tasks ORDER BY seq";
constexpr const char* kUpdateProgress =
    "UPDATE tasks SET progress = $2, pid = $3, stdout_bytes = $4, stderr_bytes = $5 WHERE id = $1";
constexpr const char* kInsertTransition =
    "INSERT INTO transitions (task_id, from_status, to_status, reason, message, at_ms) "
    "VALUES ($1, $2, $3, $4, $5, $6)";
constexpr const char* kSelectTransitions =
    "SELECT from_status, to_status, reason, message, at_ms FROM transitions "
    "WHERE task_id = $1 ORDER BY seq";
constexpr const char* kSelectByKey = "SELECT id FROM tasks WHERE idempotency_key = $1";
constexpr const char* kDeleteTasks = "DELETE FROM tasks WHERE id = ANY($1::text[])";
constexpr const char* kMaxSeq = "SELECT COALESCE(MAX(seq), 0) FROM tasks";

using Value = std::optional<std::string>;  // nullopt: SQL NULL

// Statement parameters, all sent as text: PostgreSQL casts each to its column's type.
class Params {
 public:
  Params& text(std::string v) {
    values_.emplace_back(std::move(v));
    return *this;
  }
  // Empty text is stored as NULL ("none"), and read back as empty.
  Params& text_or_null(std::string v) {
    if (v.empty()) values_.emplace_back(std::nullopt);
    else values_.emplace_back(std::move(v));
    return *this;
  }
  Params& integer(std::int64_t v) { return text(std::to_string(v)); }
  Params& integer(std::optional<int> v) {
    if (v) return integer(std::int64_t{*v});
    values_.emplace_back(std::nullopt);
    return *this;
  }
  Params& value(Value v) {
    values_.push_back(std::move(v));
    return *this;
  }
  bool empty() const { return values_.empty(); }
  int size() const { return static_cast<int>(values_.size()); }
  std::vector<Value> take() && { return std::move(values_); }
  std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    for (const Value& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
  }

 private:
  std::vector<Value> values_;
};

// Every written column of a task, in kWrittenColumns order.
std::vector<Value> task_values(const TaskRecord& t) {
  Params p;
  p.text(t.id)
      .integer(t.seq)
      .text(spec_to_storage_json(t.spec))
      .text(t.spec.name)
      .text(nlohmann::json(t.spec.tags).dump())
      .integer(std::int64_t{t.spec.priority})
      .text_or_null(t.spec.idempotency_key)
      .text(to_string(t.status))
      .text_or_null(to_string(t.reason))
      .text(t.message)
      .text_or_null(progress_to_storage_json(t.progress))
      .integer(std::int64_t{t.attempt})
      .integer(t.exit_code)
      .integer(t.signal)
      .integer(t.pid)
      .integer(t.peak_rss_kb)
      .integer(t.submitted_at_ms)
      .integer(t.started_at_ms)
      .integer(t.finished_at_ms)
      .integer(t.not_before_ms)
      .integer(static_cast<std::int64_t>(t.stdout_bytes))
      .integer(static_cast<std::int64_t>(t.stderr_bytes));
  return std::move(p).take();
}

struct ClearResult {
  void operator()(PGresult* r) const { pq().PQclear(r); }
};
struct FinishConn {
  void operator()(PGconn* c) const { pq().PQfinish(c); }
};
using PgResult = std::unique_ptr<PGresult, ClearResult>;
using ConnPtr = std::unique_ptr<PGconn, FinishConn>;

// One row of a result, as store_row::decode_task reads rows.
class Row {
 public:
  Row(const PGresult* r, int row) : r_(r), row_(row) {}
  std::string column_text(int col) const {
    if (column_is_null(col)) return {};
    return std::string(pq().PQgetvalue(r_, row_, col), static_cast<std::size_t>(pq().PQgetlength(r_, row_, col)));
  }
  std::int64_t column_int(int col) const {
    if (column_is_null(col)) return 0;
    return std::strtoll(pq().PQgetvalue(r_, row_, col), nullptr, 10);
  }
  std::optional<int> column_optional_int(int col) const {
    if (column_is_null(col)) return std::nullopt;
    return static_cast<int>(column_int(col));
  }
  bool column_is_null(int col) const { return pq().PQgetisnull(r_, row_, col) != 0; }

 private:
  const PGresult* r_;
  int row_;
};

// By SQLSTATE class (PostgreSQL's errcodes appendix).
ErrorCode code_for(std::string_view state, bool connection_bad) {
  if (state.rfind("23", 0) == 0) return ErrorCode::Conflict;  // integrity: unique, foreign key
  if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "57014" ||
      state == "53300" || state == "40001" || state == "40P01" || state == "55P03") {
    return ErrorCode::Unavailable;  // connection lost, server shutting down, too busy, lock conflicts
  }
  if (state == "53100" || state.rfind("58", 0) == 0) return ErrorCode::Io;  // disk full, system errors
  return connection_bad ? ErrorCode::Unavailable : ErrorCode::Internal;
}

// The password of a postgresql://user:password@host/db URL, as written in it.
std::string url_password(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  const auto start = scheme + 3;
  const auto end = url.find_first_of("/?", start);
  const std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  const auto at = authority.rfind('@');
  if (at == std::string::npos) return {};
  const auto colon = authority.find(':');
  if (colon == std::string::npos || colon > at) return {};
  return authority.substr(colon + 1, at - colon - 1);
}

// Every occurrence of a password in a message becomes "***".
void scrub(std::string& text, const std::string& password) {
  if (password.empty()) return;
  for (auto at = text.find(password); at != std::string::npos; at = text.find(password, at + 3)) {
    text.replace(at, password.size(), "***");
  }
}

// What a URL names, for messages: from libpq's own parse of it.
struct Target {
  std::string user, host, port, dbname, password;
};

Result<Target> parse_target(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* options = pq().PQconninfoParse(url.c_str(), &err);
  if (!options) {
    std::string why = err ? err : "out of memory";
    pq().PQfreemem(err);
    scrub(why, url_password(url));
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return make_error(ErrorCode::InvalidArgument,
                      "store: bad PostgreSQL URL " + redact_postgres_url(url) + ": " + why);
  }
  Target t;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    const std::string_view key = o->keyword;
    const std::string value = o->val ? o->val : "";
    if (key == "user") t.user = value;
    else if (key == "host") t.host = value;
    else if (key == "port") t.port = value;
    else if (key == "dbname") t.dbname = value;
    else if (key == "password") t.password = value;
  }
  pq().PQconninfoFree(options);
  if (t.host.empty()) t.host = "localhost";
  if (t.port.empty()) t.port = "5432";
  return t;
}

// libpq prints notices ("relation already exists, skipping") on stderr by
// default; they are informational, and stderr carries the server's log.
void drop_notice(void*, const char*) {}

}  // namespace

std::string redact_postgres_url(const std::string& url) {
  const std::string pw = url_password(url);
  if (pw.empty()) return url;
  const auto scheme = url.find("://");
  const auto colon = url.find(':', scheme + 3);
  return url.substr(0, colon + 1) + "***" + url.substr(colon + 1 + pw.size());
}

struct PostgresStore::Impl {
  std::string url;  // as given: it may hold the password, so it is never printed
  Target target;
  std::string secret;  // the password as written in the URL, scrubbed from messages
  std::mutex mu;
  ConnPtr conn;
  bool guarded = false;  // open took the database: every new session must take it again
  bool owner = false;    // this session holds kTakeDatabase

  std::string where() const { return "PostgreSQL at " + target.host + ":" + target.port + " (database " + target.dbname + ")"; }

  // libpq's message on one line, without the password.
  std::string clean(std::string message) const {
    scrub(message, target.password);
    scrub(message, secret);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    // libpq's hints follow a newline and a tab.
    std::string line;
    for (char c : message) {
      if (c == '\n' || c == '\t') c = ' ';
      if (c != ' ' || line.empty() || line.back() != ' ') line += c;
    }
    return line;
  }

  Error in_use() const {
    return make_error(ErrorCode::Unavailable,
                      "store: " + where() + " is in use by another mcp-orchestrator server; this version "
                      "runs one server per database (stop the other one, or give this one its own database)");
  }

  // Sent on a session before anything else once open has taken the
  // database, because the lock goes with the session it was taken on.
  Status take_database(const std::string& what) {
    PgResult r = send(kTakeDatabase, {});
    if (!ok(r.get())) return fail(r.get(), what);
    if (std::string_view(pq().PQgetvalue(r.get(), 0, 0)) != "t") return in_use();
    owner = true;
    return {};
  }

  Error unreachable(const std::string& what) const {
    return make_error(ErrorCode::Unavailable, "store: " + what + " failed: " + where() +
                                                  " cannot be reached: " + clean(pq().PQerrorMessage(conn.get())));
  }

  Error fail(const PGresult* r, const std::string& what) const {
    const char* state = r ? pq().PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const bool bad = pq().PQstatus(conn.get()) == CONNECTION_BAD;
    std::string message = r ? pq().PQresultErrorMessage(r) : "";
    if (message.empty()) message = pq().PQerrorMessage(conn.get());
    return make_error(code_for(state ? state : "", bad), "store: " + what + " failed: " + clean(message));
  }

  PgResult send(const char* sql, const Params& p) {
    // The simple protocol for parameterless text: a migration step holds
    // several statements, which the extended protocol refuses.
    if (p.empty()) return PgResult(pq().PQexec(conn.get(), sql));
    auto values = p.pointers();
    return PgResult(pq().PQexecParams(conn.get(), sql, p.size(), nullptr, values.data(), nullptr, nullptr, 0));
  }

  static bool ok(const PGresult* r) {
    const auto s = r ? pq().PQresultStatus(r) : PGRES_FATAL_ERROR;
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  }

  // Runs one statement. The first statement of a call may find the
  // connection broken (the server restarted, an idle connection was cut):
  // then the connection is reset once and the statement sent again. Only a
  // first statement is: it is BEGIN, a read, or an idempotent write, so
  // sending it twice changes nothing.
  enum class First { no, yes };
  Result<PgResult> exec(const std::string& sql, const Params& p, const std::string& what,
                        First first = First::no) {
    bool may_reset = first == First::yes;
    for (;;) {
      if (pq().PQstatus(conn.get()) == CONNECTION_BAD) {
        if (!may_reset) return unreachable(what);
        may_reset = false;
        pq().PQreset(conn.get());
        owner = false;
        if (pq().PQstatus(conn.get()) != CONNECTION_OK) return unreachable(what);
      }
      if (first == First::yes && guarded && !owner) {
        if (auto st = take_database(what); !st) {
          if (may_reset && pq().PQstatus(conn.get()) == CONNECTION_BAD) continue;
          return st.error();
        }
      }
      PgResult r = send(sql.c_str(), p);
      if (ok(r.get())) return r;
      if (may_reset && pq().PQstatus(conn.get()) == CONNECTION_BAD) continue;
      return fail(r.get(), what);
    }
  }

  // Runs `body` between BEGIN and COMMIT; on any failure rolls back.
  template <typename Body>
  Status transaction(const std::string& what, Body&& body) {
    if (auto begin = exec("BEGIN", {}, what, First::yes); !begin) return begin.error();
    Status st = body();
    if (st) {
      if (auto commit = exec("COMMIT", {}, what); !commit) st = commit.error();
    }
    const auto tx = pq().PQtransactionStatus(conn.get());
    if (!st && (tx == PQTRANS_INTRANS || tx == PQTRANS_INERROR)) (void)exec("ROLLBACK", {}, what);
    return st;
  }

  Status add_transition(const TaskId& id, const std::string& from, const TaskRecord& t, std::int64_t at_ms,
                        const std::string& what) {
    Params p;
    p.text(id).text_or_null(from).text(to_string(t.status)).text_or_null(to_string(t.reason)).text(t.message).integer(
        at_ms);
    if (auto r = exec(kInsertTransition, p, what); !r) return r.error();
    return {};
  }

  Status connect() {
    // Our defaults first: with expand_dbname the URL's own settings, which
    // come after them, win.
    const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"10", "mcp-orchestrator", url.c_str(), nullptr};
    conn.reset(pq().PQconnectdbParams(keywords, values, 1));
    if (!conn) return make_error(ErrorCode::Internal, "store: cannot connect to " + where() + ": out of memory");
    if (pq().PQstatus(conn.get()) != CONNECTION_OK) {
      return make_error(ErrorCode::Unavailable,
                        "store: cannot connect to " + where() + ": " + clean(pq().PQerrorMessage(conn.get())));
    }
    pq().PQsetNoticeProcessor(conn.get(), drop_notice, nullptr);
    return {};
  }

  // Applies the steps this database lacks, all in one transaction, so a
  // crash mid-migration leaves the old schema intact.
  Status migrate() {
    const std::string what = "migrate " + where();
    int found = 0;
    Status st = transaction(what, [&]() -> Status {
      if (auto r = exec(kLockMigrations, {}, what); !r) return r.error();
      if (auto r = exec(kCreateSchemaVersion, {}, what); !r) return r.error();
      auto version = exec(kReadSchemaVersion, {}, what);
      if (!version) return version.error();
      found = static_cast<int>(Row(version->get(), 0).column_int(0));
      if (found > kSchemaVersion) {
        return make_error(ErrorCode::Conflict,
                          "store: " + where() + " was created by a newer mcp-orchestrator (schema " +
                              std::to_string(found) + ", this build knows " + std::to_string(kSchemaVersion) +
                              "); run that version, or point --store at another database");
      }
      for (int v = found; v < kSchemaVersion; ++v) {
        const std::string step = what + " to schema " + std::to_string(v + 1);
        if (auto r = exec(kMigrations[v], {}, step); !r) return r.error();
        Params p;
        p.integer(std::int64_t{v + 1}).integer(store_row::wall_clock_ms());
        if (auto r = exec(kRecordSchemaVersion, p, step); !r) return r.error();
      }
      return {};
    });
    return st;
  }
};

PostgresStore::PostgresStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PostgresStore::~PostgresStore() = default;

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(const std::string& url) {
  if (auto lib = load_libpq(); !lib) return lib.error();
  auto target = parse_target(url);
  if (!target) return target.error();
  auto impl = std::make_unique<Impl>();
  impl->url = url;
  impl->target = std::move(*target);
  impl->secret = url_password(url);
  if (auto st = impl->connect(); !st) return st.error();
  // Migrations first: they wait for each other under their own lock, and a
  // server that is then refused leaves the schema current.
  if (auto st = impl->migrate(); !st) return st.error();
  if (auto st = impl->take_database("open " + impl->where()); !st) return st.error();
  impl->guarded = true;
  return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(impl)));
}

std::string PostgresStore::location() const {
  const Target& t = impl_->target;
  return "postgresql://" + (t.user.empty() ? "" : t.user + "@") + t.host + ":" + t.port + "/" + t.dbname;
}

Status PostgresStore::insert(const TaskRecord& task) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "insert task " + task.id;
  return im.transaction(what, [&]() -> Status {
    Params p;
    for (Value& v : task_values(task)) p.value(std::move(v));
    if (auto r = im.exec(kInsertTask, p, what); !r) return r.error();
    return im.add_transition(task.id, "", task, task.submitted_at_ms, what);
  });
}

Status PostgresStore::update(const TaskRecord& task, TaskStatus from) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "update task " + task.id;
  return im.transaction(what, [&]() -> Status {
    std::vector<Value> values = task_values(task);
    Params p;
    p.text(task.id);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (changes_on_update(kWrittenColumns[i])) p.value(std::move(values[i]));
    }
    auto r = im.exec(kUpdateTask, p, what);
    if (!r) return r.error();
    if (std::string_view(pq().PQcmdTuples(r->get())) == "0") {
      return make_error(ErrorCode::NotFound, "store: " + what + " failed: no such task");
    }
    return im.add_transition(task.id, to_string(from), task, store_row::transition_at_ms(task), what);
  });
}

Status PostgresStore::update_progress(const TaskRecord& task) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "save progress of task " + task.id;
  Params p;
  p.text(task.id)
      .text_or_null(progress_to_storage_json(task.progress))
      .integer(task.pid)
      .integer(static_cast<std::int64_t>(task.stdout_bytes))
      .integer(static_cast<std::int64_t>(task.stderr_bytes));
  auto r = im.exec(kUpdateProgress, p, what, Impl::First::yes);
  if (!r) return r.error();
  if (std::string_view(pq().PQcmdTuples(r->get())) == "0") {
    return make_error(ErrorCode::NotFound, "store: " + what + " failed: no such task");
  }
  return {};
}

Result<std::vector<TaskRecord>> PostgresStore::load_all() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  auto r = im.exec(kSelectTasks, {}, "load tasks", Impl::First::yes);
  if (!r) return r.error();
  std::vector<TaskRecord> tasks;
  const int rows = pq().PQntuples(r->get());
  tasks.reserve(static_cast<std::size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    auto task = store_row::decode_task(Row(r->get(), i));
    if (!task) return task.error();
    tasks.push_back(std::move(*task));
  }
  return tasks;
}

Result<std::optional<TaskId>> PostgresStore::find_by_idempotency_key(const std::string& key) {
  if (key.empty()) return std::optional<TaskId>();
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.text(key);
  auto r = im.exec(kSelectByKey, p, "look up idempotency key", Impl::First::yes);
  if (!r) return r.error();
  if (pq().PQntuples(r->get()) == 0) return std::optional<TaskId>();
  return std::optional<TaskId>(Row(r->get(), 0).column_text(0));
}

Status PostgresStore::remove(const std::vector<TaskId>& ids) {
  if (ids.empty()) return {};
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "remove " + std::to_string(ids.size()) + " tasks";
  // One statement for the whole batch, as an array literal: every element
  // quoted, with " and \ escaped. Transitions go by ON DELETE CASCADE.
  std::string array = "{";
  for (const TaskId& id : ids) {
    if (array.size() > 1) array += ',';
    array += '"';
    for (char c : id) {
      if (c == '"' || c == '\\') array += '\\';
      array += c;
    }
    array += '"';
  }
  array += '}';
  Params p;
  p.text(std::move(array));
  if (auto r = im.exec(kDeleteTasks, p, what, Impl::First::yes); !r) return r.error();
  return {};
}

Result<std::vector<Store::Transition>> PostgresStore::transitions(const TaskId& id) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.text(id);
  auto r = im.exec(kSelectTransitions, p, "read transitions of task " + id, Impl::First::yes);
  if (!r) return r.error();
  std::vector<Transition> out;
  for (int i = 0, n = pq().PQntuples(r->get()); i < n; ++i) {
    Row row(r->get(), i);
    out.push_back({row.column_text(0), row.column_text(1), row.column_text(2), row.column_text(3), row.column_int(4)});
  }
  return out;
}

Result<std::int64_t> PostgresStore::max_seq() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  auto r = im.exec(kMaxSeq, {}, "read the highest seq", Impl::First::yes);
  if (!r) return r.error();
  return Row(r->get(), 0).column_int(0);
}

Status PostgresStore::probe() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  if (auto r = im.exec(kMaxSeq, {}, "probe", Impl::First::yes); !r) return r.error();
  return {};
}

}  // namespace orch::engine
