// The five tools end to end: a real Engine in a temp state dir, real /bin/sh
// tasks, calls through ToolRegistry::call_tool as the MCP layer makes them.
#include "tools/tool_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <stop_token>

#include "engine/engine.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::tools {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A JSON Schema check for the subset the tools use: type, enum, const,
// required, properties, items, additionalProperties: false. `strict` also
// flags properties the schema does not describe, so schema and output cannot
// drift apart unnoticed.
void validate(const json& schema, const json& value, const std::string& path, bool strict,
              std::vector<std::string>& errors) {
  auto type_ok = [&value](const std::string& t) {
    if (t == "object") return value.is_object();
    if (t == "array") return value.is_array();
    if (t == "string") return value.is_string();
    if (t == "integer") return value.is_number_integer();
    if (t == "number") return value.is_number();
    if (t == "boolean") return value.is_boolean();
    if (t == "null") return value.is_null();
    return false;
  };
  if (auto t = schema.find("type"); t != schema.end()) {
    bool ok = false;
    if (t->is_string()) ok = type_ok(*t);
    else for (const auto& one : *t) ok = ok || type_ok(one);
    if (!ok) {
      errors.push_back(path + ": expected " + t->dump() + ", got " + value.dump());
      return;
    }
  }
  if (auto e = schema.find("enum"); e != schema.end()) {
    if (std::find(e->begin(), e->end(), value) == e->end()) errors.push_back(path + ": not in enum: " + value.dump());
  }
  if (auto c = schema.find("const"); c != schema.end() && *c != value) errors.push_back(path + ": not const");
  if (value.is_object()) {
    if (auto r = schema.find("required"); r != schema.end()) {
      for (const auto& key : *r) {
        if (!value.contains(key.get<std::string>())) errors.push_back(path + ": missing " + key.get<std::string>());
      }
    }
    const json props = schema.value("properties", json::object());
    bool closed = strict || schema.value("additionalProperties", json(true)) == json(false);
    for (const auto& [key, item] : value.items()) {
      if (props.contains(key)) validate(props.at(key), item, path + "." + key, strict, errors);
      else if (closed && schema.contains("properties")) errors.push_back(path + ": unexpected " + key);
    }
  }
  if (value.is_array()) {
    if (auto items = schema.find("items"); items != schema.end()) {
      for (std::size_t i = 0; i < value.size(); ++i) {
        validate(*items, value[i], path + "[" + std::to_string(i) + "]", strict, errors);
      }
    }
  }
}

