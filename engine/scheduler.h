// Scheduler: the task table and every decision about it — which task runs
// next (priority, then FIFO), dependencies, run-at times, retries with
// jittered back-off, timeouts, cancellation and retention (SPEC §3, §4).
//
// It does no I/O and owns no threads: the Engine calls it under its own
// mutex, passes the time in (Unix ms), and persists and acts on what it
// returns. That keeps every rule testable with a hand-moved clock.
// Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>

#include "common/result.h"
#include "engine/profile.h"
#include "engine/profile_gate.h"
#include "engine/task.h"

namespace orch::engine {

// A status change the caller must persist: the task's record now, and the
// status it had before.
struct Change {
  TaskId id;
  TaskStatus from;
};

// How one attempt ended, as the process runner saw it.
struct AttemptOutcome {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::int64_t peak_rss_kb = 0;
  std::uint64_t stdout_bytes = 0;
  std::uint64_t stderr_bytes = 0;
  bool spawn_failed = false;
  bool lost = false;  // the process vanished with the previous server; its end is unknown
  // The previous server recorded the start but died before spawning anything:
  // restore_done() queues the task again and the attempt is not counted.
  bool never_started = false;
  std::string error;  // spawn or spool error text
  // Set by whoever saw it; each names the reason the attempt failed.
  bool memory_limit = false;    // killed by (or died at) its memory limit
  bool worker_crashed = false;  // a pool worker died or broke the protocol mid-task
  bool worker_error = false;    // a pool worker answered with an error
  bool worker_result = false;   // a pool worker answered with a result: completed
};

class Scheduler {
 public:
  struct Limits {
    int max_concurrent = 8;
    std::size_t queue_size = 10000;
  };

  // `unit_random` returns values in [0, 1) for retry jitter.
  explicit Scheduler(Limits limits, std::function<double()> unit_random = {});

  // Puts a stored task back at start-up. Tasks that were running when the
  // previous process died are reported by restore_done() as lost.
  void restore(TaskRecord task);
  // Ends start-up: each task the store had as running is settled by
  // `settle_running` — nullopt keeps it running (its process was adopted),
  // an outcome ends the attempt with it (retrying per policy) — or, without
  // that function, becomes lost. Then every dependency wait is re-evaluated.
  std::vector<Change> restore_done(
      std::int64_t now_ms,
      const std::function<std::optional<AttemptOutcome>(const TaskRecord&)>& settle_running = {});
  // Before restore_done(): this running task's process lives on (restart in
  // place handed it over), so it stays running instead of being lost.
  void keep_running(const TaskId& id) { kept_running_.insert(id); }

  // The rules of each profile by name; a task whose profile has none runs
  // under the global limit only.
  void set_profile_rules(std::map<std::string, ProfileRules> rules);
  // While set, no queued task starts (memory admission); `why` is shown.
  void set_admission_hold(std::string why) { admission_hold_ = std::move(why); }
  const std::string& admission_hold() const { return admission_hold_; }
  std::vector<ProfileView> profile_views(std::int64_t now_ms) const;
  // Why this queued task does not start now ("" when nothing but its turn
  // holds it): memory admission, or its profile's limit, rate or breaker.
  std::string held_reason(const TaskRecord& t, std::int64_t now_ms) const;

  // Admits a new task: dependencies must exist, the queue must have room.
  // Returns the changes (the new task first, with from == its own status).
  Result<std::vector<Change>> submit(TaskRecord task, std::int64_t now_ms);

  // Moves waiting tasks whose time has come to queued, then takes queued tasks
  // in order while there are free slots: each becomes running with attempt+1.
  std::vector<Change> take_runnable(std::int64_t now_ms, std::vector<TaskId>& to_start);

  // Records the end of a running attempt and decides: completed, failed,
  // retry (waiting until the back-off passes) or cancelled. Dependents of a
  // task that ended badly are cancelled with dependency_failed, transitively.
  std::vector<Change> finish_attempt(const TaskId& id, const AttemptOutcome& outcome,
                                     std::int64_t now_ms);

  // Cancels a live task. Queued and waiting tasks end now; a running task is
  // only marked (the caller stops its process and then calls finish_attempt).
  // `needs_kill` tells the caller which.
  Result<std::vector<Change>> cancel(const TaskId& id, std::int64_t now_ms, bool& needs_kill,
                                     const std::string& why = "cancelled by request");

  // Running tasks whose timeout passed and that were not yet marked; they are
  // marked now, and the caller stops their processes.
  std::vector<TaskId> take_timed_out(std::int64_t now_ms);

  // Updates live fields of a running task (pid, progress, byte counts). No
  // status change, so nothing to persist as a transition.
  TaskRecord* mutable_task(const TaskId& id);
  const TaskRecord* find(const TaskId& id) const;
  bool cancel_requested(const TaskId& id) const;
  // True when a running task must be stopped: cancelled or timed out.
  bool should_stop(const TaskId& id) const;
  // Forgets a task: one just submitted that could not be stored, or one
  // whose claim this node lost (several servers on one store).
  void erase_new(const TaskId& id);

