#include "engine/engine.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/thread_name.h"
#include "common/unique_fd.h"
#include "engine/change_log.h"
#include "engine/cluster_rules.h"
#include "engine/memory_limit.h"
#include "engine/platform.h"
#include "engine/pool_set.h"
#include "engine/process_runner.h"
#include "engine/scheduler.h"
#include "engine/store.h"
#include "engine/worker_pool.h"

extern char** environ;

namespace orch::engine {

namespace {

constexpr std::int64_t kProgressSaveIntervalMs = 1000;
constexpr std::chrono::milliseconds kEvictionInterval{30000};
constexpr std::chrono::milliseconds kShutdownKillGrace{2000};
// A wait for a task another node runs reads it this often.
constexpr std::chrono::milliseconds kRemoteWaitPoll{100};
// The dispatcher runs its loop at least this often, so the health watchdog can
// tell a stuck dispatcher from an idle one.
constexpr std::chrono::milliseconds kDispatcherTick{1000};

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The server's environment as name → value, read once when the engine opens:
// parsing environ for every task was a visible part of each start.
std::map<std::string, std::string> read_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry = *e;
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

// `base` with `overrides` over it, as NAME=value entries sorted by name.
std::vector<std::string> merged_environment(const std::map<std::string, std::string>& base,
                                            const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  out.reserve(base.size() + overrides.size());
  auto add = [&out](const std::string& k, const std::string& v) {
    std::string entry;
    entry.reserve(k.size() + 1 + v.size());
    out.push_back(std::move(entry.append(k).append(1, '=').append(v)));
  };
  auto b = base.begin();
  for (const auto& [k, v] : overrides) {
    for (; b != base.end() && b->first < k; ++b) add(b->first, b->second);
    if (b != base.end() && b->first == k) ++b;
    add(k, v);
  }
  for (; b != base.end(); ++b) add(b->first, b->second);
  return out;
}

// One server per state directory: two engines on one store would both run
// the same queued tasks. The lock dies with the process, so a crash frees it.
Result<UniqueFd> lock_state_dir(const std::filesystem::path& dir) {
  auto path = dir / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    return make_error(ErrorCode::Io, "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return make_error(ErrorCode::Unavailable, "state directory " + dir.string() +
                                                  " is in use by another mcp-orchestrator (pid " +
                                                  holder + ")");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) == 0) {
    [[maybe_unused]] ssize_t w = ::pwrite(fd.get(), pid.data(), pid.size(), 0);
  }
  return fd;
}

// What start-up found of the tasks that were running (for one log line).
struct RecoveryCounts {
  int adopted = 0;
  int ended = 0;
  int lost = 0;
  int requeued = 0;  // never spawned: the previous server died first
  std::vector<TaskId> recorded;  // ended as their keeper's status file says
  std::vector<std::pair<TaskId, pid_t>> found;  // adopted by the keeper's command line: no pid was stored
};

}  // namespace

struct Engine::Impl {
  EngineOptions opts;
  Clock* clock;
  UniqueFd dir_lock;
  // Shared with the calls that use it without mu (cluster reads), so that
  // hand_over() closing it cannot pull it from under them.
  std::shared_ptr<Store> store;
  std::string store_location;  // Store::location(), kept for stats after a restart closes the store
  Spool spool;
  std::unique_ptr<WorkerPool> workers;
  std::unique_ptr<ProcessRunner> runner;
  std::unique_ptr<PoolSet> pools;       // pool profiles' workers (SPEC §6)
  std::map<std::string, Profile> profiles;  // fixed after open()
  std::string server_cwd;               // where a task without cwd runs
  const std::map<std::string, std::string> server_env = read_environment();  // what tasks inherit
  std::unique_ptr<MemoryLimiter> memory_limiter;  // per-task memory limits

  mutable std::mutex mu;
  std::condition_variable_any changed;  // a task changed: wakes wait()
  std::condition_variable_any wake;     // the dispatcher has work
  Scheduler scheduler;                  // guarded by mu
  bool wake_pending = false;            // guarded by mu
  bool accepting = true;                // guarded by mu: new submits and starts allowed
  bool shut_down = false;               // guarded by mu
  std::unordered_map<TaskId, std::int64_t> progress_saved_at;  // guarded by mu
  // Started tasks whose pid the store does not have yet: it goes with the
  // next batch of writes (persist_locked), a dispatcher tick at the latest.
  std::vector<TaskId> unsaved_pids;  // guarded by mu
  std::vector<TaskRecord> starting_soon;  // guarded by mu: a dispatcher pass's starts, for launch_soon
  // Submits waiting for commit_submits(); own lock, so queueing one never
  // waits for the engine.
  struct LaterSubmit {
    TaskSpec spec;
    SubmitDone done;
  };
  std::mutex later_mu;
  std::vector<LaterSubmit> submits_later;  // guarded by later_mu
  ChangeLog change_log;                 // guarded by mu: feeds changes_since()
  DurationHistogram durations;          // guarded by mu
  std::int64_t started_at_ms = 0;
  std::atomic<std::int64_t> tasks_submitted{0};
  std::atomic<std::int64_t> spawn_errors{0};
  std::atomic<std::int64_t> dispatcher_tick_ms{steady_ms()};  // steady ms of the loop's last run
  std::atomic<bool> draining{false};    // begin_drain(): waits return at once
  int launching = 0;                    // guarded by mu: launches posted and not yet done
  bool handed_over = false;             // guarded by mu: hand_over() ran; the processes are not ours to stop
  RestartInfo restart_info;             // guarded by mu
  HealthView health;                    // guarded by mu
  std::vector<TaskId> restop;           // Engine::open only: handed over while being cancelled
  // The reactor thread only: ends reported in its current round of events.
  std::vector<std::pair<TaskId, AttemptOutcome>> round_ends;

  // --- several servers on one store (docs/CLUSTER.md) ---
  SharedQueue* queue = nullptr;         // the store's shared side; null on SQLite. Fixed after open()
  std::string node_name;                // fixed after open()
  std::map<std::string, ProfileRules> profile_rules;  // fixed after open(): what claims keep across nodes
  std::string advertised_url;           // guarded by mu
  std::string advertised_token;         // guarded by mu
  std::vector<NodeInfo> nodes;          // guarded by mu: as the last heartbeat read them
  std::vector<TaskId> lost_claims;      // guarded by mu: writes refused, another node holds them now
  std::atomic<bool> beat_now{false};    // heartbeat at once (advertise())

  std::jthread cluster_thread;  // heartbeats, rescues, claims; stopped before the store closes
  std::jthread dispatcher;  // declared last: stopped and joined first

  Impl(EngineOptions o, std::unique_ptr<Store> s, UniqueFd lock)
      : opts(std::move(o)),
        clock(opts.clock ? opts.clock : &SystemClock::instance()),
        dir_lock(std::move(lock)),
        store(std::move(s)),
        spool(opts.state_dir / "spool", opts.stream_cap_bytes),
        scheduler(Scheduler::Limits{opts.max_concurrent, opts.queue_size}) {
    durations.bounds_s = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
    durations.counts.assign(durations.bounds_s.size(), 0);
  }

  std::int64_t now_ms() const { return to_unix_ms(clock->wall_now()); }

  // Writes each change through to the store, with the pids not saved yet,
  // in one batch (one commit on SQLite). A failed write is logged: the
  // in-memory state stays right for this process, and the store catches up
  // with the task's next change.
  void persist_locked(const std::vector<Change>& list) {
    std::vector<Store::Write> writes;
    writes.reserve(list.size() + unsaved_pids.size());
    for (const Change& c : list) {
      const TaskRecord* t = scheduler.find(c.id);
      if (!t) continue;
      change_log.changed(c.id);
      if (!is_terminal(c.from) && is_terminal(t->status)) observe_duration_locked(*t);
      writes.push_back({t, c.from});
    }
    if (!store) return;  // handed over: the next image reads the store
    for (const TaskId& id : unsaved_pids) {
      const TaskRecord* t = scheduler.find(id);
      if (!t || t->status != TaskStatus::Running || !t->pid) continue;
      // A change of the same task in this batch writes every column anyway.
      const bool written = std::any_of(writes.begin(), writes.end(), [t](const Store::Write& w) { return w.task == t; });
      if (!written) writes.push_back({t, std::nullopt});
    }
    unsaved_pids.clear();
    if (writes.empty()) return;
    const std::vector<Status> results = store->write(writes);
    for (std::size_t i = 0; i < writes.size(); ++i) {
      const TaskRecord& t = *writes[i].task;
      const Status& st = results[i];
      if (!st) {
        if (queue && st.error().code == ErrorCode::Conflict) {
          spdlog::warn("cluster: {}", st.error().message);
          lost_claims.push_back(t.id);
          wake_pending = true;
          wake.notify_one();
          continue;
        }
        if (writes[i].from) {
          spdlog::error("store: could not record task {} ({} → {}): {}", t.id, to_string(*writes[i].from),
                        to_string(t.status), st.error().message);
        } else {
          spdlog::warn("store: could not record the pid of task {}: {}", t.id, st.error().message);
        }
      }
      if (is_terminal(t.status)) progress_saved_at.erase(t.id);
    }
  }

