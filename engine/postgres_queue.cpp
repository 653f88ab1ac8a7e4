// The SharedQueue half of PostgresStore: nodes, claims, leases and the
// rescuer, as SQL on the tables of schema 2 (docs/CLUSTER.md).
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/postgres_store.h"
#include "engine/postgres_store_impl.h"
#include "engine/store_row.h"

namespace orch::engine {

namespace {

using pg::Params;
using pg::Row;
using pg::Session;

// The database's clock in Unix ms: leases are judged by one clock for all nodes.
#define ORCH_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define ORCH_LIVE "('queued', 'waiting', 'running')"
#define ORCH_FINISHED "('completed', 'failed', 'cancelled')"

// Advisory lock keys, per database: "orchresc" and "orchclam" in ASCII.
constexpr const char* kTryRescuer = "SELECT pg_try_advisory_xact_lock(8030590385919386467)";
constexpr const char* kLockClaims = "SELECT pg_advisory_xact_lock(8030590385684668781)";

// store_row::kTaskColumns with a table alias, for statements that join.
std::string columns_of(const std::string& alias) {
  std::string out;
  std::istringstream in(store_row::kTaskColumns);
  std::string column;
  while (std::getline(in, column, ',')) {
    while (!column.empty() && column.front() == ' ') column.erase(column.begin());
    out += (out.empty() ? "" : ", ") + alias + "." + column;
  }
  return out;
}

const std::string kColumns = columns_of("t");

constexpr const char* kUpsertNode =
    "INSERT INTO nodes (name, url, token, pid, started_at_ms, heartbeat_at_ms, running, max_concurrent, health) "
    "VALUES ($1, $2, $3, $4, $5, " ORCH_NOW_MS ", $6, $7, $8) "
    "ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, token = EXCLUDED.token, pid = EXCLUDED.pid, "
    "started_at_ms = EXCLUDED.started_at_ms, heartbeat_at_ms = EXCLUDED.heartbeat_at_ms, "
    "running = EXCLUDED.running, max_concurrent = EXCLUDED.max_concurrent, health = EXCLUDED.health";
constexpr const char* kRenewLeases =
    "UPDATE tasks SET lease_until_ms = " ORCH_NOW_MS " + $2 WHERE node = $1 AND status IN " ORCH_LIVE;
constexpr const char* kTakeCancels =
    "UPDATE tasks SET cancel_requested = 0 WHERE node = $1 AND cancel_requested = 1 RETURNING id";
// Of the ids a node reports holding, those whose row says otherwise (in the
// same transaction as the renewal, so no rescue falls between the two).
constexpr const char* kLostClaims =
    "SELECT h.id FROM unnest($2::text[]) AS h(id) WHERE NOT EXISTS "
    "(SELECT 1 FROM tasks t WHERE t.id = h.id AND t.node = $1)";
constexpr const char* kGiveBack =
    "UPDATE tasks SET node = NULL, lease_until_ms = 0 WHERE node = $1 AND status IN ('queued', 'waiting')";
constexpr const char* kDropNode = "DELETE FROM nodes WHERE name = $1";
constexpr const char* kNotifyTasks = "SELECT pg_notify('orch_tasks', '')";
constexpr const char* kNotifyCancel = "SELECT pg_notify('orch_cancel', $1)";
constexpr const char* kSelectNodes =
    "SELECT name, url, token, pid, started_at_ms, heartbeat_at_ms, " ORCH_NOW_MS " - heartbeat_at_ms, running, "
    "max_concurrent, health FROM nodes ORDER BY name";
constexpr const char* kNextSeq = "SELECT nextval('tasks_seq')";

// Candidates in run order, locked without waiting for rows another node is
// claiming; then each profile's limits across every node (running or
// claimed; starts in the last minute) cut the list; then the first `max`.
const std::string kClaim =
    "WITH candidates AS ("
    "  SELECT id, profile, priority, seq FROM tasks"
    "  WHERE status = 'queued' AND node IS NULL AND not_before_ms <= " ORCH_NOW_MS
    "  ORDER BY priority DESC, seq LIMIT $3 FOR UPDATE SKIP LOCKED"
    "), limits AS ("
    "  SELECT key AS profile, (value->>'c')::bigint AS cap, (value->>'r')::bigint AS rate"
    "  FROM jsonb_each($4::jsonb)"
    "), load AS ("
    "  SELECT l.profile,"
    "    (SELECT count(*) FROM tasks b WHERE b.profile = l.profile AND b.node IS NOT NULL"
    "       AND b.status IN ('queued', 'running')) AS active,"
    "    (SELECT count(*) FROM tasks b WHERE b.profile = l.profile"
    "       AND b.started_at_ms > " ORCH_NOW_MS " - 60000) AS recent"
    "  FROM limits l"
    "), ranked AS ("
    "  SELECT c.id, c.priority, c.seq,"
    "    row_number() OVER (PARTITION BY c.profile ORDER BY c.priority DESC, c.seq) AS k,"
    "    COALESCE(l.cap, 0) AS cap, COALESCE(l.rate, 0) AS rate,"
    "    COALESCE(d.active, 0) AS active, COALESCE(d.recent, 0) AS recent"
    "  FROM candidates c LEFT JOIN limits l ON l.profile = c.profile LEFT JOIN load d ON d.profile = c.profile"
    "), picked AS ("
    "  SELECT id FROM ranked WHERE (cap = 0 OR active + k <= cap) AND (rate = 0 OR recent + k <= rate)"
    "  ORDER BY priority DESC, seq LIMIT $2"
    ") UPDATE tasks t SET node = $1, lease_until_ms = " ORCH_NOW_MS " + $5 FROM picked WHERE t.id = picked.id "
    "RETURNING " + kColumns;

const std::string kHeldBy = "SELECT " + kColumns + " FROM tasks t WHERE t.node = $1 ORDER BY t.seq";
const std::string kFindTask = "SELECT " + kColumns + " FROM tasks t WHERE t.id = $1";
const std::string kLockTask = "SELECT " + kColumns + " FROM tasks t WHERE t.id = $1 FOR UPDATE";
const std::string kPage =
    "SELECT " + kColumns + " FROM tasks t WHERE ($1::bigint = 0 OR t.seq < $1::bigint)"
    " AND ($2::text IS NULL OR t.status = $2::text) AND ($3::text IS NULL OR t.tags::jsonb ? $3::text)"
    " AND ($4::text IS NULL OR strpos(t.name, $4::text) > 0) ORDER BY t.seq DESC LIMIT $5";
constexpr const char* kBacklog = "SELECT count(*) FROM tasks WHERE status IN ('queued', 'waiting')";
constexpr const char* kLiveIds =
    "SELECT id FROM tasks WHERE status IN " ORCH_LIVE " AND ($1::text IS NULL OR tags::jsonb ? $1::text) "
    "ORDER BY seq";
constexpr const char* kAskCancel = "UPDATE tasks SET cancel_requested = 1 WHERE id = $1";
constexpr const char* kNowMs = "SELECT " ORCH_NOW_MS;

// Both take the rescue's one `now` ($1): with the clock read by each, a lease
// that ran out between the two was not yet out for the cancels and already
// out for the rest, and a task asked to cancel was queued again instead.
const std::string kExpired =
    "SELECT " + kColumns + " FROM tasks t WHERE t.node IS NOT NULL AND t.status IN " ORCH_LIVE
    " AND t.lease_until_ms < $1::bigint ORDER BY t.seq LIMIT 500 FOR UPDATE SKIP LOCKED";
// A task someone asked to cancel whose node died before it could: cancelled,
// as asked, rather than run again elsewhere.
constexpr const char* kEndAskedCancels =
    "WITH asked AS ("
    "  SELECT id, status AS old_status FROM tasks WHERE node IS NOT NULL AND cancel_requested = 1"
    "    AND status IN " ORCH_LIVE " AND lease_until_ms < $1::bigint FOR UPDATE SKIP LOCKED"
    "), ended AS ("
    "  UPDATE tasks t SET status = 'cancelled', reason = 'cancelled', pid = NULL, finished_at_ms = $1,"
    "    cancel_requested = 0, lease_until_ms = 0,"
    "    message = 'cancelled by request; node ' || t.node || ' stopped renewing its lease before it could stop it'"
    "  FROM asked a WHERE t.id = a.id"
    "  RETURNING t.id, a.old_status, t.reason, t.message"
    ") INSERT INTO transitions (task_id, from_status, to_status, reason, message, at_ms)"
    " SELECT id, old_status, 'cancelled', reason, message, $1 FROM ended RETURNING task_id";
constexpr const char* kClearLease = "UPDATE tasks SET lease_until_ms = 0, cancel_requested = 0 WHERE id = $1";
// A waiting task none holds whose dependency failed, was cancelled or is
// gone ends as the single server ends it (Scheduler::settle).
constexpr const char* kFailDependents =
    "WITH failed AS ("
    "  SELECT DISTINCT ON (t.id) t.id, d.dep, COALESCE(x.status, '') AS dep_status"
    "  FROM tasks t CROSS JOIN LATERAL jsonb_array_elements_text(t.depends_on::jsonb) AS d(dep)"
    "  LEFT JOIN tasks x ON x.id = d.dep"
    "  WHERE t.node IS NULL AND t.status = 'waiting' AND (x.id IS NULL OR x.status IN ('failed', 'cancelled'))"
    "  ORDER BY t.id, d.dep"
    "), ended AS ("
    "  UPDATE tasks t SET status = 'cancelled', reason = $2,"
    "    message = 'dependency ' || f.dep || CASE WHEN f.dep_status = '' THEN ' no longer exists'"
    "      ELSE ' ' || f.dep_status END,"
    "    finished_at_ms = $1"
    "  FROM failed f WHERE t.id = f.id AND t.node IS NULL AND t.status = 'waiting'"
    "  RETURNING t.id, t.reason, t.message"
    ") INSERT INTO transitions (task_id, from_status, to_status, reason, message, at_ms)"
    " SELECT id, 'waiting', 'cancelled', reason, message, $1 FROM ended RETURNING task_id";
// A waiting task none holds whose time came and whose dependencies all completed.
constexpr const char* kReleaseReady =
    "WITH ready AS ("
    "  SELECT t.id FROM tasks t WHERE t.node IS NULL AND t.status = 'waiting' AND t.not_before_ms <= $1"
    "  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(t.depends_on::jsonb) AS d(dep)"
    "    LEFT JOIN tasks x ON x.id = d.dep WHERE x.status IS DISTINCT FROM 'completed')"
    "  FOR UPDATE OF t SKIP LOCKED"
    "), moved AS ("
    "  UPDATE tasks t SET status = 'queued', message = '' FROM ready r WHERE t.id = r.id RETURNING t.id"
    ") INSERT INTO transitions (task_id, from_status, to_status, reason, message, at_ms)"
    " SELECT id, 'waiting', 'queued', NULL, '', $1 FROM moved RETURNING task_id";
// Finished rows that no live node keeps (it would evict them itself).
constexpr const char* kEvictOrphans =
    "DELETE FROM tasks WHERE id IN ("
    "  SELECT id FROM ("
    "    SELECT t.id, t.finished_at_ms, row_number() OVER (ORDER BY t.seq DESC) AS k FROM tasks t"
    "    WHERE t.status IN " ORCH_FINISHED
    "    AND (t.node IS NULL OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.name = t.node"
    "      AND n.heartbeat_at_ms >= " ORCH_NOW_MS " - $1))"
    "  ) o WHERE o.k > $3 OR o.finished_at_ms < " ORCH_NOW_MS " - $2 LIMIT 1000)";
// Nodes silent for an hour that hold nothing any more.
constexpr const char* kForgetNodes =
    "DELETE FROM nodes n WHERE n.heartbeat_at_ms < " ORCH_NOW_MS " - 3600000"
    " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.node = n.name)";

std::vector<TaskId> first_column(const pg::PgResult& r) {
  std::vector<TaskId> out;
  for (int i = 0, n = pg::rows(r); i < n; ++i) out.push_back(Row(r.get(), i).column_text(0));
  return out;
}

// The limits a claim must keep across nodes, as {"profile": {"c": cap, "r": starts per minute}}.
std::string claim_limits(const std::map<std::string, ProfileRules>& rules, bool& any) {
  nlohmann::json limits = nlohmann::json::object();
  any = false;
  for (const auto& [name, r] : rules) {
    const std::int64_t rate = r.rate_limit.per_minute > 0
                                  ? std::max<std::int64_t>(r.rate_limit.burst,
                                                           static_cast<std::int64_t>(std::ceil(r.rate_limit.per_minute)))
                                  : 0;
    if (r.max_concurrent <= 0 && rate <= 0) continue;
    limits[name] = {{"c", r.max_concurrent}, {"r", rate}};
    any = true;
  }
  return limits.dump();
}

}  // namespace

Result<HeartbeatReply> PostgresStore::heartbeat(const NodeReport& report) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const NodeInfo& n = report.self;
  const std::string what = "heartbeat of node " + n.name;
  HeartbeatReply reply;
  Status st = im.session.transaction(what, [&]() -> Status {
    Params node;
    node.text(n.name).text(n.url).text(n.token).integer(n.pid).integer(n.started_at_ms).integer(std::int64_t{n.running})
        .integer(std::int64_t{n.max_concurrent}).text(n.health);
    if (auto r = im.session.exec(kUpsertNode, node, what); !r) return r.error();
    Params lease;
    lease.text(n.name).integer(report.lease_ms);
    if (auto r = im.session.exec(kRenewLeases, lease, what); !r) return r.error();
    Params mine;
    mine.text(n.name);
    auto r = im.session.exec(kTakeCancels, mine, what);
    if (!r) return r.error();
    reply.cancels = first_column(*r);
    if (report.holding.empty()) return {};
    Params held;
    held.text(n.name).text(postgres::text_array(report.holding));
    auto lost = im.session.exec(kLostClaims, held, what);
    if (!lost) return lost.error();
    reply.lost = first_column(*lost);
    return {};
  });
  if (!st) return st.error();
  return reply;
}

