// The MCP lifecycle over stdio against the real binary (MCP-NOTES §1-§4):
// initialize and version negotiation, ping, requests before initialize,
// notifications, logging, tools/list, and how the process starts and ends.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

using Clock = std::chrono::steady_clock;

class StdioLifecycle : public IntegrationTest {};

int error_code(const json& response) {
  if (!response.is_object() || !response.contains("error")) return 0;
  return response.at("error").value("code", 0);
}

TEST_F(StdioLifecycle, InitializeEchoesEachSupportedVersion) {
  for (const char* version : {"2025-11-25", "2025-06-18", "2025-03-26"}) {
    ServerProcess& server = start_server();
    json result = server.initialize(version);
    EXPECT_EQ(result.value("protocolVersion", ""), version);
    stop_server(server);
  }
}

TEST_F(StdioLifecycle, UnknownVersionIsAnsweredWithTheLatest) {
  ServerProcess& server = start_server();
  json result = server.initialize("1999-01-01");
  EXPECT_EQ(result.value("protocolVersion", ""), "2025-11-25");
}

TEST_F(StdioLifecycle, InitializeResultDeclaresToolsLoggingServerInfoAndInstructions) {
  ServerProcess& server = start_server();
  json result = server.initialize();
  ASSERT_TRUE(result.is_object());
  ASSERT_TRUE(result.contains("capabilities"));
  EXPECT_TRUE(result["capabilities"].contains("tools"));
  EXPECT_TRUE(result["capabilities"].contains("logging"));
  // Only what is implemented may be declared (MCP-NOTES §3a): no completions,
  // and no list_changed notifications.
  EXPECT_TRUE(result["capabilities"].contains("prompts"));
  EXPECT_TRUE(result["capabilities"].contains("resources"));
  EXPECT_TRUE(result["capabilities"].contains("tasks"));
  EXPECT_FALSE(result["capabilities"].contains("completions"));
  EXPECT_EQ(result["capabilities"]["resources"], (json{{"subscribe", true}, {"listChanged", false}}));
  EXPECT_EQ(result["capabilities"]["prompts"], (json{{"listChanged", false}}));
  ASSERT_TRUE(result.contains("serverInfo"));
  EXPECT_EQ(result["serverInfo"].value("name", ""), "mcp-orchestrator");
  EXPECT_FALSE(result["serverInfo"].value("version", "").empty());
  ASSERT_TRUE(result.contains("instructions"));
  ASSERT_TRUE(result["instructions"].is_string());
  EXPECT_NE(result["instructions"].get<std::string>().find("submitTask"), std::string::npos);
}

TEST_F(StdioLifecycle, InitializeWithoutProtocolVersionIsInvalidParams) {
  ServerProcess& server = start_server();
  json response = server.request("initialize", {{"capabilities", json::object()}});
  EXPECT_EQ(error_code(response), -32602) << response.dump();
  // The session is still new: a proper initialize works afterwards.
  EXPECT_EQ(server.initialize().value("protocolVersion", ""), "2025-11-25");
}

TEST_F(StdioLifecycle, SecondInitializeIsRefused) {
  ServerProcess& server = start_server();
  server.initialize();
  json again = server.request("initialize", {{"protocolVersion", "2025-11-25"},
                                             {"capabilities", json::object()},
                                             {"clientInfo", {{"name", "x"}, {"version", "1"}}}});
  EXPECT_TRUE(again.contains("error")) << again.dump();
  EXPECT_TRUE(server.request("ping").contains("result"));
}

TEST_F(StdioLifecycle, PingAnswersBeforeAndAfterInitialize) {
  ServerProcess& server = start_server();
  json before = server.request("ping");
  ASSERT_TRUE(before.contains("result")) << before.dump();
  EXPECT_EQ(before["result"], json::object());
  server.initialize();
  json after = server.request("ping");
  ASSERT_TRUE(after.contains("result")) << after.dump();
  EXPECT_EQ(after["result"], json::object());
  // params are optional, and an empty object is fine too.
  EXPECT_TRUE(server.request("ping", json()).contains("result"));
}

TEST_F(StdioLifecycle, RequestsBeforeInitializeGetAnError) {
  ServerProcess& server = start_server();
  json list = server.request("tools/list");
  ASSERT_TRUE(list.contains("error")) << list.dump();
  EXPECT_NE(error_code(list), 0);
  EXPECT_NE(list["error"].value("message", "").find("initialize"), std::string::npos)
      << "the error should say to initialize first: " << list.dump();
  json call = server.request("tools/call", {{"name", "listTasks"}, {"arguments", json::object()}});
  EXPECT_TRUE(call.contains("error")) << call.dump();
  server.initialize();
  EXPECT_TRUE(server.request("tools/list").contains("result"));
}