struct ProgressCall {
  double progress;
  std::optional<double> total;
  std::string message;
};

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override { open_engine(4); }

  void open_engine(int max_concurrent) {
    registry_.reset();
    engine_.reset();
    engine::EngineOptions options;
    options.state_dir = dir_.path() / "state";
    options.max_concurrent = max_concurrent;
    options.kill_grace = 2000ms;
    auto opened = engine::Engine::open(options);
    ASSERT_TRUE(opened) << opened.error().message;
    engine_ = std::move(opened.value());
    registry_ = std::make_unique<ToolRegistry>(*engine_);
  }

  mcp::ToolCallContext context(bool with_token = true) {
    mcp::ToolCallContext ctx;
    ctx.stop = stop_.get_token();
    ctx.has_progress_token = with_token;
    ctx.report_progress = [this](double p, std::optional<double> total, const std::string& msg) {
      std::lock_guard lock(mu_);
      progress_.push_back({p, total, msg});
    };
    return ctx;
  }

  json raw(const std::string& name, const json& args) {
    auto ctx = context();
    auto result = registry_->call_tool(name, args, ctx);
    EXPECT_TRUE(result.has_value()) << name;
    return result.value_or(json());
  }

  // A successful call: text equals structuredContent, which conforms to the
  // tool's outputSchema. Returns structuredContent.
  json ok(const std::string& name, const json& args) {
    json result = raw(name, args);
    EXPECT_FALSE(result.value("isError", false)) << name << " " << args.dump() << " → " << result.dump();
    if (!result.contains("structuredContent")) return json();
    const json& structured = result.at("structuredContent");
    EXPECT_EQ(result.at("content").size(), 1u);
    EXPECT_EQ(result.at("content")[0].at("type"), "text");
    EXPECT_EQ(json::parse(result.at("content")[0].at("text").get<std::string>()), structured);
    std::vector<std::string> errors;
    validate(registry_->find(name)->output_schema, structured, name, true, errors);
    EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
    return structured;
  }

  // A failed call: isError, one text block, no structuredContent. Returns the text.
  std::string err(const std::string& name, const json& args) {
    json result = raw(name, args);
    EXPECT_EQ(result.value("isError", false), true) << name << " " << args.dump() << " → " << result.dump();
    EXPECT_FALSE(result.contains("structuredContent"));
    if (!result.contains("content")) return "";
    return result.at("content")[0].at("text").get<std::string>();
  }

  std::string submit(const json& args) {
    json out = ok("submitTask", args);
    return out.value("taskId", "");
  }

  json wait_result(const std::string& id, const json& extra = json::object()) {
    json args{{"taskId", id}, {"waitSec", 20}};
    args.update(extra);
    return ok("getResult", args);
  }

  std::string status_of(const std::string& id) {
    json out = ok("getStatus", {{"taskId", id}});
    return out.contains("task") ? out.at("task").at("status").get<std::string>() : "";
  }

  std::vector<ProgressCall> progress_calls() {
    std::lock_guard lock(mu_);
    return progress_;
  }

  test::TempDir dir_;  // first declared: outlives the engine and its spool
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<ToolRegistry> registry_;
  std::stop_source stop_;
  std::mutex mu_;
  std::vector<ProgressCall> progress_;
};

TEST_F(ToolsTest, ListsSixToolsWithSchemasAndHonestAnnotations) {
  json tools = registry_->list_tools();
  ASSERT_TRUE(tools.is_array());
  std::vector<std::string> names;
  for (const json& t : tools) {
    names.push_back(t.at("name"));
    EXPECT_FALSE(t.at("title").get<std::string>().empty());
    EXPECT_GT(t.at("description").get<std::string>().size(), 80u);
    EXPECT_EQ(t.at("inputSchema").at("type"), "object");
    EXPECT_EQ(t.at("inputSchema").at("additionalProperties"), false);
    EXPECT_EQ(t.at("outputSchema").at("type"), "object");
    EXPECT_FALSE(t.at("inputSchema").at("properties").empty());
    const json& a = t.at("annotations");
    for (const char* hint : {"readOnlyHint", "idempotentHint", "openWorldHint"}) {
      EXPECT_TRUE(a.at(hint).is_boolean()) << t.at("name") << " " << hint;
    }
    if (a.at("readOnlyHint") == true) {
      EXPECT_FALSE(a.contains("destructiveHint"));
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"submitTask", "getStatus", "getResult", "cancelTask", "listTasks",
                                             "runTask"}));
  // Only the tools that start work run as native tasks (docs/PROTOCOL.md).
  EXPECT_EQ(tools[0].at("execution"), (json{{"taskSupport", "optional"}}));
  EXPECT_EQ(tools[5].at("execution"), (json{{"taskSupport", "required"}}));
  for (int i : {1, 2, 3, 4}) EXPECT_FALSE(tools[i].contains("execution")) << names[i];
  EXPECT_EQ(tools[5].at("inputSchema"), tools[0].at("inputSchema"));
  EXPECT_EQ(tools[5].at("outputSchema"), tools[2].at("outputSchema"));
  EXPECT_EQ(tools[0].at("annotations"), (json{{"readOnlyHint", false}, {"destructiveHint", false},
                                              {"idempotentHint", false}, {"openWorldHint", true}}));
  EXPECT_EQ(tools[3].at("annotations"), (json{{"readOnlyHint", false}, {"destructiveHint", true},
                                              {"idempotentHint", true}, {"openWorldHint", false}}));
  for (int i : {1, 2, 4}) {
    EXPECT_EQ(tools[i].at("annotations"),
              (json{{"readOnlyHint", true}, {"idempotentHint", true}, {"openWorldHint", false}}));
  }
  EXPECT_THAT(ToolRegistry::server_instructions(), HasSubstr("waitSec"));
}

