// The HTTP transport is a module the binary loads only when HTTP is asked for
// (transport/http_module.h): a binary without it still serves stdio, and says
// clearly what is missing when --http is given.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace orch::test {
namespace {

const char* kInitialize =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})"
    "\n";

class HttpModule : public ::testing::Test {
 protected:
  // The binary alone in a directory of its own: no module beside it, none in
  // ../lib/mcp-orchestrator.
  std::filesystem::path lone_binary() {
    auto bin = dir_.path() / "bin";
    std::filesystem::create_directories(bin);
    std::filesystem::copy_file(ORCH_BINARY, bin / "mcp-orchestrator");
    return bin / "mcp-orchestrator";
  }
  TempDir dir_;
};

TEST_F(HttpModule, WithoutItStdioStillServes) {
  auto bin = lone_binary();
  auto r = run_program({bin.string(), "--state-dir", (dir_.path() / "state").string()}, kInitialize);
  ASSERT_TRUE(r.status.has_value()) << r.err;
  EXPECT_EQ(r.status->code, 0) << r.err;
  EXPECT_NE(r.out.find("\"protocolVersion\":\"2025-11-25\""), std::string::npos) << r.out;
}

TEST_F(HttpModule, WithoutItHttpIsRefusedNamingTheFile) {
  auto bin = lone_binary();
  auto r = run_program({bin.string(), "--state-dir", (dir_.path() / "state").string(), "--http", "127.0.0.1:0"});
  ASSERT_TRUE(r.status.has_value()) << r.err;
  EXPECT_NE(r.status->code, 0);
  EXPECT_NE(r.err.find("HTTP is not available"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((dir_.path() / "bin" / "mcp-orchestrator-http.so").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((dir_.path() / "lib" / "mcp-orchestrator" / "mcp-orchestrator-http.so").string()),
            std::string::npos)
      << r.err;
}

TEST_F(HttpModule, AStaleFileInItsPlaceIsRefusedNotLoaded) {
  auto bin = lone_binary();
  // Not a shared object at all: dlopen's reason is passed on.
  write_file(dir_.path() / "bin" / "mcp-orchestrator-http.so", std::string(4096, 'x'));
  auto r = run_program({bin.string(), "--state-dir", (dir_.path() / "state").string(), "--http", "127.0.0.1:0"});
  ASSERT_TRUE(r.status.has_value()) << r.err;
  EXPECT_NE(r.status->code, 0);
  EXPECT_NE(r.err.find("HTTP is not available"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("invalid ELF header"), std::string::npos) << r.err;
}

TEST_F(HttpModule, ASharedObjectThatIsNotTheModuleIsRefused) {
  auto bin = lone_binary();
  // A real shared object that loads but has no entry point of ours.
  std::filesystem::copy_file("/lib/x86_64-linux-gnu/libz.so.1", dir_.path() / "bin" / "mcp-orchestrator-http.so");
  auto r = run_program({bin.string(), "--state-dir", (dir_.path() / "state").string(), "--http", "127.0.0.1:0"});
  ASSERT_TRUE(r.status.has_value()) << r.err;
  EXPECT_NE(r.status->code, 0);
  EXPECT_NE(r.err.find("is not mcp-orchestrator's HTTP module"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace orch::test
