// Base64 (RFC 4648 §4, the standard alphabet with '=' padding): how task
// output, which may be any bytes, crosses JSON between nodes.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace orch {

std::string base64_encode(std::string_view bytes);
// The bytes, or nullopt when `text` is not canonical padded base64 (a length
// that is not a multiple of 4, a character outside the alphabet, padding
// anywhere but the end, or non-zero bits left over before the padding).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace orch
