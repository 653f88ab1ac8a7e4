// SharedQueue: what several servers sharing one store need of it beyond the
// Store interface (docs/CLUSTER.md): nodes that join and renew a lease, tasks
// claimed by one node at a time, a rescuer that gives back the tasks of a node
// whose lease ran out, and reads of tasks that run elsewhere.
//
// The PostgreSQL store implements it (engine/postgres_queue.h); the embedded
// SQLite store does not, and an engine on SQLite runs alone as before.
//
// Times of leases and heartbeats are the database's clock, so that nodes
// whose clocks disagree still agree on who holds what.
// Thread-safety: every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/profile.h"
#include "engine/task.h"

namespace orch::engine {

// One server of a cluster, as its row in the nodes table says.
struct NodeInfo {
  std::string name;            // unique among the nodes (cluster.nodeName)
  std::string url;             // its HTTP base URL for other nodes; empty: it serves no HTTP
  std::string token;           // the bearer token of that URL; empty: none
  std::int64_t pid = 0;
  std::int64_t started_at_ms = 0;
  std::int64_t heartbeat_at_ms = 0;  // the database's clock
  std::int64_t heartbeat_age_ms = 0; // as of the read
  int running = 0;
  int max_concurrent = 0;
  std::string health;          // "ok", or what its health check says is wrong
  bool alive = false;          // renewed its lease within the lease time
};

// What a node says of itself on every heartbeat.
struct NodeReport {
  NodeInfo self;               // name, url, token, pid, started_at_ms, running, max_concurrent, health
  std::int64_t lease_ms = 0;   // how long its claims hold without a heartbeat
  std::vector<TaskId> holding; // the live tasks it has in memory (see HeartbeatReply::lost)
};

// What a heartbeat hands back to the node.
struct HeartbeatReply {
  std::vector<TaskId> cancels; // tasks it holds that another node asked to cancel since the last heartbeat
  // Tasks in NodeReport::holding that it no longer holds: its lease ran out
  // (it was stopped, or cut off) and the rescuer gave them to the queue.
  // The node stops them without writing their end: the table has moved on.
  std::vector<TaskId> lost;
};

// A filter on the shared table (ListFilter's fields).
struct TaskQuery {
  std::optional<TaskStatus> status;
  std::string tag;
  std::string name_contains;
};

// What a cancel through the shared table did.
struct SharedCancel {
  TaskRecord task;             // as it is now
  bool ended = false;          // it was not claimed, and is cancelled now
  bool requested = false;      // another node runs it: that node was asked to stop it
};

// The rescuer's decision for one task of a node that died: the task as it
// should be written back (status, reason, message, not_before_ms, node).
using RescueDecision = std::function<TaskRecord(const TaskRecord& task, const std::string& dead_node)>;

struct RescueReport {
  bool ran = false;              // this node held the rescuer's lock
  std::vector<TaskId> rescued;   // given back from dead nodes
  std::vector<TaskId> released;  // waiting tasks whose dependencies and time came: now queued
  std::vector<TaskId> dependency_failed;  // cancelled: a dependency failed or was cancelled
  std::size_t evicted = 0;       // finished rows no live node keeps, removed
};

class SharedQueue {
 public:
  virtual ~SharedQueue() = default;

  // Records this node (a row by name; a node restarting under its name takes
  // its row back) and renews the leases of the tasks it holds. Also every
  // heartbeat. Returns the cancels asked of it and the claims it lost.
  virtual Result<HeartbeatReply> heartbeat(const NodeReport& report) = 0;
  // A clean stop: this node's row goes; the tasks it still holds (queued or
  // waiting ones it claimed) are given back at once.
  virtual Status leave(const std::string& node) = 0;
  // Every node row, alive or not, by name.
  virtual Result<std::vector<NodeInfo>> nodes(std::int64_t lease_ms) = 0;

  // The next submission number, from a sequence all nodes share.
  virtual Result<std::int64_t> next_seq() = 0;
  // Takes up to `max` queued, unclaimed tasks whose time has come and whose
  // dependencies all completed, highest priority first, FIFO within a
  // priority (FOR UPDATE SKIP LOCKED: nodes claiming at once take different
  // tasks), honouring each profile's maxConcurrent across all nodes. The
  // claimed tasks carry node == `node` and a lease of `lease_ms`.
  virtual Result<std::vector<TaskRecord>> claim(const std::string& node, int max, std::int64_t lease_ms,
                                                const std::map<std::string, ProfileRules>& rules) = 0;
  // The tasks a node holds (its start-up load: what it ran before a crash).
  virtual Result<std::vector<TaskRecord>> held_by(const std::string& node) = 0;
  // One task, wherever it runs; nullopt when there is no such task.
  virtual Result<std::optional<TaskRecord>> find(const TaskId& id) = 0;
  // Newest first, seq below `before_seq` (0: from the newest), at most `limit`.
  virtual Result<std::vector<TaskRecord>> page(const TaskQuery& query, std::int64_t before_seq, std::size_t limit) = 0;
  // Queued and waiting tasks of the whole cluster (the queue bound).
  virtual Result<std::size_t> backlog() = 0;
  // Live tasks (not finished) carrying `tag` (empty: any), for cancelAll.
  virtual Result<std::vector<TaskId>> live_ids(const std::string& tag) = 0;
  // Cancels a task this node does not hold (see SharedCancel). A finished
  // task is Conflict, an unknown one NotFound.
  virtual Result<SharedCancel> cancel(const TaskId& id, const std::string& message) = 0;

  // The rescuer, run by every node on its heartbeat; one node at a time gets
  // the lock and does the work (RescueReport::ran). Tasks of nodes whose
  // lease ran out are rewritten as `decide` says, with a transition row;
  // waiting tasks whose time and dependencies came are queued; tasks with a
  // failed dependency are cancelled; finished rows of no live node older
  // than `retention_ms`, or past the newest `retention_count`, go.
  virtual Result<RescueReport> rescue(std::int64_t lease_ms, const RescueDecision& decide, std::int64_t retention_ms,
                                      std::size_t retention_count) = 0;

  // Blocks up to `timeout` for news from other nodes (a submit, a cancel):
  // a wake-up hint only (LISTEN/NOTIFY), so callers poll too.
  virtual void wait_for_news(std::chrono::milliseconds timeout) = 0;
  // Ends a wait_for_news() under way (or the next one) at once: news of this node's own.
  virtual void wake() = 0;
};

}  // namespace orch::engine
