// Resources and prompts through a real Session over in-memory providers:
// every method, the error code of each bad request, and subscriptions that
// reach only the sessions subscribed, and nothing after a session closed.
#include "mcp/resources_api.h"

#include <gtest/gtest.h>

#include "mcp/server.h"
#include "tests/support/mcp_doubles.h"

namespace orch::mcp {
namespace {

using nlohmann::json;
using test::ThreadPerJob;
using test::Wire;

class NoTools final : public ToolProvider {
 public:
  json list_tools() const override { return json::array(); }
  std::optional<json> call_tool(const std::string&, const json&, ToolCallContext&) override { return std::nullopt; }
};

class Resources final : public ResourceProvider {
 public:
  Result<ResourcePage> list(const std::string& cursor) override {
    if (cursor == "bad") return make_error(ErrorCode::InvalidArgument, "bad cursor");
    ResourcePage p;
    p.resources.push_back({{"uri", "mem://a"}, {"name", "a"}});
    if (cursor.empty()) p.next_cursor = "page2";
    return p;
  }
  json templates() override { return json::array({{{"uriTemplate", "mem://{x}"}, {"name", "x"}}}); }
  Result<json> read(const std::string& uri) override {
    if (uri == "mem://a") return json::array({{{"uri", uri}, {"text", "A"}}});
    if (uri.rfind("mem://", 0) == 0) return make_error(ErrorCode::NotFound, "no " + uri);
    return make_error(ErrorCode::InvalidArgument, "not ours");
  }
  Status check(const std::string& uri) override {
    if (uri == "mem://a") return {};
    return make_error(ErrorCode::NotFound, "no " + uri);
  }
  void on_updated(ResourceUpdated updated) override { updated_ = std::move(updated); }
  void fire(const std::string& uri) {
    if (updated_) updated_(uri);
  }
  bool attached() const { return static_cast<bool>(updated_); }

 private:
  ResourceUpdated updated_;
};

class Prompts final : public PromptProvider {
 public:
  json list() override { return json::array({{{"name", "p"}, {"description", "a prompt"}}}); }
  Result<json> get(const std::string& name, const json& arguments) override {
    if (name != "p") return make_error(ErrorCode::NotFound, "unknown prompt");
    if (!arguments.contains("x")) return make_error(ErrorCode::InvalidArgument, "needs x");
    return json{{"messages", json::array({{{"role", "user"}, {"content", {{"type", "text"}, {"text", "hi"}}}}})}};
  }
};

std::string request(const json& id, std::string_view method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}}.dump();
}