  // Attempts that ran and ended in this process, for /metrics.
  void observe_duration_locked(const TaskRecord& t) {
    if (t.started_at_ms <= 0 || t.finished_at_ms < t.started_at_ms) return;
    const double seconds = static_cast<double>(t.finished_at_ms - t.started_at_ms) / 1000.0;
    for (std::size_t i = 0; i < durations.bounds_s.size(); ++i) {
      if (seconds <= durations.bounds_s[i]) ++durations.counts[i];
    }
    ++durations.count;
    durations.sum_s += seconds;
  }

  void notify_locked() {
    changed.notify_all();
    wake_pending = true;
    wake.notify_one();
    if (queue && store) queue->wake();  // a slot may be free, or a task new: claim
  }

  TaskView view_locked(const TaskRecord& t, ViewDetail detail = ViewDetail::Full) const {
    TaskView v;
    v.task = detail == ViewDetail::Full ? t : state_of(t);
    v.queue_position = scheduler.queue_position(t.id);
    v.cancel_requested = scheduler.cancel_requested(t.id);
    if (t.status == TaskStatus::Queued) {
      if (auto held = scheduler.held_reason(t, now_ms()); !held.empty()) v.task.message = "not started: " + held;
    }
    if (t.status == TaskStatus::Running && t.pid && runner) {
      if (auto live = runner->live_bytes(*t.pid)) {
        v.task.stdout_bytes = live->first;
        v.task.stderr_bytes = live->second;
      }
    }
    return v;
  }

  void dispatch_loop(std::stop_token stop) {
    auto last_eviction = std::chrono::steady_clock::now() - kEvictionInterval;
    std::unique_lock lock(mu);
    while (!stop.stop_requested()) {
      dispatcher_tick_ms.store(steady_ms());
      drop_lost_claims_locked();
      std::int64_t now = now_ms();
      for (const TaskId& id : scheduler.take_timed_out(now)) {
        const TaskRecord* t = scheduler.find(id);
        if (t) stop_locked(*t, opts.kill_grace);
      }
      if (accepting) {
        update_admission_locked();
        std::vector<TaskRecord> batch = start_runnable_locked({});
        if (!batch.empty()) {
          lock.unlock();
          launch_soon(std::move(batch));
          lock.lock();
        }
      }
      if (!unsaved_pids.empty()) persist_locked({});
      // By age every interval; by count also as soon as the overflow is worth
      // a transaction, so a burst of short tasks cannot pile up for 30 s.
      const bool over_count = scheduler.finished_count() > opts.retention_count + eviction_slack();
      if (over_count || std::chrono::steady_clock::now() - last_eviction >= kEvictionInterval) {
        last_eviction = std::chrono::steady_clock::now();
        auto evicted = evict_locked(now);
        // Their files go without the lock: no one reads or writes an evicted task.
        if (!evicted.empty()) {
          lock.unlock();
          for (const TaskId& id : evicted) spool.remove(id);
          lock.lock();
        }
      }
      auto next = scheduler.next_wakeup_ms();
      auto wait_for = std::min<std::chrono::milliseconds>(kEvictionInterval, kDispatcherTick);
      if (next) {
        wait_for = std::min<std::chrono::milliseconds>(
            wait_for, std::chrono::milliseconds(std::max<std::int64_t>(*next - now_ms(), 0) + 1));
      }
      wake.wait_for(lock, stop, wait_for, [&] { return wake_pending; });
      wake_pending = false;
    }
  }

  // Takes the tasks that may start now and stores their starts with
  // `changes`, in one batch; returns the starts for launch_soon, which runs
  // without the lock.
  std::vector<TaskRecord> start_runnable_locked(std::vector<Change> changes) {
    std::vector<TaskId> to_start;
    auto started = scheduler.take_runnable(now_ms(), to_start);
    changes.insert(changes.end(), started.begin(), started.end());
    persist_locked(changes);
    for (const TaskId& id : to_start) start_attempt_locked(id);
    if (!changes.empty()) changed.notify_all();
    std::vector<TaskRecord> batch;
    batch.swap(starting_soon);
    return batch;
  }

  // What the dispatcher must see to after an end that was not its own:
  // a timer (a retry's backoff, a timeout) or finished tasks to evict.
  bool dispatcher_needed_locked() const {
    return scheduler.next_wakeup_ms().has_value() ||
           scheduler.finished_count() > opts.retention_count + eviction_slack();
  }

  // Tasks whose writes the store refused because another node holds them
  // now (this node's lease ran out): a running one is stopped, and forgotten
  // once it ended; the others are forgotten at once.
  void drop_lost_claims_locked() {
    std::vector<TaskId> lost;
    lost.swap(lost_claims);
    for (const TaskId& id : lost) {
      const TaskRecord* t = scheduler.find(id);
      if (!t) continue;
      if (t->status == TaskStatus::Running) {
        stop_locked(*t, std::min(opts.kill_grace, kShutdownKillGrace));
        continue;
      }
      scheduler.erase_new(id);
      progress_saved_at.erase(id);
      change_log.removed(id);
    }
  }

  // --- several servers on one store -------------------------------------------
  NodeInfo self_locked() const {
    NodeInfo n;
    n.name = node_name;
    n.url = advertised_url;
    n.token = advertised_token;
    n.pid = ::getpid();
    n.started_at_ms = started_at_ms;
    n.running = scheduler.running_count();
    n.max_concurrent = opts.max_concurrent;
    n.health = health.report.healthy ? "ok" : "degraded";
    return n;
  }

  // Renews this node's lease, takes the cancels other nodes asked for, runs
  // the rescuer (if no other node does now) and reads the nodes.
  void beat() {
    NodeReport report;
    {
      std::lock_guard lock(mu);
      report.self = self_locked();
      report.holding = scheduler.live_tasks();
    }
    report.lease_ms = opts.cluster.lease.count();
    auto reply = queue->heartbeat(report);
    if (!reply) {
      spdlog::warn("cluster: heartbeat failed: {}", reply.error().message);
    } else if (!reply->cancels.empty() || !reply->lost.empty()) {
      std::lock_guard lock(mu);
      for (const TaskId& id : reply->cancels) {
        (void)cancel_local_locked(id, "cancelled by request (asked on another node)");
      }
      if (!reply->lost.empty()) {
        spdlog::warn("cluster: {} task(s) of this node were given to the queue while it did not renew its lease; "
                     "stopping them here",
                     reply->lost.size());
        lost_claims.insert(lost_claims.end(), reply->lost.begin(), reply->lost.end());
      }
      notify_locked();
    }
    auto rescued = queue->rescue(
        opts.cluster.lease.count(),
        [this](const TaskRecord& t, const std::string& dead) { return rescue_decision(t, dead, now_ms()); },
        opts.retention_age.count(), opts.retention_count);
    if (!rescued) {
      spdlog::warn("cluster: rescue failed: {}", rescued.error().message);
    } else if (!rescued->rescued.empty()) {
      spdlog::info("cluster: {} task(s) of nodes that stopped renewing their lease were given back to the queue",
                   rescued->rescued.size());
    }
    auto nodes_now = queue->nodes(opts.cluster.lease.count());
    if (nodes_now) {
      std::lock_guard lock(mu);
      nodes = std::move(*nodes_now);
    }
  }

  // Claims as many tasks as this node has free slots for.
  void claim_some() {
    int free = 0;
    {
      std::lock_guard lock(mu);
      if (!accepting || draining.load() || !scheduler.admission_hold().empty()) return;
      free = opts.max_concurrent - scheduler.running_count() - static_cast<int>(scheduler.queued_count());
    }
    if (free <= 0) return;
    auto claimed = queue->claim(node_name, free, opts.cluster.lease.count(), profile_rules);
    if (!claimed) {
      spdlog::warn("cluster: claim failed: {}", claimed.error().message);
      return;
    }
    if (claimed->empty()) return;
    std::lock_guard lock(mu);
    for (TaskRecord& t : *claimed) {
      const TaskId id = t.id;
      scheduler.adopt_claimed(std::move(t));
      change_log.changed(id);
    }
    changed.notify_all();
    wake_pending = true;
    wake.notify_one();
  }