Status PostgresStore::leave(const std::string& node) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "node " + node + " leaving";
  return im.session.transaction(what, [&]() -> Status {
    Params p;
    p.text(node);
    auto given = im.session.exec(kGiveBack, p, what);
    if (!given) return given.error();
    if (auto r = im.session.exec(kDropNode, p, what); !r) return r.error();
    if (pg::affected(*given) > 0) {
      if (auto r = im.session.exec(kNotifyTasks, {}, what); !r) return r.error();
    }
    return {};
  });
}

Result<std::vector<NodeInfo>> PostgresStore::nodes(std::int64_t lease_ms) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  auto r = im.session.exec(kSelectNodes, {}, "read the nodes", Session::First::yes);
  if (!r) return r.error();
  std::vector<NodeInfo> out;
  for (int i = 0, rows = pg::rows(*r); i < rows; ++i) {
    Row row(r->get(), i);
    NodeInfo n;
    n.name = row.column_text(0);
    n.url = row.column_text(1);
    n.token = row.column_text(2);
    n.pid = row.column_int(3);
    n.started_at_ms = row.column_int(4);
    n.heartbeat_at_ms = row.column_int(5);
    n.heartbeat_age_ms = row.column_int(6);
    n.running = static_cast<int>(row.column_int(7));
    n.max_concurrent = static_cast<int>(row.column_int(8));
    n.health = row.column_text(9);
    n.alive = n.heartbeat_age_ms <= lease_ms;
    out.push_back(std::move(n));
  }
  return out;
}

