#include "engine/keeper_host_protocol.h"

#include <charconv>

namespace orch::engine::keeper_host {

namespace {

void put(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

// The next NUL-terminated field, advancing `at`; nullopt when none is left.
std::optional<std::string_view> next_field(std::string_view bytes, std::size_t& at) {
  const std::size_t end = bytes.find('\0', at);
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view field = bytes.substr(at, end - at);
  at = end + 1;
  return field;
}

std::optional<std::size_t> next_count(std::string_view bytes, std::size_t& at) {
  auto field = next_field(bytes, at);
  if (!field || field->empty()) return std::nullopt;
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(field->data(), field->data() + field->size(), n);
  if (ec != std::errc() || ptr != field->data() + field->size() || n > bytes.size()) return std::nullopt;
  return n;
}

}  // namespace

std::string encode_request(const Request& request) {
  std::string out;
  put(out, std::to_string(request.keeper_argv.size()));
  put(out, std::to_string(request.env.size()));
  put(out, request.cwd);
  for (const auto& a : request.keeper_argv) put(out, a);
  for (const auto& e : request.env) put(out, e);
  return out;
}

std::optional<Request> decode_request(std::string_view bytes) {
  std::size_t at = 0;
  auto argc = next_count(bytes, at);
  auto envc = argc ? next_count(bytes, at) : std::nullopt;
  auto cwd = envc ? next_field(bytes, at) : std::nullopt;
  if (!cwd || *argc == 0) return std::nullopt;
  Request r;
  r.cwd = *cwd;
  for (std::size_t i = 0; i < *argc + *envc; ++i) {
    auto field = next_field(bytes, at);
    if (!field) return std::nullopt;
    (i < *argc ? r.keeper_argv : r.env).emplace_back(*field);
  }
  if (at != bytes.size()) return std::nullopt;
  return r;
}

std::size_t command_line_bytes(const std::vector<std::string>& argv) {
  std::size_t n = 0;
  for (const auto& a : argv) n += a.size() + 1;
  return n;
}

}  // namespace orch::engine::keeper_host
