// Task output as resources, the prompts, and task lifecycle log messages,
// against the real binary over stdio.
#include <gtest/gtest.h>

#include "tests/support/server_process.h"
#include "tests/support/wait_until.h"

namespace orch::test {
namespace {

using namespace std::chrono_literals;

class ResourcesPromptsLogging : public IntegrationTest {};

TEST_F(ResourcesPromptsLogging, ASubscriberHearsNewOutputAndReadsIt) {
  ServerProcess& s = start_server();
  s.initialize();
  const std::string id = s.submit({{"command", "sleep 0.3; echo first; sleep 0.3; echo second"}});
  const std::string uri = "task://" + id + "/stdout";
  ASSERT_EQ(s.request("resources/subscribe", {{"uri", uri}})["result"], json::object());
  ASSERT_TRUE(wait_until([&] {
    for (const json& n : s.notifications("notifications/resources/updated")) {
      if (n["params"]["uri"] == uri) return true;
    }
    return false;
  }, scaled(10s)));
  s.wait_result(id);
  json read = s.request("resources/read", {{"uri", uri}});
  EXPECT_EQ(read["result"]["contents"][0]["text"], "first\nsecond\n") << read.dump();
  json tail = s.request("resources/read", {{"uri", uri + "?tail=7"}});
  EXPECT_EQ(tail["result"]["contents"][0]["text"], "second\n");
  json missing = s.request("resources/read", {{"uri", "task://tzzzzzzzzzzzzzzzzzzzzzzzzzz/stdout"}});
  EXPECT_EQ(missing["error"]["code"], -32002);
  EXPECT_EQ(s.request("resources/read", {{"uri", "file:///etc/passwd"}})["error"]["code"], -32602);
  json listed = s.request("resources/list");
  EXPECT_EQ(listed["result"]["resources"][0]["uri"], uri);
  EXPECT_EQ(s.request("resources/templates/list")["result"]["resourceTemplates"].size(), 2u);
}

TEST_F(ResourcesPromptsLogging, PromptsAreListedAndFilledIn) {
  ServerProcess& s = start_server();
  s.initialize();
  json list = s.request("prompts/list");
  ASSERT_EQ(list["result"]["prompts"].size(), 3u) << list.dump();
  json got = s.request("prompts/get", {{"name", "watch-build"}, {"arguments", {{"command", "make"}}}});
  EXPECT_EQ(got["result"]["messages"][0]["content"]["type"], "text");
  EXPECT_EQ(s.request("prompts/get", {{"name", "watch-build"}})["error"]["code"], -32602);
}

TEST_F(ResourcesPromptsLogging, LifecycleEventsFollowTheClientsLevel) {
  ServerProcess& s = start_server();
  s.initialize();
  // At the default level (warning) a completed task says nothing; a failed one does.
  s.wait_result(s.submit({{"command", "true"}, {"name", "quiet"}}));
  const std::string failed = s.submit({{"command", "exit 3"}, {"name", "loud"}});
  auto logged = [&](const std::string& id, const std::string& event) {
    for (const json& n : s.notifications("notifications/message")) {
      if (n["params"]["data"]["taskId"] == id && n["params"]["data"]["event"] == event) return true;
    }
    return false;
  };
  ASSERT_TRUE(wait_until([&] { return logged(failed, "task.failed"); }, scaled(10s)));
  for (const json& n : s.notifications("notifications/message")) {
    EXPECT_EQ(n["params"]["level"], "warning") << n.dump();
    EXPECT_EQ(n["params"]["logger"], "tasks");
  }
  ASSERT_EQ(s.request("logging/setLevel", {{"level", "info"}})["result"], json::object());
  const std::string ok = s.submit({{"command", "true"}});
  EXPECT_TRUE(wait_until([&] { return logged(ok, "task.completed"); }, scaled(10s)));
  EXPECT_TRUE(logged(ok, "task.started"));
}

}  // namespace
}  // namespace orch::test
