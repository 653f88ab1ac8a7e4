#include "transport/stdio_transport.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/unique_fd.h"
#include "tests/support/wait_until.h"

namespace orch::transport {
namespace {

using namespace std::chrono_literals;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    ASSERT_GT(n, 0);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads everything until EOF.
std::string read_all(int fd) {
  std::string out;
  char chunk[4096];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    out.append(chunk, static_cast<std::size_t>(n));
  }
  return out;
}

// What run() handed out, safe to read from the test thread while it runs.
struct Received {
  std::mutex mu;
  std::vector<std::string> messages;
  std::vector<std::size_t> oversized;

  StdioTransport::OnMessage on_message() {
    return [this](std::string_view m) {
      std::lock_guard lock(mu);
      messages.emplace_back(m);
    };
  }
  StdioTransport::OnOversized on_oversized() {
    return [this](std::size_t n) {
      std::lock_guard lock(mu);
      oversized.push_back(n);
    };
  }
  std::size_t message_count() {
    std::lock_guard lock(mu);
    return messages.size();
  }
};

struct Framed {
  std::vector<std::string> messages;
  std::vector<std::size_t> oversized;
};

// Feeds `input`, closes the pipe, runs to EOF on this thread.
Framed run_to_eof(std::string_view input, StdioOptions options = {}) {
  Pipe in;
  Pipe out;
  write_all(in.write.get(), input);
  in.write.reset();
  StdioTransport transport(in.read.get(), out.write.get(), std::move(options));
  Received received;
  auto end = transport.run(received.on_message(), received.on_oversized());
  EXPECT_TRUE(end.ok());
  if (end.ok()) {
    EXPECT_EQ(*end, RunEnd::Eof);
  }
  return Framed{received.messages, received.oversized};
}

TEST(StdioTransport, DeliversEachLineInOrder) {
  auto received = run_to_eof("{\"a\":1}\n{\"b\":2}\nthird\n");
  EXPECT_EQ(received.messages, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "third"}));
  EXPECT_TRUE(received.oversized.empty());
}

TEST(StdioTransport, StripsCarriageReturnAndSkipsEmptyLines) {
  auto received = run_to_eof("one\r\n\r\n\n\ntwo\r\n");
  EXPECT_EQ(received.messages, (std::vector<std::string>{"one", "two"}));
}

TEST(StdioTransport, DeliversAnUnterminatedLastLineAtEof) {
  auto received = run_to_eof("first\nlast-without-newline");
  EXPECT_EQ(received.messages, (std::vector<std::string>{"first", "last-without-newline"}));
}

TEST(StdioTransport, EmptyInputEndsWithEof) {
  auto received = run_to_eof("");
  EXPECT_TRUE(received.messages.empty());
}

TEST(StdioTransport, OversizedLineIsDiscardedAndItsSizeReported) {
  StdioOptions options;
  options.max_message_bytes = 16;
  std::string input = "short\n" + std::string(100, 'x') + "\nafter\n";
  auto received = run_to_eof(input, options);
  EXPECT_EQ(received.messages, (std::vector<std::string>{"short", "after"}));
  EXPECT_EQ(received.oversized, (std::vector<std::size_t>{100}));
}

TEST(StdioTransport, LineAtTheLimitIsAcceptedOneMoreByteIsNot) {
  StdioOptions options;
  options.max_message_bytes = 16;
  std::string at_limit(16, 'a');
  std::string over(17, 'b');
  auto received = run_to_eof(at_limit + "\r\n" + over + "\r\n" + at_limit + "\n", options);
  EXPECT_EQ(received.messages, (std::vector<std::string>{at_limit, at_limit}));
  EXPECT_EQ(received.oversized, (std::vector<std::size_t>{17}));
}

TEST(StdioTransport, OversizedLineSpanningManyReadsIsDroppedWithoutBufferingIt) {
  StdioOptions options;
  options.max_message_bytes = 10;
  options.read_chunk_bytes = 7;  // the long line arrives in many reads
  std::string input = "ok\n" + std::string(1000, 'y') + "\r\nnext\n" + std::string(30, 'z');
  auto received = run_to_eof(input, options);
  EXPECT_EQ(received.messages, (std::vector<std::string>{"ok", "next"}));
  // The unterminated over-long tail is reported at EOF too.
  EXPECT_EQ(received.oversized, (std::vector<std::size_t>{1000, 30}));
}

