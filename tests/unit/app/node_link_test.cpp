// The link between nodes, both ends over a real HTTP server on 127.0.0.1
// port 0: what one node's routes answer is what the other's fetch returns.
#include "app/node_link.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "tests/support/postgres_db.h"
#include "transport/http_server.h"

namespace orch::app {
namespace {

using nlohmann::json;

constexpr const char* kToken = "node-link-secret-token";

class NodeLink : public ::testing::Test {
 protected:
  void SetUp() override {
    transport::HttpServerOptions options;
    options.token = kToken;
    auto listening = transport::HttpServer::listen(options);
    ASSERT_TRUE(listening) << listening.error().message;
    server_ = std::move(*listening);
    NodeReads reads;
    reads.output = [this](const engine::TaskId& id, engine::StreamKind stream, const engine::ReadRequest& req) {
      return output(id, stream, req);
    };
    reads.result = [this](const engine::TaskId& id) -> Result<std::optional<std::string>> {
      if (id == "pool-task") return std::optional<std::string>(R"({"answer": 42, "text": "é"})");
      if (id == "no-result") return std::optional<std::string>();
      if (id == "busy") return make_error(ErrorCode::Unavailable, "the store is unreachable");
      return make_error(ErrorCode::NotFound, "task " + id + " did not run on this node");
    };
    add_node_routes(*server_, std::move(reads));
    server_->start();
    node_.name = "node-b";
    node_.url = server_->base_url();
    node_.token = kToken;
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  Result<engine::OutputWindow> output(const engine::TaskId& id, engine::StreamKind stream,
                                      const engine::ReadRequest& req) {
    last_read_ = req;
    last_stream_ = stream;
    if (id != "ran-here") return make_error(ErrorCode::NotFound, "task " + id + " did not run on this node");
    // Every byte value, so that base64 is what carries them, not JSON text.
    std::string file;
    for (int c = 0; c < 256; ++c) file += static_cast<char>(c);
    const std::uint64_t start = req.tail ? file.size() - std::min<std::uint64_t>(req.max_bytes, file.size())
                                         : std::min<std::uint64_t>(req.offset, file.size());
    const std::uint64_t end = std::min<std::uint64_t>(start + req.max_bytes, file.size());
    engine::OutputWindow w;
    w.data = file.substr(start, end - start);
    w.offset = start;
    w.next_offset = end;
    w.file_bytes = file.size();
    w.more = end < file.size();
    return w;
  }

  httplib::Result raw_get(const std::string& path, bool with_token = true) {
    httplib::Client client("127.0.0.1", server_->port());
    httplib::Headers headers;
    if (with_token) headers.emplace("Authorization", std::string("Bearer ") + kToken);
    return client.Get(path, headers);
  }

  std::unique_ptr<transport::HttpServer> server_;
  engine::NodeInfo node_;
  engine::ReadRequest last_read_;
  engine::StreamKind last_stream_ = engine::StreamKind::Stdout;
};

TEST_F(NodeLink, AWindowOfOutputCrossesIntactWithEveryByteValue) {
  auto window = fetch_node_output(node_, "ran-here", engine::StreamKind::Stderr, {.offset = 10, .max_bytes = 100});
  ASSERT_TRUE(window) << window.error().message;
  EXPECT_EQ(last_stream_, engine::StreamKind::Stderr);
  EXPECT_EQ(last_read_.offset, 10u);
  EXPECT_EQ(last_read_.max_bytes, 100u);
  EXPECT_FALSE(last_read_.tail);
  ASSERT_EQ(window->data.size(), 100u);
  for (std::size_t i = 0; i < window->data.size(); ++i) {
    EXPECT_EQ(static_cast<unsigned char>(window->data[i]), i + 10) << "byte " << i;
  }
  EXPECT_EQ(window->offset, 10u);
  EXPECT_EQ(window->next_offset, 110u);
  EXPECT_EQ(window->file_bytes, 256u);
  EXPECT_TRUE(window->more);

  auto tail = fetch_node_output(node_, "ran-here", engine::StreamKind::Stdout, {.max_bytes = 6, .tail = true});
  ASSERT_TRUE(tail) << tail.error().message;
  EXPECT_TRUE(last_read_.tail);
  EXPECT_EQ(tail->data, std::string("\xFA\xFB\xFC\xFD\xFE\xFF"));
  EXPECT_EQ(tail->offset, 250u);
  EXPECT_FALSE(tail->more);
}

TEST_F(NodeLink, AWindowLargerThanANodeServesIsCutToTheLimit) {
  auto window = fetch_node_output(node_, "ran-here", engine::StreamKind::Stdout, {.max_bytes = 64u << 20});
  ASSERT_TRUE(window) << window.error().message;
  EXPECT_EQ(last_read_.max_bytes, kMaxNodeWindowBytes);
}

TEST_F(NodeLink, APoolResultCrossesAsJson) {
  auto result = fetch_node_result(node_, "pool-task");
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_TRUE(result->has_value());
  EXPECT_EQ(json::parse(**result), json::parse(R"({"answer": 42, "text": "é"})"));
  auto none = fetch_node_result(node_, "no-result");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->has_value());
}

TEST_F(NodeLink, ATaskThatDidNotRunThereIsNotFoundNamingTheNode) {
  auto window = fetch_node_output(node_, "elsewhere", engine::StreamKind::Stdout, {});
  ASSERT_FALSE(window);
  EXPECT_EQ(window.error().code, ErrorCode::NotFound);
  EXPECT_NE(window.error().message.find("node-b"), std::string::npos) << window.error().message;
  EXPECT_NE(window.error().message.find("did not run on this node"), std::string::npos) << window.error().message;
  auto result = fetch_node_result(node_, "elsewhere");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::NotFound);
}

TEST_F(NodeLink, ANodeThatCannotReadNowIsUnavailable) {
  auto result = fetch_node_result(node_, "busy");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unavailable);
  EXPECT_NE(result.error().message.find("the store is unreachable"), std::string::npos) << result.error().message;
}