Result<std::int64_t> PostgresStore::next_seq() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  auto r = im.session.exec(kNextSeq, {}, "draw a seq", Session::First::yes);
  if (!r) return r.error();
  return Row(r->get(), 0).column_int(0);
}

Result<std::vector<TaskRecord>> PostgresStore::claim(const std::string& node, int max, std::int64_t lease_ms,
                                                     const std::map<std::string, ProfileRules>& rules) {
  if (max <= 0) return std::vector<TaskRecord>{};
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "claim tasks for node " + node;
  bool limited = false;
  const std::string limits = claim_limits(rules, limited);
  std::vector<TaskRecord> claimed;
  Status st = im.session.transaction(what, [&]() -> Status {
    // Counting what other nodes run is only exact if they do not claim at
    // the same moment: with limits to keep, claims take turns.
    if (limited) {
      if (auto r = im.session.exec(kLockClaims, {}, what); !r) return r.error();
    }
    Params p;
    p.text(node).integer(std::int64_t{max}).integer(std::int64_t{max} * 4 + 16).text(limits).integer(lease_ms);
    auto r = im.session.exec(kClaim, p, what);
    if (!r) return r.error();
    auto tasks = postgres::decode_tasks(*r);
    if (!tasks) return tasks.error();
    claimed = std::move(*tasks);
    return {};
  });
  if (!st) return st.error();
  std::sort(claimed.begin(), claimed.end(), [](const TaskRecord& a, const TaskRecord& b) { return a.seq < b.seq; });
  return claimed;
}