TEST(StdioTransport, MessageSplitAcrossManySmallWritesArrivesWhole) {
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
  Received received;
  std::optional<Result<RunEnd>> end;
  std::jthread reader([&] { end.emplace(transport.run(received.on_message(), received.on_oversized())); });

  std::string message = "{\"data\":\"";
  for (int i = 0; i < 3000; ++i) message += static_cast<char>('a' + i % 26);
  message += "\"}";
  std::string framed = message + "\r\n" + message + "\n";
  for (std::size_t i = 0; i < framed.size(); i += 3) {
    write_all(in.write.get(), std::string_view(framed).substr(i, 3));
  }
  ASSERT_TRUE(test::wait_until([&] { return received.message_count() == 2; }, 20s));
  in.write.reset();
  reader.join();
  ASSERT_TRUE(end.has_value() && end->ok());
  EXPECT_EQ(**end, RunEnd::Eof);
  EXPECT_EQ(received.messages, (std::vector<std::string>{message, message}));
}

TEST(StdioTransport, StopFromAnotherThreadEndsRun) {
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
  Received received;
  std::atomic<bool> done{false};
  std::optional<Result<RunEnd>> end;
  std::jthread reader([&] {
    end.emplace(transport.run(received.on_message(), received.on_oversized()));
    done = true;
  });
  write_all(in.write.get(), "before\n");
  ASSERT_TRUE(test::wait_until([&] { return received.message_count() == 1; }, 20s));
  EXPECT_FALSE(done.load());
  transport.stop();
  ASSERT_TRUE(test::wait_until([&] { return done.load(); }, 20s));
  reader.join();
  ASSERT_TRUE(end->ok());
  EXPECT_EQ(**end, RunEnd::Stopped);
}

TEST(StdioTransport, StopBeforeRunReturnsAtOnce) {
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
  transport.stop();
  transport.stop();  // idempotent
  Received received;
  auto end = transport.run(received.on_message(), received.on_oversized());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, RunEnd::Stopped);
}

TEST(StdioTransport, LinesNotDeliveredBeforeStopAreLeftForTakeUnread) {
  Pipe in;
  Pipe out;
  write_all(in.write.get(), "a\nb\nc\npartial");
  StdioTransport transport(in.read.get(), out.write.get());
  std::vector<std::string> seen;
  auto end = transport.run(
      [&](std::string_view m) {
        seen.emplace_back(m);
        transport.stop();
      },
      [](std::size_t) {});
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, RunEnd::Stopped);
  EXPECT_EQ(seen, (std::vector<std::string>{"a"}));
  EXPECT_EQ(transport.take_unread(), "b\nc\npartial");
}

TEST(StdioTransport, InitialInputIsFramedBeforeTheFd) {
  Pipe in;
  Pipe out;
  write_all(in.write.get(), "tail\nsecond\n");
  in.write.reset();
  StdioOptions options;
  options.initial_input = "first\nhead-";
  StdioTransport transport(in.read.get(), out.write.get(), std::move(options));
  Received received;
  auto end = transport.run(received.on_message(), received.on_oversized());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(received.messages, (std::vector<std::string>{"first", "head-tail", "second"}));
}

