// Spool: per-task output files on disk, so task output never sits in memory
// (SPEC §4). Layout: <dir>/<task id>/{stdout,stderr,stdin}.
//
// A SpoolWriter appends one stream of one attempt. It stores at most
// `cap_bytes` of what the task printed; past the cap it writes one marker line
// once and then only counts. It creates the task's directory and file with
// the first byte it stores: a task that prints nothing costs no inode, and
// creating inodes is most of what a burst of short tasks costs on ext4
// (docs/PERFORMANCE.md). Readers see a consistent prefix at any moment
// (they read the file; the writer only appends), so reading while a task runs
// is safe. Thread-safety: Spool is thread-safe; a SpoolWriter is used by one
// thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "engine/task.h"

namespace orch::engine {

inline constexpr std::uint64_t kDefaultStreamCapBytes = 64ull << 20;  // 64 MiB

class SpoolWriter {
 public:
  // Creates `file` (and its directory) on the first byte stored; `open_flags`
  // are added to O_WRONLY | O_CREAT (O_APPEND to go on after a restart).
  SpoolWriter(std::filesystem::path file, int open_flags, std::uint64_t cap_bytes, std::uint64_t total = 0,
              std::uint64_t stored = 0, bool capped = false);
  // Appends what the task printed. An Io error if the file write failed; the
  // bytes still count in total_bytes().
  Status append(const char* data, std::size_t size);
  std::uint64_t total_bytes() const { return total_; }    // produced, counted past the cap
  std::uint64_t stored_bytes() const { return stored_; }  // kept on disk, marker excluded
  bool capped() const { return capped_; }

 private:
  bool write(const char* data, std::size_t size);

  UniqueFd fd_;
  std::filesystem::path file_;  // created on the first write when fd_ is not open yet
  int open_flags_ = 0;
  int open_errno_ = 0;          // why the file could not be created, once it failed
  std::uint64_t cap_;
  std::uint64_t total_ = 0;
  std::uint64_t stored_ = 0;
  bool capped_ = false;
};

struct ReadRequest {
  std::uint64_t offset = 0;
  std::uint64_t max_bytes = 16384;
  bool tail = false;  // ignore offset; return the last max_bytes
};

struct OutputWindow {
  std::string data;                // bytes [offset, next_offset) of the file
  std::uint64_t offset = 0;
  std::uint64_t next_offset = 0;
  std::uint64_t file_bytes = 0;    // bytes in the file now (stored + marker)
  bool more = false;               // the file holds bytes past next_offset
};

class Spool {
 public:
  Spool(std::filesystem::path dir, std::uint64_t cap_bytes = kDefaultStreamCapBytes);

  // A writer of a fresh file for the stream (a new attempt starts afresh: an
  // earlier attempt's file is removed now; a task's first attempt has none,
  // and skips the lookup). The file and <dir>/<id>/ are created with the
  // first byte stored.
  enum class Earlier { Remove, None };
  Result<std::unique_ptr<SpoolWriter>> open_writer(const TaskId& id, StreamKind kind,
                                                   Earlier earlier = Earlier::Remove);
  // A writer that appends to the stream's file, with the counters the
  // previous writer had (restart in place); the file is created if missing.
  Result<std::unique_ptr<SpoolWriter>> resume_writer(const TaskId& id, StreamKind kind, std::uint64_t total,
                                                     std::uint64_t stored, bool capped);
  // Writes the task's stdin text to <dir>/<id>/stdin and returns its path.
  Result<std::filesystem::path> write_stdin(const TaskId& id, const std::string& data);
  // A missing file reads as empty (the task has not started or printed nothing).
  Result<OutputWindow> read(const TaskId& id, StreamKind kind, const ReadRequest& req) const;
  std::filesystem::path path(const TaskId& id, StreamKind kind) const;
  // Removes the task's directory; missing is fine.
  void remove(const TaskId& id);
  const std::filesystem::path& dir() const { return dir_; }
  std::uint64_t cap_bytes() const { return cap_; }

 private:
  std::filesystem::path dir_;
  std::uint64_t cap_;
};

// The line written once when a stream passes its cap.
std::string truncation_marker(std::uint64_t cap_bytes);

}  // namespace orch::engine
