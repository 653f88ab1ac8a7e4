// Progress lines: a task reports progress by printing
// "::progress <current>[/<total>] [message]" on its stdout (README). The line
// stays in the output; this unit only recognises it.
//
// parse_progress_line() reads one whole line. ProgressScanner finds such
// lines in output that arrives in chunks of any size, as the reactor reads it
// from a pipe, and keeps at most kMaxProgressLine bytes of the current line.
//
// Thread-safety: parse_progress_line() keeps no state. A ProgressScanner is a
// plain value owned by one task's output stream; use it from one thread.
// Nothing fails: a line that does not parse is just not a progress line.
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "engine/task.h"

namespace orch::engine {

// Parses one stdout line (without its newline; a trailing '\r' is ignored) of
// the form "::progress <current>[/<total>] [message]". Numbers are unsigned
// integers or decimals ("3", "2.5"); anything else is nullopt.
std::optional<Progress> parse_progress_line(std::string_view line);

// Longer lines are not progress lines; keeping more would let a task that
// prints one endless line grow the server.
inline constexpr std::size_t kMaxProgressLine = 4096;

// Finds progress lines in a stream of chunks and calls
// on_progress(const Progress&) for each, synchronously. Only a line that
// starts with ':' can be one, so it jumps from colon to colon (memchr) and
// looks at a line only when a colon starts it: output of many short lines
// (a test runner, `yes`) costs a scan, not a step per line. It keeps at most
// kMaxProgressLine bytes, and none of a line whose start already shows it is
// not a progress line.
class ProgressScanner {
 public:
  template <typename OnProgress>
  void feed(const char* data, std::size_t size, const OnProgress& on_progress) {
    const char* p = data;
    const char* const end = data + size;
    while (p < end) {
      if (!collecting_) {
        const char* colon = p;
        while (true) {
          colon = static_cast<const char*>(std::memchr(colon, ':', static_cast<std::size_t>(end - colon)));
          if (!colon) {
            at_line_start_ = end[-1] == '\n';
            return;
          }
          if (colon == data ? at_line_start_ : colon[-1] == '\n') break;
          ++colon;
        }
        collecting_ = true;
        p = colon;
      }
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      const std::size_t len = newline ? static_cast<std::size_t>(newline - p) : static_cast<std::size_t>(end - p);
      if (!skip_) take(p, len);
      if (!newline) {
        at_line_start_ = false;
        return;
      }
      finish(on_progress);
      p = newline + 1;
      at_line_start_ = true;
    }
  }

  // Ends the current line (at a newline, or at end of output).
  template <typename OnProgress>
  void finish(const OnProgress& on_progress) {
    if (collecting_ && !skip_ && !line_.empty()) {
      if (auto progress = parse_progress_line(line_)) on_progress(*progress);
    }
    line_.clear();
    skip_ = false;
    collecting_ = false;
  }

 private:
  void take(const char* data, std::size_t len);

  std::string line_;
  bool collecting_ = false;     // inside a line that started with ':'
  bool skip_ = false;           // ...which turned out not to be a progress line
  bool at_line_start_ = true;   // the previous chunk ended with '\n'
};

}  // namespace orch::engine
