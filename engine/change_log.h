// ChangeLog: which tasks changed, in order, behind the dashboard's change
// feed (Engine::changes_since). It remembers the latest `capacity` changes;
// a reader further behind than that is told so and takes a snapshot instead.
// Not thread-safe: the engine's mutex guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "engine/task.h"

namespace orch::engine {

class ChangeLog {
 public:
  explicit ChangeLog(std::size_t capacity = 4096) : capacity_(capacity) {}

  void changed(const TaskId& id) { add(id, false); }
  void removed(const TaskId& id) { add(id, true); }

  // The cursor of the latest change. Starts at 1, so that 0 always means
  // "no cursor yet" and a reader of an idle log waits instead of spinning.
  std::uint64_t seq() const { return seq_; }

  struct Since {
    std::vector<TaskId> changed;  // each once, in the order of its latest change
    std::vector<TaskId> removed;  // whose latest change was their removal
  };
  // What happened after `cursor`; nullopt when some of it is forgotten.
  std::optional<Since> since(std::uint64_t cursor) const;

 private:
  struct Entry {
    std::uint64_t seq;
    TaskId id;
    bool removed;
  };
  void add(const TaskId& id, bool removed);

  const std::size_t capacity_;
  std::uint64_t seq_ = 1;
  std::deque<Entry> entries_;  // oldest first, at most capacity_
};

}  // namespace orch::engine
