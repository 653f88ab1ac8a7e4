// Engine: the one object the tools talk to. It owns the store, the spool, the
// process runner, the scheduler and the worker-thread pool, and runs the
// dispatcher thread that starts tasks when they may run (SPEC §4).
//
// Thread-safety: every public method is thread-safe. Methods return quickly
// except wait(), which blocks until its deadline or stop token; call it from a
// worker thread. The engine knows nothing of MCP: it reports news through
// wait() and plain values, and the tools layer decides how to say them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "engine/allow_list.h"
#include "engine/health.h"
#include "engine/process_pool.h"
#include "engine/process_runner.h"
#include "engine/profile.h"
#include "engine/shared_queue.h"
#include "engine/spool.h"
#include "engine/task.h"
#include "engine/task_keeper.h"

namespace orch::engine {

class WorkerPool;

// Several servers on one PostgreSQL store (docs/CLUSTER.md). Unused on SQLite.
struct ClusterOptions {
  // This server's name among the nodes; empty: <hostname>-<8 hex digits
  // of the state directory's path>, stable across restarts, so a server
  // that comes back takes back what it held.
  std::string node_name;
  // A node whose heartbeat is older than this is dead: the rescuer gives
  // its tasks to the others.
  std::chrono::milliseconds lease{30000};
  // How often a node renews its lease and looks for work and cancels;
  // also how often the rescuer runs.
  std::chrono::milliseconds heartbeat{5000};
  // Reads a window of the output, or the pool result, of a task another
  // node ran, from that node (app/node_link.h). Unset: such reads are
  // Unavailable.
  std::function<Result<OutputWindow>(const NodeInfo& node, const TaskId& id, StreamKind stream,
                                     const ReadRequest& req)>
      fetch_output;
  std::function<Result<std::optional<std::string>>(const NodeInfo& node, const TaskId& id)> fetch_result;
};

struct EngineOptions {
  std::filesystem::path state_dir;              // holds tasks.db, spool/ and the lock
  // The store (engine/store.h, open_store): a SQLite file, or a
  // postgresql:// URL. Empty: <state_dir>/tasks.db.
  std::string store;
  int max_concurrent = 8;                       // task processes running at once
  std::size_t queue_size = 10000;               // tasks not yet running (queued + waiting)
  std::uint64_t stream_cap_bytes = kDefaultStreamCapBytes;
  std::chrono::milliseconds kill_grace{5000};   // SIGTERM → SIGKILL on cancel and timeout
  std::size_t retention_count = 1000;           // finished tasks kept
  std::chrono::milliseconds retention_age{std::chrono::hours(24 * 7)};
  std::size_t worker_threads_max = 128;         // elastic pool for requests and task starts
  std::chrono::milliseconds worker_idle_timeout{30000};
  // The task keeper program (engine/task_keeper.h, docs/RECOVERY.md). Empty:
  // tasks are started directly and a crash of the server loses them.
  std::string keeper_path;
  // What the keepers do with a task when this server dies: keep it running
  // for the next server to adopt, or stop it.
  OrphanPolicy orphans = OrphanPolicy::Adopt;
  Clock* clock = nullptr;                       // default: the system clock
  std::vector<Profile> profiles;                // SPEC §5; names unique
  AllowList allow;                              // SPEC §7; default: everything allowed
  // Memory admission: no task starts while the system's available memory
  // is under this many MiB (0: no floor).
  std::int64_t memory_floor_mb = 0;
  // Restart in place: processes the previous image of this server ran, to be
  // watched again instead of being treated as lost (see Engine::hand_over).
  std::vector<RunningProcess> handed_over;
  Lifeline inherited_lifeline;  // the keepers' lifeline of the previous image
  ClusterOptions cluster;
};

// Restarts in place of this server, kept across them (the app hands them over).
struct RestartInfo {
  std::int64_t count = 0;
  std::string last_reason;     // "SIGHUP", "admin request", "health: rss: …"; empty before the first
  std::int64_t last_at_ms = 0; // Unix ms; 0 before the first
};

// A task as callers see it: the record plus what only the live engine knows.
struct TaskView {
  TaskRecord task;
  std::optional<std::size_t> queue_position;  // 1-based among queued tasks
  bool cancel_requested = false;              // running, being stopped
};

struct SubmitOutcome {
  TaskView view;
  bool deduplicated = false;  // an earlier task had the same idempotency key
};

struct ListFilter {
  std::optional<TaskStatus> status;
  std::string tag;            // empty: any
  std::string name_contains;  // empty: any
};

struct ListPage {
  std::vector<TaskView> tasks;        // newest first
  std::optional<std::string> next_cursor;
};

struct WorkerStats {
  std::size_t threads = 0;
  std::size_t busy = 0;
  std::size_t idle = 0;
  std::size_t max_threads = 0;
  std::size_t queued_jobs = 0;
};

// Completed, failed and cancelled attempts' run times, as a Prometheus-style
// histogram: counts[i] is how many took at most bounds_s[i] seconds
// (cumulative), count includes those over the last bound.
struct DurationHistogram {
  std::vector<double> bounds_s;
  std::vector<std::uint64_t> counts;
  std::uint64_t count = 0;
  double sum_s = 0;
};

struct EngineStats {
  std::vector<ProfileView> profiles;  // each configured profile's limits and breaker
  std::vector<PoolStats> pools;       // each pool profile's workers
  std::string admission_hold;         // why no task starts now (memory); empty: they may
  std::int64_t memory_floor_mb = 0;
  std::map<TaskStatus, std::size_t> by_status;
  std::size_t queue_depth = 0;       // queued + waiting
  std::size_t queue_limit = 0;
  int running = 0;
  int max_concurrent = 0;
  WorkerStats workers;
  std::int64_t rss_kb = 0;
  std::int64_t peak_rss_kb = 0;
  std::int64_t mem_available_kb = -1;
  std::int64_t started_at_ms = 0;
  std::int64_t uptime_ms = 0;
  std::int64_t tasks_submitted = 0;  // since this process started
  std::int64_t spawn_errors = 0;
  DurationHistogram durations;       // tasks that ran and ended, since this process started
  std::string state_dir;
  std::string store;                 // the SQLite file or the PostgreSQL URL, without a password
  RestartInfo restarts;              // as set_restart_info() left it
  HealthView health;                 // as record_health() left it
  // Several servers on one store: this one's name, and every node's row
  // (empty on SQLite).
  std::string node_name;
  std::vector<NodeInfo> nodes;
};

// What the health watchdog reads (see engine/health.h).
struct EngineHeartbeat {
  std::int64_t dispatcher_idle_ms = 0;  // since the dispatcher's loop last ran (it runs at least once a second)
  std::int64_t oldest_job_ms = 0;       // the longest-running worker job; 0: none
};

// What changed since a cursor (see Engine::changes_since).
struct TaskChanges {
  std::uint64_t cursor = 0;       // pass back to get the changes after these
  bool snapshot = false;          // `changed` holds every task, not a delta (cursor 0 or too old)
  std::vector<TaskView> changed;  // each task once, in the order of their latest change
  std::vector<TaskId> removed;    // evicted by retention (empty in a snapshot)
};

// Whether a wait on the change feed ends early once a restart in place
// begins draining: a request's long-poll does (it is answered before the
// hand-over); a server-side watcher following the feed keeps waiting for
// news (ending early, it would only call again at once and spin).
enum class OnDrain { Return, KeepWaiting };

// How much of each task the change feed copies: the dashboard shows it all;
// the tools' watchers need only its state (engine/task.h, state_of), and
// copying every spec on every change was most of their CPU in a burst of
// short tasks.
enum class ViewDetail { Full, State };

class Scheduler;
class Store;
class ProcessRunner;

class Engine {
 public:
  // Opens the store under options.state_dir, loads every task, watches again
  // the running tasks of options.handed_over (restart in place), and settles
  // the other tasks that were running when the previous process died: one
  // whose keeper recorded its end ends that way; one whose keeper still runs
  // is adopted (followed to its end); any other is lost (retrying per its
  // policy). Then starts the threads.
  static Result<std::unique_ptr<Engine>> open(EngineOptions options);
  ~Engine();  // shutdown(0) if not done yet
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The elastic pool; the app runs MCP requests on it too.
  WorkerPool& workers();