TEST_F(ToolsTest, UnknownToolIsNotAResult) {
  auto ctx = context();
  EXPECT_FALSE(registry_->call_tool("runJob", json::object(), ctx).has_value());
}

// Without a native task (a session older than 2025-11-25) runTask waits for
// the outcome itself.
TEST_F(ToolsTest, RunTaskWithoutATaskWaitsForTheOutcome) {
  auto ctx = context();
  auto done = registry_->call_tool("runTask", {{"command", "echo ran; exit 2"}}, ctx);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->value("isError", false), true) << done->dump();
  const json& sc = done->at("structuredContent");
  EXPECT_EQ(sc.at("status"), "failed");
  EXPECT_EQ(sc.at("exitCode"), 2);
  EXPECT_EQ(sc.at("stdout").at("text"), "ran\n");
  auto bad = registry_->call_tool("runTask", {{"command", "true"}, {"priority", 5.7}}, ctx);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->value("isError", false), true);
}

TEST_F(ToolsTest, EchoCompletesWithItsOutput) {
  json submitted = ok("submitTask", {{"command", "echo hi"}});
  std::string id = submitted.at("taskId");
  EXPECT_TRUE(engine::looks_like_task_id(id));
  EXPECT_FALSE(submitted.contains("deduplicated"));
  json r = wait_result(id);
  EXPECT_EQ(r.at("status"), "completed");
  EXPECT_EQ(r.at("reason"), "exit_code");
  EXPECT_EQ(r.at("exitCode"), 0);
  EXPECT_EQ(r.at("stdout").at("text"), "hi\n");
  EXPECT_EQ(r.at("stdout").at("totalBytes"), 3);
  EXPECT_EQ(r.at("stdout").at("nextOffset"), 3);
  EXPECT_EQ(r.at("stdout").at("truncated"), false);
  EXPECT_EQ(r.at("stdout").at("capped"), false);
  EXPECT_EQ(r.at("stderr").at("text"), "");
  EXPECT_TRUE(r.contains("durationMs"));
}

TEST_F(ToolsTest, ArgvEnvCwdAndStdinReachTheProcess) {
  std::string a = submit({{"argv", {"/bin/sh", "-c", "printf '%s' \"$GREETING\""}}, {"env", {{"GREETING", "hello"}}}});
  EXPECT_EQ(wait_result(a).at("stdout").at("text"), "hello");
  std::string b = submit({{"command", "pwd"}, {"cwd", dir_.path().string()}});
  EXPECT_EQ(wait_result(b).at("stdout").at("text"), std::filesystem::canonical(dir_.path()).string() + "\n");
  std::string c = submit({{"command", "cat"}, {"stdin", "from stdin"}});
  EXPECT_EQ(wait_result(c).at("stdout").at("text"), "from stdin");
  // Without stdin the child reads /dev/null and does not hang.
  std::string d = submit({{"command", "cat; echo done"}});
  EXPECT_EQ(wait_result(d).at("stdout").at("text"), "done\n");
}

