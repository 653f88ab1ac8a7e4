// One line a pool worker prints on stdout (SPEC §6), classified. A pure
// function: thread-safe, never throws, so the pool's reader and the fuzz
// target share it.
//
//   {"id": <task>, "progress": {"current", "total", "message"}}  -> Progress
//   {"id": <task>, "result": <any>}                               -> Result (result_json)
//   {"id": <task>, "error": {"message": "..."} | <any>}           -> Error (message)
//   blank (only spaces or CR)                                      -> Blank
//   anything else: not JSON, nested deeper than 128 levels, not an object,
//   another task's id, no progress/result/error, progress not an
//   object                                                          -> Malformed (why)
#pragma once

#include <string>
#include <string_view>

#include "engine/task.h"

namespace orch::engine {

struct WorkerLine {
  enum class Kind { Blank, Progress, Result, Error, Malformed };
  Kind kind = Kind::Blank;
  engine::Progress progress;  // Kind::Progress
  std::string result_json;    // Kind::Result: the "result" value as JSON text
  std::string message;        // Kind::Error: the worker's message; Kind::Malformed: what is wrong
};

WorkerLine parse_worker_line(std::string_view line, std::string_view task_id);

}  // namespace orch::engine