  // Several servers on one store (docs/CLUSTER.md): the tasks here are the
  // ones this node claimed from the shared queue, which already saw their
  // dependencies complete, so settle() no longer looks at them (they may
  // live on other nodes).
  void set_shared(bool shared) { shared_ = shared; }
  // A task this node just claimed (queued, its dependencies met).
  void adopt_claimed(TaskRecord task) { restore(std::move(task)); }
  // Queued tasks (claimed and not yet started, in a shared queue).
  std::size_t queued_count() const { return queued_.size(); }

  // The earliest time something needs doing without an outside event: a
  // waiting task's not-before time or a running task's timeout.
  std::optional<std::int64_t> next_wakeup_ms() const;

  // Finished tasks past the retention count or age, oldest first; removed
  // from the table when returned.
  std::vector<TaskId> evict(std::size_t keep_count, std::int64_t max_age_ms, std::int64_t now_ms);
  // Finished tasks held (what evict() trims).
  std::size_t finished_count() const { return finished_.size(); }

  std::optional<std::size_t> queue_position(const TaskId& id) const;
  std::size_t queue_depth() const { return queued_.size() + waiting_.size(); }
  int running_count() const { return static_cast<int>(running_.size()); }
  std::map<TaskStatus, std::size_t> counts() const;
  std::optional<TaskId> find_by_idempotency_key(const std::string& key) const;
  const Limits& limits() const { return limits_; }
  std::int64_t max_seq() const { return max_seq_; }

  // Walks tasks newest first from before `before_seq` (0: from the newest);
  // `visit` returns false to stop.
  void for_each_newest_first(std::int64_t before_seq,
                             const std::function<bool(const TaskRecord&)>& visit) const;
  std::vector<TaskId> live_tasks() const;

 private:
  struct Entry {
    TaskRecord task;
    bool cancel_requested = false;
    bool timed_out = false;
    std::string cancel_message;
  };
  // Queued order: higher priority first, then lower seq (FIFO within a level).
  using QueueKey = std::pair<int, std::int64_t>;  // (-priority, seq)
  using OrderedQueue =
      __gnu_pbds::tree<QueueKey, __gnu_pbds::null_type, std::less<QueueKey>,
                       __gnu_pbds::rb_tree_tag, __gnu_pbds::tree_order_statistics_node_update>;

  Entry* entry(const TaskId& id);
  const Entry* entry(const TaskId& id) const;
  void set_status(Entry& e, TaskStatus to, std::vector<Change>& changes);
  void enqueue_or_wait(Entry& e, std::int64_t now_ms, std::vector<Change>& changes);
  // Decides queued/waiting/cancelled from dependencies and time.
  void settle(Entry& e, std::int64_t now_ms, std::vector<Change>& changes);
  void end(Entry& e, TaskStatus to, EndReason reason, std::string message, std::int64_t now_ms,
           std::vector<Change>& changes);
  void fail_dependents(const TaskId& id, std::int64_t now_ms, std::vector<Change>& changes);
  void release_dependents(const TaskId& id, std::int64_t now_ms, std::vector<Change>& changes);
  void remove_from_indexes(const Entry& e);
  // Running back to queued, the attempt given back (AttemptOutcome::never_started).
  void requeue_unstarted(Entry& e, std::vector<Change>& changes);
  static QueueKey queue_key(const TaskRecord& t) { return {-t.spec.priority, t.seq}; }


  Limits limits_;
  std::function<double()> unit_random_;
  std::unordered_map<TaskId, Entry> tasks_;
  std::map<std::int64_t, TaskId> by_seq_;                 // every task, by submission order
  OrderedQueue queued_;                                    // queued tasks in run order
  std::map<QueueKey, TaskId> queued_ids_;                  // same keys → ids
  // Queued tasks per named profile: profile_views() runs for every getStatus,
  // under the engine's lock, so it must not walk the queue.
  std::map<std::string, std::size_t> queued_by_profile_;
  void add_queued(const TaskRecord& t);
  std::set<TaskId> waiting_;
  std::set<std::pair<std::int64_t, TaskId>> timers_;     // waiting tasks' not-before times
  std::set<TaskId> running_;
  std::set<std::pair<std::int64_t, TaskId>> deadlines_;  // running tasks' timeouts
  // Finished tasks, oldest first, each with its status, which is not part of
  // the order: counts() reads finished_by_status_ instead of walking them.
  struct Finished {
    std::int64_t at_ms = 0;
    std::int64_t seq = 0;
    TaskStatus status = TaskStatus::Completed;
    bool operator<(const Finished& o) const { return at_ms != o.at_ms ? at_ms < o.at_ms : seq < o.seq; }
  };
  std::set<Finished> finished_;
  std::array<std::size_t, kTaskStatusCount> finished_by_status_{};
  void add_finished(const TaskRecord& t);
  void drop_finished(std::set<Finished>::iterator it);
  std::unordered_map<TaskId, std::vector<TaskId>> dependents_;  // dep → tasks waiting on it
  std::unordered_map<std::string, TaskId> idempotency_;
  std::int64_t max_seq_ = 0;
  std::set<TaskId> kept_running_;  // restore_done() leaves these running
  bool shared_ = false;            // set_shared()
  ProfileGate gate_;  // per-profile concurrency, rate limits, breakers
  std::string admission_hold_;
  std::optional<std::int64_t> profile_wakeup_ms_;  // a held profile may start then
};

}  // namespace orch::engine