TEST_F(ToolsTest, WindowsPageByOffsetTailAndMaxBytes) {
  std::string id = submit({{"command", "printf 0123456789; printf err >&2"}});
  ASSERT_EQ(wait_result(id).at("status"), "completed");
  json mid = ok("getResult", {{"taskId", id}, {"stream", "stdout"}, {"offset", 2}, {"maxBytes", 3}});
  EXPECT_FALSE(mid.contains("stderr"));
  EXPECT_EQ(mid.at("stdout"), (json{{"text", "234"}, {"offset", 2}, {"nextOffset", 5}, {"totalBytes", 10},
                                    {"truncated", true}, {"capped", false}}));
  json tail = ok("getResult", {{"taskId", id}, {"stream", "stdout"}, {"tail", true}, {"maxBytes", 4}});
  EXPECT_EQ(tail.at("stdout").at("text"), "6789");
  EXPECT_EQ(tail.at("stdout").at("offset"), 6);
  EXPECT_EQ(tail.at("stdout").at("nextOffset"), 10);
  json err_only = ok("getResult", {{"taskId", id}, {"stream", "stderr"}});
  EXPECT_FALSE(err_only.contains("stdout"));
  EXPECT_EQ(err_only.at("stderr").at("text"), "err");
  // Paging with nextOffset reads everything exactly once.
  std::string all;
  std::uint64_t offset = 0;
  for (int i = 0; i < 10; ++i) {
    json page = ok("getResult", {{"taskId", id}, {"stream", "stdout"}, {"offset", offset}, {"maxBytes", 4}});
    all += page.at("stdout").at("text").get<std::string>();
    offset = page.at("stdout").at("nextOffset");
    if (offset >= page.at("stdout").at("totalBytes").get<std::uint64_t>()) break;
  }
  EXPECT_EQ(all, "0123456789");
}

TEST_F(ToolsTest, InvalidUtf8BecomesReplacementCharacters) {
  std::string id = submit({{"command", "printf 'ok \\377\\376 \\342\\202'"}});
  json r = wait_result(id, {{"stream", "stdout"}});
  EXPECT_EQ(r.at("stdout").at("text"), "ok \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD");
  EXPECT_EQ(r.at("stdout").at("totalBytes"), 8);
}

TEST_F(ToolsTest, LongPollReturnsAsSoonAsTheTaskEnds) {
  auto go = dir_.path() / "go";
  std::string id = submit({{"command", "while [ ! -e '" + go.string() + "' ]; do sleep 0.02; done; echo done"}});
  // Running before the wait starts, so its first progress says "running for"
  // (on a loaded machine the task may still be queued a moment after submit).
  ASSERT_TRUE(test::wait_until([&] { return status_of(id) == "running"; }));
  auto pending = std::async(std::launch::async, [&] {
    return ok("getResult", {{"taskId", id}, {"waitSec", 50}});
  });
  EXPECT_EQ(pending.wait_for(200ms), std::future_status::timeout);  // still waiting
  std::ofstream(go).put('x');
  auto released = std::chrono::steady_clock::now();
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - released, 5s);
  json r = pending.get();
  EXPECT_EQ(r.at("status"), "completed");
  EXPECT_EQ(r.at("stdout").at("text"), "done\n");
  // The wait said at once where the task stood, without a progress line of its own.
  auto calls = progress_calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_THAT(calls.front().message, HasSubstr("running for"));
  EXPECT_FALSE(calls.front().total.has_value());
}

TEST_F(ToolsTest, AWaitThatRunsOutReturnsTheOutputSoFar) {
  auto go = dir_.path() / "go";
  std::string id = submit({{"command", "echo started; while [ ! -e '" + go.string() + "' ]; do sleep 0.02; done"}});
  ASSERT_TRUE(test::wait_until([&] {
    return ok("getResult", {{"taskId", id}}).at("stdout").at("text") == "started\n";
  }));
  json r = ok("getResult", {{"taskId", id}, {"waitSec", 0.3}});
  EXPECT_EQ(r.at("status"), "running");
  EXPECT_EQ(r.at("stdout").at("text"), "started\n");
  EXPECT_FALSE(r.contains("exitCode"));
  std::ofstream(go).put('x');
  EXPECT_EQ(wait_result(id).at("status"), "completed");
}

