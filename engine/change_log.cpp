#include "engine/change_log.h"

#include <algorithm>
#include <unordered_set>

namespace orch::engine {

void ChangeLog::add(const TaskId& id, bool removed) {
  entries_.push_back(Entry{++seq_, id, removed});
  if (entries_.size() > capacity_) entries_.pop_front();
}

std::optional<ChangeLog::Since> ChangeLog::since(std::uint64_t cursor) const {
  Since out;
  if (cursor >= seq_) return out;
  // Every change after `cursor` must still be here: the first one kept must
  // be cursor + 1 or earlier.
  if (entries_.empty() || entries_.front().seq > cursor + 1) return std::nullopt;
  std::unordered_set<TaskId> seen;
  for (auto it = entries_.rbegin(); it != entries_.rend() && it->seq > cursor; ++it) {
    if (!seen.insert(it->id).second) continue;  // a later change already counted
    (it->removed ? out.removed : out.changed).push_back(it->id);
  }
  std::reverse(out.changed.begin(), out.changed.end());
  std::reverse(out.removed.begin(), out.removed.end());
  return out;
}

}  // namespace orch::engine
