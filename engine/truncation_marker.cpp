// The spool's truncation marker, in a file of its own: the task keeper
// (engine/task_keeper_main.cpp) writes the same marker and links only this.
#include <cmath>
#include <cstdio>
#include <string>

#include "engine/spool.h"

namespace orch::engine {

namespace {

std::string human_size(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  value /= 1024;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, value == std::floor(value) ? "%.0f %s" : "%.1f %s", value,
                kUnits[unit]);
  return buf;
}

}  // namespace

std::string truncation_marker(std::uint64_t cap_bytes) {
  return "\n[mcp-orchestrator: output truncated: this stream passed its " + human_size(cap_bytes) +
         " cap; later output was counted but not kept]\n";
}

}  // namespace orch::engine