Result<std::vector<TaskRecord>> PostgresStore::held_by(const std::string& node) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.text(node);
  auto r = im.session.exec(kHeldBy, p, "load the tasks of node " + node, Session::First::yes);
  if (!r) return r.error();
  return postgres::decode_tasks(*r);
}

Result<std::optional<TaskRecord>> PostgresStore::find(const TaskId& id) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.text(id);
  auto r = im.session.exec(kFindTask, p, "read task " + id, Session::First::yes);
  if (!r) return r.error();
  auto tasks = postgres::decode_tasks(*r);
  if (!tasks) return tasks.error();
  if (tasks->empty()) return std::optional<TaskRecord>();
  return std::optional<TaskRecord>(std::move(tasks->front()));
}

Result<std::vector<TaskRecord>> PostgresStore::page(const TaskQuery& query, std::int64_t before_seq,
                                                    std::size_t limit) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.integer(before_seq)
      .text_or_null(query.status ? to_string(*query.status) : "")
      .text_or_null(query.tag)
      .text_or_null(query.name_contains)
      .integer(static_cast<std::int64_t>(limit));
  auto r = im.session.exec(kPage, p, "list tasks", Session::First::yes);
  if (!r) return r.error();
  return postgres::decode_tasks(*r);
}

Result<std::size_t> PostgresStore::backlog() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  auto r = im.session.exec(kBacklog, {}, "count the queue", Session::First::yes);
  if (!r) return r.error();
  return static_cast<std::size_t>(Row(r->get(), 0).column_int(0));
}

