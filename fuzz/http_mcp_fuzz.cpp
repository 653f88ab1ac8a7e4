// The Streamable HTTP endpoint (mcp/streamable_http): what our /mcp handler
// does with a request's method, headers and body once cpp-httplib has read
// them (httplib itself is not fuzzed). An input is up to kMaxRequests
// requests separated by a line "===", each written as
//
//   METHOD
//   header-name: value        (any number)
//                             (a blank line)
//   body
//
// and "$SESSION" in a header value stands for the Mcp-Session-Id of the last
// session an earlier request of the input opened, so one input can initialize
// and then use its session. Sessions an input opened are deleted at its end.
// Every JSON body we answer must be valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/mcp_fixture.h"
#include "mcp/streamable_http.h"

namespace {

constexpr std::size_t kMaxRequests = 8;

std::string_view take_line(std::string_view& text) {
  const std::size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  return line;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

orch::transport::HttpRequest parse_request(std::string_view text, const std::string& session) {
  orch::transport::HttpRequest request;
  request.path = "/mcp";
  request.remote_addr = "127.0.0.1";
  request.method = std::string(take_line(text));
  while (!text.empty()) {
    std::string_view line = take_line(text);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    std::string value(colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1));
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (value == "$SESSION") value = session;
    request.headers.emplace_back(lower(line.substr(0, colon)), std::move(value));
  }
  request.body = std::string(text);
  return request;
}

orch::mcp::StreamableHttp& endpoint() {
  static orch::mcp::StreamableHttp http(orch::fuzz::mcp_server(), orch::mcp::StreamableHttpOptions{});
  return http;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string session;
  std::vector<std::string> opened;
  for (std::size_t n = 0; !text.empty() && n < kMaxRequests; ++n) {
    const std::size_t end = text.find("\n===\n");
    orch::transport::HttpRequest request = parse_request(text.substr(0, end), session);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 5);

    orch::transport::HttpResponse response = endpoint().handle(request);
    if (response.stream) {
      response.stream->mark_gone();  // as a client that went away
    } else if (!response.body.empty() && response.content_type == "application/json") {
      orch::fuzz::check_outgoing(response.body);
    }
    for (const auto& [name, value] : response.headers) {
      if (lower(name) == "mcp-session-id") {
        session = value;
        opened.push_back(value);
      }
    }
  }
  for (const std::string& id : opened) {
    orch::transport::HttpRequest bye;
    bye.method = "DELETE";
    bye.path = "/mcp";
    bye.headers.emplace_back("mcp-session-id", id);
    (void)endpoint().handle(bye);
  }
  return 0;
}
