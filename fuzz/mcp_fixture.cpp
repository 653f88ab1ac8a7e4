#include "fuzz/mcp_fixture.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "tools/native_tasks.h"
#include "tools/task_prompts.h"
#include "tools/task_resources.h"
#include "tools/tool_registry.h"

namespace orch::fuzz {

namespace {

// Under /dev/shm when there is one: the store commits every submit.
std::filesystem::path make_state_dir() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm"
                                                                             : std::filesystem::temp_directory_path();
  std::string pattern = (base / "orch-fuzz-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) std::abort();
  return pattern;
}

struct Fixture {
  std::filesystem::path dir = make_state_dir();
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<tools::ToolRegistry> tools;
  std::unique_ptr<tools::NativeTasks> native_tasks;
  std::unique_ptr<tools::TaskResources> resources;
  tools::TaskPrompts prompts;
  std::unique_ptr<mcp::Server> server;

  Fixture() {
    spdlog::set_level(spdlog::level::off);
    engine::EngineOptions options;
    options.state_dir = dir / "state";
    options.queue_size = 64;
    options.retention_count = 16;
    options.memory_floor_mb = std::int64_t{1} << 40;
    auto opened = engine::Engine::open(options);
    if (!opened) std::abort();
    engine = std::move(*opened);
    tools = std::make_unique<tools::ToolRegistry>(*engine);
    native_tasks = std::make_unique<tools::NativeTasks>(*engine, *tools);
    resources = std::make_unique<tools::TaskResources>(*engine);
    mcp::Executor inline_executor = [](std::function<void()> job) {
      job();
      return true;
    };
    server = std::make_unique<mcp::Server>(
        mcp::ServerInfo{"mcp-orchestrator", "MCP Orchestrator", "fuzz", tools::ToolRegistry::server_instructions()},
        *tools, std::move(inline_executor));
    server->serve_tasks(*native_tasks);
    server->serve_resources(*resources);
    server->serve_prompts(prompts);
  }

  ~Fixture() {
    server.reset();
    resources.reset();
    native_tasks.reset();
    tools.reset();
    engine.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace

mcp::Server& mcp_server() {
  static Fixture fixture;
  return *fixture.server;
}

void check_outgoing(std::string_view message) {
  if (message.find('\n') != std::string_view::npos) std::abort();
  if (!nlohmann::json::accept(message)) std::abort();
}

}  // namespace orch::fuzz