TEST_F(ToolsTest, ProgressIncreasesWhileWaiting) {
  auto step2 = dir_.path() / "step2";
  auto step3 = dir_.path() / "step3";
  auto until = [](const std::filesystem::path& p) {
    return "while [ ! -e '" + p.string() + "' ]; do sleep 0.02; done; ";
  };
  std::string id = submit({{"command", "echo '::progress 1/3 one'; " + until(step2) +
                                           "echo '::progress 2/3 two'; " + until(step3) +
                                           "echo '::progress 3/3 three'"}});
  auto pending = std::async(std::launch::async, [&] {
    return ok("getResult", {{"taskId", id}, {"waitSec", 50}});
  });
  auto saw = [&](const std::string& text) {
    return test::wait_until([&] {
      for (const auto& call : progress_calls()) {
        if (call.message.find(text) != std::string::npos) return true;
      }
      return false;
    });
  };
  ASSERT_TRUE(saw("1/3 one"));
  std::ofstream(step2).put('x');
  ASSERT_TRUE(saw("2/3 two"));
  std::ofstream(step3).put('x');
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(pending.get().at("status"), "completed");
  auto calls = progress_calls();
  ASSERT_GE(calls.size(), 2u);
  for (std::size_t i = 1; i < calls.size(); ++i) {
    EXPECT_GT(calls[i].progress, calls[i - 1].progress) << i;
  }
}

TEST_F(ToolsTest, NoProgressWithoutAToken) {
  std::string id = submit({{"command", "echo '::progress 1/2 half'; echo '::progress 2/2 all'"}});
  auto ctx = context(false);
  auto r = registry_->call_tool("getResult", {{"taskId", id}, {"waitSec", 20}}, ctx);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("structuredContent").at("status"), "completed");
  EXPECT_TRUE(progress_calls().empty());
}

TEST_F(ToolsTest, AStoppedRequestStopsWaiting) {
  auto go = dir_.path() / "go";
  std::string id = submit({{"command", "while [ ! -e '" + go.string() + "' ]; do sleep 0.02; done"}});
  auto pending = std::async(std::launch::async, [&] {
    return raw("getResult", {{"taskId", id}, {"waitSec", 50}});
  });
  ASSERT_TRUE(test::wait_until([&] { return status_of(id) == "running"; }));
  stop_.request_stop();
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  std::ofstream(go).put('x');
}

TEST_F(ToolsTest, GetStatusForOneSeveralAndTheOrchestrator) {
  std::string id = submit({{"command", "true"}, {"name", "noop"}, {"tags", {"a", "b"}}});
  wait_result(id);
  json one = ok("getStatus", {{"taskId", id}});
  EXPECT_EQ(one.at("task").at("name"), "noop");
  EXPECT_EQ(one.at("task").at("tags"), json::array({"a", "b"}));
  EXPECT_EQ(one.at("task").at("status"), "completed");
  EXPECT_TRUE(one.at("task").contains("finishedAt"));

  std::string missing = "t" + std::string(26, 'a');
  json many = ok("getStatus", {{"taskIds", {id, missing}}});
  ASSERT_EQ(many.at("tasks").size(), 1u);
  EXPECT_EQ(many.at("tasks")[0].at("taskId"), id);
  EXPECT_EQ(many.at("unknown"), json::array({missing}));

  json orch = ok("getStatus", json::object());
  EXPECT_GE(orch.at("orchestrator").at("tasks").at("completed"), 1);
  EXPECT_EQ(orch.at("orchestrator").at("maxConcurrent"), 4);
  EXPECT_EQ(orch.at("orchestrator").at("restarts").at("count"), 0);
  EXPECT_FALSE(orch.at("orchestrator").at("version").get<std::string>().empty());
  // Absent arguments read as {}.
  auto ctx = context();
  auto none = registry_->call_tool("getStatus", json(), ctx);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->at("structuredContent").contains("orchestrator"));
}

TEST_F(ToolsTest, CancelStopsARunningTask) {
  std::string id = submit({{"command", "sleep 30"}});
  ASSERT_TRUE(test::wait_until([&] { return status_of(id) == "running"; }));
  json c = ok("cancelTask", {{"taskId", id}});
  EXPECT_EQ(c.at("cancelled"), json::array({id}));
  EXPECT_EQ(c.at("task").at("taskId"), id);
  if (c.at("task").at("status") == "running") {
    EXPECT_EQ(c.at("task").at("cancelRequested"), true);
  }
  json r = wait_result(id);
  EXPECT_EQ(r.at("status"), "cancelled");
  EXPECT_EQ(r.at("reason"), "cancelled");
  // A second cancel says it is over and how it ended.
  EXPECT_THAT(err("cancelTask", {{"taskId", id}}), HasSubstr("already cancelled"));
}