  void cluster_loop(std::stop_token stop) {
    auto next_beat = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      if (beat_now.exchange(false) || std::chrono::steady_clock::now() >= next_beat) {
        beat();
        next_beat = std::chrono::steady_clock::now() + opts.cluster.heartbeat;
      }
      claim_some();
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - std::chrono::steady_clock::now());
      if (left.count() > 0 && !stop.stop_requested()) queue->wait_for_news(left);
    }
  }

  void stop_cluster_thread() {
    if (!cluster_thread.joinable()) return;
    cluster_thread.request_stop();
    queue->wake();
    cluster_thread.join();
  }

  // A cancel of a task this node holds (the local half of Engine::cancel).
  Result<TaskView> cancel_local_locked(const TaskId& id, const std::string& why) {
    bool needs_kill = false;
    auto changes = scheduler.cancel(id, now_ms(), needs_kill, why);
    if (!changes) return changes.error();
    persist_locked(*changes);
    change_log.changed(id);  // also when only a stop was requested
    const TaskRecord* t = scheduler.find(id);
    if (!t) return make_error(ErrorCode::NotFound, "task '" + id + "' is no longer held by this node");
    if (needs_kill) stop_locked(*t, stop_grace_locked());
    return view_locked(*t);
  }

  // The store and its shared side for a call made without mu; null once a
  // restart in place closed the store.
  struct Shared {
    std::shared_ptr<Store> store;
    std::shared_ptr<SharedQueue> queue;
    explicit operator bool() const { return queue != nullptr; }
  };
  Shared shared() const {
    std::lock_guard lock(mu);
    return shared_locked();
  }
  Shared shared_locked() const {
    if (!queue || !store) return {};
    return {store, std::shared_ptr<SharedQueue>(store, queue)};
  }
  static Error store_closed() {
    return make_error(ErrorCode::Unavailable, "the store is closed for a restart in place; ask again in a moment");
  }

  // The node a task's output lives on, by name.
  Result<NodeInfo> node_named(const std::string& name) {
    {
      std::lock_guard lock(mu);
      for (const NodeInfo& n : nodes) {
        if (n.name == name) return n;
      }
    }
    Shared sh = shared();
    if (!sh) return store_closed();
    auto all = sh.queue->nodes(opts.cluster.lease.count());
    if (!all) return all.error();
    for (const NodeInfo& n : *all) {
      if (n.name == name) return n;
    }
    return make_error(ErrorCode::Unavailable, "node " + name + " that ran this task is gone from the cluster");
  }

  std::size_t eviction_slack() const { return std::max<std::size_t>(64, opts.retention_count / 16); }

  // Removes evicted tasks from memory and the store; returns their ids, whose
  // spool directories the caller removes.
  std::vector<TaskId> evict_locked(std::int64_t now) {
    auto ids = scheduler.evict(opts.retention_count, opts.retention_age.count(), now);
    if (ids.empty()) return ids;
    if (auto st = store->remove(ids); !st) {
      spdlog::error("store: could not evict {} finished tasks: {}", ids.size(), st.error().message);
    }
    for (const TaskId& id : ids) change_log.removed(id);
    spdlog::debug("evicted {} finished tasks", ids.size());
    return ids;
  }

  // A start waits for the keeper's report that the command runs. Most are
  // handed to the keeper host by the dispatcher, and the runner's reactor
  // reads the report (launch_soon); the rest, and any the host cannot take,
  // run on a worker thread (launch) while the dispatcher goes on.
  void start_attempt_locked(const TaskId& id) {
    const TaskRecord* t = scheduler.find(id);
    if (!t) return;
    TaskRecord task = *t;
    if (task.spec.kind == TaskKind::Pool) {
      launch_pool_locked(task);
      return;
    }
    ++launching;
    // Writing stdin and preparing a memory cgroup are file work: a worker's.
    const bool file_work = task.spec.stdin_data || (task.spec.limits.memory_mb > 0 && memory_limiter);
    if (!file_work) {
      starting_soon.push_back(std::move(task));
      return;
    }
    post_launch_locked(std::move(task));
  }

  void post_launch_locked(TaskRecord task) {
    const TaskId id = task.id;
    bool posted = workers->post([this, task = std::move(task)](std::stop_token) { launch(task); });
    if (!posted) {
      --launching;
      AttemptOutcome failed;
      failed.spawn_failed = true;
      failed.error = "the server's worker pool is full or stopping";
      persist_locked(scheduler.finish_attempt(id, failed, now_ms()));
      notify_locked();
    }
  }

  // The dispatcher's starts of this pass, without the lock (start_soon may
  // complete one at once, and finish_launch takes it).
  void launch_soon(std::vector<TaskRecord> tasks) {
    for (TaskRecord& task : tasks) {
      const TaskId id = task.id;
      const int attempt = task.attempt;
      auto started = [this, id, attempt](const Result<pid_t>& pid) { finish_launch(id, attempt, pid); };
      if (runner->start_soon(launch_spec(task), callbacks_for(id), std::move(started))) continue;
      std::lock_guard lock(mu);
      post_launch_locked(std::move(task));
    }
  }

  // Memory admission (SPEC §4): below the floor nothing new starts, and
  // getStatus says why; starts resume on the first tick with memory back.
  void update_admission_locked() {
    if (opts.memory_floor_mb <= 0) return;
    const std::int64_t available_kb = platform::mem_available_kb();
    if (available_kb >= 0 && available_kb < opts.memory_floor_mb * 1024) {
      if (scheduler.admission_hold().empty()) {
        spdlog::warn("memory admission: {} MiB available, under the floor of {} MiB; holding new starts",
                     available_kb / 1024, opts.memory_floor_mb);
      }
      scheduler.set_admission_hold("system memory is short (" + std::to_string(available_kb / 1024) +
                                   " MiB available, under limits.memoryFloorMb " +
                                   std::to_string(opts.memory_floor_mb) + "); tasks start when memory returns");
    } else if (!scheduler.admission_hold().empty()) {
      spdlog::info("memory admission: memory is back; starting tasks again");
      scheduler.set_admission_hold("");
    }
  }

  // Stops a running task's process: its group, or its pool worker.
  void stop_locked(const TaskRecord& t, std::chrono::milliseconds grace) {
    if (t.spec.kind == TaskKind::Pool) {
      if (pools) pools->stop(t.id);
      return;
    }
    if (t.pid && runner) runner->terminate(*t.pid, grace);
  }

  // A pool task only hands a line to a running worker: no spawn, so it is
  // started here on the dispatcher rather than on a worker thread. The pool
  // never calls back from start(), so holding mu is safe.
  void launch_pool_locked(const TaskRecord& task) {
    const TaskId id = task.id;
    const int attempt = task.attempt;
    auto on_started = [this, id, attempt](pid_t pid) {
      std::lock_guard lock(mu);
      TaskRecord* live = scheduler.mutable_task(id);
      if (!live || live->status != TaskStatus::Running || live->attempt != attempt) return;
      // Shown, not stored: a worker has no keeper, so after a crash its pid leads nowhere.
      live->pid = pid;
      change_log.changed(id);
      if (scheduler.should_stop(id) && pools) pools->stop(id);
      changed.notify_all();
    };
    auto on_end = [this, id](const AttemptOutcome& outcome) {
      std::lock_guard lock(mu);
      if (handed_over) return;  // the next image settles it from the store
      persist_locked(scheduler.finish_attempt(id, outcome, now_ms()));
      notify_locked();
    };
    Status started = pools ? pools->start(task, on_started, [this, id](const Progress& p) { on_progress(id, p); }, on_end)
                           : Status(make_error(ErrorCode::Unavailable, "no pools"));
    if (!started) {
      ++spawn_errors;
      AttemptOutcome failed;
      failed.spawn_failed = true;
      failed.error = started.error().message;
      persist_locked(scheduler.finish_attempt(id, failed, now_ms()));
      notify_locked();
    }
  }

  LaunchSpec launch_spec(const TaskRecord& task) const {
    LaunchSpec spec;
    spec.task_id = task.id;
    spec.attempt = task.attempt;
    if (task.spec.kind == TaskKind::Command) spec.argv = {"/bin/sh", "-c", task.spec.command};
    else spec.argv = task.spec.argv;
    spec.cwd = task.spec.cwd;
    spec.env = merged_environment(server_env, task.spec.env);
    spec.limits = task.spec.limits;
    return spec;
  }

  // A start on a worker thread: it waits for the keeper's report.
  void launch(const TaskRecord& task) {
    LaunchSpec spec = launch_spec(task);
    if (task.spec.limits.memory_mb > 0 && memory_limiter) {
      spec.memory_cgroup = memory_limiter->prepare(task.id, task.spec.limits.memory_mb);
    }
    Result<pid_t> started = make_error(ErrorCode::Internal, "not started");
    if (task.spec.stdin_data) {
      auto path = spool.write_stdin(task.id, *task.spec.stdin_data);
      if (!path) {
        started = path.error();
      } else {
        spec.stdin_path = *path;
      }
    }
    if (!task.spec.stdin_data || spec.stdin_path) started = runner->start(spec, callbacks_for(task.id));
    finish_launch(task.id, task.attempt, started);
  }

  // How a start ended, on whichever thread learnt it.
  void finish_launch(const TaskId& id, int attempt, const Result<pid_t>& started) {
    std::lock_guard lock(mu);
    --launching;
    changed.notify_all();  // hand_over() waits for launches to end
    if (!started) {
      ++spawn_errors;
      AttemptOutcome failed;
      failed.spawn_failed = true;
      failed.error = started.error().message;
      persist_locked(scheduler.finish_attempt(id, failed, now_ms()));
      notify_locked();
      return;
    }
    TaskRecord* live = scheduler.mutable_task(id);
    // The process may already have ended and been recorded; then pid is moot.
    if (!live || live->status != TaskStatus::Running || live->attempt != attempt) return;
    live->pid = *started;
    // The next server finds the task's keeper by this pid after a crash (by
    // its command line while the pid is not written yet). A commit of its
    // own would be a quarter of a short task's store writes: it goes with
    // the next batch.
    unsaved_pids.push_back(id);
    change_log.changed(id);
    if (scheduler.should_stop(id)) runner->terminate(*started, stop_grace_locked());
    changed.notify_all();
  }

  std::chrono::milliseconds stop_grace_locked() const {
    return accepting ? opts.kill_grace : std::min(opts.kill_grace, kShutdownKillGrace);
  }

  ProcessCallbacks callbacks_for(const TaskId& id) {
    ProcessCallbacks callbacks;
    callbacks.on_progress = [this, id](const Progress& p) { on_progress(id, p); };
    callbacks.on_exit = [this, id](const ExitInfo& info) { on_exit(id, info); };
    return callbacks;
  }

  // A task the store had as running at start (docs/RECOVERY.md): its keeper's
  // record tells how it ended while no server watched; a keeper still
  // running is adopted; otherwise its end is unknown.
  // `keepers` is filled on first need: one walk of /proc for every task
  // without a recorded pid.
  std::optional<AttemptOutcome> settle_running(const TaskRecord& t, RecoveryCounts& counts,
                                               std::optional<std::unordered_map<TaskId, pid_t>>& keepers) {
    auto recorded = read_keeper_status(spool.dir(), t.id, t.attempt);
    AttemptOutcome outcome;
    outcome.stdout_bytes = t.stdout_bytes;
    outcome.stderr_bytes = t.stderr_bytes;
    std::optional<pid_t> pid = t.pid;
    const bool kept = !opts.keeper_path.empty() && t.spec.kind != TaskKind::Pool;
    if (!recorded && !pid && kept) {
      // The previous server died after recording the start but before its
      // pid was written (with the batch after it): a keeper it spawned is
      // found by its command line.
      // A keeper always leaves a record when its command ends, so with
      // neither, nothing was spawned: the attempt never began and runs again
      // without being counted (found by tests/reliability/lost_task_check.py).
      if (!keepers) keepers = ProcessRunner::find_orphan_keepers();
      if (auto found = keepers->find(t.id); found != keepers->end()) pid = found->second;
      if (!pid && !(recorded = read_keeper_status(spool.dir(), t.id, t.attempt))) {
        ++counts.requeued;
        outcome.never_started = true;
        return outcome;
      }
    }
    if (!recorded && pid && opts.orphans == OrphanPolicy::Adopt && kept) {
      auto adopted = runner->adopt_orphan(*pid, t.id, t.attempt, callbacks_for(t.id));
      if (adopted) {
        ++counts.adopted;
        if (!t.pid) counts.found.emplace_back(t.id, *pid);
        spdlog::debug("recovery: task {} still runs (pid {}); following it to its end", t.id, *pid);
        return std::nullopt;
      }
      recorded = read_keeper_status(spool.dir(), t.id, t.attempt);  // it may have ended just now
    }
    if (!recorded) {
      ++counts.lost;
      outcome.lost = true;
      return outcome;
    }
    ++counts.ended;
    counts.recorded.push_back(t.id);
    outcome.peak_rss_kb = recorded->peak_rss_kb;
    switch (recorded->kind) {
      case KeeperStatus::Kind::Exited: outcome.exit_code = recorded->value; break;
      case KeeperStatus::Kind::Signaled: outcome.signal = recorded->value; break;
      case KeeperStatus::Kind::OrphanKilled:
        outcome.lost = true;
        outcome.error = "its keeper stopped it when the previous server died (recovery.orphans is \"kill\")";
        break;
      case KeeperStatus::Kind::SpawnError:
        outcome.spawn_failed = true;
        outcome.error = std::string("cannot start the command: ") + std::strerror(recorded->value);
        break;
    }
    return outcome;
  }

  void on_progress(const TaskId& id, const Progress& p) {
    std::lock_guard lock(mu);
    TaskRecord* t = scheduler.mutable_task(id);
    if (!t || t->status != TaskStatus::Running) return;
    t->progress = p;
    change_log.changed(id);
    std::int64_t now = now_ms();
    auto& saved = progress_saved_at[id];
    if (store && now - saved >= kProgressSaveIntervalMs) {
      saved = now;
      if (auto st = store->update_progress(*t); !st) {
        spdlog::warn("store: could not save progress of {}: {}", id, st.error().message);
      }
    }
    changed.notify_all();
  }

  // --- restart in place: the processes of the previous image ------------------
  // They are still our children (execve kept the pid). Those whose task the
  // store still has running stay running with the counters the old image had,
  // and restore_done() leaves them alone; any other is stopped and reaped.
  std::vector<RunningProcess> take_handed_over_locked(std::vector<RunningProcess> processes) {
    std::vector<RunningProcess> keep;
    restop.clear();
    for (RunningProcess& p : processes) {
      TaskRecord* t = scheduler.mutable_task(p.task_id);
      if (!t || t->status != TaskStatus::Running) {
        spdlog::warn("restart: process {} of task {} is not a running task any more; stopping it", p.pid,
                     p.task_id);
        discard_handed_over(p);
        continue;
      }
      scheduler.keep_running(p.task_id);
      p.attempt = t->attempt;
      if (p.stop_requested) restop.push_back(p.task_id);
      t->pid = p.pid;
      t->stdout_bytes = p.stdout_progress.total_bytes;
      t->stderr_bytes = p.stderr_progress.total_bytes;
      keep.push_back(std::move(p));
    }
    return keep;
  }

  static void discard_handed_over(const RunningProcess& p) {
    for (const HandedFd& h : p.fds) ::close(h.fd);
    ::kill(-p.pid, SIGKILL);
    while (::waitpid(p.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

  void adopt_handed_over(const std::vector<RunningProcess>& keep) {
    for (const RunningProcess& p : keep) {
      if (auto st = runner->adopt(p, callbacks_for(p.task_id)); !st) {
        spdlog::error("restart: task {}: {}; it is recorded as lost", p.task_id, st.error().message);
        AttemptOutcome lost;
        lost.lost = true;
        std::lock_guard lock(mu);
        persist_locked(scheduler.finish_attempt(p.task_id, lost, now_ms()));
      }
    }
    if (!keep.empty()) spdlog::info("restart: watching {} running tasks again", keep.size());
    // A cancel under way in the previous image goes on here: same reason, and
    // the SIGKILL after the grace that image can no longer send.
    std::lock_guard lock(mu);
    for (const TaskId& id : restop) {
      bool needs_kill = false;
      auto changes = scheduler.cancel(id, now_ms(), needs_kill);
      if (changes) persist_locked(*changes);
      const TaskRecord* t = scheduler.find(id);
      if (t && t->pid && t->status == TaskStatus::Running) runner->terminate(*t->pid, opts.kill_grace);
    }
    restop.clear();
  }

  void on_exit(const TaskId& id, const ExitInfo& info) {
    AttemptOutcome outcome;
    outcome.exit_code = info.exit_code;
    outcome.signal = info.signal;
    outcome.peak_rss_kb = info.peak_rss_kb;
    outcome.stdout_bytes = info.stdout_bytes;
    outcome.stderr_bytes = info.stderr_bytes;
    outcome.error = info.error;
    outcome.lost = info.lost || info.killed_as_orphan;
    if (info.killed_as_orphan) {
      outcome.error = "its keeper stopped it when the previous server died (recovery.orphans is \"kill\")";
    }
    if (!info.error.empty()) spdlog::warn("task {}: {}", id, info.error);
    std::int64_t memory_mb = 0;
    {
      std::lock_guard lock(mu);
      if (const TaskRecord* t = scheduler.find(id)) memory_mb = t->spec.limits.memory_mb;
    }
    if (memory_mb > 0 && memory_limiter) {
      auto hit = memory_limiter->judge_end(id, memory_mb, info.exit_code, info.signal, spool.path(id, StreamKind::Stderr));
      if (hit) {
        outcome.memory_limit = true;
        outcome.error = *hit;
      }
    }
    if (ProcessRunner::in_reactor_round()) {
      // Stored with the round's other ends (store_round_ends).
      round_ends.emplace_back(id, std::move(outcome));
      return;
    }
    std::vector<std::pair<TaskId, AttemptOutcome>> one;
    one.emplace_back(id, std::move(outcome));
    store_ends(one);
  }

  // After a round of the reactor's events: the ends it reported, in one
  // commit with the starts that fill their slots (the reactor ends a few
  // tasks a round in a burst of short ones).
  void store_round_ends() {
    std::vector<std::pair<TaskId, AttemptOutcome>> ends;
    ends.swap(round_ends);
    if (!ends.empty()) store_ends(ends);
  }

  void store_ends(const std::vector<std::pair<TaskId, AttemptOutcome>>& ends) {
    std::vector<TaskRecord> batch;
    {
      std::lock_guard lock(mu);
      std::vector<Change> changes;
      for (const auto& [id, outcome] : ends) {
        auto finished = scheduler.finish_attempt(id, outcome, now_ms());
        changes.insert(changes.end(), std::make_move_iterator(finished.begin()),
                       std::make_move_iterator(finished.end()));
      }
      if (accepting && !queue) {
        // The slots these ends free are filled here, on the thread that
        // learnt of the ends, and the ends are stored with the starts: one
        // commit and no dispatcher wake-up per round of short tasks.
        update_admission_locked();
        batch = start_runnable_locked(std::move(changes));
        changed.notify_all();
        if (dispatcher_needed_locked()) {
          wake_pending = true;
          wake.notify_one();
        }
      } else {
        persist_locked(changes);
        notify_locked();
      }
    }
    if (!batch.empty()) launch_soon(std::move(batch));
  }

  // Once the store holds an attempt's end, an older keeper's status file of
  // it goes (current keepers append to the status log, rotated by the runner).
  void forget_keeper_status(const TaskId& id) {
    ::unlink((spool.dir() / id / kKeeperStatusFile).c_str());
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() { shutdown(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<Engine>> Engine::open(EngineOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir / "spool", ec);
  if (ec) {
    return make_error(ErrorCode::Io, "cannot create state directory " +
                                         options.state_dir.string() + ": " + ec.message());
  }
  ::chmod(options.state_dir.c_str(), 0700);
  auto lock = lock_state_dir(options.state_dir);
  if (!lock) return lock.error();
  auto store = open_store(options.store.empty() ? (options.state_dir / "tasks.db").string() : options.store);
  if (!store) return store.error();
  // Several servers on one store: this node loads only what it holds, after
  // taking back the leases on it.
  SharedQueue* queue = dynamic_cast<SharedQueue*>(store->get());
  std::string node_name;
  Result<std::vector<TaskRecord>> stored = std::vector<TaskRecord>{};
  if (queue) {
    node_name = options.cluster.node_name.empty() ? default_node_name(options.state_dir) : options.cluster.node_name;
    if (auto st = check_node_name(node_name); !st) return st.error();
    NodeReport first;
    first.self.name = node_name;
    first.self.pid = ::getpid();
    first.self.max_concurrent = options.max_concurrent;
    first.self.health = "ok";
    first.lease_ms = options.cluster.lease.count();
    if (auto beat = queue->heartbeat(first); !beat) return beat.error();
    stored = queue->held_by(node_name);
  } else {
    stored = (*store)->load_all();
  }
  if (!stored) return stored.error();

  auto impl = std::make_unique<Impl>(std::move(options), std::move(*store), std::move(*lock));
  Impl& im = *impl;
  im.queue = queue;
  im.node_name = node_name;
  im.scheduler.set_shared(queue != nullptr);
  im.store_location = im.store->location();
  im.started_at_ms = im.now_ms();
  // The runner first: settling the tasks that were running may adopt their processes.
  ProcessRunner::Options ropts;
  ropts.keeper_path = im.opts.keeper_path;
  ropts.orphans = im.opts.orphans;
  ropts.inherited_lifeline = im.opts.inherited_lifeline;
  ropts.after_exits = [&im] { im.store_round_ends(); };
  im.runner = std::make_unique<ProcessRunner>(im.spool, ropts);
  std::map<std::string, ProfileRules> rules;
  for (const Profile& p : im.opts.profiles) {
    im.profiles[p.name] = p;
    ProfileRules r;
    r.max_concurrent = p.max_concurrent;
    // A pool runs one task per worker: its size bounds its concurrency.
    if (p.mode == ProfileMode::Pool) {
      r.max_concurrent = r.max_concurrent > 0 ? std::min(r.max_concurrent, p.pool.max) : p.pool.max;
    }
    r.rate_limit = p.rate_limit;
    r.breaker = p.breaker;
    rules[p.name] = r;
  }
  im.profile_rules = rules;
  im.scheduler.set_profile_rules(std::move(rules));
  {
    std::error_code cwd_ec;
    im.server_cwd = std::filesystem::current_path(cwd_ec).string();
  }
  im.memory_limiter = MemoryLimiter::create();
  for (TaskRecord& t : *stored) im.scheduler.restore(std::move(t));
  std::vector<RunningProcess> adopted;
  {
    std::lock_guard guard(im.mu);
    adopted = im.take_handed_over_locked(std::move(im.opts.handed_over));
    im.opts.handed_over.clear();
    RecoveryCounts counts;
    std::optional<std::unordered_map<TaskId, pid_t>> keepers;
    auto settled = im.scheduler.restore_done(
        im.now_ms(), [&](const TaskRecord& t) { return im.settle_running(t, counts, keepers); });
    for (const auto& [id, pid] : counts.found) {
      if (TaskRecord* t = im.scheduler.mutable_task(id)) {
        t->pid = pid;
        im.unsaved_pids.push_back(id);
      }
    }
    im.persist_locked(settled);
    for (const TaskId& id : counts.recorded) im.forget_keeper_status(id);
    if (const int total = counts.adopted + counts.ended + counts.lost + counts.requeued; total > 0) {
      spdlog::info("recovery: {} task(s) were running when the previous server stopped: {} still run and "
                   "were adopted, {} ended meanwhile, {} lost, {} had not started and were queued again",
                   total, counts.adopted, counts.ended, counts.lost, counts.requeued);
    }
  }
  // Spool directories whose task is gone (evicted just before a crash).
  for (const auto& entry : std::filesystem::directory_iterator(im.spool.dir(), ec)) {
    if (!im.scheduler.find(entry.path().filename().string())) im.spool.remove(entry.path().filename());
  }

  WorkerPool::Options wopts;
  wopts.max_threads = im.opts.worker_threads_max;
  wopts.idle_timeout = im.opts.worker_idle_timeout;
  im.workers = std::make_unique<WorkerPool>(wopts);
  im.adopt_handed_over(adopted);
  im.pools = std::make_unique<PoolSet>(im.opts.profiles, merged_environment(im.server_env, {}), im.spool, im.opts.kill_grace);
  if (im.queue) {
    im.cluster_thread = std::jthread([&im](std::stop_token st) {
      name_this_thread("orch-cluster");
      im.cluster_loop(st);
    });
  }
  im.dispatcher = std::jthread([&im](std::stop_token st) {
    name_this_thread("orch-dispatch");
    im.dispatch_loop(st);
  });
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

WorkerPool& Engine::workers() { return *impl_->workers; }

const EngineOptions& Engine::options() const { return impl_->opts; }

Result<SubmitOutcome> Engine::submit(TaskSpec spec) {
  Impl& im = *impl_;
  if (im.queue) return submit_shared(std::move(spec));
  std::vector<TaskSpec> one;
  one.push_back(std::move(spec));
  std::lock_guard lock(im.mu);
  return std::move(submit_all_locked(std::move(one)).front());
}

void Engine::submit_later(TaskSpec spec, SubmitDone done) {
  Impl& im = *impl_;
  // Several servers: the submit is a round trip to the shared table anyway.
  if (im.queue) {
    done(submit_shared(std::move(spec)));
    return;
  }
  std::lock_guard lock(im.later_mu);
  im.submits_later.push_back({std::move(spec), std::move(done)});
}

void Engine::commit_submits() {
  Impl& im = *impl_;
  std::vector<Impl::LaterSubmit> batch;
  {
    std::lock_guard lock(im.later_mu);
    batch.swap(im.submits_later);
  }
  if (batch.empty()) return;
  std::vector<TaskSpec> specs;
  specs.reserve(batch.size());
  for (auto& later : batch) specs.push_back(std::move(later.spec));
  std::vector<Result<SubmitOutcome>> outcomes;
  {
    std::lock_guard lock(im.mu);
    outcomes = submit_all_locked(std::move(specs));
  }
  // Each is answered, whatever an earlier answer's callback did.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      batch[i].done(std::move(outcomes[i]));
    } catch (const std::exception& e) {
      spdlog::error("engine: answering a submit failed: {}", e.what());
    }
  }
}

std::vector<Result<SubmitOutcome>> Engine::submit_all_locked(std::vector<TaskSpec> specs) {
  Impl& im = *impl_;
  std::vector<Result<SubmitOutcome>> outcomes;
  outcomes.reserve(specs.size());
  if (!im.accepting) {
    for (std::size_t i = 0; i < specs.size(); ++i) {
      outcomes.push_back(make_error(ErrorCode::Unavailable, "the server is shutting down; submit again after it restarts"));
    }
    return outcomes;
  }
  // Queued in memory first, each seeing the ones before it (idempotency
  // keys, the queue's room); then stored in one commit.
  std::vector<TaskId> task_of(specs.size());  // the task each outcome shows
  std::vector<bool> is_new(specs.size(), false);
  std::vector<Change> other_changes;
  std::vector<Store::Write> inserts;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    TaskSpec& spec = specs[i];
    if (!spec.idempotency_key.empty()) {
      if (auto existing = im.scheduler.find_by_idempotency_key(spec.idempotency_key)) {
        task_of[i] = *existing;
        SubmitOutcome out;
        out.deduplicated = true;
        outcomes.push_back(std::move(out));
        continue;
      }
    }
    if (auto st = check_spec(spec); !st) {
      outcomes.push_back(st.error());
      continue;
    }
    TaskRecord task;
    task.id = new_task_id();
    task.seq = im.scheduler.max_seq() + 1;
    task.spec = std::move(spec);
    task.submitted_at_ms = im.now_ms();
    auto changes = im.scheduler.submit(std::move(task), im.now_ms());
    if (!changes) {
      outcomes.push_back(changes.error());
      continue;
    }
    task_of[i] = changes->front().id;
    is_new[i] = true;
    other_changes.insert(other_changes.end(), changes->begin() + 1, changes->end());
    inserts.push_back({im.scheduler.find(task_of[i]), std::nullopt, true});
    outcomes.push_back(SubmitOutcome{});
  }
  // Durable before acknowledged: the client may rely on these ids at once.
  const std::vector<Status> stored = im.store->write(inserts);
  std::map<TaskId, Error> refused;
  for (std::size_t i = 0, next = 0; i < specs.size(); ++i) {
    if (!is_new[i]) continue;
    if (const Status& st = stored[next++]; !st) {
      im.scheduler.erase_new(task_of[i]);
      refused.emplace(task_of[i], make_error(ErrorCode::Unavailable,
                                             "could not store the task, so it was not queued: " + st.error().message));
      continue;
    }
    im.change_log.changed(task_of[i]);
    ++im.tasks_submitted;
  }
  // A change a submit made to another task may name one that was refused.
  std::erase_if(other_changes, [&im](const Change& c) { return !im.scheduler.find(c.id); });
  im.persist_locked(other_changes);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (!outcomes[i]) continue;
    // A duplicate of a submit in this batch shares its fate.
    if (auto r = refused.find(task_of[i]); r != refused.end()) {
      outcomes[i] = r->second;
      continue;
    }
    outcomes[i]->view = im.view_locked(*im.scheduler.find(task_of[i]));
  }
  im.notify_locked();
  return outcomes;
}

Status Engine::check_spec(const TaskSpec& spec) const {
  const Impl& im = *impl_;
  if (!spec.profile.empty() && !im.profiles.count(spec.profile)) {
    return make_error(ErrorCode::NotFound, "unknown profile '" + spec.profile + "'");
  }
  if (spec.kind == TaskKind::Pool) {
    // The task runs in a worker that already runs: its process settings are the profile's.
    const Profile& p = im.profiles.at(spec.profile);
    if (spec.cwd != p.cwd || spec.env != p.env || spec.stdin_data) {
      return make_error(ErrorCode::InvalidArgument,
                        "profile '" + spec.profile + "' is a worker pool: its workers already run, so a task "
                        "cannot set cwd, env or stdin; pass what the worker needs in input");
    }
  }
  // Every submit, whatever its form: no tool can skip this (SPEC §7).
  return im.opts.allow.check(spec, merged_environment(im.server_env, spec.env), im.server_cwd);
}

// Several servers on one store: the task goes into the shared table, where
// whichever node has a free slot claims it. The store is asked without the
// engine's lock: these are round trips to another machine.
Result<SubmitOutcome> Engine::submit_shared(TaskSpec spec) {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (!im.accepting) {
      return make_error(ErrorCode::Unavailable, "the server is shutting down; submit again after it restarts");
    }
  }
  auto deduplicated = [&](const TaskId& id) -> Result<SubmitOutcome> {
    auto view = get(id);
    if (!view) return view.error();
    SubmitOutcome out;
    out.view = std::move(*view);
    out.deduplicated = true;
    return out;
  };
  Impl::Shared sh = im.shared();
  if (!sh) return Impl::store_closed();
  if (!spec.idempotency_key.empty()) {
    auto existing = sh.store->find_by_idempotency_key(spec.idempotency_key);
    if (!existing) return make_error(ErrorCode::Unavailable, existing.error().message);
    if (*existing) return deduplicated(**existing);
  }
  if (auto st = check_spec(spec); !st) return st.error();
  auto seq = sh.queue->next_seq();
  if (!seq) return make_error(ErrorCode::Unavailable, "could not store the task, so it was not queued: " + seq.error().message);
  TaskRecord task;
  task.id = new_task_id();
  task.seq = *seq;
  task.spec = std::move(spec);
  task.submitted_at_ms = im.now_ms();
  auto admitted = admit_shared(std::move(task), *sh.queue, im.opts.queue_size, im.now_ms());
  if (!admitted) return admitted.error();
  if (auto st = sh.store->insert(*admitted); !st) {
    // Two nodes given one key at the same moment: the other one's task is the answer.
    if (st.error().code == ErrorCode::Conflict && !admitted->spec.idempotency_key.empty()) {
      auto existing = sh.store->find_by_idempotency_key(admitted->spec.idempotency_key);
      if (existing && *existing) return deduplicated(**existing);
    }
    return make_error(ErrorCode::Unavailable, "could not store the task, so it was not queued: " + st.error().message);
  }
  ++im.tasks_submitted;
  {
    std::lock_guard lock(im.mu);
    im.notify_locked();
  }
  SubmitOutcome out;
  out.view.task = std::move(*admitted);
  return out;
}

Result<TaskView> Engine::get(const TaskId& id) const {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (const TaskRecord* t = im.scheduler.find(id)) return im.view_locked(*t);
  }
  if (Impl::Shared sh = im.shared()) {
    auto found = sh.queue->find(id);
    if (!found) return make_error(ErrorCode::Unavailable, found.error().message);
    if (*found) {
      TaskView v;
      v.task = std::move(**found);
      return v;
    }
  }
  return make_error(ErrorCode::NotFound, "unknown task id '" + id + "'");
}

