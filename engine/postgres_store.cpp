#include "engine/postgres_store.h"

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

#include "engine/libpq.h"
#include "engine/postgres_store_impl.h"
#include "engine/store_row.h"

namespace orch::engine {

namespace {

// Schema steps, oldest first: step i takes the database from version i to
// i + 1 and is recorded as row i + 1 of schema_version. A released step is
// never edited; a change is a new step appended here, and the same change is
// appended to the SQLite steps (engine/sqlite_store.cpp) so that both
// backends keep one schema: the same tables and columns, and one version
// number; indexes follow each backend's queries (docs/STORE.md, Migrations).
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
    // 2: several servers on one database (docs/CLUSTER.md): the node that
    // holds a task and until when, a cancel asked of that node, the
    // profile and dependencies as columns for the claim, the nodes, and a
    // sequence for seq that every node draws from.
    R"sql(
ALTER TABLE tasks ADD COLUMN node TEXT;
ALTER TABLE tasks ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN depends_on TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_node ON tasks(node) WHERE node IS NOT NULL;
CREATE INDEX tasks_claimable ON tasks(priority DESC, seq) WHERE status = 'queued' AND node IS NULL;
CREATE TABLE nodes (
  name            TEXT PRIMARY KEY NOT NULL,
  url             TEXT NOT NULL DEFAULT '',
  token           TEXT NOT NULL DEFAULT '',
  pid             BIGINT NOT NULL DEFAULT 0,
  started_at_ms   BIGINT NOT NULL DEFAULT 0,
  heartbeat_at_ms BIGINT NOT NULL DEFAULT 0,
  running         BIGINT NOT NULL DEFAULT 0,
  max_concurrent  BIGINT NOT NULL DEFAULT 0,
  health          TEXT NOT NULL DEFAULT ''
);
CREATE SEQUENCE tasks_seq;
SELECT setval('tasks_seq', COALESCE(MAX(seq), 0) + 1, false) FROM tasks;
)sql",
    // 3: SQLite dropped its status and claim indexes, which its queries
    // never read. Here the claims, the backlog and the listings filter by
    // status: the indexes stay, and the step keeps the numbers in line.
    R"sql(
SELECT 1;
)sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Taken for the length of the migration transaction: a second server that
// starts at the same moment waits here, then finds the steps already applied.
// The key is a fixed number ("orchschm" in ASCII); advisory locks are per
// database, so it only has to be unique among this database's users.
constexpr const char* kLockMigrations = "SELECT pg_advisory_xact_lock(8030590385818658925)";
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
    "stderr_bytes", "node", "profile", "depends_on"};
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

// $1 is the id; the changing columns follow in kWrittenColumns order, then
// the node expected to hold the task. Only the node that holds a task may
// write it: a node whose lease ran out (the rescuer gave the task to
// another) finds no row to update, so its late results are ignored.
std::string update_task_sql() {
  std::string sets;
  int n = 1;
  for (const char* c : kWrittenColumns) {
    if (!changes_on_update(c)) continue;
    const char* sep = n > 1 ? ", " : "";
    ++n;
    sets += sep + std::string(c) + " = $" + std::to_string(n);
  }
  return "UPDATE tasks SET " + sets + " WHERE id = $1 AND node IS NOT DISTINCT FROM $" + std::to_string(n + 1);
}

const std::string kInsertTask = insert_task_sql();
const std::string kUpdateTask = update_task_sql();
const std::string kSelectTasks =
    std::string("SELECT ") + store_row::kTaskColumns + " FROM tasks ORDER BY seq";
constexpr const char* kUpdateProgress =
    "UPDATE tasks SET progress = $2, pid = $3, stdout_bytes = $4, stderr_bytes = $5 "
    "WHERE id = $1 AND node IS NOT DISTINCT FROM $6";
constexpr const char* kHolderOf = "SELECT COALESCE(node, '') FROM tasks WHERE id = $1";
constexpr const char* kInsertTransition =
    "INSERT INTO transitions (task_id, from_status, to_status, reason, message, at_ms) "
    "VALUES ($1, $2, $3, $4, $5, $6)";
constexpr const char* kSelectTransitions =
    "SELECT from_status, to_status, reason, message, at_ms FROM transitions "
    "WHERE task_id = $1 ORDER BY seq";