// The end of each read's batch comes after its messages, once per read that
// delivered any: a line still incomplete ends no batch.
TEST(StdioTransport, EachReadsMessagesEndWithOneDrained) {
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
  std::mutex mu;
  std::vector<std::string> events;
  auto record = [&](std::string event) {
    std::lock_guard lock(mu);
    events.push_back(std::move(event));
  };
  auto count = [&] {
    std::lock_guard lock(mu);
    return events.size();
  };
  std::optional<Result<RunEnd>> end;
  std::jthread reader([&] {
    end.emplace(transport.run([&](std::string_view m) { record(std::string(m)); }, [](std::size_t) {},
                              [&] { record("|"); }));
  });
  write_all(in.write.get(), "a\nb\nc\n");
  ASSERT_TRUE(test::wait_until([&] { return count() == 4; }, 20s));
  write_all(in.write.get(), "partial");
  write_all(in.write.get(), "-end\nlast");
  ASSERT_TRUE(test::wait_until([&] { return count() == 6; }, 20s));
  in.write.reset();
  reader.join();
  ASSERT_TRUE(end.has_value() && end->ok());
  EXPECT_EQ(events, (std::vector<std::string>{"a", "b", "c", "|", "partial-end", "|", "last", "|"}));
}

TEST(StdioTransport, ABatchCutShortByStopStillEnds) {
  Pipe in;
  Pipe out;
  write_all(in.write.get(), "a\nb\n");
  StdioTransport transport(in.read.get(), out.write.get());
  std::vector<std::string> events;
  auto end = transport.run(
      [&](std::string_view m) {
        events.emplace_back(m);
        transport.stop();
      },
      [](std::size_t) {}, [&] { events.emplace_back("|"); });
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, RunEnd::Stopped);
  EXPECT_EQ(events, (std::vector<std::string>{"a", "|"}));
}

TEST(StdioTransport, ReadErrorIsReportedAsIoError) {
  UniqueFd dir(::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  Pipe out;
  StdioTransport transport(dir.get(), out.write.get());
  Received received;
  auto end = transport.run(received.on_message(), received.on_oversized());
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.error().code, ErrorCode::Io);
  EXPECT_NE(end.error().message.find("reading input failed"), std::string::npos);
}

TEST(StdioTransport, SendWritesTheMessageAndANewline) {
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
  EXPECT_TRUE(transport.send(R"({"jsonrpc":"2.0"})"));
  EXPECT_TRUE(transport.sink()("second"));
  out.write.reset();
  EXPECT_EQ(read_all(out.read.get()), "{\"jsonrpc\":\"2.0\"}\nsecond\n");
}

TEST(StdioTransport, SendRefusesAMessageContainingANewline) {
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
#ifdef NDEBUG
  EXPECT_FALSE(transport.send("two\nlines"));
  out.write.reset();
  EXPECT_EQ(read_all(out.read.get()), "");
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(transport.send("two\nlines"), "newline|\\\\n");
#endif
}

TEST(StdioTransport, SendReturnsFalseOnceThePeerHasGone) {
  std::signal(SIGPIPE, SIG_IGN);  // as the app does
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
  out.read.reset();
  EXPECT_FALSE(transport.send("nobody reads this"));
  EXPECT_FALSE(transport.send("nor this"));
}

TEST(StdioTransport, ConcurrentSendsProduceWholeLinesOnly) {
  Pipe in;
  Pipe out;
  StdioTransport transport(in.read.get(), out.write.get());
  std::string output;
  std::jthread drain([&] { output = read_all(out.read.get()); });

  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  // Some messages exceed PIPE_BUF, where the kernel would split a write.
  auto message_for = [](int thread, int i) {
    std::size_t size = (i % 5 == 0) ? 9000 : 10 + static_cast<std::size_t>(i);
    return std::to_string(thread) + ":" + std::to_string(i) + ":" +
           std::string(size, static_cast<char>('a' + thread));
  };
  {
    std::vector<std::jthread> senders;
    for (int t = 0; t < kThreads; ++t) {
      senders.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) EXPECT_TRUE(transport.send(message_for(t, i)));
      });
    }
  }
  out.write.reset();
  drain.join();

  std::map<std::string, int> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) ++expected[message_for(t, i)];
  }
  std::map<std::string, int> seen;
  std::size_t start = 0;
  while (start < output.size()) {
    std::size_t newline = output.find('\n', start);
    ASSERT_NE(newline, std::string::npos) << "output ends inside a line";
    ++seen[output.substr(start, newline - start)];
    start = newline + 1;
  }
  EXPECT_EQ(seen, expected);
}

}  // namespace
}  // namespace orch::transport
