#include "tools/change_feed.h"

#include <condition_variable>
#include <mutex>

#include "tools/tool.h"

namespace orch::tools {

namespace {

// Each wait is cut short after this, and on_batch called with nothing.
constexpr std::chrono::seconds kWatchSlice{5};

// Waits `d`, or less if `stop` is requested.
void pause(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, d, [] { return false; });
}

}  // namespace

void follow_changes(engine::Engine& engine, std::uint64_t cursor, std::stop_token stop,
                    const std::function<void(const engine::TaskChanges&)>& on_batch) {
  while (!stop.stop_requested()) {
    engine::TaskChanges changes = engine.changes_since(cursor, engine_clock(engine).now() + kWatchSlice, stop,
                                                       engine::OnDrain::KeepWaiting, engine::ViewDetail::State);
    cursor = changes.cursor;
    on_batch(changes);  // also an empty one, at least every slice: native tasks expire then
    if (!changes.changed.empty() || !changes.removed.empty()) pause(kChangeGather, stop);
  }
}

}  // namespace orch::tools