  // Validates what only the engine can know (dependencies exist, queue has
  // room, idempotency), stores the task durably, and queues it.
  Result<SubmitOutcome> submit(TaskSpec spec);
  // The same submit, answered through `done` by the next commit_submits():
  // the submits queued in between share one store commit (a burst of them
  // read together). Nothing of it runs, or is seen, before that commit.
  using SubmitDone = std::function<void(Result<SubmitOutcome>)>;
  void submit_later(TaskSpec spec, SubmitDone done);
  // Submits, stores in one transaction and queues every task submit_later
  // has queued, then calls each one's `done` on this thread, without engine
  // locks. A task the store refused is not queued, and its `done` says why.
  void commit_submits();
  Result<TaskView> get(const TaskId& id) const;
  // The spec a submit of profile `name` asks for (engine/profile.h);
  // NotFound for an unknown profile, naming the configured ones.
  Result<TaskSpec> expand_profile(const std::string& name, const std::map<std::string, std::string>& params,
                                  const std::optional<std::string>& input_json) const;
  // A pool task's result as JSON text, once its worker answered; nullopt
  // before that, or for other tasks. NotFound for an unknown task.
  Result<std::optional<std::string>> read_result(const TaskId& id) const;
  // Bad cursor → InvalidArgument. limit is clamped to [1, 500].
  Result<ListPage> list(const ListFilter& filter, std::size_t limit, const std::string& cursor) const;
  // Queued/waiting tasks end at once; running ones get SIGTERM to their group,
  // then SIGKILL after kill_grace. Cancelling a finished task is Conflict.
  Result<TaskView> cancel(const TaskId& id);
  // Cancels every live task (with `tag`, only those carrying it); returns ids.
  std::vector<TaskId> cancel_all(const std::string& tag);
  Result<OutputWindow> read_output(const TaskId& id, StreamKind stream, const ReadRequest& req) const;
  // Blocks until the task is terminal, `deadline` passes or `stop` is
  // requested, and returns the task then. `on_change` (may be empty) runs on
  // the calling thread, without engine locks, each time the task's status or
  // progress changed while waiting.
  Result<TaskView> wait(const TaskId& id, SteadyTime deadline, std::stop_token stop,
                        const std::function<void(const TaskView&)>& on_change);
  EngineStats stats() const;
  const EngineOptions& options() const;

