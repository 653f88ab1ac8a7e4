// The pool-worker line parser (engine/worker_line, SPEC §6): any bytes a
// worker prints classify without throwing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/worker_line.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  // The id the seeds use, so the fuzzer reaches past the id check.
  orch::engine::WorkerLine parsed = orch::engine::parse_worker_line(line, "t-1");
  using Kind = orch::engine::WorkerLine::Kind;
  if (parsed.kind == Kind::Result && !nlohmann::json::accept(parsed.result_json)) std::abort();
  if (parsed.kind == Kind::Malformed && parsed.message.empty()) std::abort();
  return 0;
}