Result<TaskSpec> Engine::expand_profile(const std::string& name, const std::map<std::string, std::string>& params,
                                       const std::optional<std::string>& input_json) const {
  const Impl& im = *impl_;
  auto it = im.profiles.find(name);
  if (it == im.profiles.end()) {
    std::string names;
    for (const auto& [n, p] : im.profiles) names += (names.empty() ? "" : ", ") + n;
    return make_error(ErrorCode::NotFound,
                      "unknown profile '" + name + "'; " +
                          (names.empty() ? std::string("no profiles are configured (see docs/PROFILES.md); use command or argv")
                                         : "the configured profiles are: " + names));
  }
  return engine::expand_profile(it->second, params, input_json);
}

Result<std::optional<std::string>> Engine::read_result(const TaskId& id) const {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (const TaskRecord* t = im.scheduler.find(id)) {
      if (t->spec.kind != TaskKind::Pool) return std::optional<std::string>{};
      return read_pool_result(im.spool.dir() / id);
    }
  }
  auto remote = get(id);
  if (!remote) return remote.error();
  const TaskRecord& t = remote->task;
  if (t.spec.kind != TaskKind::Pool || t.node.empty()) return std::optional<std::string>{};
  if (t.node == im.node_name) return read_pool_result(im.spool.dir() / id);
  auto node = im.node_named(t.node);
  if (!node) return node.error();
  if (!im.opts.cluster.fetch_result) {
    return make_error(ErrorCode::Unavailable, "the result of task " + id + " is on node " + t.node +
                                                  ", and this server cannot reach other nodes");
  }
  return im.opts.cluster.fetch_result(*node, id);
}