TEST_F(ToolsTest, CancellingAFinishedTaskSaysHowItEnded) {
  std::string id = submit({{"command", "true"}});
  wait_result(id);
  EXPECT_EQ(err("cancelTask", {{"taskId", id}}),
            "task " + id + " already completed (exited with code 0); nothing to cancel");
}

TEST_F(ToolsTest, CancelAllByTag) {
  std::string a = submit({{"command", "sleep 30"}, {"tags", {"batch"}}});
  std::string b = submit({{"command", "sleep 30"}, {"tags", {"batch"}}, {"delaySec", 60}});
  std::string other = submit({{"command", "sleep 30"}});
  json c = ok("cancelTask", {{"all", true}, {"tag", "batch"}});
  std::vector<std::string> ids = c.at("cancelled");
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> want{a, b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);
  EXPECT_EQ(wait_result(a).at("status"), "cancelled");
  EXPECT_EQ(wait_result(b).at("status"), "cancelled");
  EXPECT_NE(status_of(other), "cancelled");
  json rest = ok("cancelTask", {{"all", true}});
  EXPECT_EQ(rest.at("cancelled"), json::array({other}));
}

TEST_F(ToolsTest, ListTasksNewestFirstWithFiltersAndCursor) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(submit({{"command", "true"}, {"name", "job-" + std::to_string(i)}, {"tags", {"list"}}}));
  }
  std::string other = submit({{"command", "true"}, {"name", "unrelated"}});
  json first = ok("listTasks", {{"tag", "list"}, {"limit", 2}});
  ASSERT_EQ(first.at("tasks").size(), 2u);
  EXPECT_EQ(first.at("tasks")[0].at("taskId"), ids[2]);
  EXPECT_EQ(first.at("tasks")[1].at("taskId"), ids[1]);
  ASSERT_TRUE(first.contains("nextCursor"));
  json second = ok("listTasks", {{"tag", "list"}, {"limit", 2}, {"cursor", first.at("nextCursor")}});
  ASSERT_EQ(second.at("tasks").size(), 1u);
  EXPECT_EQ(second.at("tasks")[0].at("taskId"), ids[0]);
  EXPECT_FALSE(second.contains("nextCursor"));
  json named = ok("listTasks", {{"name", "unrel"}});
  ASSERT_EQ(named.at("tasks").size(), 1u);
  EXPECT_EQ(named.at("tasks")[0].at("taskId"), other);
  for (const auto& id : ids) wait_result(id);
  wait_result(other);
  EXPECT_EQ(ok("listTasks", {{"status", "completed"}}).at("tasks").size(), 4u);
  EXPECT_EQ(ok("listTasks", {{"status", "running"}}).at("tasks").size(), 0u);
  EXPECT_THAT(err("listTasks", {{"cursor", "garbage"}}), HasSubstr("cursor"));
  EXPECT_THAT(err("listTasks", {{"limit", 0}}), HasSubstr("limit must be an integer from 1 to 200"));
  EXPECT_THAT(err("listTasks", {{"status", "done"}}), HasSubstr("one of: queued, waiting"));
}

TEST_F(ToolsTest, IdempotencyKeyReturnsTheFirstTask) {
  json first = ok("submitTask", {{"command", "true"}, {"idempotencyKey", "deploy-42"}});
  json again = ok("submitTask", {{"command", "true"}, {"idempotencyKey", "deploy-42"}});
  EXPECT_EQ(again.at("taskId"), first.at("taskId"));
  EXPECT_EQ(again.at("deduplicated"), true);
}

