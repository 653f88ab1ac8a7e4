#include "tools/args.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/json_text.h"

namespace orch::tools {

namespace {

// Messages quote what the caller sent, shortened: a 16 MiB string must not
// come back in an error.
constexpr std::size_t kQuoteMax = 60;

std::string quote(std::string_view s) {
  std::string shown(s.substr(0, kQuoteMax));
  std::string out = json_text(json(shown));
  if (s.size() > kQuoteMax) out.insert(out.size() - 1, "…");
  return out;
}

std::string format_number(double v) {
  if (std::isfinite(v) && std::trunc(v) == v && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(v));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string join(std::span<const std::string_view> items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

Error invalid(std::string message) { return make_error(ErrorCode::InvalidArgument, std::move(message)); }

// A string that holds a number is the most common slip ("5" for 5): say so.
std::string unquote_hint(const json& value, std::string_view kind) {
  if (!value.is_string()) return "";
  const auto& s = value.get_ref<const std::string&>();
  const char* end = s.data() + s.size();
  bool whole = false;
  if (kind == "integer") {
    std::int64_t parsed = 0;
    auto [ptr, ec] = std::from_chars(s.data(), end, parsed);
    whole = ec == std::errc() && ptr == end;
  } else {
    double parsed = 0;
    auto [ptr, ec] = std::from_chars(s.data(), end, parsed);
    whole = ec == std::errc() && ptr == end;
  }
  if (!whole || s.empty()) return "";
  return "; send the " + std::string(kind) + " without quotes, e.g. " + s;
}

Status check_string_rule(const std::string& s, std::string_view what, const StringRule& rule) {
  if (s.size() < rule.min_bytes) {
    if (rule.min_bytes == 1) return invalid(std::string(what) + " must not be empty");
    return invalid(std::string(what) + " must be at least " + std::to_string(rule.min_bytes) +
                   " bytes long");
  }
  if (s.size() > rule.max_bytes) {
    return invalid(std::string(what) + " is too long (" + std::to_string(s.size()) +
                   " bytes; at most " + std::to_string(rule.max_bytes) + ")");
  }
  if (!rule.allow_nul && s.find('\0') != std::string::npos) {
    return invalid(std::string(what) + " must not contain NUL characters (\\u0000)");
  }
  return {};
}

}  // namespace

const json* find_arg(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Status check_object(const json& value, std::string_view what,
                    std::span<const std::string_view> allowed) {
  if (!value.is_object()) {
    return invalid(std::string(what) + " must be a JSON object; got " + describe_value(value));
  }
  for (const auto& [key, unused] : value.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string known = allowed.empty() ? "none" : join(allowed);
      return invalid("unknown argument " + quote(key) + " in " + std::string(what) +
                     "; allowed: " + known);
    }
  }
  return {};
}

std::string describe_value(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return std::string("a boolean (") + (value.get<bool>() ? "true" : "false") + ")";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer (" + value.dump() + ")";
    case json::value_t::number_float: return "a number with a fraction (" + format_number(value.get<double>()) + ")";
    case json::value_t::string: return "a string (" + quote(value.get_ref<const std::string&>()) + ")";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unsupported JSON value";
  }
}

Result<std::string> read_string(const json& value, std::string_view what, StringRule rule) {
  if (!value.is_string()) {
    return invalid(std::string(what) + " must be a string; got " + describe_value(value));
  }
  const auto& s = value.get_ref<const std::string&>();
  if (auto ok = check_string_rule(s, what, rule); !ok) return ok.error();
  return s;
}

Result<std::int64_t> read_integer(const json& value, std::string_view what, std::int64_t min,
                                  std::int64_t max) {
  std::string range = max == std::numeric_limits<std::int64_t>::max()
                          ? "an integer >= " + std::to_string(min)
                          : "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value.is_number_integer()) {
    return invalid(std::string(what) + " must be " + range + "; got " + describe_value(value) +
                   unquote_hint(value, "integer"));
  }
  // Above INT64_MAX only an unsigned JSON integer can go; it is out of range.
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return invalid(std::string(what) + " must be " + range + "; got " + value.dump());
  }
  std::int64_t v = value.get<std::int64_t>();
  if (v < min || v > max) {
    return invalid(std::string(what) + " must be " + range + "; got " + std::to_string(v));
  }
  return v;
}

Result<double> read_number(const json& value, std::string_view what, NumberRule rule) {
  std::string range = std::string("a number ") + (rule.min_exclusive ? "greater than " : ">= ") +
                      format_number(rule.min);
  if (rule.max < std::numeric_limits<double>::max()) range += " and at most " + format_number(rule.max);
  if (!value.is_number()) {
    return invalid(std::string(what) + " must be " + range + "; got " + describe_value(value) +
                   unquote_hint(value, "number"));
  }
  double v = value.get<double>();
  bool below = rule.min_exclusive ? !(v > rule.min) : !(v >= rule.min);
  if (below || v > rule.max || !std::isfinite(v)) {
    return invalid(std::string(what) + " must be " + range + "; got " + format_number(v));
  }
  return v;
}

