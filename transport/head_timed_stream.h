// HeadTimedStream: one HTTP request's reads and writes on a connected
// socket, for cpp-httplib's request parser — httplib's own socket stream with
// one more limit: the request's head (request line and headers, up to the
// blank line) must arrive whole within `head_timeout` of the stream's start.
// httplib only times each read, so a client that sends a header byte every
// few seconds would hold a server thread for as long as it likes
// (slowloris). Past the deadline reads fail and httplib closes the
// connection. The head is also capped at kMaxHeadBytes: httplib limits a
// header line only after buffering it whole, and not the number of lines.
// The body and the response keep the per-read and per-write timeouts.
//
// Not thread-safe: one request on one thread, as httplib uses it. Does not
// own the socket.
#pragma once

#include <httplib.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>

namespace orch::transport {

class HeadTimedStream final : public httplib::Stream {
 public:
  static constexpr std::size_t kMaxHeadBytes = 64u << 10;

  HeadTimedStream(int sock, std::chrono::milliseconds read_timeout, std::chrono::milliseconds write_timeout,
                  std::chrono::milliseconds head_timeout);

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, std::size_t size) override;
  ssize_t write(const char* ptr, std::size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return sock_; }

  // The blank line ending the head has been read.
  bool head_done() const { return head_done_; }

 private:
  // Follows the bytes handed to the parser to find the blank line.
  void track_head(const char* data, std::size_t size);

  int sock_;
  std::chrono::milliseconds read_timeout_;
  std::chrono::milliseconds write_timeout_;
  std::chrono::steady_clock::time_point head_deadline_;
  bool head_done_ = false;
  bool seen_line_ = false;    // a non-empty line has ended (the request line)
  std::size_t line_bytes_ = 0;  // bytes of the current line, CR not counted
  std::size_t head_bytes_ = 0;  // bytes of the head handed up so far
  std::array<char, 4096> buffer_{};
  std::size_t buffered_from_ = 0;
  std::size_t buffered_to_ = 0;
};

}  // namespace orch::transport