TEST_F(NodeLink, ANodeThatIsDownIsUnavailableNamingNodeAndUrlButNeverTheToken) {
  engine::NodeInfo down = node_;
  down.url = "http://127.0.0.1:" + std::to_string(test::closed_port());
  auto window = fetch_node_output(down, "ran-here", engine::StreamKind::Stdout, {});
  ASSERT_FALSE(window);
  EXPECT_EQ(window.error().code, ErrorCode::Unavailable);
  EXPECT_NE(window.error().message.find("node-b"), std::string::npos) << window.error().message;
  EXPECT_NE(window.error().message.find(down.url), std::string::npos) << window.error().message;
  EXPECT_EQ(window.error().message.find(kToken), std::string::npos) << window.error().message;

  engine::NodeInfo no_http = node_;
  no_http.url.clear();
  auto result = fetch_node_result(no_http, "pool-task");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unavailable);
}

TEST_F(NodeLink, AWrongTokenIsRefusedAndTheMessageDoesNotRepeatIt) {
  engine::NodeInfo wrong = node_;
  wrong.token = "not-the-token";
  auto result = fetch_node_result(wrong, "pool-task");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unavailable);
  EXPECT_NE(result.error().message.find("401"), std::string::npos) << result.error().message;
  EXPECT_EQ(result.error().message.find("not-the-token"), std::string::npos) << result.error().message;
  auto r = raw_get("/nodes/result?task=pool-task", false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST_F(NodeLink, BadParametersAre400WithAMessageSayingWhatIsAllowed) {
  struct Case {
    std::string path;
    std::string says;
  };
  for (const Case& c : {Case{"/nodes/output", "task is required"},
                        Case{"/nodes/output?task=ran-here&stream=both", "stream must be stdout or stderr"},
                        Case{"/nodes/output?task=ran-here&offset=-1", "offset must be a whole number"},
                        Case{"/nodes/output?task=ran-here&maxBytes=0", "maxBytes must be a whole number"},
                        Case{"/nodes/output?task=ran-here&maxBytes=99999999", "maxBytes must be a whole number"},
                        Case{"/nodes/output?task=ran-here&tail=yes", "tail must be 0 or 1"},
                        Case{"/nodes/output?task=ran-here&limit=5", "unknown query parameter 'limit'"},
                        Case{"/nodes/result", "task is required"},
                        Case{"/nodes/result?task=" + std::string(300, 'x'), "at most 256 bytes"}}) {
    auto r = raw_get(c.path);
    ASSERT_TRUE(r) << c.path;
    EXPECT_EQ(r->status, 400) << c.path;
    json body = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << r->body;
    EXPECT_NE(body.value("error", "").find(c.says), std::string::npos) << c.path << ": " << r->body;
  }
  // And the node still answers.
  EXPECT_TRUE(fetch_node_result(node_, "pool-task"));
}

TEST_F(NodeLink, ATaskIdIsPercentEncodedOnTheWay) {
  auto window = fetch_node_output(node_, "odd id&stream=x", engine::StreamKind::Stdout, {});
  ASSERT_FALSE(window);
  EXPECT_EQ(window.error().code, ErrorCode::NotFound);
  EXPECT_NE(window.error().message.find("odd id&stream=x"), std::string::npos) << window.error().message;
}

TEST(NodeLinkUrl, AServerOnEveryInterfaceIsAdvertisedByItsHostName) {
  EXPECT_EQ(advertised_url("http://0.0.0.0:8765", "build-7"), "http://build-7:8765");
  EXPECT_EQ(advertised_url("http://[::]:8765", "build-7"), "http://build-7:8765");
  EXPECT_EQ(advertised_url("http://127.0.0.1:8765", "build-7"), "http://127.0.0.1:8765");
  EXPECT_EQ(advertised_url("http://10.0.0.5:80", "build-7"), "http://10.0.0.5:80");
  EXPECT_FALSE(this_host_name().empty());
}

}  // namespace
}  // namespace orch::app
