#include "common/json_text.h"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace orch {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;

constexpr std::uint64_t has_zero_byte(std::uint64_t v) { return (v - kOnes) & ~v & kHighs; }

// True when none of the 8 bytes needs escaping or UTF-8 checking: all are
// ASCII, none is below 0x20, a quote or a backslash.
bool plain_ascii(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  std::uint64_t special = (v & kHighs) | ((v - kOnes * 0x20) & ~v & kHighs) |
                          has_zero_byte(v ^ (kOnes * '"')) | has_zero_byte(v ^ (kOnes * '\\'));
  return special == 0;
}

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  std::size_t run = 0;  // start of the plain bytes not yet copied
  const std::size_t n = s.size();
  while (i < n) {
    if (i + 8 <= n && plain_ascii(s.data() + i)) {
      i += 8;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    out.append(s.data() + run, i - run);
    if (c >= 0x80) {
      std::size_t skip = 0;
      if (std::size_t len = utf8_sequence_length(s, i, skip); len > 0) {
        out.append(s.data() + i, len);
        i += len;
      } else {
        out += kReplacement;
        i += skip;
      }
    } else {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
      }
      ++i;
    }
    run = i;
  }
  out.append(s.data() + run, n - run);
  out.push_back('"');
}

template <typename Int>
void append_integer(std::string& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace

std::size_t utf8_sequence_length(std::string_view bytes, std::size_t i, std::size_t& skip) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  const unsigned char c = p[i];
  // Length and the allowed range of the second byte: the narrowed ranges
  // exclude overlongs, surrogates and values above U+10FFFF.
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c == 0xE0) { len = 3; lo = 0xA0; }
  else if (c >= 0xE1 && c <= 0xEC) len = 3;
  else if (c == 0xED) { len = 3; hi = 0x9F; }
  else if (c >= 0xEE && c <= 0xEF) len = 3;
  else if (c == 0xF0) { len = 4; lo = 0x90; }
  else if (c >= 0xF1 && c <= 0xF3) len = 4;
  else if (c == 0xF4) { len = 4; hi = 0x8F; }
  if (len == 0) {
    skip = 1;
    return 0;
  }
  std::size_t k = 1;  // bytes of the sequence that are valid so far
  while (k < len && i + k < n) {
    const unsigned char b = p[i + k];
    const unsigned char min = k == 1 ? lo : 0x80;
    const unsigned char max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) break;
    ++k;
  }
  if (k == len) return len;
  skip = k;  // one U+FFFD for the whole cut-off or broken prefix
  return 0;
}

namespace {

// Where the first invalid UTF-8 sequence starts, or bytes.size(). ASCII is
// skipped eight bytes at a time.
std::size_t first_invalid_utf8(std::string_view bytes) {
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  while (i < n) {
    if (i + 8 <= n) {
      std::uint64_t v;
      std::memcpy(&v, bytes.data() + i, sizeof v);
      if ((v & kHighs) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t skip = 0;
    const std::size_t len = utf8_sequence_length(bytes, i, skip);
    if (len == 0) return i;
    i += len;
  }
  return n;
}

}  // namespace

std::string sanitize_utf8_owned(std::string bytes) {
  if (first_invalid_utf8(bytes) == bytes.size()) return bytes;
  return sanitize_utf8(bytes);
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const std::size_t n = bytes.size();
  std::size_t i = first_invalid_utf8(bytes), run = 0;
  while (i < n) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t skip = 0;
    if (std::size_t len = utf8_sequence_length(bytes, i, skip); len > 0) {
      i += len;
      continue;
    }
    out.append(bytes.data() + run, i - run);
    out += kReplacement;
    i += skip;
    run = i;
  }
  out.append(bytes.data() + run, n - run);
  return out;
}

void append_json_text(std::string& out, const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out.push_back(',');
        first = false;
        append_escaped(out, key);
        out.push_back(':');
        append_json_text(out, item);
      }
      out.push_back('}');
      return;
    }
    case Type::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : value) {
        if (!first) out.push_back(',');
        first = false;
        append_json_text(out, item);
      }
      out.push_back(']');
      return;
    }
    case Type::string: append_escaped(out, value.get_ref<const std::string&>()); return;
    case Type::boolean: out += value.get<bool>() ? "true" : "false"; return;
    case Type::number_integer: append_integer(out, value.get<std::int64_t>()); return;
    case Type::number_unsigned: append_integer(out, value.get<std::uint64_t>()); return;
    case Type::null: out += "null"; return;
    default:  // floats (nlohmann's shortest round-trip form), binary, discarded
      out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
  }
}

namespace {

// Bytes of the text before escaping: string and key lengths, punctuation and
// a guess for scalars. Reserving it spares a megabyte-sized window the
// string's doublings (each a fresh allocation, its pages faulted in anew).
std::size_t unescaped_size(const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::object: {
      std::size_t n = 2;
      for (const auto& [key, item] : value.items()) n += key.size() + 4 + unescaped_size(item);
      return n;
    }
    case Type::array: {
      std::size_t n = 2;
      for (const auto& item : value) n += 1 + unescaped_size(item);
      return n;
    }
    case Type::string: return value.get_ref<const std::string&>().size() + 2;
    default: return 8;
  }
}

}  // namespace

std::string json_text(const nlohmann::json& value) {
  std::string out;
  const std::size_t size = unescaped_size(value);
  out.reserve(size + size / 32);  // room for some escapes
  append_json_text(out, value);
  return out;
}

bool json_nests_deeper_than(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > limit) return true;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return false;
}

}  // namespace orch
