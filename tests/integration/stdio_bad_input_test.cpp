// SPEC §8 over stdio: every kind of bad input gets the right JSON-RPC error or
// isError tool result, the server keeps answering, and a task submitted before
// the bad input still completes with its output intact.
#include <gtest/gtest.h>

#include "tests/support/server_process.h"

namespace orch::test {
namespace {

constexpr std::size_t kMaxMessageBytes = 4096;

int error_code(const json& response) {
  if (!response.is_object() || !response.contains("error")) return 0;
  return response.at("error").value("code", 0);
}

class StdioBadInput : public IntegrationTest {
 protected:
  void SetUp() override {
    server_ =
        &start_server(std::vector<std::string>{"--max-message-bytes", std::to_string(kMaxMessageBytes)});
    server_->initialize();
    before_ = server_->submit({{"command", "sleep 0.3; echo done"}, {"name", "submitted-before-bad-input"}});
    ASSERT_FALSE(before_.empty());
  }

  // The server still answers, and the task from before the bad input ends
  // as it should, with its output intact (no task or result lost, §8).
  void expect_still_serving() {
    json ping = server_->request("ping");
    EXPECT_TRUE(ping.contains("result")) << "the server stopped answering: " << ping.dump();
    json result = server_->wait_result(before_);
    EXPECT_EQ(result.value("status", ""), "completed") << result.dump();
    EXPECT_EQ(result.value("exitCode", -1), 0);
    ASSERT_TRUE(result.contains("stdout"));
    EXPECT_EQ(result["stdout"].value("text", ""), "done\n");
    json listed = structured(server_->call_tool("listTasks", {{"name", "submitted-before-bad-input"}}));
    ASSERT_TRUE(listed.contains("tasks"));
    EXPECT_EQ(listed["tasks"].size(), 1u);
  }

  // The answer to a message whose id could not be used: id null.
  json null_id_error() {
    auto response = server_->wait_response(json(nullptr));
    if (!response) {
      ADD_FAILURE() << "no error response with id null";
      return json();
    }
    EXPECT_TRUE(response->contains("id") && response->at("id").is_null()) << response->dump();
    return *response;
  }

  ServerProcess* server_ = nullptr;
  std::string before_;
};

TEST_F(StdioBadInput, MalformedJsonIsParseErrorWithNullId) {
  ASSERT_TRUE(server_->send_raw("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"ping\"\n"));
  json error = null_id_error();
  EXPECT_EQ(error_code(error), -32700) << error.dump();
  ASSERT_TRUE(server_->send_raw("this is not json at all\n"));
  EXPECT_EQ(error_code(null_id_error()), -32700);
  ASSERT_TRUE(server_->send_raw("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}}\n"));
  EXPECT_EQ(error_code(null_id_error()), -32700) << "trailing garbage after the object";
  expect_still_serving();
}

TEST_F(StdioBadInput, BatchArrayIsInvalidRequest) {
  const std::int64_t inner = server_->next_id();
  json batch = json::array({{{"jsonrpc", "2.0"}, {"id", inner}, {"method", "ping"}}});
  ASSERT_TRUE(server_->send(batch));
  json error = null_id_error();
  EXPECT_EQ(error_code(error), -32600) << error.dump();
  expect_still_serving();
  // Nothing inside the batch was run.
  EXPECT_FALSE(server_->wait_response(json(inner), 0ms)) << "a request inside a batch was answered";
  ASSERT_TRUE(server_->send_raw("[]\n"));
  EXPECT_EQ(error_code(null_id_error()), -32600);
}

TEST_F(StdioBadInput, NullIdRequestIsInvalidRequest) {
  ASSERT_TRUE(server_->send_raw(R"({"jsonrpc":"2.0","id":null,"method":"ping"})"
                                "\n"));
  json error = null_id_error();
  EXPECT_EQ(error_code(error), -32600) << error.dump();
  // Other unusable ids: fractional, object, boolean.
  for (const char* raw :
       {R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})", R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})",
        R"({"jsonrpc":"2.0","id":true,"method":"ping"})"}) {
    ASSERT_TRUE(server_->send_raw(std::string(raw) + "\n"));
    EXPECT_EQ(error_code(null_id_error()), -32600) << raw;
  }
  expect_still_serving();
}

