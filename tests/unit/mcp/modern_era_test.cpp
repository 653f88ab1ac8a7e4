// The 2026-07-28 era's per-request rules, one test per error code and per
// era rule (MCP-NOTES §3b, §5b, §9b), over in-memory providers.
#include "mcp/modern_era.h"

#include <gtest/gtest.h>

#include "mcp/streamable_http.h"
#include "tests/support/mcp_doubles.h"

namespace orch::mcp {
namespace {

using nlohmann::json;

class Tools final : public ToolProvider {
 public:
  json list_tools() const override {
    return json::array({{{"name", "echo"}, {"description", "d"}, {"inputSchema", {{"type", "object"}}}},
                        {{"name", "long"}, {"description", "d"}, {"inputSchema", {{"type", "object"}}},
                         {"execution", {{"taskSupport", "required"}}}}});
  }
  std::optional<json> call_tool(const std::string& name, const json&, ToolCallContext&) override {
    if (name != "echo" && name != "long") return std::nullopt;
    return json{{"content", json::array({{{"type", "text"}, {"text", "ran " + name}}})}};
  }
};

class Tasks final : public TaskProvider {
 public:
  Result<NativeTask> create(const std::string& owner, const std::string&, const json&, std::optional<std::int64_t>,
                            NativeTaskListener) override {
    owner_ = owner;
    task_.id = "tk1";
    task_.ttl_ms = 5000;
    task_.poll_interval_ms = 100;
    return task_;
  }
  Result<NativeTask> get(const std::string& owner, const std::string& id) override {
    if (id != task_.id || owner != owner_) return make_error(ErrorCode::NotFound, "unknown task");
    return task_;
  }
  Result<json> result(const std::string&, const std::string&, std::stop_token) override { return outcome(); }
  Result<std::optional<json>> result_if_done(const std::string&, const std::string&) override {
    return std::optional<json>(outcome());
  }
  Result<NativeTaskPage> list(const std::string&, const std::string&) override { return NativeTaskPage{}; }
  Result<NativeTask> cancel(const std::string&, const std::string&) override {
    ++cancels_;
    task_.status = NativeTaskStatus::Cancelled;
    return task_;
  }
  static json outcome() { return {{"content", json::array()}, {"isError", true}}; }

