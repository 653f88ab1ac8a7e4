#include "transport/head_timed_stream.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/unique_fd.h"

namespace orch::transport {
namespace {

using namespace std::chrono_literals;

struct SocketPair {
  UniqueFd server;
  UniqueFd client;
  SocketPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    server.reset(fds[0]);
    client.reset(fds[1]);
  }
  bool send(const std::string& bytes) const {
    return ::send(client.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
};

// What httplib's parser does with the stream: one byte at a time.
std::string read_all(HeadTimedStream& stream, std::size_t at_most) {
  std::string got;
  char c;
  while (got.size() < at_most && stream.read(&c, 1) == 1) got += c;
  return got;
}

TEST(HeadTimedStream, AWholeHeadIsReadAndEndsAtTheBlankLine) {
  SocketPair pair;
  const std::string head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n";
  ASSERT_TRUE(pair.send(head + "{}"));
  HeadTimedStream stream(pair.server.get(), 1000ms, 1000ms, 1000ms);
  EXPECT_EQ(read_all(stream, head.size()), head);
  EXPECT_TRUE(stream.head_done());
  char body[2];
  EXPECT_EQ(stream.read(body, sizeof body), 2) << "the body is read past the head";
}

TEST(HeadTimedStream, AHeadStillIncompleteAtTheDeadlineReadsNoMore) {
  SocketPair pair;
  ASSERT_TRUE(pair.send("POST /mcp HTTP/1.1\r\nX-Slow: a"));
  HeadTimedStream stream(pair.server.get(), 30'000ms, 1000ms, 200ms);
  const auto start = std::chrono::steady_clock::now();
  read_all(stream, 1 << 20);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(stream.head_done());
  EXPECT_LT(took, 5s) << "the per-read timeout (30 s) was not what ended it";
  ASSERT_TRUE(pair.send("b"));
  char c;
  EXPECT_EQ(stream.read(&c, 1), -1) << "past the deadline even a byte that arrives is refused";
}

TEST(HeadTimedStream, AHeadOverTheCapReadsNoMore) {
  SocketPair pair;
  std::string head = "GET / HTTP/1.1\r\n";
  while (head.size() < HeadTimedStream::kMaxHeadBytes + 100) head += "X-Pad: " + std::string(50, 'p') + "\r\n";
  head += "\r\n";
  std::thread writer([&] { pair.send(head); });
  HeadTimedStream stream(pair.server.get(), 1000ms, 1000ms, 5000ms);
  EXPECT_EQ(read_all(stream, head.size()).size(), HeadTimedStream::kMaxHeadBytes);
  EXPECT_FALSE(stream.head_done());
  pair.server.reset();  // lets the writer finish
  writer.join();
}

TEST(HeadTimedStream, ABlankLineBeforeTheRequestLineDoesNotEndTheHead) {
  SocketPair pair;
  ASSERT_TRUE(pair.send("\r\nGET / HTTP/1.1\r\n\r\n"));
  HeadTimedStream stream(pair.server.get(), 1000ms, 1000ms, 1000ms);
  EXPECT_EQ(read_all(stream, 2), "\r\n");
  EXPECT_FALSE(stream.head_done());
  read_all(stream, 18);
  EXPECT_TRUE(stream.head_done());
}

}  // namespace
}  // namespace orch::transport