Result<std::optional<std::string>> Engine::read_local_result(const TaskId& id) const {
  const Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    const TaskRecord* t = im.scheduler.find(id);
    if (!t) return make_error(ErrorCode::NotFound, "task " + id + " did not run on this node");
    if (t->spec.kind != TaskKind::Pool) return std::optional<std::string>{};
  }
  return read_pool_result(im.spool.dir() / id);
}

Result<ListPage> Engine::list(const ListFilter& filter, std::size_t limit,
                              const std::string& cursor) const {
  Impl& im = *impl_;
  std::int64_t before = 0;
  if (!cursor.empty()) {
    bool ok = cursor.size() > 1 && cursor[0] == 's' &&
              cursor.find_first_not_of("0123456789", 1) == std::string::npos && cursor.size() < 20;
    if (ok) before = std::stoll(cursor.substr(1));
    if (!ok || before <= 0) {
      return make_error(ErrorCode::InvalidArgument,
                        "cursor '" + cursor + "' is not valid; pass the nextCursor of a previous listTasks answer, or omit it to start from the newest task");
    }
  }
  limit = std::clamp<std::size_t>(limit, 1, 500);
  ListPage page;
  if (im.queue) {
    TaskQuery query{filter.status, filter.tag, filter.name_contains};
    Impl::Shared sh = im.shared();
    if (!sh) return Impl::store_closed();
    auto rows = sh.queue->page(query, before, limit + 1);
    if (!rows) return make_error(ErrorCode::Unavailable, rows.error().message);
    const bool more = rows->size() > limit;
    if (more) rows->resize(limit);
    std::lock_guard lock(im.mu);
    for (TaskRecord& t : *rows) {
      // What this node holds, it knows better: live byte counts, queue position.
      if (const TaskRecord* local = im.scheduler.find(t.id)) {
        page.tasks.push_back(im.view_locked(*local));
      } else {
        TaskView v;
        v.task = std::move(t);
        page.tasks.push_back(std::move(v));
      }
    }
    if (more) page.next_cursor = "s" + std::to_string(page.tasks.back().task.seq);
    return page;
  }
  std::lock_guard lock(im.mu);
  std::int64_t last_seq = 0;
  bool more = false;
  im.scheduler.for_each_newest_first(before, [&](const TaskRecord& t) {
    if (filter.status && t.status != *filter.status) return true;
    if (!filter.tag.empty() &&
        std::find(t.spec.tags.begin(), t.spec.tags.end(), filter.tag) == t.spec.tags.end()) {
      return true;
    }
    if (!filter.name_contains.empty() && t.spec.name.find(filter.name_contains) == std::string::npos) {
      return true;
    }
    if (page.tasks.size() == limit) {
      more = true;
      return false;
    }
    page.tasks.push_back(im.view_locked(t));
    last_seq = t.seq;
    return true;
  });
  if (more) page.next_cursor = "s" + std::to_string(last_seq);
  return page;
}

