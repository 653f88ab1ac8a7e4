// Metrics: the engine's counters and gauges in the Prometheus text exposition
// format (version 0.0.4), for GET /metrics. Names are prefixed
// "orchestrator_"; every family has # HELP and # TYPE lines and passes
// `promtool check metrics`. Pure function; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine.h"

namespace orch::engine {

// What the engine cannot know about the process around it.
struct ProcessFacts {
  std::size_t http_threads = 0;
  std::size_t http_busy = 0;
  std::size_t http_streams = 0;
  std::size_t mcp_sessions = 0;  // open Streamable HTTP sessions
};

// Families: tasks{status} (gauge), queue_depth, queue_limit, running_tasks,
// max_concurrent, workers{state="busy|idle"}, worker_threads_max,
// tasks_submitted_total, spawn_errors_total, task_duration_seconds
// (histogram), resident_memory_bytes, peak_resident_memory_bytes,
// memory_available_bytes (when known), uptime_seconds, start_time_seconds,
// restarts_total, healthy, health_check_ok{check}, restart_limited, http_threads{state}, http_open_streams, mcp_sessions.
std::string prometheus_text(const EngineStats& stats, const ProcessFacts& facts);

}  // namespace orch::engine
