#include "mcp/jsonrpc.h"

#include <string>

#include <gtest/gtest.h>

namespace orch::mcp {
namespace {

using nlohmann::json;

Invalid expect_invalid(std::string_view text) {
  Message message = parse_message(text);
  EXPECT_TRUE(std::holds_alternative<Invalid>(message)) << text;
  if (auto* invalid = std::get_if<Invalid>(&message)) return *invalid;
  return {};
}

TEST(JsonRpc, RequestIsClassifiedWithIdMethodAndParams) {
  auto message = parse_message(R"({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"x"}})");
  ASSERT_TRUE(std::holds_alternative<Request>(message));
  const auto& request = std::get<Request>(message);
  EXPECT_EQ(request.id, json(7));
  EXPECT_EQ(request.method, "tools/list");
  EXPECT_EQ(request.params, json({{"cursor", "x"}}));
}

TEST(JsonRpc, StringIdIsAccepted) {
  auto message = parse_message(R"({"jsonrpc":"2.0","id":"abc","method":"ping"})");
  ASSERT_TRUE(std::holds_alternative<Request>(message));
  EXPECT_EQ(std::get<Request>(message).id, json("abc"));
}

TEST(JsonRpc, MissingParamsBecomeAnEmptyObject) {
  auto message = parse_message(R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  ASSERT_TRUE(std::holds_alternative<Request>(message));
  EXPECT_EQ(std::get<Request>(message).params, json::object());
}

TEST(JsonRpc, MessageWithoutIdIsANotification) {
  auto message = parse_message(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  ASSERT_TRUE(std::holds_alternative<Notification>(message));
  EXPECT_EQ(std::get<Notification>(message).method, "notifications/initialized");
  EXPECT_EQ(std::get<Notification>(message).params, json::object());
}

TEST(JsonRpc, ResultAndErrorFromThePeerAreResponses) {
  auto ok = parse_message(R"({"jsonrpc":"2.0","id":3,"result":{}})");
  ASSERT_TRUE(std::holds_alternative<Response>(ok));
  EXPECT_TRUE(std::get<Response>(ok).result.has_value());
  EXPECT_FALSE(std::get<Response>(ok).error.has_value());

  auto failed = parse_message(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no"}})");
  ASSERT_TRUE(std::holds_alternative<Response>(failed));
  EXPECT_EQ(std::get<Response>(failed).error->at("code"), -32600);
}

TEST(JsonRpc, InvalidJsonIsParseErrorWithNullId) {
  auto invalid = expect_invalid(R"({"jsonrpc":"2.0","id":1,"method":)");
  EXPECT_EQ(invalid.code, kParseError);
  EXPECT_TRUE(invalid.id.is_null());
  EXPECT_EQ(expect_invalid("not json").code, kParseError);
}

TEST(JsonRpc, InvalidUtf8IsParseError) {
  auto invalid = expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}");
  EXPECT_EQ(invalid.code, kParseError);
}

TEST(JsonRpc, BatchIsRejectedWithNullId) {
  auto invalid = expect_invalid(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  EXPECT_EQ(invalid.code, kInvalidRequest);
  EXPECT_TRUE(invalid.id.is_null());
  EXPECT_NE(invalid.message.find("batch requests are not supported"), std::string::npos);
  EXPECT_EQ(expect_invalid("[]").code, kInvalidRequest);
}

TEST(JsonRpc, NonObjectIsInvalidRequest) {
  for (const char* text : {"1", "\"ping\"", "null", "true"}) {
    auto invalid = expect_invalid(text);
    EXPECT_EQ(invalid.code, kInvalidRequest) << text;
    EXPECT_TRUE(invalid.id.is_null());
  }
}

TEST(JsonRpc, WrongOrMissingVersionIsInvalidRequestWithTheReadableId) {
  auto wrong = expect_invalid(R"({"jsonrpc":"1.0","id":5,"method":"ping"})");
  EXPECT_EQ(wrong.code, kInvalidRequest);
  EXPECT_EQ(wrong.id, json(5));
  EXPECT_EQ(expect_invalid(R"({"id":5,"method":"ping"})").code, kInvalidRequest);
  EXPECT_EQ(expect_invalid(R"({"jsonrpc":2.0,"id":5,"method":"ping"})").code, kInvalidRequest);
}

TEST(JsonRpc, NonStringMethodIsInvalidRequest) {
  auto invalid = expect_invalid(R"({"jsonrpc":"2.0","id":"x","method":1})");
  EXPECT_EQ(invalid.code, kInvalidRequest);
  EXPECT_EQ(invalid.id, json("x"));
}

TEST(JsonRpc, NullIdIsInvalidRequest) {
  auto invalid = expect_invalid(R"({"jsonrpc":"2.0","id":null,"method":"ping"})");
  EXPECT_EQ(invalid.code, kInvalidRequest);
  EXPECT_TRUE(invalid.id.is_null());
}

TEST(JsonRpc, FloatBoolAndObjectIdsAreInvalidRequestWithNullId) {
  for (const char* id : {"1.5", "true", "{}", "[]"}) {
    auto invalid = expect_invalid(std::string(R"({"jsonrpc":"2.0","method":"ping","id":)") + id + "}");
    EXPECT_EQ(invalid.code, kInvalidRequest) << id;
    EXPECT_TRUE(invalid.id.is_null()) << id;
  }
}

TEST(JsonRpc, ArrayParamsAreInvalidParams) {
  auto invalid = expect_invalid(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":[1,2]})");
  EXPECT_EQ(invalid.code, kInvalidParams);
  EXPECT_EQ(invalid.id, json(2));
}

TEST(JsonRpc, ScalarParamsAreInvalidRequest) {
  for (const char* params : {"1", "\"x\"", "null", "false"}) {
    auto invalid = expect_invalid(std::string(R"({"jsonrpc":"2.0","id":2,"method":"m","params":)") + params + "}");
    EXPECT_EQ(invalid.code, kInvalidRequest) << params;
    EXPECT_EQ(invalid.id, json(2));
  }
}

TEST(JsonRpc, MethodTogetherWithResultIsInvalid) {
  auto invalid = expect_invalid(R"({"jsonrpc":"2.0","id":4,"method":"ping","result":{}})");
  EXPECT_EQ(invalid.code, kInvalidRequest);
  EXPECT_EQ(invalid.id, json(4));
}

TEST(JsonRpc, ObjectWithoutMethodOrResultIsInvalid) {
  EXPECT_EQ(expect_invalid(R"({"jsonrpc":"2.0","id":4})").code, kInvalidRequest);
}

TEST(JsonRpc, MalformedResponsesAreInvalid) {
  EXPECT_EQ(expect_invalid(R"({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}})").code,
            kInvalidRequest);
  EXPECT_EQ(expect_invalid(R"({"jsonrpc":"2.0","id":1,"error":"bad"})").code, kInvalidRequest);
  EXPECT_EQ(expect_invalid(R"({"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"m"}})").code,
            kInvalidRequest);
  EXPECT_EQ(expect_invalid(R"({"jsonrpc":"2.0","id":true,"result":{}})").code, kInvalidRequest);
}

TEST(JsonRpc, DeepNestingIsRefusedBeforeParsing) {
  std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"a":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}}";
  auto invalid = expect_invalid(deep);
  EXPECT_EQ(invalid.code, kInvalidRequest);
  EXPECT_NE(invalid.message.find("nests deeper"), std::string::npos);
}