// Read together, submits are answered when the batch ends, from one commit;
// a call with bad arguments and the other tools answer at once.
TEST_F(ToolsTest, SubmitsInABatchAreAnsweredWhenItEnds) {
  std::vector<json> replies(4);
  std::vector<bool> answered(4, false);
  auto call = [&](std::size_t i, const std::string& name, const json& args) {
    auto ctx = context(false);
    registry_->call_tool_in_batch(name, args, ctx, [&, i](std::optional<json> r) {
      ASSERT_TRUE(r.has_value());
      replies[i] = std::move(*r);
      answered[i] = true;
    });
  };
  call(0, "submitTask", {{"command", "echo one"}});
  call(1, "submitTask", {{"command", "echo two"}});
  call(2, "submitTask", {{"command", 7}});
  call(3, "listTasks", json::object());
  EXPECT_FALSE(answered[0]);
  EXPECT_FALSE(answered[1]);
  ASSERT_TRUE(answered[2]);
  EXPECT_EQ(replies[2].value("isError", false), true);
  ASSERT_TRUE(answered[3]);
  EXPECT_TRUE(replies[3].at("structuredContent").at("tasks").empty());

  registry_->end_batch();
  ASSERT_TRUE(answered[0] && answered[1]);
  for (std::size_t i : {0u, 1u}) {
    ASSERT_FALSE(replies[i].value("isError", false)) << replies[i].dump();
    std::vector<std::string> errors;
    validate(registry_->find("submitTask")->output_schema, replies[i].at("structuredContent"), "submitTask", true,
             errors);
    EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  }
  json one = wait_result(replies[0].at("structuredContent").at("taskId"));
  EXPECT_EQ(one.at("status"), "completed");
  EXPECT_EQ(one.at("stdout").at("text"), "one\n");
  EXPECT_EQ(wait_result(replies[1].at("structuredContent").at("taskId")).at("status"), "completed");
}

TEST_F(ToolsTest, QueuedTasksReportTheirPosition) {
  open_engine(1);
  auto go = dir_.path() / "go";
  std::string blocker = submit({{"command", "while [ ! -e '" + go.string() + "' ]; do sleep 0.02; done"}});
  ASSERT_TRUE(test::wait_until([&] { return status_of(blocker) == "running"; }));
  json queued = ok("submitTask", {{"command", "true"}, {"priority", 7}});
  EXPECT_EQ(queued.at("status"), "queued");
  EXPECT_EQ(queued.at("queuePosition"), 1);
  json delayed = ok("submitTask", {{"command", "true"}, {"delaySec", 3600}});
  EXPECT_EQ(delayed.at("status"), "waiting");
  EXPECT_FALSE(delayed.contains("queuePosition"));
  std::ofstream(go).put('x');
  EXPECT_EQ(wait_result(queued.at("taskId")).at("status"), "completed");
  ok("cancelTask", {{"taskId", delayed.at("taskId")}});
}

