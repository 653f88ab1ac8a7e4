// The MCP dispatcher and every tool's argument parser (mcp/, tools/): each
// input line is one JSON-RPC message to an initialized 2025-11-25 session, so
// a seed such as a tools/call of submitTask reaches tools/args with fuzzed
// arguments. Every reply must be one line of valid JSON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/mcp_fixture.h"

namespace {

constexpr std::size_t kMaxLines = 16;

constexpr std::string_view kInitialize =
    R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",)"
    R"("capabilities":{"tasks":{}},"clientInfo":{"name":"fuzz","version":"1"}}})";
constexpr std::string_view kInitialized = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto session = orch::fuzz::mcp_server().open_session([](std::string_view message) {
    orch::fuzz::check_outgoing(message);
    return true;
  });
  session->handle(kInitialize);
  session->handle(kInitialized);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (std::size_t lines = 0; !text.empty() && lines < kMaxLines; ++lines) {
    const std::size_t nl = text.find('\n');
    session->handle(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  session->close();
  return 0;
}