TEST(JsonRpc, BracketsInsideStringsDoNotCountAsNesting) {
  std::string text = R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"s":")" +
                     std::string(1000, '[') + R"(\"{{"}})";
  EXPECT_TRUE(std::holds_alternative<Request>(parse_message(text)));
}

TEST(JsonRpc, BuildersProduceJsonRpcMessages) {
  EXPECT_EQ(result_response(json(1), json::object()),
            json::parse(R"({"jsonrpc":"2.0","id":1,"result":{}})"));
  EXPECT_EQ(error_response(json("a"), kMethodNotFound, "Method not found: x"),
            json::parse(R"({"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"Method not found: x"}})"));
  EXPECT_EQ(error_response(json(), kInvalidParams, "bad", json{{"field", "name"}}),
            json::parse(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad","data":{"field":"name"}}})"));
  EXPECT_EQ(notification_message("notifications/progress", json{{"progress", 1}}),
            json::parse(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}})"));
}

TEST(JsonRpc, SerializeIsOneLineAndReplacesInvalidUtf8) {
  json message = result_response(json(1), json{{"text", "line one\nline two\r\n"},
                                               {"bad", std::string("ok\xff\xfe")}});
  std::string text = serialize(message);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("\\n"), std::string::npos);
  EXPECT_NE(text.find("ok\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
  auto round_trip = parse_message(text);
  EXPECT_TRUE(std::holds_alternative<Response>(round_trip));
}

TEST(JsonRpc, IdToStringIsTheWireForm) {
  EXPECT_EQ(to_string(json(42)), "42");
  EXPECT_EQ(to_string(json("x")), "\"x\"");
}

}  // namespace
}  // namespace orch::mcp