TEST_F(StdioLifecycle, NotificationsGetNoReply) {
  ServerProcess& server = start_server();
  server.initialize();
  const std::size_t before = server.messages_received();
  server.send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  server.send({{"jsonrpc", "2.0"}, {"method", "notifications/no-such-thing"}, {"params", {{"x", 1}}}});
  server.send(
      {{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 12345}}}});
  // A response the server never asked for is not answered either.
  server.send({{"jsonrpc", "2.0"}, {"id", 999}, {"result", json::object()}});
  json ping = server.request("ping");
  EXPECT_TRUE(ping.contains("result"));
  // Messages are handled in order; the ping's answer is the only new message.
  EXPECT_EQ(server.messages_received(), before + 1);
  EXPECT_TRUE(server.notifications().empty());
}

TEST_F(StdioLifecycle, LoggingSetLevel) {
  ServerProcess& server = start_server();
  server.initialize();
  for (const char* level : {"debug", "info", "warning", "error", "emergency"}) {
    json ok = server.request("logging/setLevel", {{"level", level}});
    ASSERT_TRUE(ok.contains("result")) << level << ": " << ok.dump();
    EXPECT_EQ(ok["result"], json::object());
  }
  json bad = server.request("logging/setLevel", {{"level", "loud"}});
  EXPECT_EQ(error_code(bad), -32602) << bad.dump();
  json missing = server.request("logging/setLevel", json::object());
  EXPECT_EQ(error_code(missing), -32602) << missing.dump();
  json wrong_type = server.request("logging/setLevel", {{"level", 3}});
  EXPECT_EQ(error_code(wrong_type), -32602) << wrong_type.dump();
}

TEST_F(StdioLifecycle, ToolsListHasTheSixToolsFullyDescribed) {
  ServerProcess& server = start_server();
  server.initialize();
  json response = server.request("tools/list");
  ASSERT_TRUE(response.contains("result")) << response.dump();
  const json& tools = response["result"]["tools"];
  ASSERT_TRUE(tools.is_array());
  std::set<std::string> names;
  for (const json& tool : tools) {
    std::string name = tool.value("name", "");
    names.insert(name);
    SCOPED_TRACE(name);
    EXPECT_FALSE(tool.value("title", "").empty());
    EXPECT_GT(tool.value("description", "").size(), 40u) << "a description that helps a model choose";
    ASSERT_TRUE(tool.contains("inputSchema"));
    EXPECT_EQ(tool["inputSchema"].value("type", ""), "object");
    ASSERT_TRUE(tool.contains("outputSchema"));
    EXPECT_EQ(tool["outputSchema"].value("type", ""), "object");
    ASSERT_TRUE(tool.contains("annotations"));
    const json& a = tool["annotations"];
    ASSERT_TRUE(a.is_object());
    ASSERT_TRUE(a.contains("readOnlyHint"));
    EXPECT_TRUE(a["readOnlyHint"].is_boolean());
    const bool read_only = a["readOnlyHint"].get<bool>();
    const bool should_be_read_only = name == "getStatus" || name == "getResult" || name == "listTasks";
    EXPECT_EQ(read_only, should_be_read_only) << "readOnlyHint must be honest";
    if (!read_only) {
      EXPECT_TRUE(a.contains("destructiveHint"));
    }
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"submitTask", "getStatus", "getResult", "cancelTask", "listTasks", "runTask"}));
  for (const json& tool : tools) {
    if (tool.value("name", "") == "cancelTask") {
      EXPECT_EQ(tool["annotations"].value("destructiveHint", false), true);
    }
    if (tool.value("name", "") == "getResult") {
      EXPECT_EQ(tool["inputSchema"]["required"], json::array({"taskId"}));
    }
  }
}

TEST_F(StdioLifecycle, ExitsPromptlyWithCodeZeroOnStdinEof) {
  ServerProcess& server = start_server();
  server.initialize();
  auto start = Clock::now();
  server.close_stdin();
  auto status = server.wait_exit(scaled(3s));
  ASSERT_TRUE(status) << "still running 3 s after stdin EOF";
  EXPECT_TRUE(status->ok()) << status->describe();
  EXPECT_LT(Clock::now() - start, scaled(3s));
}