TEST_F(StdioBadInput, WrongJsonrpcVersionIsInvalidRequest) {
  const std::int64_t id = server_->next_id();
  ASSERT_TRUE(server_->send({{"jsonrpc", "1.0"}, {"id", id}, {"method", "ping"}}));
  auto response = server_->wait_response(json(id));
  ASSERT_TRUE(response);
  EXPECT_EQ(error_code(*response), -32600) << response->dump();
  const std::int64_t missing = server_->next_id();
  ASSERT_TRUE(server_->send({{"id", missing}, {"method", "ping"}}));
  response = server_->wait_response(json(missing));
  ASSERT_TRUE(response);
  EXPECT_EQ(error_code(*response), -32600) << response->dump();
  const std::int64_t number = server_->next_id();
  ASSERT_TRUE(server_->send({{"jsonrpc", 2.0}, {"id", number}, {"method", "ping"}}));
  response = server_->wait_response(json(number));
  ASSERT_TRUE(response);
  EXPECT_EQ(error_code(*response), -32600) << response->dump();
  expect_still_serving();
}

TEST_F(StdioBadInput, MethodNotAStringIsInvalidRequest) {
  const std::int64_t id = server_->next_id();
  ASSERT_TRUE(server_->send({{"jsonrpc", "2.0"}, {"id", id}, {"method", 42}}));
  auto response = server_->wait_response(json(id));
  ASSERT_TRUE(response);
  EXPECT_EQ(error_code(*response), -32600) << response->dump();
  const std::int64_t none = server_->next_id();
  ASSERT_TRUE(server_->send({{"jsonrpc", "2.0"}, {"id", none}}));
  response = server_->wait_response(json(none));
  ASSERT_TRUE(response);
  EXPECT_EQ(error_code(*response), -32600) << response->dump();
  expect_still_serving();
}

TEST_F(StdioBadInput, UnknownMethodIsMethodNotFound) {
  json response = server_->request("no/such/method");
  EXPECT_EQ(error_code(response), -32601) << response.dump();
  EXPECT_EQ(error_code(server_->request("completion/complete", {{"ref", {{"type", "ref/prompt"}, {"name", "run-tests"}}}})),
            -32601)
      << "a capability not declared is not served";
  expect_still_serving();
}