Result<TaskView> Engine::cancel(const TaskId& id) {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (!im.queue || im.scheduler.find(id)) {
      auto view = im.cancel_local_locked(id, "cancelled by request");
      if (view) im.notify_locked();
      return view;
    }
  }
  // Not held here: ended in the shared table, or asked of the node that runs it.
  Impl::Shared sh = im.shared();
  if (!sh) return Impl::store_closed();
  auto shared = sh.queue->cancel(id, "cancelled by request");
  if (!shared) return shared.error();
  TaskView v;
  v.task = std::move(shared->task);
  v.cancel_requested = shared->requested;
  return v;
}

std::vector<TaskId> Engine::cancel_all(const std::string& tag) {
  Impl& im = *impl_;
  std::unique_lock lock(im.mu);
  std::vector<TaskId> cancelled;
  for (const TaskId& id : im.scheduler.live_tasks()) {
    const TaskRecord* t = im.scheduler.find(id);
    // Ended by an earlier cancel's dependents, or already being stopped.
    if (!t || is_terminal(t->status) || im.scheduler.cancel_requested(id)) continue;
    if (!tag.empty() && std::find(t->spec.tags.begin(), t->spec.tags.end(), tag) == t->spec.tags.end()) {
      continue;
    }
    if (im.cancel_local_locked(id, "cancelled by request")) cancelled.push_back(id);
  }
  im.notify_locked();
  if (!im.queue) return cancelled;
  lock.unlock();
  // And those of the other nodes, and those no node holds yet.
  Impl::Shared sh = im.shared();
  if (!sh) return cancelled;
  auto ids = sh.queue->live_ids(tag);
  if (!ids) {
    spdlog::warn("cluster: cancelAll could not list the shared tasks: {}", ids.error().message);
    return cancelled;
  }
  for (const TaskId& id : *ids) {
    if (std::find(cancelled.begin(), cancelled.end(), id) != cancelled.end()) continue;
    if (auto done = cancel(id)) cancelled.push_back(id);
  }
  return cancelled;
}