TEST_F(StdioLifecycle, ExitsPromptlyOnStdinEofWhileALongPollWaits) {
  ServerProcess& server = start_server();
  server.initialize();
  std::string id = server.submit({{"command", "sleep 30"}});
  ASSERT_FALSE(id.empty());
  // A getResult that would wait 30 s must not hold the exit up.
  ASSERT_TRUE(
      server.send({{"jsonrpc", "2.0"},
                   {"id", "long-poll"},
                   {"method", "tools/call"},
                   {"params", {{"name", "getResult"}, {"arguments", {{"taskId", id}, {"waitSec", 30}}}}}}));
  EXPECT_TRUE(server.request("ping").contains("result"));
  auto start = Clock::now();
  server.close_stdin();
  auto status = server.wait_exit(scaled(4s));
  ASSERT_TRUE(status) << "still running 4 s after stdin EOF with a long-poll in flight";
  EXPECT_TRUE(status->ok()) << status->describe();
  EXPECT_LT(Clock::now() - start, scaled(4s));
}

TEST_F(StdioLifecycle, CancelledRequestGetsNoReplyAndStopsWaiting) {
  ServerProcess& server = start_server();
  server.initialize();
  std::string id = server.submit({{"command", "sleep 30"}});
  ASSERT_TRUE(server.send({{"jsonrpc", "2.0"},
                           {"id", "to-cancel"},
                           {"method", "tools/call"},
                           {"params",
                            {{"name", "getResult"},
                             {"arguments", {{"taskId", id}, {"waitSec", 30}}},
                             {"_meta", {{"progressToken", "p-cancel"}}}}}}));
  EXPECT_TRUE(server.request("ping").contains("result"));
  server.send({{"jsonrpc", "2.0"},
               {"method", "notifications/cancelled"},
               {"params", {{"requestId", "to-cancel"}, {"reason", "user pressed stop"}}}});
  // The id is free again once the cancelled call has wound down: a new
  // request with it is accepted rather than refused as a duplicate.
  EXPECT_TRUE(wait_until(
      [&] {
        server.send({{"jsonrpc", "2.0"}, {"id", "to-cancel"}, {"method", "ping"}});
        auto r = server.wait_response(json("to-cancel"));
        if (r && r->contains("result") && r->at("result") != json::object()) {
          ADD_FAILURE() << "the cancelled request was answered: " << r->dump().substr(0, 300);
        }
        return r && r->contains("result");
      },
      scaled(5s), 20ms))
      << "the cancelled long-poll still holds its request id";
  // No reply to the cancelled request itself (only the ping with its id).
  EXPECT_TRUE(server.request("ping").contains("result"));
  EXPECT_FALSE(server.wait_response(json("to-cancel"), 0ms));
  // The task itself is not cancelled: only the wait was.
  EXPECT_EQ(server.task(id).value("status", ""), "running");
  structured(server.call_tool("cancelTask", {{"taskId", id}}));
}

TEST_F(StdioLifecycle, LastLineWithoutNewlineIsServedAtEof) {
  ServerProcess& server = start_server();
  server.initialize();
  ASSERT_TRUE(server.send_raw(R"({"jsonrpc":"2.0","id":"last","method":"ping"})"));
  server.close_stdin();
  auto response = server.wait_response(json("last"));
  ASSERT_TRUE(response) << "the peer meant to send it";
  EXPECT_TRUE(response->contains("result"));
  auto status = server.wait_exit(scaled(3s));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->ok()) << status->describe();
}

TEST_F(StdioLifecycle, ExitsWithCodeZeroOnSigterm) {
  ServerProcess& server = start_server();
  server.initialize();
  server.kill(SIGTERM);
  auto status = server.wait_exit(scaled(3s));
  ASSERT_TRUE(status) << "still running 3 s after SIGTERM";
  EXPECT_TRUE(status->ok()) << status->describe();
}

TEST_F(StdioLifecycle, SigtermBeforeAnyInputStillExitsCleanly) {
  ServerProcess& server = start_server();
  // The server may still be starting; it must honour SIGTERM either way.
  EXPECT_TRUE(server.request("ping").contains("result"));
  server.kill(SIGTERM);
  auto status = server.wait_exit(scaled(3s));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->ok()) << status->describe();
}