TEST_F(StdioBadInput, ParamsNotAnObjectIsAnError) {
  for (json params : {json::array({1, 2}), json("text"), json(7)}) {
    const std::int64_t id = server_->next_id();
    ASSERT_TRUE(
        server_->send({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/list"}, {"params", params}}));
    auto response = server_->wait_response(json(id));
    ASSERT_TRUE(response) << params.dump();
    int code = error_code(*response);
    EXPECT_TRUE(code == -32602 || code == -32600) << params.dump() << " → " << response->dump();
  }
  // tools/call with arguments that are not an object.
  json response = server_->request("tools/call", {{"name", "listTasks"}, {"arguments", json::array()}});
  EXPECT_TRUE(response.contains("error") || is_tool_error(response.value("result", json())))
      << response.dump();
  expect_still_serving();
}

TEST_F(StdioBadInput, OversizedMessageIsRefusedAndTheServerGoesOn) {
  // A real request, padded past the cap: it must not be run.
  const std::int64_t id = server_->next_id();
  json big{{"jsonrpc", "2.0"},
           {"id", id},
           {"method", "tools/call"},
           {"params",
            {{"name", "submitTask"},
             {"arguments", {{"command", "echo " + std::string(10000, 'x')}, {"name", "too-big"}}}}}};
  ASSERT_GT(big.dump().size(), 10000u);
  ASSERT_TRUE(server_->send(big));
  json error = null_id_error();
  EXPECT_EQ(error_code(error), -32600) << error.dump();
  EXPECT_NE(error["error"].value("message", "").find(std::to_string(kMaxMessageBytes)), std::string::npos)
      << "the error should say what the limit is: " << error.dump();
  // Exactly 10000 raw bytes of garbage, in one line.
  ASSERT_TRUE(server_->send_raw(std::string(10000, 'a') + "\n"));
  EXPECT_EQ(error_code(null_id_error()), -32600);
  // A message just under the cap is served.
  json ping = server_->request("ping", {{"pad", std::string(kMaxMessageBytes - 200, 'p')}});
  EXPECT_TRUE(ping.contains("result")) << ping.dump().substr(0, 300);
  expect_still_serving();
  json listed = structured(server_->call_tool("listTasks", {{"name", "too-big"}}));
  EXPECT_TRUE(listed.value("tasks", json::array()).empty()) << "the oversized submit must not have run";
}

TEST_F(StdioBadInput, MessageOfExactlyTheCapIsServedAndOneByteMoreIsNot) {
  auto padded_ping = [&](const std::string& id, std::size_t size) {
    json m{{"jsonrpc", "2.0"}, {"id", id}, {"method", "ping"}, {"params", {{"pad", ""}}}};
    const std::size_t base = m.dump().size();
    m["params"]["pad"] = std::string(size - base, 'p');
    EXPECT_EQ(m.dump().size(), size);
    return m.dump();
  };
  ASSERT_TRUE(server_->send_raw(padded_ping("at-cap", kMaxMessageBytes) + "\n"));
  auto at_cap = server_->wait_response(json("at-cap"));
  ASSERT_TRUE(at_cap);
  EXPECT_TRUE(at_cap->contains("result")) << at_cap->dump().substr(0, 300);
  // A CRLF ending does not count against the cap.
  ASSERT_TRUE(server_->send_raw(padded_ping("at-cap-crlf", kMaxMessageBytes) + "\r\n"));
  auto crlf = server_->wait_response(json("at-cap-crlf"));
  ASSERT_TRUE(crlf);
  EXPECT_TRUE(crlf->contains("result")) << crlf->dump().substr(0, 300);
  ASSERT_TRUE(server_->send_raw(padded_ping("over-cap", kMaxMessageBytes + 1) + "\n"));
  json error = null_id_error();
  EXPECT_EQ(error_code(error), -32600) << error.dump();
  expect_still_serving();
  EXPECT_FALSE(server_->wait_response(json("over-cap"), 0ms));
}

TEST_F(StdioBadInput, OversizedMessageArrivingInPiecesIsRefused) {
  // Written in chunks, so the server sees the line grow past the cap before its end.
  std::string line =
      R"({"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":")" + std::string(20000, 'z') + "\"}}\n";
  for (std::size_t at = 0; at < line.size(); at += 1000) {
    ASSERT_TRUE(server_->send_raw(std::string_view(line).substr(at, 1000)));
  }
  json error = null_id_error();
  EXPECT_EQ(error_code(error), -32600) << error.dump();
  expect_still_serving();
}

TEST_F(StdioBadInput, UnknownToolIsInvalidParams) {
  json response = server_->call_tool_response("noSuchTool", json::object());
  EXPECT_EQ(error_code(response), -32602) << response.dump();
  EXPECT_NE(response.dump().find("noSuchTool"), std::string::npos);
  json no_name = server_->request("tools/call", {{"arguments", json::object()}});
  EXPECT_EQ(error_code(no_name), -32602) << no_name.dump();
  expect_still_serving();
}

TEST_F(StdioBadInput, WrongArgumentTypesAreToolErrorsThatSayHowToFix) {
  struct Case {
    json args;
    std::vector<std::string> says;  // words the message must contain
  };
  std::vector<Case> cases{
      {{{"command", "true"}, {"priority", 5.7}}, {"priority", "integer"}},
      {{{"command", "true"}, {"priority", "5"}}, {"priority", "without quotes"}},
      {{{"command", "true"}, {"priority", 11}}, {"priority", "0", "10"}},
      {{{"command", 42}}, {"command", "string"}},
      {{{"command", "true"}, {"colour", "red"}}, {"colour", "allowed"}},
      {{{"command", "true"}, {"argv", json::array({"true"})}}, {"command", "argv"}},
      {json::object(), {"command", "argv"}},
      {{{"argv", "ls -l"}}, {"argv", "command"}},
      {{{"command", "true"}, {"env", {{"N", 1}}}}, {"env", "string"}},
      {{{"command", "true"}, {"timeoutSec", -1}}, {"timeoutSec"}},
      {{{"command", "true"}, {"tags", "one"}}, {"tags", "["}},
      {{{"command", "true"}, {"retry", {{"maxAttempts", 3}, {"backoff", "linear"}}}}, {"backoff", "fixed"}},
      {{{"command", "true"}, {"runAt", "tomorrow"}}, {"runAt", "Z"}},
      {{{"command", "true"}, {"cwd", "/definitely/not/a/dir"}}, {"cwd", "exist"}},
  };
  for (const Case& c : cases) {
    json result = server_->call_tool("submitTask", c.args);
    ASSERT_TRUE(is_tool_error(result)) << c.args.dump() << " was accepted: " << result.dump();
    std::string text = result_text(result);
    for (const std::string& word : c.says) {
      EXPECT_NE(text.find(word), std::string::npos)
          << c.args.dump() << ": \"" << text << "\" should mention " << word;
    }
  }
  // The other tools check their arguments the same way.
  EXPECT_TRUE(is_tool_error(server_->call_tool("getResult", {{"taskId", before_}, {"maxBytes", "10"}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("getResult", {{"taskId", before_}, {"waitSec", 51}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("getResult", {{"taskId", before_}, {"stream", "stdin"}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("getResult", {{"taskId", 5}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("getResult", json::object())));
  EXPECT_TRUE(is_tool_error(server_->call_tool("listTasks", {{"limit", 0}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("listTasks", {{"status", "done"}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("listTasks", {{"cursor", "garbage"}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("cancelTask", json::object())));
  EXPECT_TRUE(is_tool_error(server_->call_tool("cancelTask", {{"all", "true"}})));
  EXPECT_TRUE(is_tool_error(server_->call_tool("getStatus", {{"taskIds", "t1"}})));
  // None of the refused submits queued anything.
  json all = structured(server_->call_tool("listTasks"));
  EXPECT_EQ(all.value("tasks", json::array()).size(), 1u) << all.dump();
  expect_still_serving();
}

TEST_F(StdioBadInput, UnknownTaskIdIsAToolError) {
  const std::string unknown = "t" + std::string(26, 'a');
  for (const char* tool : {"getStatus", "getResult", "cancelTask"}) {
    json result = server_->call_tool(tool, {{"taskId", unknown}});
    ASSERT_TRUE(is_tool_error(result)) << tool << ": " << result.dump();
    EXPECT_NE(result_text(result).find("unknown task"), std::string::npos) << result_text(result);
    EXPECT_NE(result_text(result).find("listTasks"), std::string::npos)
        << "should say how to find the right id: " << result_text(result);
  }
  json not_an_id = server_->call_tool("getResult", {{"taskId", "build-42"}, {"waitSec", 1}});
  ASSERT_TRUE(is_tool_error(not_an_id));
  EXPECT_NE(result_text(not_an_id).find("submitTask"), std::string::npos) << result_text(not_an_id);
  // Several ids: the unknown ones are listed, not an error.
  json several = structured(server_->call_tool("getStatus", {{"taskIds", {before_, unknown}}}));
  EXPECT_EQ(several.value("unknown", json::array()), json::array({unknown}));
  EXPECT_EQ(several.value("tasks", json::array()).size(), 1u);
  json dependent = server_->call_tool("submitTask", {{"command", "true"}, {"dependsOn", {unknown}}});
  EXPECT_TRUE(is_tool_error(dependent));
  expect_still_serving();
}

TEST_F(StdioBadInput, InvalidUtf8IsRefused) {
  ASSERT_TRUE(server_->send_raw(
      "{\"jsonrpc\":\"2.0\",\"id\":\"utf\",\"method\":\"ping\",\"params\":{\"x\":\"\xff\xfe\"}}\n"));
  json error = null_id_error();
  EXPECT_EQ(error_code(error), -32700) << error.dump();
  // In a tool argument: nothing is run with mangled bytes.
  ASSERT_TRUE(server_->send_raw(
      "{\"jsonrpc\":\"2.0\",\"id\":\"utf2\",\"method\":\"tools/call\",\"params\":{\"name\":\"submitTask\","
      "\"arguments\":{\"command\":\"echo \xc3\x28\",\"name\":\"bad-utf8\"}}}\n"));
  EXPECT_EQ(error_code(null_id_error()), -32700);
  // Outside strings, and a lone continuation byte.
  ASSERT_TRUE(server_->send_raw("\x80{}\n"));
  EXPECT_NE(error_code(null_id_error()), 0);
  expect_still_serving();
  json listed = structured(server_->call_tool("listTasks", {{"name", "bad-utf8"}}));
  EXPECT_TRUE(listed.value("tasks", json::array()).empty());
  // Valid multi-byte UTF-8 goes through untouched, both ways.
  std::string id = server_->submit({{"command", "printf 'h\xc3\xa9llo \xe2\x9c\x93'"}});
  json result = server_->wait_result(id);
  EXPECT_EQ(result["stdout"].value("text", ""), "h\xc3\xa9llo \xe2\x9c\x93");
}

TEST_F(StdioBadInput, TaskOutputThatIsNotUtf8IsSanitized) {
  std::string id = server_->submit({{"command", "printf 'a\\377b\\n'"}});
  json result = server_->wait_result(id);
  EXPECT_EQ(result.value("status", ""), "completed");
  EXPECT_EQ(result["stdout"].value("text", ""),
            "a\xef\xbf\xbd"
            "b\n");
  expect_still_serving();
}

TEST_F(StdioBadInput, EmptyLinesAreIgnored) {
  const std::size_t before = server_->messages_received();
  ASSERT_TRUE(server_->send_raw("\n\n\r\n\n"));
  json ping = server_->request("ping");
  EXPECT_TRUE(ping.contains("result"));
  EXPECT_EQ(server_->messages_received(), before + 1) << "an empty line must not be answered";
  expect_still_serving();
}

TEST_F(StdioBadInput, CrlfLineEndingsWork) {
  ASSERT_TRUE(server_->send_raw(R"({"jsonrpc":"2.0","id":"crlf-1","method":"ping"})"
                                "\r\n"));
  auto ping = server_->wait_response(json("crlf-1"));
  ASSERT_TRUE(ping);
  EXPECT_TRUE(ping->contains("result")) << ping->dump();
  ASSERT_TRUE(server_->send_raw(
      R"({"jsonrpc":"2.0","id":"crlf-2","method":"tools/call","params":{"name":"submitTask","arguments":{"command":"echo crlf"}}})"
      "\r\n"));
  auto submitted = server_->wait_response(json("crlf-2"));
  ASSERT_TRUE(submitted && submitted->contains("result")) << (submitted ? submitted->dump() : "none");
  std::string id = structured(submitted->at("result")).value("taskId", "");
  json result = server_->wait_result(id);
  EXPECT_EQ(result["stdout"].value("text", ""), "crlf\n");
  expect_still_serving();
}

TEST_F(StdioBadInput, SeveralMessagesInOneWriteAreEachAnswered) {
  ASSERT_TRUE(server_->send_raw(R"({"jsonrpc":"2.0","id":"a","method":"ping"})"
                                "\n"
                                R"({"jsonrpc":"2.0","id":"b","method":"ping"})"
                                "\n"
                                "{broken\n"
                                R"({"jsonrpc":"2.0","id":"c","method":"ping"})"
                                "\n"));
  for (const char* id : {"a", "b", "c"}) {
    auto r = server_->wait_response(json(id));
    ASSERT_TRUE(r) << id;
    EXPECT_TRUE(r->contains("result")) << r->dump();
  }
  EXPECT_EQ(error_code(null_id_error()), -32700);
  expect_still_serving();
}

TEST_F(StdioBadInput, DeeplyNestedJsonIsRefused) {
  std::string deep = R"({"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":)" +
                     std::string(1500, '[') + std::string(1500, ']') + "}}\n";
  ASSERT_LT(deep.size(), kMaxMessageBytes);
  ASSERT_TRUE(server_->send_raw(deep));
  auto response = server_->next_message();
  ASSERT_TRUE(response);
  EXPECT_TRUE(response->contains("error")) << response->dump();
  expect_still_serving();
}

TEST_F(StdioBadInput, DuplicateIdOfARequestInFlightIsRefused) {
  std::string slow = server_->submit({{"command", "sleep 20"}});
  ASSERT_TRUE(server_->send(
      {{"jsonrpc", "2.0"},
       {"id", "same"},
       {"method", "tools/call"},
       {"params", {{"name", "getResult"}, {"arguments", {{"taskId", slow}, {"waitSec", 20}}}}}}));
  ASSERT_TRUE(server_->send({{"jsonrpc", "2.0"}, {"id", "same"}, {"method", "ping"}}));
  auto first = server_->wait_response(json("same"));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->contains("error")) << "the second request with an id still in use: " << first->dump();
  structured(server_->call_tool("cancelTask", {{"taskId", slow}}));
  auto second = server_->wait_response(json("same"));
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->contains("result")) << second->dump();
  expect_still_serving();
}

}  // namespace
}  // namespace orch::test
