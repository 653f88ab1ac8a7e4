// Task model: ids, statuses, reasons, the spec a client submits and the record
// the engine keeps. Plain values; no locking, no I/O. The legal transitions
// live here so every component agrees on them (SPEC §3 Statuses).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace orch::engine {

using TaskId = std::string;

enum class TaskStatus { Queued, Waiting, Running, Completed, Failed, Cancelled };
inline constexpr std::size_t kTaskStatusCount = 6;

// Why a task ended (or, for a waiting task, None). Truthful by construction:
// the engine picks it from what it observed, never from what it hoped.
enum class EndReason {
  None,
  ExitCode,          // the process exited on its own (0 → completed, else failed)
  Signal,            // killed by a signal nobody here sent
  Timeout,           // we killed it because timeoutSec ran out
  Cancelled,         // a client cancelled it
  DependencyFailed,  // a task it depends on failed or was cancelled
  SpawnError,        // it could not be started at all
  WorkerCrashed,     // a pool worker died mid-task
  MemoryLimit,       // killed for exceeding its memory limit
  Lost,              // its process vanished across a crash; its end is unknown
  WorkerError,       // a pool worker answered the task with an error (SPEC §6)
};

enum class StreamKind { Stdout, Stderr };

const char* to_string(TaskStatus s);
const char* to_string(EndReason r);
const char* to_string(StreamKind k);
std::optional<TaskStatus> parse_task_status(std::string_view s);
std::optional<EndReason> parse_end_reason(std::string_view s);

bool is_terminal(TaskStatus s);
// The transitions SPEC §3 allows; anything else is a bug in the caller.
bool is_legal_transition(TaskStatus from, TaskStatus to);

enum class Backoff { Fixed, Exponential };

struct RetryPolicy {
  int max_attempts = 1;          // 1 = no retry
  Backoff backoff = Backoff::Exponential;
  std::int64_t delay_ms = 1000;
  std::int64_t max_delay_ms = 60000;
};

// Delay before attempt `next_attempt` (2 = first retry), jittered into
// [delay/2, delay] so that many failing tasks do not retry in lock-step.
// `unit_random` is in [0, 1); tests pass a fixed value.
std::int64_t retry_delay_ms(const RetryPolicy& p, int next_attempt, double unit_random);

enum class TaskKind { Command, Argv, Pool };

// Per-task resource limits (SPEC §4); 0 means none. Applied to the task's
// process by the keeper (engine/task_keeper.h); see docs/PROFILES.md.
struct TaskLimits {
  std::int64_t memory_mb = 0;   // cgroup v2 memory.max where possible, else RLIMIT_AS
  std::int64_t cpu_sec = 0;     // RLIMIT_CPU
  std::int64_t open_files = 0;  // RLIMIT_NOFILE
  bool any() const { return memory_mb > 0 || cpu_sec > 0 || open_files > 0; }
  bool operator==(const TaskLimits&) const = default;
};

// What a client asked for. Validated by tools/ before it reaches the engine;
// the engine re-checks what only it can know (dependencies, queue bound).
struct TaskSpec {
  TaskKind kind = TaskKind::Command;
  std::string command;                    // kind == Command: run by /bin/sh -c
  std::vector<std::string> argv;          // kind == Argv: exec'd directly; Pool: the worker's argv
  std::string profile;                    // the profile it came from (SPEC §5); empty: none
  std::string input_json;                 // kind == Pool: the worker's input, as JSON text
  TaskLimits limits;
  std::string name;
  std::vector<std::string> tags;
  std::string cwd;                        // empty: the server's working directory
  std::map<std::string, std::string> env; // merged over the server's environment
  std::optional<std::string> stdin_data;  // nullopt: the child's stdin is /dev/null
  int priority = 5;                       // 0..10, higher first, FIFO within a level
  std::optional<std::int64_t> timeout_ms;
  std::vector<TaskId> depends_on;
  RetryPolicy retry;
  std::string idempotency_key;            // empty: none
  std::optional<std::int64_t> run_at_ms;  // Unix ms; do not start before
};

struct Progress {
  double current = 0;
  std::optional<double> total;
  std::string message;
  bool operator==(const Progress&) const = default;
};

// Everything the engine knows about one task. The store persists it; tools/
// renders it. Times are Unix milliseconds, 0 meaning "not yet".
struct TaskRecord {
  TaskId id;
  std::int64_t seq = 0;  // submission order, unique and increasing; FIFO and "newest first"
  TaskSpec spec;
  TaskStatus status = TaskStatus::Queued;
  EndReason reason = EndReason::None;
  std::string message;   // one human line: why it waits, how it ended
  std::optional<Progress> progress;
  int attempt = 0;       // attempts started so far
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<int> pid;  // of the running attempt (also its process group id)
  std::int64_t peak_rss_kb = 0;
  std::int64_t submitted_at_ms = 0;
  std::int64_t started_at_ms = 0;   // of the latest attempt
  std::int64_t finished_at_ms = 0;
  std::int64_t not_before_ms = 0;   // runAt, or the next retry
  std::uint64_t stdout_bytes = 0;   // produced by the latest attempt, counted past the cap
  std::uint64_t stderr_bytes = 0;
  // Several servers on one store: the node that holds (claimed) it; empty
  // when none does, or when the server runs alone.
  std::string node;
};

// The task without its spec, but for its name: what a change-feed watcher
// reads (status, counters, message, progress, pid). A field added to
// TaskRecord is added here too.
TaskRecord state_of(const TaskRecord& t);

// A new random task id, "t" + 26 base32 characters (130 bits): unguessable,
// so ids can be handed to clients without an auth context (MCP-NOTES §9).
TaskId new_task_id();
bool looks_like_task_id(std::string_view s);

// The store's serialisation of a TaskSpec (a data format, not a protocol).
std::string spec_to_storage_json(const TaskSpec& spec);
Result<TaskSpec> spec_from_storage_json(std::string_view text);

std::string progress_to_storage_json(const std::optional<Progress>& p);
std::optional<Progress> progress_from_storage_json(std::string_view text);

}  // namespace orch::engine