TEST_F(StdioLifecycle, VersionFlagPrintsAndExitsZero) {
  RunResult r = run_binary({"--version"});
  ASSERT_TRUE(r.status);
  EXPECT_TRUE(r.status->ok()) << r.status->describe() << "\n" << r.err;
  EXPECT_NE(r.out.find("mcp-orchestrator"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find_first_of("0123456789"), std::string::npos) << r.out;
}

TEST_F(StdioLifecycle, HelpFlagPrintsUsageAndExitsZero) {
  RunResult r = run_binary({"--help"});
  ASSERT_TRUE(r.status);
  EXPECT_TRUE(r.status->ok()) << r.status->describe() << "\n" << r.err;
  for (const char* flag : {"--state-dir", "--config", "--max-concurrent"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << "help should mention " << flag << ":\n" << r.out;
  }
}

TEST_F(StdioLifecycle, UnknownFlagIsAUsageError) {
  RunResult r = run_binary({"--no-such-flag"});
  ASSERT_TRUE(r.status);
  EXPECT_FALSE(r.status->ok());
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "") << "usage errors go to stderr, not the protocol stream";
}

TEST_F(StdioLifecycle, ConfigFileThatIsNotJsonIsRefusedNamingTheFile) {
  TempDir dir;
  auto config = dir.path() / "broken-config.json";
  write_file(config, "{\"limits\": {\"maxConcurrent\": 4,,}");
  RunResult r = run_binary({"--config", config.string(), "--state-dir", (dir.path() / "state").string()});
  ASSERT_TRUE(r.status) << "a bad config must stop the start, not hang";
  EXPECT_FALSE(r.status->ok()) << r.status->describe();
  EXPECT_NE(r.err.find(config.string()), std::string::npos) << "stderr should name the file:\n" << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(StdioLifecycle, ConfigFileWithAWrongTypeIsRefusedNamingFileAndJsonPath) {
  TempDir dir;
  auto config = dir.path() / "config.json";
  write_file(config, R"({"limits":{"maxConcurrent":"x"}})");
  RunResult r = run_binary({"--config", config.string(), "--state-dir", (dir.path() / "state").string()});
  ASSERT_TRUE(r.status);
  EXPECT_FALSE(r.status->ok()) << r.status->describe();
  EXPECT_NE(r.err.find(config.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("limits.maxConcurrent"), std::string::npos) << "stderr should give the JSON path:\n"
                                                                   << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(StdioLifecycle, ConfigFileWithAnUnknownKeyIsRefused) {
  TempDir dir;
  auto config = dir.path() / "config.json";
  write_file(config, R"({"limits":{"maxConcurent":4}})");
  RunResult r = run_binary({"--config", config.string(), "--state-dir", (dir.path() / "state").string()});
  ASSERT_TRUE(r.status);
  EXPECT_FALSE(r.status->ok());
  EXPECT_NE(r.err.find("limits.maxConcurent"), std::string::npos) << r.err;
}

TEST_F(StdioLifecycle, MissingExplicitConfigFileIsRefused) {
  TempDir dir;
  auto config = dir.path() / "nope.json";
  RunResult r = run_binary({"--config", config.string(), "--state-dir", (dir.path() / "state").string()});
  ASSERT_TRUE(r.status);
  EXPECT_FALSE(r.status->ok());
  EXPECT_NE(r.err.find(config.string()), std::string::npos) << r.err;
}

TEST_F(StdioLifecycle, ValidConfigFileIsUsed) {
  TempDir dir;
  auto config = dir.path() / "config.json";
  write_file(config, R"({"limits":{"maxConcurrent":3,"queueSize":17}})");
  ServerOptions options;
  options.args = {"--config", config.string()};
  ServerProcess& server = start_server(options);
  server.initialize();
  json status = structured(server.call_tool("getStatus"));
  ASSERT_TRUE(status.contains("orchestrator")) << status.dump();
  EXPECT_EQ(status["orchestrator"].value("maxConcurrent", 0), 3);
  EXPECT_EQ(status["orchestrator"].value("queueLimit", 0), 17);
}

TEST_F(StdioLifecycle, StdoutCarriesOnlyProtocolMessagesEvenWithDebugLogging) {
  ServerProcess& server = start_server(std::vector<std::string>{"--log-level", "trace"});
  server.initialize();
  std::string id = server.submit({{"command", "echo to-stdout; echo to-stderr >&2"}});
  json result = server.wait_result(id);
  EXPECT_EQ(result.value("status", ""), "completed");
  server.close_stdin();
  ASSERT_TRUE(server.wait_exit());
  // The readers may still be draining the pipes when the exit is reaped.
  ASSERT_TRUE(server.wait_pipes_closed(scaled(2s)));
  EXPECT_TRUE(server.stdout_violations().empty());
  EXPECT_FALSE(server.stderr_text().empty()) << "logs belong on stderr";
  EXPECT_EQ(server.stdout_text().find("to-stdout\n"), std::string::npos)
      << "a task's output must never reach the protocol stream";
}

}  // namespace
}  // namespace orch::test
