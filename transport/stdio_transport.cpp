#include "transport/stdio_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

namespace orch::transport {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

// pipe(2) plus fcntl rather than pipe2(2): macOS has no pipe2 (SPEC §4, platforms).
int make_wake_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe(fds) != 0) return errno;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  for (int fd : fds) {
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return errno;
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  }
  return 0;
}

// Waits until fd is writable; for an output fd someone made non-blocking.
bool wait_writable(int fd) {
  pollfd p{fd, POLLOUT, 0};
  while (true) {
    int n = ::poll(&p, 1, -1);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// A getResult window of 1 MiB is a line of about 2 MiB: through the default
// 64 KiB pipe it takes some thirty wake-ups of each side. A wider pipe (up
// to the unprivileged maximum, 1 MiB by default) cuts that; where the kernel
// refuses, or stdout is no pipe, nothing changes.
void widen_output_pipe(int fd) {
#ifdef F_SETPIPE_SZ
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
#else
  (void)fd;
#endif
}

}  // namespace

StdioTransport::StdioTransport(int in_fd, int out_fd, StdioOptions options)
    : in_fd_(in_fd), out_fd_(out_fd), options_(std::move(options)) {
  assert(options_.max_message_bytes > 0 && options_.read_chunk_bytes > 0);
  buffer_ = std::move(options_.initial_input);
  options_.initial_input.clear();
  widen_output_pipe(out_fd_);
  wake_errno_ = make_wake_pipe(wake_read_, wake_write_);
  if (wake_errno_ != 0) {
    wake_read_.reset();
    wake_write_.reset();
  }
}

StdioTransport::~StdioTransport() = default;

void StdioTransport::stop() noexcept {
  stop_requested_.store(true);
  if (wake_write_.valid()) {
    // One byte is enough; a full pipe (EAGAIN) already wakes the reader.
    char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &byte, 1);
  }
}

Result<RunEnd> StdioTransport::run(const OnMessage& on_message_given, const OnOversized& on_oversized,
                                   const OnDrained& on_drained) {
  if (wake_errno_ != 0) {
    return make_error(ErrorCode::Io,
                      "cannot create the stdio transport's wake-up pipe: " + errno_text(wake_errno_));
  }
  bool delivered = false;
  const OnMessage on_message = [&](std::string_view message) {
    delivered = true;
    on_message_given(message);
  };
  // Ends the batch of one read, whatever way its delivery ended.
  auto drained = [&] {
    if (delivered && on_drained) on_drained();
    delivered = false;
  };
  // Lines handed over from a previous image come first.
  const bool framed = frame(on_message, on_oversized);
  drained();
  if (!framed) return RunEnd::Stopped;

  pollfd fds[2] = {{in_fd_, POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
  const std::size_t chunk = options_.read_chunk_bytes;
  while (true) {
    if (stop_requested_.load()) return RunEnd::Stopped;
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return make_error(ErrorCode::Io, "waiting for input failed: " + errno_text(err));
    }
    if (fds[1].revents != 0) return RunEnd::Stopped;
    if (fds[0].revents == 0) continue;

    // POLLHUP and POLLERR also end up here: read(2) then reports EOF or the error.
    const std::size_t old_size = buffer_.size();
    buffer_.resize(old_size + chunk);
    ssize_t got = ::read(in_fd_, buffer_.data() + old_size, chunk);
    if (got < 0) {
      int err = errno;
      buffer_.resize(old_size);
      if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK) continue;
      return make_error(ErrorCode::Io, "reading input failed: " + errno_text(err));
    }
    buffer_.resize(old_size + static_cast<std::size_t>(got));
    if (got == 0) {
      finish_at_eof(on_message, on_oversized);
      drained();
      return RunEnd::Eof;
    }
    const bool read_framed = frame(on_message, on_oversized);
    drained();
    if (!read_framed) return RunEnd::Stopped;
  }
}