Result<std::vector<TaskId>> PostgresStore::live_ids(const std::string& tag) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  Params p;
  p.text_or_null(tag);
  auto r = im.session.exec(kLiveIds, p, "list live tasks", Session::First::yes);
  if (!r) return r.error();
  return first_column(*r);
}

Result<SharedCancel> PostgresStore::cancel(const TaskId& id, const std::string& message) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "cancel task " + id;
  SharedCancel out;
  Status st = im.session.transaction(what, [&]() -> Status {
    Params key;
    key.text(id);
    auto r = im.session.exec(kLockTask, key, what);
    if (!r) return r.error();
    auto tasks = postgres::decode_tasks(*r);
    if (!tasks) return tasks.error();
    if (tasks->empty()) return make_error(ErrorCode::NotFound, "unknown task id '" + id + "'");
    TaskRecord& t = tasks->front();
    if (is_terminal(t.status)) {
      std::string detail = t.message.empty() ? "" : " (" + t.message + ")";
      return make_error(ErrorCode::Conflict,
                        "task " + id + " already " + to_string(t.status) + detail + "; nothing to cancel");
    }
    if (!t.node.empty()) {
      if (auto w = im.session.exec(kAskCancel, key, what); !w) return w.error();
      Params who;
      who.text(t.node);
      if (auto w = im.session.exec(kNotifyCancel, who, what); !w) return w.error();
      out.requested = true;
      out.task = std::move(t);
      return {};
    }
    auto now = im.session.exec(kNowMs, {}, what);
    if (!now) return now.error();
    const TaskStatus from = t.status;
    t.status = TaskStatus::Cancelled;
    t.reason = EndReason::Cancelled;
    t.message = message;
    t.finished_at_ms = Row(now->get(), 0).column_int(0);
    auto w = im.session.exec(postgres::update_task_statement(), postgres::update_params(t, ""), what);
    if (!w) return w.error();
    if (auto a = postgres::add_transition(im.session, id, to_string(from), t, t.finished_at_ms, what); !a) return a;
    out.ended = true;
    out.task = std::move(t);
    return {};
  });
  if (!st) return st.error();
  return out;
}