constexpr const char* kSelectByKey = "SELECT id FROM tasks WHERE idempotency_key = $1";
constexpr const char* kDeleteTasks = "DELETE FROM tasks WHERE id = ANY($1::text[])";
constexpr const char* kMaxSeq = "SELECT COALESCE(MAX(seq), 0) FROM tasks";
// Other nodes LISTEN on it: a new task may be theirs to claim.
constexpr const char* kNotifySubmit = "SELECT pg_notify('orch_tasks', '')";

using pg::Params;
using pg::Row;
using pg::Value;

}  // namespace

namespace postgres {

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
      .integer(static_cast<std::int64_t>(t.stderr_bytes))
      .text_or_null(t.node)
      .text(t.spec.profile)
      .text(nlohmann::json(t.spec.depends_on).dump());
  return std::move(p).take();
}

Params update_params(const TaskRecord& task, const std::string& holder) {
  std::vector<Value> values = task_values(task);
  Params p;
  p.text(task.id);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (changes_on_update(kWrittenColumns[i])) p.value(std::move(values[i]));
  }
  p.text_or_null(holder);
  return p;
}

const std::string& update_task_statement() { return kUpdateTask; }

Status add_transition(pg::Session& s, const TaskId& id, const std::string& from, const TaskRecord& t,
                      std::int64_t at_ms, const std::string& what) {
  Params p;
  p.text(id).text_or_null(from).text(to_string(t.status)).text_or_null(to_string(t.reason)).text(t.message).integer(
      at_ms);
  if (auto r = s.exec(kInsertTransition, p, what); !r) return r.error();
  return {};
}

Result<std::vector<TaskRecord>> decode_tasks(const pg::PgResult& r) {
  std::vector<TaskRecord> tasks;
  const int n = pg::rows(r);
  tasks.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto task = store_row::decode_task(Row(r.get(), i));
    if (!task) return task.error();
    tasks.push_back(std::move(*task));
  }
  return tasks;
}

std::string text_array(const std::vector<std::string>& items) {
  std::string array = "{";
  for (const std::string& item : items) {
    if (array.size() > 1) array += ',';
    array += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') array += '\\';
      array += c;
    }
    array += '"';
  }
  array += '}';
  return array;
}

}  // namespace postgres

namespace {

// Applies the steps this database lacks, all in one transaction, so a
// crash mid-migration leaves the old schema intact.
Status migrate(pg::Session& s) {
  const std::string what = "migrate " + s.where();
  return s.transaction(what, [&]() -> Status {
    if (auto r = s.exec(kLockMigrations, {}, what); !r) return r.error();
    if (auto r = s.exec(kCreateSchemaVersion, {}, what); !r) return r.error();
    auto version = s.exec(kReadSchemaVersion, {}, what);
    if (!version) return version.error();
    const int found = static_cast<int>(Row(version->get(), 0).column_int(0));
    if (found > kSchemaVersion) {
      return make_error(ErrorCode::Conflict,
                        "store: " + s.where() + " was created by a newer mcp-orchestrator (schema " +
                            std::to_string(found) + ", this build knows " + std::to_string(kSchemaVersion) +
                            "); run that version, or point --store at another database");
    }
    for (int v = found; v < kSchemaVersion; ++v) {
      const std::string step = what + " to schema " + std::to_string(v + 1);
      if (auto r = s.exec(kMigrations[v], {}, step); !r) return r.error();
      Params p;
      p.integer(std::int64_t{v + 1}).integer(store_row::wall_clock_ms());
      if (auto r = s.exec(kRecordSchemaVersion, p, step); !r) return r.error();
    }
    return {};
  });
}

// Why a write of a task touched no row: gone, or held by another node now.
Error not_written(pg::Session& s, const TaskRecord& task, const std::string& what) {
  Params p;
  p.text(task.id);
  auto r = s.exec(kHolderOf, p, what);
  if (!r) return r.error();
  if (pg::rows(*r) == 0) return make_error(ErrorCode::NotFound, "store: " + what + " failed: no such task");
  const std::string holder = Row(r->get(), 0).column_text(0);
  return make_error(ErrorCode::Conflict,
                    "store: " + what + " failed: " +
                        (holder.empty() ? std::string("no node holds it now")
                                        : "node " + holder + " holds it now") +
                        " (this node's lease ran out and the task was given back); this node's result is ignored");
}

}  // namespace

