// StdioTransport: newline-delimited messages on two file descriptors
// (MCP-NOTES §4: one JSON-RPC message per line, nothing else on the output).
//
// Reading: run() reads the input fd with read(2) into its own buffer, splits on
// '\n', strips one trailing '\r', skips empty lines and hands each line to a
// callback. A line longer than max_message_bytes is discarded up to its newline
// and only its size is reported, so memory stays bounded by the limit plus one
// read chunk whatever the peer sends.
//
// Writing: send() writes one message plus '\n' with a single lock held, so
// lines from concurrent senders never interleave. A message that contains '\n'
// is refused (it would break the framing).
//
// Threads: run() blocks one thread, the reader. send() and stop() may be called
// from any thread. The fds are not owned: they must stay open until run() has
// returned and no send() can happen any more. The app passes its own dup of
// stdout here and points fd 1 at stderr, so stray library prints never reach
// the protocol stream.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"
#include "transport/connection.h"

namespace orch::transport {

inline constexpr std::size_t kDefaultMaxMessageBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kDefaultReadChunkBytes = 64 * 1024;

struct StdioOptions {
  // Longest accepted message in bytes, not counting "\r\n".
  std::size_t max_message_bytes = kDefaultMaxMessageBytes;
  std::size_t read_chunk_bytes = kDefaultReadChunkBytes;
  // Bytes already read from the input by someone else (a previous image of the
  // server before a restart in place); they are framed before the fd is read.
  std::string initial_input;
};

// Why run() returned normally.
enum class RunEnd {
  Eof,      // the peer closed the input; any unterminated last line was delivered
  Stopped,  // stop() was called; unread lines stay in the buffer (take_unread)
};

class StdioTransport {
 public:
  using OnMessage = std::function<void(std::string_view message)>;
  // The size in bytes of a discarded over-long line (without its "\r\n").
  using OnOversized = std::function<void(std::size_t bytes)>;

  // Does not take ownership of the fds. Never fails; if the internal wake-up
  // pipe cannot be created, run() reports it.
  StdioTransport(int in_fd, int out_fd, StdioOptions options = {});
  ~StdioTransport();
  StdioTransport(const StdioTransport&) = delete;
  StdioTransport& operator=(const StdioTransport&) = delete;

  // After the messages framed from one read (or from initial_input) were
  // delivered: the end of a batch that arrived together.
  using OnDrained = std::function<void()>;

  // Reads and frames input until EOF, stop() or a read error (an Io error whose
  // message names the errno). Callbacks run on the calling thread, one at a
  // time and in order; they must not throw. Call at most once. on_drained
  // runs after every read that delivered a message, also when stop() cut the
  // read's delivery short.
  Result<RunEnd> run(const OnMessage& on_message, const OnOversized& on_oversized,
                     const OnDrained& on_drained = {});

  // Makes run() return RunEnd::Stopped before it delivers another message.
  // Thread-safe, idempotent, async-signal-safe; may come before run().
  void stop() noexcept;

  // Writes message + '\n' completely (retrying partial writes and EINTR).
  // Thread-safe. Returns false if the message contains '\n' (asserts in debug
  // builds), or the write failed (EPIPE when the peer has gone; SIGPIPE must be
  // ignored by the process). After a failed write every later send() returns
  // false too: the stream may hold half a line, and more would corrupt it.
  bool send(std::string_view message);

  // A MessageSink that calls send(); valid while this transport lives.
  MessageSink sink();

  // After run() returned: the bytes read from the input but not delivered, for
  // handing over to a new image of the server. Empties the buffer.
  std::string take_unread();

  std::size_t max_message_bytes() const { return options_.max_message_bytes; }

 private:
  // Frames complete lines in buffer_. False if stop() interrupted it.
  bool frame(const OnMessage& on_message, const OnOversized& on_oversized);
  void deliver(std::string_view line, const OnMessage& on_message,
               const OnOversized& on_oversized);
  void finish_at_eof(const OnMessage& on_message, const OnOversized& on_oversized);

  const int in_fd_;
  const int out_fd_;
  StdioOptions options_;

  // Reader state, touched by run() only.
  std::string buffer_;          // read, not yet delivered; holds no complete line between reads
  std::size_t scanned_ = 0;     // buffer_[0, scanned_) is known to hold no '\n'
  bool discarding_ = false;     // inside an over-long line, dropping bytes up to '\n'
  std::size_t discarded_ = 0;   // bytes of that line dropped so far
  bool discarded_cr_ = false;   // the last dropped byte was '\r'

  // stop(): a flag plus a self-pipe that wakes the poll(2) in run().
  std::atomic<bool> stop_requested_{false};
  UniqueFd wake_read_;
  UniqueFd wake_write_;
  int wake_errno_ = 0;

  std::mutex write_mu_;
  bool broken_ = false;  // guarded by write_mu_
};

}  // namespace orch::transport