TEST_F(ToolsTest, BadSubmitArgumentsAreToolErrorsThatSayHowToFixThem) {
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"priority", 5.7}}), HasSubstr("priority must be an integer"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"priority", "5"}}), HasSubstr("without quotes"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"priority", true}}), HasSubstr("a boolean"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"priority", 11}}), HasSubstr("from 0 to 10"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"prio", 5}}),
              HasSubstr("allowed: command, argv, profile"));
  EXPECT_THAT(err("submitTask", json::object()), HasSubstr("exactly one of"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"argv", {"true"}}}), HasSubstr("only one of"));
  EXPECT_THAT(err("submitTask", {{"command", ""}}), HasSubstr("must not be empty"));
  EXPECT_THAT(err("submitTask", {{"command", {"ls", "-l"}}}), HasSubstr("use argv"));
  EXPECT_THAT(err("submitTask", {{"argv", "ls -l"}}), HasSubstr("use command"));
  EXPECT_THAT(err("submitTask", {{"argv", json::array()}}), HasSubstr("at least 1 item"));
  EXPECT_EQ(err("submitTask", {{"profile", "claude"}, {"params", {{"prompt", "hi"}}}}),
            "unknown profile 'claude': no profiles are configured; use command or argv");
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"params", {{"a", "b"}}}}), HasSubstr("only used with profile"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"cwd", (dir_.path() / "nope").string()}}),
              HasSubstr("does not exist"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"env", {{"A=B", "1"}}}}), HasSubstr("'='"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"env", {{"PORT", 80}}}}), HasSubstr("must be a string"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"timeoutSec", 0}}), HasSubstr("greater than 0"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"timeoutSec", 8 * 24 * 3600}}), HasSubstr("at most 604800"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"retry", {{"maxAttempts", 3}, {"jitter", true}}}}),
              HasSubstr("allowed: maxAttempts, backoff, delayMs, maxDelayMs"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"retry", {{"backoff", "linear"}}}}), HasSubstr("fixed, exponential"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"runAt", "2026-11-23T21:00:00Z"}, {"delaySec", 5}}),
              HasSubstr("not both"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"runAt", "tomorrow"}}), HasSubstr("ISO 8601 UTC"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"dependsOn", {"t" + std::string(26, 'b')}}}),
              HasSubstr("unknown task id"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"name", std::string(201, 'n')}}), HasSubstr("too long"));
  EXPECT_THAT(err("submitTask", {{"command", "true"}, {"idempotencyKey", ""}}), HasSubstr("must not be empty"));
  auto ctx = context();
  auto not_object = registry_->call_tool("submitTask", json::array({"echo"}), ctx);
  ASSERT_TRUE(not_object);
  EXPECT_EQ(not_object->value("isError", false), true);
  // Nothing was queued by any of these.
  EXPECT_EQ(ok("listTasks", json::object()).at("tasks").size(), 0u);
}

TEST_F(ToolsTest, BadReadArgumentsAreToolErrors) {
  std::string id = submit({{"command", "true"}});
  EXPECT_THAT(err("getResult", {{"taskId", id}, {"waitSec", 60}}), HasSubstr("capped at 50 seconds"));
  EXPECT_THAT(err("getResult", {{"taskId", id}, {"waitSec", 60}}), HasSubstr("call getResult again"));
  EXPECT_THAT(err("getResult", {{"taskId", id}, {"tail", true}, {"offset", 5}}), HasSubstr("cannot be combined"));
  EXPECT_THAT(err("getResult", {{"taskId", id}, {"maxBytes", 0}}), HasSubstr("from 1 to 1048576"));
  EXPECT_THAT(err("getResult", {{"taskId", id}, {"stream", "all"}}), HasSubstr("stdout, stderr, both"));
  EXPECT_THAT(err("getResult", {{"waitSec", 1}}), HasSubstr("needs taskId"));
  std::string unknown = "t" + std::string(26, 'z');
  EXPECT_EQ(err("getStatus", {{"taskId", unknown}}),
            "unknown task id '" + unknown + "' (it may have finished long ago and been evicted); "
            "list tasks with listTasks");
  EXPECT_THAT(err("getStatus", {{"taskId", "build-1"}}), HasSubstr("that is not a task id"));
  EXPECT_THAT(err("getResult", {{"taskId", "build-1"}, {"waitSec", 5}}), HasSubstr("unknown task id 'build-1'"));
  EXPECT_THAT(err("getStatus", {{"taskId", id}, {"taskIds", {id}}}), HasSubstr("not both"));
  EXPECT_THAT(err("getStatus", {{"taskIds", json::array()}}), HasSubstr("at least 1 item"));
  EXPECT_THAT(err("cancelTask", json::object()), HasSubstr("needs taskId"));
  EXPECT_THAT(err("cancelTask", {{"taskId", id}, {"all", true}}), HasSubstr("not both"));
  EXPECT_THAT(err("cancelTask", {{"all", false}}), HasSubstr("cancels nothing"));
  EXPECT_THAT(err("cancelTask", {{"taskId", unknown}}), HasSubstr("unknown task id"));
}

}  // namespace
}  // namespace orch::tools
