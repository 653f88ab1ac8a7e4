// Engine values as the JSON the tools return, in one place, with the JSON
// Schemas that describe them (so a field and its schema change together).
//
// Fields without a value are omitted, never null: a queued task has no
// startedAt, a running one no exitCode. The schemas therefore require only
// what is always present. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/json_text.h"

#include "engine/engine.h"
#include "engine/spool.h"
#include "engine/task.h"

namespace orch::tools {

using json = nlohmann::json;

// The task object (SPEC §3 getStatus): taskId, name, status, reason, message,
// progress, attempt, maxAttempts, exitCode, signal, pid, peakRssKb,
// submittedAt, startedAt, finishedAt, durationMs, queuePosition, dependsOn,
// tags, cancelRequested. `now_ms` (Unix ms) gives a running task's duration.
json task_to_json(const engine::TaskView& view, std::int64_t now_ms);
json task_schema();

// {current, total?, message?}; whole numbers come out as JSON integers.
json progress_to_json(const engine::Progress& progress);
json progress_schema();

// One stream's output window for getResult:
// {text, offset, nextOffset, totalBytes, truncated, capped}.
// `produced_bytes` is what the task printed on the stream (the record's
// count, which may lag the file while the task runs); `cap_bytes` is the
// spool's per-stream cap. Takes the window to move its bytes into the JSON.
json window_to_json(engine::OutputWindow window, std::uint64_t produced_bytes, std::uint64_t cap_bytes);
json window_schema();

// getStatus without arguments: the orchestrator itself.
json orchestrator_to_json(const engine::EngineStats& stats, std::string_view version);
json orchestrator_schema();
// Parts of it, also served by /healthz: restarts {count, lastReason, lastAt?,
// limit, windowSec, recentAutomatic, limited} and health {status, checks, reason?, checkedAt?}.
json restarts_to_json(const engine::EngineStats& stats);
json health_to_json(const engine::HealthView& view);

// Bytes as UTF-8 text: every invalid or cut-off sequence becomes U+FFFD (one
// per maximal ill-formed subpart, as Unicode recommends), so a window that
// splits a character or a binary stream still yields valid JSON text.
using orch::sanitize_utf8;

}  // namespace orch::tools