  NativeTask task_;
  std::string owner_;
  int cancels_ = 0;
};

json meta(std::string version = "2026-07-28", json caps = json::object()) {
  return {{"io.modelcontextprotocol/protocolVersion", std::move(version)},
          {"io.modelcontextprotocol/clientCapabilities", std::move(caps)}};
}
json with_tasks() { return {{"extensions", {{kTasksExtension, json::object()}}}}; }

Request req(std::string method, json params) { return Request{json(7), std::move(method), std::move(params)}; }

struct Fixture {
  Tools tools;
  Tasks tasks;
  test::ThreadPerJob pool;
  Server server{ServerInfo{"orch", "Orch", "9.9", "hints"}, tools, pool.executor()};
  ModernEra era{server, "ctx"};
  Fixture() { server.serve_tasks(tasks); }
  ModernReply call(std::string method, json params, const ModernHeaders* h = nullptr) {
    return era.handle(req(std::move(method), std::move(params)), h);
  }
};

int code(const ModernReply& r) { return r.message.at("error").at("code").get<int>(); }

TEST(ModernEra, EraFollowsTheRequestMeta) {
  EXPECT_TRUE(is_modern_request({{"_meta", meta()}}));
  EXPECT_FALSE(is_modern_request({{"protocolVersion", "2025-11-25"}}));
  EXPECT_FALSE(is_modern_request({{"_meta", {{"progressToken", 1}}}}));
}

TEST(ModernEra, MissingMetaIsInvalidParams400) {
  Fixture f;
  for (json params : {json::object(), json{{"_meta", {{"io.modelcontextprotocol/clientCapabilities", json::object()}}}},
                      json{{"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}}}},
                      json{{"_meta", meta("2026-07-28", json::array())}}}) {
    ModernReply r = f.call("server/discover", params);
    EXPECT_EQ(r.http_status, 400) << params.dump();
    EXPECT_EQ(code(r), kInvalidParams) << params.dump();
    EXPECT_EQ(r.message.at("id"), 7);
  }
}

TEST(ModernEra, UnsupportedVersionIs32022WithTheSupportedList) {
  Fixture f;
  ModernReply r = f.call("server/discover", {{"_meta", meta("2025-11-25")}});
  EXPECT_EQ(r.http_status, 400);
  EXPECT_EQ(code(r), kUnsupportedProtocolVersion);
  EXPECT_EQ(r.message["error"]["data"], (json{{"supported", {"2026-07-28"}}, {"requested", "2025-11-25"}}));
}

TEST(ModernEra, HeadersMustMatchTheBody) {
  Fixture f;
  ModernHeaders h{"2026-07-28", "tools/call", "echo", true};
  EXPECT_TRUE(f.call("tools/call", {{"name", "echo"}, {"_meta", meta()}}, &h).message.contains("result"));
  ModernHeaders version{"2025-11-25", "tools/call", "echo", true};
  ModernHeaders method{"2026-07-28", "tools/list", "echo", true};
  ModernHeaders name{"2026-07-28", "tools/call", "other", true};
  ModernHeaders no_name{"2026-07-28", "tools/call", "", false};
  for (const ModernHeaders* bad : {&version, &method, &name, &no_name}) {
    ModernReply r = f.call("tools/call", {{"name", "echo"}, {"_meta", meta()}}, bad);
    EXPECT_EQ(r.http_status, 400);
    EXPECT_EQ(code(r), kHeaderMismatch);
  }
  // A value that is not header-safe travels base64-encoded: "echo" is ZWNobw==.
  ModernHeaders encoded{"2026-07-28", "tools/call", "=?base64?ZWNobw==?=", true};
  EXPECT_TRUE(f.call("tools/call", {{"name", "echo"}, {"_meta", meta()}}, &encoded).message.contains("result"));
  EXPECT_EQ(decode_header_value("=?base64?aMOp?="), "h\xc3\xa9");
  EXPECT_EQ(decode_header_value("plain"), "plain");
  // The header mismatch is found before the version is judged.
  ModernHeaders header_ok{"2026-07-28", "server/discover", "", false};
  EXPECT_EQ(code(f.call("server/discover", {{"_meta", meta("v999")}}, &header_ok)), kHeaderMismatch);
}

TEST(ModernEra, UnknownAndLegacyOnlyMethodsAre404) {
  Fixture f;
  for (const char* m : {"initialize", "ping", "logging/setLevel", "resources/subscribe", "tasks/list", "tasks/result",
                        "no/such"}) {
    ModernReply r = f.call(m, {{"_meta", meta("2026-07-28", with_tasks())}});
    EXPECT_EQ(r.http_status, 404) << m;
    EXPECT_EQ(code(r), kMethodNotFound) << m;
  }
}

TEST(ModernEra, TasksMethodsNeedTheDeclaredExtension) {
  Fixture f;
  ModernReply r = f.call("tasks/get", {{"taskId", "tk1"}, {"_meta", meta()}});
  EXPECT_EQ(r.http_status, 400);
  EXPECT_EQ(code(r), kMissingRequiredClientCapability);
  EXPECT_EQ(r.message["error"]["data"]["requiredCapabilities"], (json{{"extensions", {{kTasksExtension, json::object()}}}}));
}

TEST(ModernEra, EveryResultHasResultTypeAndServerInfo) {
  Fixture f;
  ModernReply d = f.call("server/discover", {{"_meta", meta()}});
  const json& res = d.message.at("result");
  EXPECT_EQ(res.at("resultType"), "complete");
  EXPECT_EQ(res.at("supportedVersions"), json::array({"2026-07-28"}));
  EXPECT_EQ(res.at("capabilities").at("extensions"), (json{{kTasksExtension, json::object()}}));
  EXPECT_FALSE(res.at("capabilities").contains("tasks")) << "tasks moved out of core";
  EXPECT_EQ(res.at("ttlMs"), 60000);
  EXPECT_EQ(res.at("cacheScope"), "public");
  EXPECT_EQ(res.at("_meta").at("io.modelcontextprotocol/serverInfo").at("name"), "orch");
  json tools = f.call("tools/list", {{"_meta", meta()}}).message.at("result");
  EXPECT_EQ(tools.at("resultType"), "complete");
  EXPECT_TRUE(tools.contains("ttlMs") && tools.contains("cacheScope"));
  for (const json& t : tools.at("tools")) EXPECT_FALSE(t.contains("execution")) << "no taskSupport in this era";
  json call = f.call("tools/call", {{"name", "echo"}, {"_meta", meta()}}).message.at("result");
  EXPECT_EQ(call.at("resultType"), "complete");
  EXPECT_FALSE(call.contains("ttlMs"));
  EXPECT_EQ(code(f.call("tools/call", {{"name", "nope"}, {"_meta", meta()}})), kInvalidParams);
}

TEST(ModernEra, TheServerMakesATaskOnlyForAClientThatDeclaredTheExtension) {
  Fixture f;
  json sync = f.call("tools/call", {{"name", "long"}, {"_meta", meta()}}).message.at("result");
  EXPECT_EQ(sync.at("resultType"), "complete");
  EXPECT_EQ(sync.at("content")[0]["text"], "ran long");
  json created = f.call("tools/call", {{"name", "long"}, {"_meta", meta("2026-07-28", with_tasks())}}).message.at("result");
  EXPECT_EQ(created.at("resultType"), "task");
  EXPECT_EQ(created.at("taskId"), "tk1");
  EXPECT_FALSE(created.contains("task")) << "the Task fields are flat";
  EXPECT_EQ(created.at("ttlMs"), 5000);
  EXPECT_EQ(created.at("pollIntervalMs"), 100);
  EXPECT_EQ(f.tasks.owner_, "ctx");
  // A forbidden tool answers directly even when tasks are declared.
  EXPECT_EQ(f.call("tools/call", {{"name", "echo"}, {"_meta", meta("2026-07-28", with_tasks())}})
                .message.at("result").at("resultType"), "complete");

  // An ended task whose tool answered isError is completed, with the result inlined.
  f.tasks.task_.status = NativeTaskStatus::Failed;
  json got = f.call("tasks/get", {{"taskId", "tk1"}, {"_meta", meta("2026-07-28", with_tasks())}}).message.at("result");
  EXPECT_EQ(got.at("status"), "completed");
  json inlined = Tasks::outcome();
  inlined["resultType"] = "complete";
  EXPECT_EQ(got.at("result"), inlined);
  EXPECT_EQ(got.at("resultType"), "complete");
  json update = f.call("tasks/update", {{"taskId", "tk1"}, {"inputResponses", json::object()},
                                        {"_meta", meta("2026-07-28", with_tasks())}}).message.at("result");
  EXPECT_EQ(update.at("resultType"), "complete");
  EXPECT_EQ(code(f.call("tasks/get", {{"taskId", "nope"}, {"_meta", meta("2026-07-28", with_tasks())}})), kInvalidParams);
}

TEST(ModernEra, CancelIsAnAcknowledgement) {
  Fixture f;
  f.call("tools/call", {{"name", "long"}, {"_meta", meta("2026-07-28", with_tasks())}});
  json ack = f.call("tasks/cancel", {{"taskId", "tk1"}, {"_meta", meta("2026-07-28", with_tasks())}}).message.at("result");
  EXPECT_EQ(ack.at("resultType"), "complete");
  EXPECT_EQ(f.tasks.cancels_, 1);
  // Again, on an ended task: still an acknowledgement, nothing cancelled twice.
  f.call("tasks/cancel", {{"taskId", "tk1"}, {"_meta", meta("2026-07-28", with_tasks())}});
  EXPECT_EQ(f.tasks.cancels_, 1);
}

// Over HTTP: no session and not a legacy initialize → modern; a legacy
// initialize still opens a session.
TEST(ModernEra, HttpPicksTheEraPerRequest) {
  Fixture f;
  StreamableHttp http(f.server, {});
  auto post = [](json body, std::vector<std::pair<std::string, std::string>> extra) {
    transport::HttpRequest r;
    r.method = "POST";
    r.path = "/mcp";
    r.body = body.dump();
    r.headers = {{"content-type", "application/json"}, {"accept", "application/json, text/event-stream"}};
    for (auto& h : extra) r.headers.push_back(h);
    return r;
  };
  auto discover = f.call("server/discover", {{"_meta", meta()}});  // warm: same answer over HTTP below
  transport::HttpResponse modern = http.handle(post(
      {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "server/discover"}, {"params", {{"_meta", meta()}}}},
      {{"mcp-protocol-version", "2026-07-28"}, {"mcp-method", "server/discover"}}));
  EXPECT_EQ(modern.status, 200);
  EXPECT_EQ(json::parse(modern.body)["result"]["supportedVersions"], discover.message["result"]["supportedVersions"]);
  bool minted = false;
  for (auto& [k, v] : modern.headers) minted = minted || k == "Mcp-Session-Id";
  EXPECT_FALSE(minted) << "the modern era has no sessions";

  transport::HttpResponse unknown = http.handle(post(
      {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "initialize"}, {"params", {{"_meta", meta()}}}},
      {{"mcp-protocol-version", "2026-07-28"}, {"mcp-method", "initialize"}}));
  EXPECT_EQ(unknown.status, 404);

  transport::HttpResponse legacy = http.handle(post(
      {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "initialize"},
       {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                   {"clientInfo", {{"name", "c"}, {"version", "1"}}}}}},
      {}));
  EXPECT_EQ(legacy.status, 200);
  EXPECT_EQ(json::parse(legacy.body)["result"]["protocolVersion"], "2025-11-25");
  EXPECT_EQ(http.session_count(), 1u);
}

}  // namespace
}  // namespace orch::mcp
