// The live dashboard (SPEC §7): a page served from the binary and the JSON
// and SSE endpoints it reads. Cancel and retry go through the same engine
// calls as the cancelTask and submitTask tools.
//
//   GET  /                       the page (public: it holds no data)
//   GET  /dashboard.js, .css     its script and style (public)
//   GET  /api/overview           orchestrator facts: workers, memory, restarts, queue
//   GET  /api/events             SSE: a "snapshot" event (every task + overview),
//                                then "tasks" events with the changed tasks and
//                                removed ids, and "overview" events every few seconds
//   GET  /api/tasks/ID/output    ?stream=stdout|stderr&offset=N&limit=N: an output window
//   POST /api/tasks/ID/cancel    cancels, answers the task
//   POST /api/tasks/ID/retry     submits the same spec again, answers the new task
// The /api routes need the bearer token unless --no-auth. Tasks are the same
// JSON objects the tools return (tools/task_json.h).
#pragma once

#include <functional>

#include "engine/engine.h"
#include "engine/metrics.h"
#include "transport/http_server.h"

namespace orch::app {

// `facts` is called for each overview (any thread); `engine` must outlive the
// server's threads.
void add_dashboard_routes(transport::HttpServer& http, engine::Engine& engine,
                          std::function<engine::ProcessFacts()> facts);

}  // namespace orch::app
