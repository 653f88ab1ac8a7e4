// getStatus's view of profiles, pool workers and memory admission (SPEC §3
// getStatus without arguments: "workers (threads and pool processes with
// their state)"), and their output schema. Kept beside task_json.h so
// that file stays about tasks.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace orch::tools {

using nlohmann::json;

// {"profiles": [...], "pools": [...], "admission": {...}} to merge into the
// orchestrator object.
json profiles_status_to_json(const engine::EngineStats& stats);
// The same keys' schema properties.
json profiles_status_schema_properties();

}  // namespace orch::tools
