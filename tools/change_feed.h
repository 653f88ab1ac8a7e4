// The engine's change feed as the tools' watcher threads follow it
// (task resources, the lifecycle log, native tasks): one loop for all three.
//
// A watcher gathers changes for kChangeGather after each batch before it asks
// for the next one. The engine notifies on every change, so a watcher that
// asked again at once would wake for each of them: in a burst of short tasks
// that was a context switch per change per watcher, more CPU than the tasks'
// own bookkeeping. A notification is late by at most the gather.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stop_token>

#include "engine/engine.h"

namespace orch::tools {

inline constexpr std::chrono::milliseconds kChangeGather{10};

// Calls `on_batch` with every batch of changes after `cursor` (a snapshot
// after a gap the feed no longer remembers), each task as its state without
// its spec but for its name (engine::ViewDetail::State), and with an empty
// one when nothing changed for a few seconds, until `stop` is requested; on
// the calling thread.
void follow_changes(engine::Engine& engine, std::uint64_t cursor, std::stop_token stop,
                    const std::function<void(const engine::TaskChanges&)>& on_batch);

}  // namespace orch::tools
