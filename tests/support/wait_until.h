// Polling with a deadline: how tests synchronise with threads and processes
// (STYLE.md, Tests: never a bare sleep standing in for synchronisation).
#pragma once

#include <chrono>
#include <functional>

namespace orch::test {

// Calls `predicate` until it returns true or `timeout` passes; true if it did.
// Polls every `interval` in between (a poll, not a guess at a duration).
bool wait_until(const std::function<bool()>& predicate,
                std::chrono::milliseconds timeout = std::chrono::seconds(10),
                std::chrono::milliseconds interval = std::chrono::milliseconds(2));

}  // namespace orch::test