Result<RescueReport> PostgresStore::rescue(std::int64_t lease_ms, const RescueDecision& decide,
                                           std::int64_t retention_ms, std::size_t retention_count) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  const std::string what = "rescue";
  RescueReport report;
  Status st = im.session.transaction(what, [&]() -> Status {
    auto held = im.session.exec(kTryRescuer, {}, what);
    if (!held) return held.error();
    if (Row(held->get(), 0).column_text(0) != "t") return {};
    report.ran = true;
    auto now_row = im.session.exec(kNowMs, {}, what);
    if (!now_row) return now_row.error();
    const std::int64_t now = Row(now_row->get(), 0).column_int(0);

    Params at_now;
    at_now.integer(now);
    auto asked = im.session.exec(kEndAskedCancels, at_now, what);
    if (!asked) return asked.error();
    report.rescued = first_column(*asked);
    auto expired = im.session.exec(kExpired, at_now, what);
    if (!expired) return expired.error();
    auto stale = postgres::decode_tasks(*expired);
    if (!stale) return stale.error();
    for (const TaskRecord& t : *stale) {
      TaskRecord next = decide(t, t.node);
      next.node.clear();
      auto w = im.session.exec(postgres::update_task_statement(), postgres::update_params(next, t.node), what);
      if (!w) return w.error();
      Params key;
      key.text(t.id);
      if (auto c = im.session.exec(kClearLease, key, what); !c) return c.error();
      const std::int64_t at = is_terminal(next.status) ? next.finished_at_ms : now;
      if (auto a = postgres::add_transition(im.session, t.id, to_string(t.status), next, at, what); !a) return a;
      report.rescued.push_back(t.id);
    }

    // Dependents of a failure, transitively: each round ends the next layer.
    Params at;
    at.integer(now).text(to_string(EndReason::DependencyFailed));
    for (int round = 0; round < 16; ++round) {
      auto ended = im.session.exec(kFailDependents, at, what);
      if (!ended) return ended.error();
      auto ids = first_column(*ended);
      if (ids.empty()) break;
      report.dependency_failed.insert(report.dependency_failed.end(), ids.begin(), ids.end());
    }
    Params ready;
    ready.integer(now);
    auto released = im.session.exec(kReleaseReady, ready, what);
    if (!released) return released.error();
    report.released = first_column(*released);

    Params keep;
    keep.integer(lease_ms).integer(retention_ms).integer(static_cast<std::int64_t>(retention_count));
    auto evicted = im.session.exec(kEvictOrphans, keep, what);
    if (!evicted) return evicted.error();
    report.evicted = static_cast<std::size_t>(pg::affected(*evicted));
    if (auto r = im.session.exec(kForgetNodes, {}, what); !r) return r.error();
    if (!report.rescued.empty() || !report.released.empty()) {
      if (auto r = im.session.exec(kNotifyTasks, {}, what); !r) return r.error();
    }
    return {};
  });
  if (!st) return st.error();
  return report;
}

void PostgresStore::wait_for_news(std::chrono::milliseconds timeout) {
  Impl& im = *impl_;
  std::lock_guard lock(im.listen_mu);
  if (!im.listening) {
    // A hint only: without it, callers' polls still find the work.
    if (im.listener.connect() && im.listener.exec("LISTEN orch_tasks; LISTEN orch_cancel", {}, "listen")) {
      im.listening = true;
    }
  }
  pollfd fds[2] = {{im.wake.get(), POLLIN, 0}, {-1, POLLIN, 0}};
  if (im.listening) fds[1].fd = pq().PQsocket(im.listener.raw());
  const int ready = ::poll(fds, fds[1].fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return;
  if (fds[0].revents & POLLIN) {
    std::uint64_t count = 0;
    [[maybe_unused]] ssize_t n = ::read(im.wake.get(), &count, sizeof count);
  }
  if (fds[1].fd >= 0 && fds[1].revents) {
    if (!pq().PQconsumeInput(im.listener.raw())) {
      im.listening = false;  // connect again on the next wait
      return;
    }
    while (PGnotify* n = pq().PQnotifies(im.listener.raw())) pq().PQfreemem(n);
  }
}

void PostgresStore::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(impl_->wake.get(), &one, sizeof one);
}

}  // namespace orch::engine
