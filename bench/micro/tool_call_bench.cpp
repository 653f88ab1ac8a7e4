// Tool calls through the whole MCP stack of one session: JSON-RPC parse,
// lifecycle admission, dispatch, the tool over a real Engine (temp state dir,
// SQLite store), result serialisation and the sink — everything but the pipe.
// `getStatus {}`: inline runs the job on the calling thread (the stack's own
// cost); worker_pool adds the hop to the engine's worker threads, as the
// server does. `getResult` of a 1 MiB window: the server's share of paging
// through a large output.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "engine/engine.h"
#include "engine/worker_pool.h"
#include "mcp/server.h"
#include "tools/tool_registry.h"

namespace {

using namespace orch;

// Counts replies; the benchmark waits for each one before sending the next.
class ReplyCounter {
 public:
  transport::MessageSink sink() {
    return [this](std::string_view text) {
      std::lock_guard lock(mu_);
      if (text.find("\"isError\":true") != std::string_view::npos) failed_ = true;
      last_ = text.size() <= 65536 ? std::string(text) : std::string();  // small replies only
      ++replies_;
      cv_.notify_one();
      return true;
    };
  }
  std::string last() {
    std::lock_guard lock(mu_);
    return last_;
  }
  bool wait_for(std::size_t count) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return replies_ >= count; });
    return !failed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t replies_ = 0;
  bool failed_ = false;
  std::string last_;  // the latest reply, if it was small
};

struct Stack {
  std::filesystem::path dir;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<tools::ToolRegistry> tools;
  std::unique_ptr<mcp::Server> server;
  ReplyCounter replies;
  std::unique_ptr<mcp::Session> session;

  explicit Stack(bool on_worker_pool) {
    spdlog::set_level(spdlog::level::warn);  // the session's info lines would go to stdout
    std::string pattern = (std::filesystem::temp_directory_path() / "orch-call-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    dir = pattern;
    engine::EngineOptions options;
    options.state_dir = dir;
    auto opened = engine::Engine::open(options);
    if (!opened) std::abort();
    engine = std::move(opened.value());
    tools = std::make_unique<tools::ToolRegistry>(*engine);
    mcp::Executor executor = [](std::function<void()> job) {
      job();
      return true;
    };
    if (on_worker_pool) {
      executor = [pool = &engine->workers()](std::function<void()> job) {
        return pool->post([job = std::move(job)](std::stop_token) { job(); });
      };
    }
    server = std::make_unique<mcp::Server>(mcp::ServerInfo{"bench", "bench", "0", ""}, *tools,
                                           std::move(executor));
    session = server->open_session(replies.sink());
    session->handle(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":)"
                    R"({"protocolVersion":"2025-11-25","capabilities":{},)"
                    R"("clientInfo":{"name":"bench","version":"1"}}})");
    session->handle(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    replies.wait_for(1);
  }
  // Sends one request line and waits for its reply; false on an isError reply.
  bool call(const std::string& tool, const std::string& arguments) {
    ++sent;
    stack_line = R"({"jsonrpc":"2.0","id":)" + std::to_string(sent) +
                 R"(,"method":"tools/call","params":{"name":")" + tool + R"(","arguments":)" +
                 arguments + "}}";
    session->handle(stack_line);
    return replies.wait_for(sent + 1);
  }
  std::size_t sent = 0;  // requests after initialize
  std::string stack_line;

  ~Stack() {
    session->close();
    session.reset();
    server.reset();
    tools.reset();
    engine.reset();
    std::filesystem::remove_all(dir);
  }
};

void GetStatusCall(benchmark::State& state) {
  Stack stack(state.range(0) != 0);
  for (auto _ : state) {
    if (!stack.call("getStatus", "{}")) {
      state.SkipWithError("getStatus answered isError");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(GetStatusCall)->ArgName("worker_pool")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void GetResultOneMiBWindow(benchmark::State& state) {
  Stack stack(true);
  if (!stack.call("submitTask", R"({"command":"head -c 1048576 /dev/zero | tr '\\0' x"})")) {
    state.SkipWithError("submitTask failed");
    return;
  }
  const std::string id =
      nlohmann::json::parse(stack.replies.last())["result"]["structuredContent"]["taskId"];
  if (!stack.call("getResult", R"({"taskId":")" + id + R"(","waitSec":30,"maxBytes":1})")) {
    state.SkipWithError("the task did not finish");
    return;
  }
  const std::string window = R"({"taskId":")" + id + R"(","stream":"stdout","maxBytes":1048576})";
  for (auto _ : state) {
    if (!stack.call("getResult", window)) {
      state.SkipWithError("getResult answered isError");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) << 20);
}
BENCHMARK(GetResultOneMiBWindow)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
