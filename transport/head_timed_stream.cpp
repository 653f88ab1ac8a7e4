#include "transport/head_timed_stream.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace orch::transport {

namespace {

using Clock = std::chrono::steady_clock;

// poll() for one event, waiting at most `wait` (never negative).
bool wait_for(int sock, short event, std::chrono::milliseconds wait) {
  pollfd p{sock, event, 0};
  const int ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, wait.count()));
  int rc;
  do {
    rc = ::poll(&p, 1, ms);
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

void name_of(const sockaddr_storage& addr, socklen_t len, std::string& ip, int& port) {
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host;
    port = std::atoi(serv);
  }
}

}  // namespace

HeadTimedStream::HeadTimedStream(int sock, std::chrono::milliseconds read_timeout,
                                 std::chrono::milliseconds write_timeout, std::chrono::milliseconds head_timeout)
    : sock_(sock),
      read_timeout_(read_timeout),
      write_timeout_(write_timeout),
      head_deadline_(Clock::now() + head_timeout) {}

bool HeadTimedStream::is_readable() const {
  std::chrono::milliseconds wait = read_timeout_;
  if (!head_done_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(head_deadline_ - Clock::now());
    if (left.count() <= 0) return false;
    wait = std::min(wait, left);
  }
  return wait_for(sock_, POLLIN, wait);
}

bool HeadTimedStream::is_writable() const { return wait_for(sock_, POLLOUT, write_timeout_); }

ssize_t HeadTimedStream::read(char* ptr, std::size_t size) {
  if (!head_done_ && head_bytes_ >= kMaxHeadBytes) return -1;
  if (buffered_from_ == buffered_to_) {
    if (!is_readable()) return -1;
    ssize_t n;
    do {
      n = ::recv(sock_, buffer_.data(), buffer_.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return n;
    buffered_from_ = 0;
    buffered_to_ = static_cast<std::size_t>(n);
  }
  const std::size_t take = std::min(size, buffered_to_ - buffered_from_);
  std::memcpy(ptr, buffer_.data() + buffered_from_, take);
  buffered_from_ += take;
  if (!head_done_) track_head(ptr, take);
  return static_cast<ssize_t>(take);
}

ssize_t HeadTimedStream::write(const char* ptr, std::size_t size) {
  if (!is_writable()) return -1;
  ssize_t n;
  do {
    n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

void HeadTimedStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) name_of(addr, len, ip, port);
}

void HeadTimedStream::get_local_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) name_of(addr, len, ip, port);
}

void HeadTimedStream::track_head(const char* data, std::size_t size) {
  head_bytes_ += size;
  for (std::size_t i = 0; i < size && !head_done_; ++i) {
    if (data[i] == '\r') continue;
    if (data[i] != '\n') {
      ++line_bytes_;
      continue;
    }
    // An empty line after the request line ends the head (httplib, like
    // most servers, takes a bare LF as a line end too).
    if (line_bytes_ == 0 && seen_line_) head_done_ = true;
    if (line_bytes_ > 0) seen_line_ = true;
    line_bytes_ = 0;
  }
}

}  // namespace orch::transport
