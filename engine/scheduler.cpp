#include "engine/scheduler.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "common/clock.h"

namespace orch::engine {

namespace {

double default_unit_random() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

std::string describe_end(const AttemptOutcome& o) {
  if (o.lost) return "its process was lost when the previous server stopped; how it ended is unknown";
  if (o.spawn_failed) return "could not start: " + o.error;
  if (o.exit_code) return "exited with code " + std::to_string(*o.exit_code);
  if (o.signal) {
    const char* name = sigabbrev_np(*o.signal);
    return "killed by signal " + std::to_string(*o.signal) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "ended";
}

std::string seconds_text(std::int64_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

Scheduler::Scheduler(Limits limits, std::function<double()> unit_random)
    : limits_(limits), unit_random_(unit_random ? std::move(unit_random) : default_unit_random) {}

Scheduler::Entry* Scheduler::entry(const TaskId& id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

const Scheduler::Entry* Scheduler::entry(const TaskId& id) const {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

const TaskRecord* Scheduler::find(const TaskId& id) const {
  const Entry* e = entry(id);
  return e ? &e->task : nullptr;
}

TaskRecord* Scheduler::mutable_task(const TaskId& id) {
  Entry* e = entry(id);
  return e ? &e->task : nullptr;
}

bool Scheduler::cancel_requested(const TaskId& id) const {
  const Entry* e = entry(id);
  return e && e->cancel_requested;
}

bool Scheduler::should_stop(const TaskId& id) const {
  const Entry* e = entry(id);
  return e && (e->cancel_requested || e->timed_out);
}

void Scheduler::erase_new(const TaskId& id) {
  Entry* e = entry(id);
  if (!e) return;
  remove_from_indexes(*e);
  by_seq_.erase(e->task.seq);
  const std::string& key = e->task.spec.idempotency_key;
  if (!key.empty() && idempotency_.count(key) && idempotency_[key] == id) idempotency_.erase(key);
  for (const TaskId& dep : e->task.spec.depends_on) {
    auto it = dependents_.find(dep);
    if (it != dependents_.end()) std::erase(it->second, id);
  }
  tasks_.erase(id);
}

void Scheduler::remove_from_indexes(const Entry& e) {
  const TaskRecord& t = e.task;
  switch (t.status) {
    case TaskStatus::Queued:
      queued_.erase(queue_key(t));
      if (queued_ids_.erase(queue_key(t)) > 0 && !t.spec.profile.empty()) {
        if (auto it = queued_by_profile_.find(t.spec.profile); it != queued_by_profile_.end() && --it->second == 0) {
          queued_by_profile_.erase(it);
        }
      }
      break;
    case TaskStatus::Waiting:
      waiting_.erase(t.id);
      timers_.erase({t.not_before_ms, t.id});
      break;
    case TaskStatus::Running:
      if (running_.erase(t.id) > 0) {
        gate_.count_running(t.spec.profile, -1);
      }
      if (t.spec.timeout_ms) deadlines_.erase({t.started_at_ms + *t.spec.timeout_ms, t.id});
      break;
    default:
      if (auto it = finished_.find({t.finished_at_ms, t.seq}); it != finished_.end()) drop_finished(it);
      break;
  }
}

void Scheduler::add_queued(const TaskRecord& t) {
  queued_.insert(queue_key(t));
  if (queued_ids_.insert_or_assign(queue_key(t), t.id).second && !t.spec.profile.empty()) {
    ++queued_by_profile_[t.spec.profile];
  }
}

void Scheduler::add_finished(const TaskRecord& t) {
  if (finished_.insert({t.finished_at_ms, t.seq, t.status}).second) {
    ++finished_by_status_[static_cast<std::size_t>(t.status)];
  }
}

void Scheduler::drop_finished(std::set<Finished>::iterator it) {
  --finished_by_status_[static_cast<std::size_t>(it->status)];
  finished_.erase(it);
}

void Scheduler::set_status(Entry& e, TaskStatus to, std::vector<Change>& changes) {
  TaskRecord& t = e.task;
  TaskStatus from = t.status;
  remove_from_indexes(e);
  t.status = to;
  switch (to) {
    case TaskStatus::Queued:
      add_queued(t);
      break;
    case TaskStatus::Waiting:
      waiting_.insert(t.id);
      if (t.not_before_ms > 0) timers_.insert({t.not_before_ms, t.id});
      break;
    case TaskStatus::Running:
      if (running_.insert(t.id).second) {
        gate_.count_running(t.spec.profile, 1);
      }
      if (t.spec.timeout_ms) deadlines_.insert({t.started_at_ms + *t.spec.timeout_ms, t.id});
      break;
    default:
      add_finished(t);
      break;
  }
  changes.push_back({t.id, from});
}

void Scheduler::settle(Entry& e, std::int64_t now_ms, std::vector<Change>& changes) {
  TaskRecord& t = e.task;
  std::size_t pending = 0;
  static const std::vector<TaskId> kMetElsewhere;
  for (const TaskId& dep_id : shared_ ? kMetElsewhere : t.spec.depends_on) {
    const Entry* dep = entry(dep_id);
    if (!dep) {
      end(e, TaskStatus::Cancelled, EndReason::DependencyFailed,
          "dependency " + dep_id + " no longer exists", now_ms, changes);
      return;
    }
    TaskStatus ds = dep->task.status;
    if (ds == TaskStatus::Failed || ds == TaskStatus::Cancelled) {
      end(e, TaskStatus::Cancelled, EndReason::DependencyFailed,
          "dependency " + dep_id + " " + to_string(ds), now_ms, changes);
      return;
    }
    if (ds != TaskStatus::Completed) {
      ++pending;
      auto& list = dependents_[dep_id];
      if (std::find(list.begin(), list.end(), t.id) == list.end()) list.push_back(t.id);
    }
  }
  if (pending > 0) {
    t.message = "waiting for " + std::to_string(pending) + " of " +
                std::to_string(t.spec.depends_on.size()) + " dependencies";
    if (t.status != TaskStatus::Waiting) set_status(e, TaskStatus::Waiting, changes);
    else timers_.erase({t.not_before_ms, t.id});  // deps first; the timer is re-armed when they finish
    return;
  }
  if (t.not_before_ms > now_ms) {
    if (t.attempt == 0) t.message = "scheduled to start at " + to_iso8601(t.not_before_ms);
    if (t.status == TaskStatus::Waiting) {
      timers_.insert({t.not_before_ms, t.id});
    } else {
      set_status(e, TaskStatus::Waiting, changes);
    }
    return;
  }
  if (t.status != TaskStatus::Queued) {
    t.message = t.attempt == 0 ? "" : t.message;
    set_status(e, TaskStatus::Queued, changes);
  }
}

void Scheduler::end(Entry& e, TaskStatus to, EndReason reason, std::string message,
                    std::int64_t now_ms, std::vector<Change>& changes) {
  TaskRecord& t = e.task;
  TaskStatus from = t.status;
  remove_from_indexes(e);
  t.status = to;
  t.reason = reason;
  t.message = std::move(message);
  t.finished_at_ms = now_ms;
  t.not_before_ms = 0;
  t.pid.reset();
  add_finished(t);
  e.cancel_requested = false;
  e.timed_out = false;
  changes.push_back({t.id, from});
  if (to == TaskStatus::Completed) release_dependents(t.id, now_ms, changes);
  else fail_dependents(t.id, now_ms, changes);
}

void Scheduler::release_dependents(const TaskId& id, std::int64_t now_ms, std::vector<Change>& changes) {
  auto it = dependents_.find(id);
  if (it == dependents_.end()) return;
  std::vector<TaskId> list = std::move(it->second);
  dependents_.erase(it);
  for (const TaskId& dep_id : list) {
    Entry* d = entry(dep_id);
    if (d && (d->task.status == TaskStatus::Waiting || d->task.status == TaskStatus::Queued)) {
      settle(*d, now_ms, changes);
    }
  }
}

// Transitive: end() of each dependent fails its own dependents in turn.
void Scheduler::fail_dependents(const TaskId& id, std::int64_t now_ms, std::vector<Change>& changes) {
  auto it = dependents_.find(id);
  if (it == dependents_.end()) return;
  std::vector<TaskId> list = std::move(it->second);
  dependents_.erase(it);
  const Entry* failed = entry(id);
  std::string why = "dependency " + id + " " + (failed ? to_string(failed->task.status) : "ended");
  for (const TaskId& dep_id : list) {
    Entry* d = entry(dep_id);
    if (d && (d->task.status == TaskStatus::Waiting || d->task.status == TaskStatus::Queued)) {
      end(*d, TaskStatus::Cancelled, EndReason::DependencyFailed, why, now_ms, changes);
    }
  }
}

void Scheduler::restore(TaskRecord task) {
  max_seq_ = std::max(max_seq_, task.seq);
  by_seq_[task.seq] = task.id;
  if (!task.spec.idempotency_key.empty()) idempotency_[task.spec.idempotency_key] = task.id;
  TaskId id = task.id;
  Entry& e = tasks_[id];
  e.task = std::move(task);
  // Index by the stored status; restore_done() settles the live ones.
  switch (e.task.status) {
    case TaskStatus::Queued:
      add_queued(e.task);
      break;
    case TaskStatus::Waiting: waiting_.insert(id); break;
    case TaskStatus::Running:
      running_.insert(id);
      gate_.count_running(e.task.spec.profile, 1);
      break;
    default: add_finished(e.task); break;
  }
}

void Scheduler::requeue_unstarted(Entry& e, std::vector<Change>& changes) {
  TaskRecord& t = e.task;
  t.attempt -= 1;  // dispatch counts it again
  t.started_at_ms = 0;
  t.pid.reset();
  t.message = "the previous server stopped before starting it; it is queued again";
  set_status(e, TaskStatus::Queued, changes);
}

std::vector<Change> Scheduler::restore_done(
    std::int64_t now_ms, const std::function<std::optional<AttemptOutcome>(const TaskRecord&)>& settle_running) {
  std::vector<Change> changes;
  std::vector<TaskId> was_running(running_.begin(), running_.end());
  for (const TaskId& id : was_running) {
    if (kept_running_.count(id)) continue;
    AttemptOutcome outcome;
    outcome.lost = true;
    if (settle_running) {
      auto settled = settle_running(tasks_.at(id).task);
      if (!settled) continue;  // adopted: it goes on running
      outcome = std::move(*settled);
    }
    if (outcome.never_started) {
      requeue_unstarted(tasks_.at(id), changes);
      continue;
    }
    auto more = finish_attempt(id, outcome, now_ms);
    changes.insert(changes.end(), more.begin(), more.end());
  }
  std::vector<TaskId> live(waiting_.begin(), waiting_.end());
  for (const auto& [key, id] : queued_ids_) live.push_back(id);
  std::sort(live.begin(), live.end(), [&](const TaskId& a, const TaskId& b) {
    return tasks_.at(a).task.seq < tasks_.at(b).task.seq;
  });
  for (const TaskId& id : live) {
    Entry* e = entry(id);
    if (e && (e->task.status == TaskStatus::Waiting || e->task.status == TaskStatus::Queued)) {
      settle(*e, now_ms, changes);
    }
  }
  return changes;
}

Result<std::vector<Change>> Scheduler::submit(TaskRecord task, std::int64_t now_ms) {
  if (queue_depth() >= limits_.queue_size) {
    return make_error(ErrorCode::QueueFull,
                      "queue is full (" + std::to_string(limits_.queue_size) +
                          " tasks not yet running); retry later, cancel tasks you no longer need, "
                          "or raise limits.queueSize");
  }
  if (tasks_.count(task.id)) {
    return make_error(ErrorCode::Conflict, "task id " + task.id + " already exists");
  }
  std::vector<TaskId> deps;
  for (const TaskId& dep : task.spec.depends_on) {
    if (dep == task.id) {
      return make_error(ErrorCode::InvalidArgument, "dependsOn: a task cannot depend on itself");
    }
    if (!tasks_.count(dep)) {
      return make_error(ErrorCode::InvalidArgument,
                        "dependsOn: unknown task id '" + dep +
                            "'; depend only on tasks that exist (see listTasks)");
    }
    if (std::find(deps.begin(), deps.end(), dep) == deps.end()) deps.push_back(dep);
  }
  // A new task can only depend on tasks that already exist, and none of them
  // can depend on it: the graph stays acyclic by construction.
  task.spec.depends_on = std::move(deps);
  if (!task.spec.idempotency_key.empty()) {
    if (idempotency_.count(task.spec.idempotency_key)) {
      return make_error(ErrorCode::Conflict, "idempotency key already used");
    }
    idempotency_[task.spec.idempotency_key] = task.id;
  }
  // Not yet in any index: a terminal placeholder makes settle() index it.
  task.status = TaskStatus::Cancelled;
  task.not_before_ms = task.spec.run_at_ms.value_or(0);
  max_seq_ = std::max(max_seq_, task.seq);
  by_seq_[task.seq] = task.id;
  TaskId id = task.id;
  Entry& e = tasks_[id];
  e.task = std::move(task);
  std::vector<Change> changes;
  settle(e, now_ms, changes);
  // The new task's own change comes first, from its initial status.
  std::erase_if(changes, [&](const Change& c) { return c.id == id; });
  changes.insert(changes.begin(), Change{id, e.task.status});
  return changes;
}

std::vector<Change> Scheduler::take_runnable(std::int64_t now_ms, std::vector<TaskId>& to_start) {
  std::vector<Change> changes;
  while (!timers_.empty() && timers_.begin()->first <= now_ms) {
    TaskId id = timers_.begin()->second;
    timers_.erase(timers_.begin());
    Entry* e = entry(id);
    if (!e || e->task.status != TaskStatus::Waiting) continue;
    e->task.not_before_ms = 0;
    settle(*e, now_ms, changes);
  }
  profile_wakeup_ms_.reset();
  if (!admission_hold_.empty()) return changes;
  // In queue order, passing over tasks whose profile may not start now, so
  // one held profile does not hold the others.
  std::set<std::string> held;
  auto next = queued_.begin();
  while (static_cast<int>(running_.size()) < limits_.max_concurrent && next != queued_.end()) {
    QueueKey key = *next;
    ++next;  // before set_status() removes `key` from the queue
    TaskId id = queued_ids_.at(key);
    Entry& e = tasks_.at(id);
    TaskRecord& t = e.task;
    if (gate_.has(t.spec.profile)) {
      if (held.count(t.spec.profile)) continue;
      std::int64_t retry_at = 0;
      if (!gate_.hold(t.spec.profile, now_ms, &retry_at).empty()) {
        held.insert(t.spec.profile);
        if (retry_at > 0) profile_wakeup_ms_ = std::min(profile_wakeup_ms_.value_or(retry_at), retry_at);
        continue;
      }
      gate_.started(t.spec.profile, now_ms);
    }
    t.attempt += 1;
    t.started_at_ms = now_ms;
    t.finished_at_ms = 0;
    t.exit_code.reset();
    t.signal.reset();
    t.pid.reset();
    t.progress.reset();
    t.peak_rss_kb = 0;
    t.stdout_bytes = 0;
    t.stderr_bytes = 0;
    t.reason = EndReason::None;
    t.message = t.spec.retry.max_attempts > 1
                    ? "attempt " + std::to_string(t.attempt) + " of " +
                          std::to_string(t.spec.retry.max_attempts)
                    : "";
    set_status(e, TaskStatus::Running, changes);
    to_start.push_back(id);
  }
  return changes;
}

std::vector<Change> Scheduler::finish_attempt(const TaskId& id, const AttemptOutcome& o,
                                              std::int64_t now_ms) {
  std::vector<Change> changes;
  Entry* e = entry(id);
  if (!e || e->task.status != TaskStatus::Running) return changes;
  TaskRecord& t = e->task;
  t.exit_code = o.exit_code;
  t.signal = o.signal;
  t.peak_rss_kb = o.peak_rss_kb;
  t.stdout_bytes = o.stdout_bytes;
  t.stderr_bytes = o.stderr_bytes;

  if (e->cancel_requested) {
    gate_.ended(t.spec.profile, false, false, now_ms);
    std::string why = e->cancel_message.empty() ? "cancelled by request" : e->cancel_message;
    end(*e, TaskStatus::Cancelled, EndReason::Cancelled, why + "; " + describe_end(o), now_ms,
        changes);
    return changes;
  }
  EndReason reason;
  std::string message;
  if (e->timed_out) {
    reason = EndReason::Timeout;
    message = "timed out after " + seconds_text(t.spec.timeout_ms.value_or(0)) +
              "; its process group was killed (" + describe_end(o) + ")";
  } else if (o.lost) {
    reason = EndReason::Lost;
    message = describe_end(o);
  } else if (o.spawn_failed) {
    reason = EndReason::SpawnError;
    message = describe_end(o);
  } else if (o.worker_result) {
    gate_.ended(t.spec.profile, false, true, now_ms);
    end(*e, TaskStatus::Completed, EndReason::None, o.error.empty() ? "answered by its pool worker" : o.error,
        now_ms, changes);
    return changes;
  } else if (o.memory_limit) {
    reason = EndReason::MemoryLimit;
    message = o.error.empty() ? "killed at its memory limit" : o.error;
  } else if (o.worker_crashed) {
    reason = EndReason::WorkerCrashed;
    message = o.error.empty() ? "its pool worker crashed" : o.error;
  } else if (o.worker_error) {
    reason = EndReason::WorkerError;
    message = o.error.empty() ? "the worker answered with an error" : o.error;
  } else if (o.exit_code) {
    reason = EndReason::ExitCode;
    message = describe_end(o);
    if (*o.exit_code == 0) {
      gate_.ended(t.spec.profile, false, true, now_ms);
      end(*e, TaskStatus::Completed, reason, message, now_ms, changes);
      return changes;
    }
  } else {
    reason = EndReason::Signal;
    message = describe_end(o);
  }
  gate_.ended(t.spec.profile, true, true, now_ms);

  if (t.attempt < t.spec.retry.max_attempts) {
    std::int64_t delay = retry_delay_ms(t.spec.retry, t.attempt + 1, unit_random_());
    t.reason = reason;  // why the last attempt failed, while it waits to retry
    t.finished_at_ms = now_ms;
    t.pid.reset();
    t.not_before_ms = now_ms + delay;
    t.message = "attempt " + std::to_string(t.attempt) + " of " +
                std::to_string(t.spec.retry.max_attempts) + " failed (" + message +
                "); retrying at " + to_iso8601(t.not_before_ms);
    e->timed_out = false;
    set_status(*e, TaskStatus::Waiting, changes);
    return changes;
  }
  if (t.spec.retry.max_attempts > 1) {
    message += " (attempt " + std::to_string(t.attempt) + " of " +
               std::to_string(t.spec.retry.max_attempts) + ", no retries left)";
  }
  end(*e, TaskStatus::Failed, reason, message, now_ms, changes);
  return changes;
}

Result<std::vector<Change>> Scheduler::cancel(const TaskId& id, std::int64_t now_ms,
                                              bool& needs_kill, const std::string& why) {
  needs_kill = false;
  Entry* e = entry(id);
  if (!e) return make_error(ErrorCode::NotFound, "unknown task id '" + id + "'");
  TaskRecord& t = e->task;
  if (is_terminal(t.status)) {
    std::string detail = t.message.empty() ? "" : " (" + t.message + ")";
    return make_error(ErrorCode::Conflict, "task " + id + " already " + to_string(t.status) +
                                               detail + "; nothing to cancel");
  }
  std::vector<Change> changes;
  if (t.status == TaskStatus::Running) {
    e->cancel_requested = true;
    e->cancel_message = why;
    needs_kill = true;
    return changes;
  }
  end(*e, TaskStatus::Cancelled, EndReason::Cancelled, why, now_ms, changes);
  return changes;
}

std::vector<TaskId> Scheduler::take_timed_out(std::int64_t now_ms) {
  std::vector<TaskId> out;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    TaskId id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    Entry* e = entry(id);
    if (!e || e->task.status != TaskStatus::Running || e->cancel_requested) continue;
    e->timed_out = true;
    out.push_back(id);
  }
  return out;
}

std::optional<std::int64_t> Scheduler::next_wakeup_ms() const {
  std::optional<std::int64_t> next = profile_wakeup_ms_;
  if (!timers_.empty()) next = std::min(next.value_or(timers_.begin()->first), timers_.begin()->first);
  if (!deadlines_.empty()) {
    std::int64_t d = deadlines_.begin()->first;
    next = next ? std::min(*next, d) : d;
  }
  return next;
}

std::vector<TaskId> Scheduler::evict(std::size_t keep_count, std::int64_t max_age_ms,
                                     std::int64_t now_ms) {
  std::vector<TaskId> out;
  while (!finished_.empty()) {
    const auto [finished_at, seq] = std::pair(finished_.begin()->at_ms, finished_.begin()->seq);
    bool too_many = finished_.size() > keep_count;
    bool too_old = finished_at < now_ms - max_age_ms;
    if (!too_many && !too_old) break;
    drop_finished(finished_.begin());
    auto sit = by_seq_.find(seq);
    if (sit == by_seq_.end()) continue;
    TaskId id = sit->second;
    by_seq_.erase(sit);
    auto it = tasks_.find(id);
    if (it != tasks_.end()) {
      const std::string& key = it->second.task.spec.idempotency_key;
      if (!key.empty()) {
        auto kit = idempotency_.find(key);
        if (kit != idempotency_.end() && kit->second == id) idempotency_.erase(kit);
      }
      tasks_.erase(it);
    }
    dependents_.erase(id);
    out.push_back(id);
  }
  return out;
}

std::optional<std::size_t> Scheduler::queue_position(const TaskId& id) const {
  const Entry* e = entry(id);
  if (!e || e->task.status != TaskStatus::Queued) return std::nullopt;
  return queued_.order_of_key(queue_key(e->task)) + 1;
}

std::map<TaskStatus, std::size_t> Scheduler::counts() const {
  std::map<TaskStatus, std::size_t> out;
  for (TaskStatus s : {TaskStatus::Queued, TaskStatus::Waiting, TaskStatus::Running,
                       TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Cancelled}) {
    out[s] = 0;
  }
  out[TaskStatus::Queued] = queued_.size();
  out[TaskStatus::Waiting] = waiting_.size();
  out[TaskStatus::Running] = running_.size();
  for (TaskStatus s : {TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Cancelled}) {
    out[s] = finished_by_status_[static_cast<std::size_t>(s)];
  }
  return out;
}

std::optional<TaskId> Scheduler::find_by_idempotency_key(const std::string& key) const {
  auto it = idempotency_.find(key);
  if (it == idempotency_.end()) return std::nullopt;
  return it->second;
}

void Scheduler::for_each_newest_first(std::int64_t before_seq,
                                      const std::function<bool(const TaskRecord&)>& visit) const {
  auto it = before_seq > 0 ? by_seq_.lower_bound(before_seq) : by_seq_.end();
  while (it != by_seq_.begin()) {
    --it;
    const Entry* e = entry(it->second);
    if (e && !visit(e->task)) return;
  }
}

std::vector<TaskId> Scheduler::live_tasks() const {
  std::vector<TaskId> out(running_.begin(), running_.end());
  out.insert(out.end(), waiting_.begin(), waiting_.end());
  for (const auto& [key, id] : queued_ids_) out.push_back(id);
  return out;
}

void Scheduler::set_profile_rules(std::map<std::string, ProfileRules> rules) {
  gate_.set_rules(std::move(rules));
  for (const TaskId& id : running_) gate_.count_running(tasks_.at(id).task.spec.profile, 1);
}

std::vector<ProfileView> Scheduler::profile_views(std::int64_t now_ms) const {
  return gate_.views(now_ms, queued_by_profile_);
}

std::string Scheduler::held_reason(const TaskRecord& t, std::int64_t now_ms) const {
  if (t.status != TaskStatus::Queued) return "";
  if (!admission_hold_.empty()) return admission_hold_;
  return gate_.hold(t.spec.profile, now_ms, nullptr);
}

}  // namespace orch::engine
