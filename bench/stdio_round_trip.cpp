// Round trips to an MCP server over stdio from a client that costs next to
// nothing, so the figure is the server's and the pipe's, not a Python
// client's (bench/mcp_stdio.py adds some 40 µs per call on this machine).
//
//   stdio_round_trip COUNT METHOD -- SERVER [ARGS...]
//
// METHOD is `ping` or a tool name called with {} (e.g. getStatus). Starts the
// server, initializes, sends COUNT requests one after another (after 10% of
// them as warm-up) and prints {"p50_us":…, "p99_us":…} on stdout.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "stdio_round_trip: %s\n", what.c_str());
  std::exit(1);
}

class Peer {
 public:
  explicit Peer(std::vector<char*> argv) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) die("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
      die(std::string("cannot start ") + argv[0]);
    }
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~Peer() {
    close(to_);  // stdin EOF: the server shuts down
    int status = 0;
    waitpid(pid_, &status, 0);
    close(from_);
  }

  void send(const std::string& line) {
    std::string framed = line + "\n";
    for (std::size_t done = 0; done < framed.size();) {
      ssize_t n = write(to_, framed.data() + done, framed.size() - done);
      if (n <= 0) die("write to the server failed");
      done += static_cast<std::size_t>(n);
    }
  }

  // The next line the server writes.
  std::string receive() {
    while (true) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      char chunk[65536];
      ssize_t n = read(from_, chunk, sizeof chunk);
      if (n <= 0) die("the server closed its stdout");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Sends a request and skips notifications until its reply arrives.
  void call(long id, const std::string& method, const std::string& params) {
    send(R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":")" + method +
         R"(","params":)" + params + "}");
    const std::string want = R"("id":)" + std::to_string(id) + ",";
    while (true) {
      std::string line = receive();
      if (line.find(want) == std::string::npos) continue;
      if (line.find(R"("error":)") != std::string::npos || line.find(R"("isError":true)") != std::string::npos) {
        die("the server answered an error: " + line.substr(0, 300));
      }
      return;
    }
  }

 private:
  pid_t pid_ = 0;
  int to_ = -1, from_ = -1;
  std::string buffer_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || std::strcmp(argv[3], "--") != 0) {
    std::fprintf(stderr, "usage: stdio_round_trip COUNT METHOD -- SERVER [ARGS...]\n");
    return 2;
  }
  const long count = std::atol(argv[1]);
  const std::string method = argv[2];
  if (count <= 0) die("COUNT must be a positive integer");
  Peer peer(std::vector<char*>(argv + 4, argv + argc));
  peer.call(0, "initialize",
            R"({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}})");
  peer.send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");

  const bool is_ping = method == "ping";
  const std::string rpc = is_ping ? "ping" : "tools/call";
  const std::string params = is_ping ? "{}" : R"({"name":")" + method + R"(","arguments":{}})";
  const long warm_up = std::max(1L, count / 10);
  std::vector<double> micros;
  micros.reserve(static_cast<std::size_t>(count));
  for (long i = 1; i <= count + warm_up; ++i) {
    auto start = Clock::now();
    peer.call(i, rpc, params);
    if (i > warm_up) micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<std::size_t>(q * static_cast<double>(micros.size() - 1))]; };
  std::printf("{\"method\":\"%s\",\"count\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", method.c_str(), count,
              at(0.5), at(0.99));
  return 0;
}
