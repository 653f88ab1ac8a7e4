// submitTask: validate one task and queue it; answers at once with the id,
// status and queue position (SPEC §3).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/result.h"
#include "engine/engine.h"
#include "engine/task.h"
#include "tools/tool.h"

namespace orch::tools {

// Turns a profile name and its params (and, for pool profiles, the input)
// into the spec to run (SPEC §5). Profiles come from the config file in a
// later version; until then the resolver is empty and every profile is
// unknown. A resolver's NotFound/InvalidArgument messages reach the caller.
using ProfileResolver = std::function<Result<engine::TaskSpec>(
    const std::string& profile, const std::map<std::string, std::string>& params,
    const std::optional<json>& input)>;

// The spec the arguments describe: the command/argv/profile part, then the
// optional fields on top (env merges over a profile's). Checks everything a
// tool can check without the engine, including that cwd is a directory;
// `now_ms` (Unix ms) turns delaySec into a run-at time.
Result<engine::TaskSpec> build_submit_spec(const json& args, const ProfileResolver& profiles,
                                           std::int64_t now_ms);

Tool make_submit_task_tool(engine::Engine& engine, ProfileResolver profiles);

}  // namespace orch::tools