Result<OutputWindow> Engine::read_output(const TaskId& id, StreamKind stream,
                                         const ReadRequest& req) const {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (im.scheduler.find(id)) return im.spool.read(id, stream, req);
  }
  auto remote = get(id);
  if (!remote) return remote.error();
  const TaskRecord& t = remote->task;
  if (t.node.empty()) return OutputWindow{};  // not started anywhere yet
  if (t.node == im.node_name) return im.spool.read(id, stream, req);
  auto node = im.node_named(t.node);
  if (!node) return node.error();
  if (!im.opts.cluster.fetch_output) {
    return make_error(ErrorCode::Unavailable, "the output of task " + id + " is on node " + t.node +
                                                  ", and this server cannot reach other nodes");
  }
  return im.opts.cluster.fetch_output(*node, id, stream, req);
}

Result<OutputWindow> Engine::read_local_output(const TaskId& id, StreamKind stream, const ReadRequest& req) const {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (!im.scheduler.find(id)) return make_error(ErrorCode::NotFound, "task " + id + " did not run on this node");
  }
  return im.spool.read(id, stream, req);
}

bool Engine::clustered() const { return impl_->queue != nullptr; }

void Engine::advertise(std::string url, std::string token) {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    im.advertised_url = std::move(url);
    im.advertised_token = std::move(token);
  }
  if (Impl::Shared sh = im.shared()) {
    im.beat_now.store(true);
    sh.queue->wake();
  }
}

Result<TaskView> Engine::wait(const TaskId& id, SteadyTime deadline, std::stop_token stop,
                              const std::function<void(const TaskView&)>& on_change) {
  Impl& im = *impl_;
  std::unique_lock lock(im.mu);
  auto fingerprint = [](const TaskRecord& r) {
    return std::make_tuple(r.status, r.attempt, r.progress, r.message, r.pid);
  };
  const TaskRecord* t = im.scheduler.find(id);
  if (!t && im.queue) {
    // Another node runs it (or none yet): read the shared table until it
    // ends, the deadline passes, or this node claims it.
    std::optional<decltype(fingerprint(TaskRecord{}))> last;
    while (!(t = im.scheduler.find(id))) {
      Impl::Shared sh = im.shared_locked();
      if (!sh) return Impl::store_closed();
      lock.unlock();
      auto found = sh.queue->find(id);
      lock.lock();
      if (!found) return make_error(ErrorCode::Unavailable, found.error().message);
      if (!*found) return make_error(ErrorCode::NotFound, "unknown task id '" + id + "'");
      TaskView v;
      v.task = std::move(**found);
      if (is_terminal(v.task.status) || im.draining.load()) return v;
      if (last && *last != fingerprint(v.task) && on_change) {
        lock.unlock();
        on_change(v);
        lock.lock();
      }
      last = fingerprint(v.task);
      if (std::chrono::steady_clock::now() >= deadline || stop.stop_requested()) return v;
      im.changed.wait_until(lock, stop, std::min(deadline, std::chrono::steady_clock::now() + kRemoteWaitPoll),
                            [&] { return im.scheduler.find(id) != nullptr || im.draining.load(); });
    }
  }
  if (!t) return make_error(ErrorCode::NotFound, "unknown task id '" + id + "'");
  auto seen = fingerprint(*t);
  while (true) {
    t = im.scheduler.find(id);
    if (!t) return make_error(ErrorCode::NotFound, "task '" + id + "' was evicted while waiting");
    if (is_terminal(t->status) || im.draining.load()) return im.view_locked(*t);
    bool moved = im.changed.wait_until(lock, stop, deadline, [&] {
      const TaskRecord* now = im.scheduler.find(id);
      return !now || fingerprint(*now) != seen || im.draining.load();
    });
    t = im.scheduler.find(id);
    if (!t) return make_error(ErrorCode::NotFound, "task '" + id + "' was evicted while waiting");
    if (!moved) return im.view_locked(*t);  // deadline or stop
    seen = fingerprint(*t);
    if (is_terminal(t->status)) return im.view_locked(*t);
    if (on_change) {
      TaskView v = im.view_locked(*t);
      lock.unlock();
      on_change(v);
      lock.lock();
    }
  }
}

