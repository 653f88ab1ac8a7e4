#include "transport/http_client.h"

#include "transport/http_module.h"
#include "transport/http_text.h"

namespace orch::transport {

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (ascii_iequals(key, name)) return value;
  }
  return "";
}

Result<std::unique_ptr<HttpClient>> HttpClient::open(const std::string& base_url, const HttpClientOptions& options) {
  auto module = http_module();
  if (!module) return module.error();
  return (*module)->open(base_url, options);
}

}  // namespace orch::transport