  // The change feed behind the dashboard's live view. Cursor 0, or a cursor
  // older than the changes still remembered, gives a snapshot of every task;
  // otherwise the tasks whose status, progress, pid or output counters
  // changed after `cursor`, and the ids evicted since. Blocks until there is
  // something to report, `deadline` passes or `stop` is requested (then
  // `changed` is empty and the cursor unchanged).
  TaskChanges changes_since(std::uint64_t cursor, SteadyTime deadline, std::stop_token stop,
                            OnDrain on_drain = OnDrain::Return, ViewDetail detail = ViewDetail::Full) const;

  // --- several servers on one store (docs/CLUSTER.md) -------------------------
  // True when this engine shares its store with other nodes.
  bool clustered() const;
  // Where other nodes reach this one (its HTTP base URL and bearer token),
  // once it serves HTTP; recorded with the next heartbeat.
  void advertise(std::string url, std::string token);
  // The output and pool result of a task that ran on this node, from its
  // spool: what other nodes fetch (NotFound when it did not run here).
  Result<OutputWindow> read_local_output(const TaskId& id, StreamKind stream, const ReadRequest& req) const;
  Result<std::optional<std::string>> read_local_result(const TaskId& id) const;

  // A cheap read of the store, for /healthz: ok, or why not.
  Status probe_store() const;

  // --- health and restart in place -------------------------------------------
  EngineHeartbeat heartbeat() const;
  // What stats() reports about the process around the engine.
  void set_restart_info(RestartInfo info);
  void record_health(const HealthView& view);

  // First step of a restart: every wait() and changes_since() returns at once
  // with the state as it is (a getResult long-poll is answered early, which
  // its contract allows), and so do later ones. Irreversible.
  void begin_drain();
  bool draining() const;
  // Last step before exec: stops starting tasks (queued ones stay queued),
  // waits for launches under way, saves running tasks' progress, stops the
  // runner watching (see ProcessRunner::hand_over) and the dispatcher, and
  // closes the store. Returns the running processes for the next image's
  // EngineOptions::handed_over. Afterwards the engine only answers reads from
  // memory; its destructor stops nothing and records nothing. Call once.
  std::vector<RunningProcess> hand_over();
  // After hand_over(): the task keepers' lifeline, which the next image must
  // inherit (EngineOptions::inherited_lifeline) or every keeper would take
  // the restart for the server's death. The caller owns the descriptors.
  Lifeline release_lifeline();

  // Stops starting tasks, gives running ones `grace` to finish, then stops
  // the rest (SIGTERM, then SIGKILL) and records them as cancelled by the
  // shutdown. Queued tasks stay queued in the store. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  // What submit checks of a spec against the configuration (profiles, allow lists).
  Status check_spec(const TaskSpec& spec) const;
  Result<SubmitOutcome> submit_shared(TaskSpec spec);
  // submit() of each spec, in order, with one store commit; under the lock.
  std::vector<Result<SubmitOutcome>> submit_all_locked(std::vector<TaskSpec> specs);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::engine