EngineStats Engine::stats() const {
  Impl& im = *impl_;
  EngineStats s;
  {
    std::lock_guard lock(im.mu);
    s.by_status = im.scheduler.counts();
    s.queue_depth = im.scheduler.queue_depth();
    s.running = im.scheduler.running_count();
    s.profiles = im.scheduler.profile_views(im.now_ms());
    s.admission_hold = im.scheduler.admission_hold();
  }
  s.memory_floor_mb = im.opts.memory_floor_mb;
  if (im.pools) s.pools = im.pools->stats();
  s.queue_limit = im.opts.queue_size;
  s.max_concurrent = im.opts.max_concurrent;
  auto w = im.workers->stats();
  s.workers.threads = w.threads;
  s.workers.busy = w.busy;
  s.workers.idle = w.threads - std::min(w.threads, w.busy);
  s.workers.max_threads = w.max_threads;
  s.workers.queued_jobs = w.queued;
  s.rss_kb = platform::current_rss_kb();
  s.peak_rss_kb = std::max(platform::recent_peak_rss_kb(), s.rss_kb);  // sampled at different times
  s.mem_available_kb = platform::mem_available_kb();
  s.started_at_ms = im.started_at_ms;
  s.uptime_ms = im.now_ms() - im.started_at_ms;
  s.tasks_submitted = im.tasks_submitted.load();
  s.spawn_errors = im.spawn_errors.load();
  {
    std::lock_guard lock(im.mu);
    s.durations = im.durations;
  }
  s.state_dir = im.opts.state_dir.string();
  s.store = im.store_location;
  s.node_name = im.node_name;
  {
    std::lock_guard lock(im.mu);
    s.nodes = im.nodes;
  }
  {
    std::lock_guard lock(im.mu);
    s.restarts = im.restart_info;
    s.health = im.health;
  }
  return s;
}

TaskChanges Engine::changes_since(std::uint64_t cursor, SteadyTime deadline, std::stop_token stop,
                                  OnDrain on_drain, ViewDetail detail) const {
  Impl& im = *impl_;
  std::unique_lock lock(im.mu);
  auto snapshot = [&] {
    TaskChanges out;
    out.snapshot = true;
    out.cursor = im.change_log.seq();
    im.scheduler.for_each_newest_first(0, [&](const TaskRecord& t) {
      out.changed.push_back(im.view_locked(t, detail));
      return true;
    });
    return out;
  };
  if (cursor == 0) return snapshot();
  const bool end_at_drain = on_drain == OnDrain::Return;
  im.changed.wait_until(lock, stop, deadline,
                        [&] { return im.change_log.seq() > cursor || (end_at_drain && im.draining.load()); });
  auto since = im.change_log.since(cursor);
  if (!since) return snapshot();
  TaskChanges out;
  out.cursor = std::max(cursor, im.change_log.seq());
  out.removed = std::move(since->removed);
  for (const TaskId& id : since->changed) {
    if (const TaskRecord* t = im.scheduler.find(id)) out.changed.push_back(im.view_locked(*t, detail));
    else out.removed.push_back(id);  // gone without an eviction (a submit whose store write failed)
  }
  return out;
}

Status Engine::probe_store() const {
  Impl& im = *impl_;
  std::shared_ptr<Store> store;
  {
    std::lock_guard lock(im.mu);
    store = im.store;
  }
  if (!store) return make_error(ErrorCode::Unavailable, "the store is closed for a restart in place");
  return store->probe();
}

EngineHeartbeat Engine::heartbeat() const {
  Impl& im = *impl_;
  EngineHeartbeat h;
  const std::int64_t now = steady_ms();
  h.dispatcher_idle_ms = std::max<std::int64_t>(0, now - im.dispatcher_tick_ms.load());
  if (auto oldest = im.workers->stats().oldest_job_started) {
    h.oldest_job_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - *oldest)
                          .count();
  }
  return h;
}

void Engine::set_restart_info(RestartInfo info) {
  std::lock_guard lock(impl_->mu);
  impl_->restart_info = std::move(info);
}

void Engine::record_health(const HealthView& view) {
  std::lock_guard lock(impl_->mu);
  impl_->health = view;
}

void Engine::begin_drain() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  im.draining.store(true);
  im.changed.notify_all();
}

bool Engine::draining() const { return impl_->draining.load(); }

std::vector<RunningProcess> Engine::hand_over() {
  Impl& im = *impl_;
  commit_submits();  // answered submits are in the store the next image reads
  {
    std::unique_lock lock(im.mu);
    im.accepting = false;
    im.draining.store(true);
    im.changed.notify_all();
    // A launch under way would start a process after the runner let go.
    im.changed.wait(lock, [&] { return im.launching == 0; });
  }
  im.dispatcher.request_stop();
  if (im.dispatcher.joinable()) im.dispatcher.join();
  // The next image heartbeats under the same name and pid: the leases hold.
  im.stop_cluster_thread();
  // Pool workers do not cross the exec (their pipes are close-on-exec): their
  // running tasks are found running in the store by the next image, with no
  // keeper, and are retried per their policy as lost.
  {
    std::lock_guard lock(im.mu);
    im.handed_over = true;
  }
  if (im.pools) im.pools->shutdown();
  // Not under mu: a process ending now reports through on_exit, which takes it.
  std::vector<RunningProcess> processes = im.runner->hand_over();
  std::lock_guard lock(im.mu);
  im.handed_over = true;
  im.shut_down = true;
  // The next image loads progress from the store; the byte counters travel
  // with the processes.
  for (RunningProcess& p : processes) {
    p.stop_requested = im.scheduler.cancel_requested(p.task_id);
    if (const TaskRecord* t = im.scheduler.find(p.task_id); t && im.store) {
      if (auto st = im.store->update_progress(*t); !st) {
        spdlog::warn("store: could not save progress of {}: {}", p.task_id, st.error().message);
      }
    }
  }
  im.store.reset();
  return processes;
}

Lifeline Engine::release_lifeline() { return impl_->runner ? impl_->runner->release_lifeline() : Lifeline{}; }

void Engine::shutdown(std::chrono::milliseconds grace) {
  Impl& im = *impl_;
  commit_submits();  // none waits for an answer forever
  std::unique_lock lock(im.mu);
  if (im.shut_down) return;
  im.shut_down = true;
  im.accepting = false;
  // Running tasks get `grace` to finish on their own...
  auto deadline = std::chrono::steady_clock::now() + grace;
  im.changed.wait_until(lock, deadline, [&] { return im.scheduler.running_count() == 0; });
  // ...then are stopped and recorded as cancelled by the shutdown.
  for (const TaskId& id : im.scheduler.live_tasks()) {
    const TaskRecord* t = im.scheduler.find(id);
    if (!t || t->status != TaskStatus::Running) continue;
    bool needs_kill = false;
    auto changes = im.scheduler.cancel(id, im.now_ms(), needs_kill, "stopped because the server shut down");
    if (changes) im.persist_locked(*changes);
    im.stop_locked(*t, kShutdownKillGrace);
  }
  auto kill_deadline = std::chrono::steady_clock::now() + kShutdownKillGrace + std::chrono::seconds(3);
  im.changed.wait_until(lock, kill_deadline, [&] { return im.scheduler.running_count() == 0; });
  lock.unlock();
  im.dispatcher.request_stop();
  if (im.dispatcher.joinable()) im.dispatcher.join();
  if (im.queue) {
    im.stop_cluster_thread();
    // What it claimed and did not start goes back to the other nodes now,
    // not after the lease.
    if (auto st = im.queue->leave(im.node_name); !st) spdlog::warn("cluster: {}", st.error().message);
  }
  if (im.pools) im.pools->shutdown();
  im.workers->stop();
  im.runner.reset();  // kills and reaps whatever is left
  // Tasks still marked running here had no process to wait for; the next
  // start finds them running in the store and treats them as lost.
}

}  // namespace orch::engine