struct Client {
  Wire wire;
  std::unique_ptr<Session> session;
  Client(Server& server) : session(server.open_session(wire.sink())) {
    session->handle(request("init", "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                                   {"clientInfo", {{"name", "t"}, {"version", "0"}}}}));
  }
  json call(const json& id, std::string_view method, json params = json::object()) {
    session->handle(request(id, method, std::move(params)));
    return wire.wait_reply(id);
  }
};

struct Fixture {
  NoTools tools;
  Resources resources;
  Prompts prompts;
  ThreadPerJob pool;
  std::unique_ptr<Server> server;
  Fixture() {
    server = std::make_unique<Server>(ServerInfo{"t", "", "1", ""}, tools, pool.executor());
    server->serve_resources(resources);
    server->serve_prompts(prompts);
  }
};

int code(const json& reply) { return reply.at("error").at("code").get<int>(); }

TEST(ResourcesApi, CapabilitiesAndEveryMethod) {
  Fixture f;
  Client c(*f.server);
  json caps = c.wire.reply("init")["result"]["capabilities"];
  EXPECT_EQ(caps["resources"], (json{{"subscribe", true}, {"listChanged", false}}));
  EXPECT_EQ(caps["prompts"], (json{{"listChanged", false}}));
  json listed = c.call(1, "resources/list")["result"];
  EXPECT_EQ(listed["resources"][0]["uri"], "mem://a");
  EXPECT_EQ(listed["nextCursor"], "page2");
  EXPECT_FALSE(c.call(2, "resources/list", {{"cursor", "page2"}})["result"].contains("nextCursor"));
  EXPECT_EQ(c.call(3, "resources/templates/list")["result"]["resourceTemplates"][0]["uriTemplate"], "mem://{x}");
  EXPECT_EQ(c.call(4, "resources/read", {{"uri", "mem://a"}})["result"]["contents"][0]["text"], "A");
  EXPECT_EQ(c.call(5, "prompts/list")["result"]["prompts"][0]["name"], "p");
  EXPECT_EQ(c.call(6, "prompts/get", {{"name", "p"}, {"arguments", {{"x", "1"}}}})["result"]["messages"][0]["role"],
            "user");
}

TEST(ResourcesApi, EachBadRequestGetsItsCode) {
  Fixture f;
  Client c(*f.server);
  json missing = c.call(1, "resources/read", {{"uri", "mem://zz"}});
  EXPECT_EQ(code(missing), kResourceNotFound);
  EXPECT_EQ(missing["error"]["data"], (json{{"uri", "mem://zz"}}));
  EXPECT_EQ(code(c.call(2, "resources/read", {{"uri", "http://x"}})), kInvalidParams);
  EXPECT_EQ(code(c.call(3, "resources/read")), kInvalidParams);
  EXPECT_EQ(code(c.call(4, "resources/read", {{"uri", 5}})), kInvalidParams);
  EXPECT_EQ(code(c.call(5, "resources/list", {{"cursor", "bad"}})), kInvalidParams);
  EXPECT_EQ(code(c.call(6, "resources/list", {{"cursor", 1}})), kInvalidParams);
  EXPECT_EQ(code(c.call(7, "resources/subscribe", {{"uri", "mem://zz"}})), kResourceNotFound);
  EXPECT_EQ(code(c.call(8, "resources/subscribe")), kInvalidParams);
  EXPECT_EQ(code(c.call(9, "prompts/get", {{"name", "nope"}})), kInvalidParams);
  EXPECT_EQ(code(c.call(10, "prompts/get", {{"name", "p"}})), kInvalidParams);
  EXPECT_EQ(code(c.call(11, "prompts/get", {{"name", "p"}, {"arguments", "x"}})), kInvalidParams);
  EXPECT_EQ(code(c.call(12, "prompts/get")), kInvalidParams);
  EXPECT_TRUE(c.call(13, "ping").contains("result"));
}

TEST(ResourcesApi, UpdatesReachOnlyTheSubscribedUntilTheyLeave) {
  Fixture f;
  Client a(*f.server), b(*f.server);
  EXPECT_EQ(a.call(1, "resources/subscribe", {{"uri", "mem://a"}})["result"], json::object());
  EXPECT_EQ(a.call(2, "resources/subscribe", {{"uri", "mem://a"}})["result"], json::object());  // once is enough
  f.resources.fire("mem://a");
  f.resources.fire("mem://other");
  auto notes = a.wire.notifications("notifications/resources/updated");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0]["params"], (json{{"uri", "mem://a"}}));
  EXPECT_TRUE(b.wire.notifications("notifications/resources/updated").empty());

  EXPECT_EQ(a.call(3, "resources/unsubscribe", {{"uri", "mem://a"}})["result"], json::object());
  EXPECT_EQ(a.call(4, "resources/unsubscribe", {{"uri", "mem://a"}})["result"], json::object());
  f.resources.fire("mem://a");
  EXPECT_EQ(a.wire.notifications("notifications/resources/updated").size(), 1u);

  b.call(5, "resources/subscribe", {{"uri", "mem://a"}});
  b.session->close();
  f.resources.fire("mem://a");
  EXPECT_TRUE(b.wire.notifications("notifications/resources/updated").empty());
  EXPECT_EQ(f.server->subscriptions().count("mem://a"), 0u) << "a closed session's subscription is dropped";
}

TEST(ResourcesApi, TheServerDetachesFromTheProvider) {
  Fixture f;
  EXPECT_TRUE(f.resources.attached());
  f.server.reset();
  EXPECT_FALSE(f.resources.attached());
}

}  // namespace
}  // namespace orch::mcp