bool StdioTransport::frame(const OnMessage& on_message, const OnOversized& on_oversized) {
  std::size_t line_start = 0;
  bool stopped = false;
  while (true) {
    if (stop_requested_.load()) {
      stopped = true;
      break;
    }
    // Resume the search where the previous read left off, so a long message
    // arriving in many small reads is scanned once, not once per read.
    std::size_t newline = buffer_.find('\n', std::max(line_start, scanned_));
    if (newline == std::string::npos) break;
    std::string_view line(buffer_.data() + line_start, newline - line_start);
    line_start = newline + 1;
    if (discarding_) {
      std::size_t size = discarded_ + line.size();
      bool ends_with_cr = line.empty() ? discarded_cr_ : line.back() == '\r';
      if (ends_with_cr) --size;
      discarding_ = false;
      discarded_ = 0;
      discarded_cr_ = false;
      on_oversized(size);
      continue;
    }
    deliver(line, on_message, on_oversized);
  }
  buffer_.erase(0, line_start);
  if (stopped) {
    scanned_ = 0;
    return false;
  }
  // Only an incomplete line is left. Past the limit (plus room for '\r') it
  // can never be accepted, so drop it now instead of buffering the rest.
  if (discarding_ || buffer_.size() > options_.max_message_bytes + 1) {
    discarding_ = true;
    discarded_ += buffer_.size();
    if (!buffer_.empty()) discarded_cr_ = buffer_.back() == '\r';
    buffer_.clear();
  }
  scanned_ = buffer_.size();
  return true;
}

void StdioTransport::deliver(std::string_view line, const OnMessage& on_message,
                             const OnOversized& on_oversized) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  if (line.size() > options_.max_message_bytes) {
    on_oversized(line.size());
    return;
  }
  on_message(line);
}

void StdioTransport::finish_at_eof(const OnMessage& on_message, const OnOversized& on_oversized) {
  // A last line without its newline still counts: the peer meant to send it.
  if (discarding_) {
    std::size_t size = discarded_ + buffer_.size();
    bool ends_with_cr = buffer_.empty() ? discarded_cr_ : buffer_.back() == '\r';
    if (ends_with_cr) --size;
    discarding_ = false;
    discarded_ = 0;
    on_oversized(size);
  } else if (!buffer_.empty()) {
    deliver(buffer_, on_message, on_oversized);
  }
  buffer_.clear();
  scanned_ = 0;
}

bool StdioTransport::send(std::string_view message) {
  assert(message.find('\n') == std::string_view::npos && "a framed message must not contain '\\n'");
  if (message.find('\n') != std::string_view::npos) {
    spdlog::error("stdio: refused to send a message containing a newline ({} bytes)", message.size());
    return false;
  }
  int failure = 0;
  {
    std::lock_guard lock(write_mu_);
    if (broken_) return false;
    static const char kNewline = '\n';
    iovec parts[2] = {{const_cast<char*>(message.data()), message.size()},
                      {const_cast<char*>(&kNewline), 1}};
    iovec* next = parts;
    int count = 2;
    while (count > 0) {
      ssize_t n = ::writev(out_fd_, next, count);
      if (n < 0) {
        if (errno == EINTR) continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable(out_fd_)) continue;
        failure = errno;
        broken_ = true;
        break;
      }
      auto left = static_cast<std::size_t>(n);
      while (count > 0 && left >= next->iov_len) {
        left -= next->iov_len;
        ++next;
        --count;
      }
      if (count > 0) {
        next->iov_base = static_cast<char*>(next->iov_base) + left;
        next->iov_len -= left;
      }
    }
  }
  if (failure != 0) {
    if (failure == EPIPE) {
      spdlog::info("stdio: the peer closed its input; no more messages are sent");
    } else {
      spdlog::error("stdio: writing a message failed: {}", errno_text(failure));
    }
    return false;
  }
  return true;
}

MessageSink StdioTransport::sink() {
  return [this](std::string_view message) { return send(message); };
}

std::string StdioTransport::take_unread() {
  std::string unread = std::move(buffer_);
  buffer_.clear();
  scanned_ = 0;
  return unread;
}

}  // namespace orch::transport