std::string redact_postgres_url(const std::string& url) {
  const std::string pw = pg::url_password(url);
  if (pw.empty()) return url;
  const auto scheme = url.find("://");
  const auto colon = url.find(':', scheme + 3);
  return url.substr(0, colon + 1) + "***" + url.substr(colon + 1 + pw.size());
}

PostgresStore::PostgresStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PostgresStore::~PostgresStore() = default;

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(const std::string& url) {
  if (auto lib = load_libpq(); !lib) return lib.error();
  auto target = pg::parse_target(url);
  if (!target) return target.error();
  auto impl = std::make_unique<Impl>(url, *target);
  if (auto st = impl->session.connect(); !st) return st.error();
  if (auto st = migrate(impl->session); !st) return st.error();
  return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(impl)));
}

std::string PostgresStore::location() const {
  const pg::Target& t = impl_->session.target();
  return "postgresql://" + (t.user.empty() ? "" : t.user + "@") + t.host + ":" + t.port + "/" + t.dbname;
}

Status PostgresStore::insert(const TaskRecord& task) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "insert task " + task.id;
  return im.session.transaction(what, [&]() -> Status {
    Params p;
    for (Value& v : postgres::task_values(task)) p.value(std::move(v));
    if (auto r = im.session.exec(kInsertTask, p, what); !r) return r.error();
    if (task.node.empty() && task.status == TaskStatus::Queued) {
      if (auto r = im.session.exec(kNotifySubmit, {}, what); !r) return r.error();
    }
    return postgres::add_transition(im.session, task.id, "", task, task.submitted_at_ms, what);
  });
}

Status PostgresStore::update(const TaskRecord& task, TaskStatus from) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "update task " + task.id;
  return im.session.transaction(what, [&]() -> Status {
    auto r = im.session.exec(kUpdateTask, postgres::update_params(task, task.node), what);
    if (!r) return r.error();
    if (pg::affected(*r) == 0) return not_written(im.session, task, what);
    return postgres::add_transition(im.session, task.id, to_string(from), task, store_row::transition_at_ms(task),
                                    what);
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
      .integer(static_cast<std::int64_t>(task.stderr_bytes))
      .text_or_null(task.node);
  auto r = im.session.exec(kUpdateProgress, p, what, pg::Session::First::yes);
  if (!r) return r.error();
  if (pg::affected(*r) == 0) return not_written(im.session, task, what);
  return {};
}

Result<std::vector<TaskRecord>> PostgresStore::load_all() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  auto r = im.session.exec(kSelectTasks, {}, "load tasks", pg::Session::First::yes);
  if (!r) return r.error();
  return postgres::decode_tasks(*r);
}

Result<std::optional<TaskId>> PostgresStore::find_by_idempotency_key(const std::string& key) {
  if (key.empty()) return std::optional<TaskId>();
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.text(key);
  auto r = im.session.exec(kSelectByKey, p, "look up idempotency key", pg::Session::First::yes);
  if (!r) return r.error();
  if (pg::rows(*r) == 0) return std::optional<TaskId>();
  return std::optional<TaskId>(Row(r->get(), 0).column_text(0));
}

Status PostgresStore::remove(const std::vector<TaskId>& ids) {
  if (ids.empty()) return {};
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "remove " + std::to_string(ids.size()) + " tasks";
  Params p;
  p.text(postgres::text_array(ids));
  if (auto r = im.session.exec(kDeleteTasks, p, what, pg::Session::First::yes); !r) return r.error();
  return {};
}

Result<std::vector<Store::Transition>> PostgresStore::transitions(const TaskId& id) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.text(id);
  auto r = im.session.exec(kSelectTransitions, p, "read transitions of task " + id, pg::Session::First::yes);
  if (!r) return r.error();
  std::vector<Transition> out;
  for (int i = 0, n = pg::rows(*r); i < n; ++i) {
    Row row(r->get(), i);
    out.push_back({row.column_text(0), row.column_text(1), row.column_text(2), row.column_text(3), row.column_int(4)});
  }
  return out;
}

Result<std::int64_t> PostgresStore::max_seq() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  auto r = im.session.exec(kMaxSeq, {}, "read the highest seq", pg::Session::First::yes);
  if (!r) return r.error();
  return Row(r->get(), 0).column_int(0);
}

Status PostgresStore::probe() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  if (auto r = im.session.exec(kMaxSeq, {}, "probe", pg::Session::First::yes); !r) return r.error();
  return {};
}

}  // namespace orch::engine
