// EventStream: chunks of a streamed HTTP response (server-sent events) handed
// from the thread that produces them to the HTTP thread that writes them.
//
// The producer pushes chunks and finally closes the stream; the transport
// pulls them, writes them to the peer, and reports when the peer has gone.
// The queue is bounded in bytes: a peer that does not read stops being fed
// (push() returns false and the stream counts as gone) instead of the server
// buffering without bound.
//
// Thread-safe: one producer and one consumer are expected, but every method
// may be called from any thread. The on_gone callback runs exactly once, on
// the thread that noticed (a push over the bound, or the transport), without
// the stream's lock held.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

namespace orch::transport {

inline constexpr std::size_t kDefaultStreamBufferBytes = 8u << 20;

// What a streamed HTTP response reads from. The transport calls pull() on the
// connection's thread until it returns End, and mark_gone() when the peer has
// left. A source may produce its chunks inside pull() (a generator that waits
// for news with the given timeout) or take them from a queue (EventStream).
class EventSource {
 public:
  enum class Pull {
    Chunk,    // `chunk` holds the next bytes to write
    Timeout,  // nothing to write within `wait`
    End,      // finished, or gone: end the response
  };
  virtual ~EventSource() = default;
  virtual Pull pull(std::string& chunk, std::chrono::milliseconds wait) = 0;
  virtual void mark_gone() = 0;
};

class EventStream final : public EventSource {
 public:
  explicit EventStream(std::size_t max_buffered_bytes = kDefaultStreamBufferBytes);
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // --- producer ---
  // Queues one chunk. False when the stream is closed or gone, or when the
  // chunk would exceed the bound (then the stream becomes gone: the peer is
  // too slow, and a response with a hole in it is worse than none).
  bool push(std::string chunk);
  // No more chunks: the response ends once the queued ones are written.
  void close();
  // The peer has gone (or overflowed): pushing is pointless.
  bool gone() const;
  // Runs once when the stream becomes gone; at once if it already is.
  void on_gone(std::function<void()> callback);
  // After close(): waits until the transport has taken the last chunk (or the
  // peer has gone), so a final message is written before the server stops.
  bool wait_finished(std::chrono::steady_clock::time_point deadline);

  // --- consumer (the transport) ---
  // End once closed and drained, or gone.
  Pull pull(std::string& chunk, std::chrono::milliseconds wait) override;
  // The peer went away (a write failed or the connection closed).
  void mark_gone() override;

 private:
  void become_gone(std::unique_lock<std::mutex>& lock);

  const std::size_t max_buffered_bytes_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::condition_variable finished_cv_;
  std::deque<std::string> chunks_;  // guarded by mu_
  std::size_t buffered_bytes_ = 0;  // guarded by mu_
  bool closed_ = false;             // guarded by mu_
  bool gone_ = false;               // guarded by mu_
  bool finished_ = false;           // guarded by mu_; pull() returned End
  std::function<void()> on_gone_;   // guarded by mu_; taken when it runs
};

}  // namespace orch::transport