Result<bool> read_bool(const json& value, std::string_view what) {
  if (!value.is_boolean()) {
    std::string hint = value.is_string() ? "; send true or false without quotes" : "";
    return invalid(std::string(what) + " must be a boolean (true or false); got " +
                   describe_value(value) + hint);
  }
  return value.get<bool>();
}

Result<std::string> read_enum(const json& value, std::string_view what,
                              std::span<const std::string_view> choices) {
  std::string expected = std::string(what) + " must be one of: " + join(choices);
  if (!value.is_string()) return invalid(expected + "; got " + describe_value(value));
  const auto& s = value.get_ref<const std::string&>();
  if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
    return invalid(expected + "; got " + quote(s));
  }
  return s;
}

Result<std::vector<std::string>> read_string_array(const json& value, std::string_view what,
                                                   ArrayRule rule) {
  if (!value.is_array()) {
    std::string hint = value.is_string() ? "; wrap a single value in brackets: [" +
                                               quote(value.get_ref<const std::string&>()) + "]"
                                         : "";
    return invalid(std::string(what) + " must be an array of strings; got " +
                   describe_value(value) + hint);
  }
  if (value.size() < rule.min_items) {
    return invalid(std::string(what) + " must have at least " + std::to_string(rule.min_items) +
                   (rule.min_items == 1 ? " item" : " items"));
  }
  if (value.size() > rule.max_items) {
    return invalid(std::string(what) + " has too many items (" + std::to_string(value.size()) +
                   "; at most " + std::to_string(rule.max_items) + ")");
  }
  std::vector<std::string> out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto item = read_string(value[i], std::string(what) + "[" + std::to_string(i) + "]", rule.item);
    if (!item) return item.error();
    out.push_back(std::move(item.value()));
  }
  return out;
}

Result<std::map<std::string, std::string>> read_string_map(const json& value,
                                                           std::string_view what, MapRule rule) {
  if (!value.is_object()) {
    return invalid(std::string(what) + " must be an object of string values, e.g. {\"KEY\": \"value\"}; got " +
                   describe_value(value));
  }
  if (value.size() > rule.max_entries) {
    return invalid(std::string(what) + " has too many entries (" + std::to_string(value.size()) +
                   "; at most " + std::to_string(rule.max_entries) + ")");
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, item] : value.items()) {
    std::string key_what = std::string(what) + " key " + quote(key);
    if (rule.env_keys) {
      if (key.empty()) return invalid(std::string(what) + " keys must not be empty");
      if (key.find('=') != std::string::npos) {
        return invalid(key_what + " must not contain '=' (an environment name cannot)");
      }
    }
    if (auto ok = check_string_rule(key, key_what, rule.key); !ok) return ok.error();
    std::string item_what = std::string(what) + "." + key;
    if (!item.is_string()) {
      std::string hint = item.is_number() || item.is_boolean()
                             ? "; quote it: \"" + item.dump() + "\""
                             : "";
      return invalid(item_what + " must be a string; got " + describe_value(item) + hint);
    }
    auto s = read_string(item, item_what, rule.value);
    if (!s) return s.error();
    out.emplace(key, std::move(s.value()));
  }
  return out;
}

namespace {

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * static_cast<unsigned>(m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool read_digits(std::string_view s, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

Result<std::int64_t> parse_utc_timestamp(std::string_view text, std::string_view what) {
  const std::string form = std::string(what) +
                           " must be an ISO 8601 UTC time like \"2026-11-23T21:00:00Z\" "
                           "(optionally with a fraction, \"…:00.5Z\"); got " + quote(text);
  // Fixed layout: YYYY-MM-DDTHH:MM:SS, then [.fraction], then Z.
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20 || !read_digits(text, 0, 4, year) || text[4] != '-' ||
      !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day) ||
      text[10] != 'T' || !read_digits(text, 11, 2, hour) || text[13] != ':' ||
      !read_digits(text, 14, 2, minute) || text[16] != ':' || !read_digits(text, 17, 2, second)) {
    return invalid(form);
  }
  std::size_t pos = 19;
  std::int64_t millis = 0;
  if (text[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    std::int64_t scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;  // digits past milliseconds are dropped
      scale /= 10;
      ++pos;
      ++digits;
    }
    if (digits == 0 || digits > 9) return invalid(form);
  }
  if (pos + 1 != text.size() || text[pos] != 'Z') {
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
      return invalid(form + "; convert the time to UTC and end it with Z");
    }
    return invalid(form);
  }
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
      hour > 23 || minute > 59 || second > 59) {
    return invalid(std::string(what) + " is not a real UTC time (" + quote(text) +
                   "): check the month, day, hour, minute and second");
  }
  std::int64_t days = days_from_civil(year, month, day);
  return ((days * 24 + hour) * 60 + minute) * 60000 + second * 1000 + millis;
}

}  // namespace orch::tools
