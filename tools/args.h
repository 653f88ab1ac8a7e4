// Strict readers for tool arguments (SPEC §8, STYLE.md Errors). Each checks
// one JSON value against one rule and, when it fails, says in its message
// what was expected, what came, and how to send it right — the model reads
// that message and retries the call.
//
// Strict means: 5.7 and "5" are not the integer 5, true is not a number,
// an unknown key is refused with the list of known ones. A JSON null counts
// as "not given" (find_arg), because several clients send null for optional
// arguments they leave out. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace orch::tools {

using json = nlohmann::json;

// The value of `key` in the object `obj`, or nullptr when absent or null.
const json* find_arg(const json& obj, std::string_view key);

// `value` must be an object whose keys are all in `allowed`. `what` names it
// in messages ("arguments of submitTask", "retry").
Status check_object(const json& value, std::string_view what,
                    std::span<const std::string_view> allowed);

// "a string", "a number with a fraction (5.7)", "a boolean (true)"… for messages.
std::string describe_value(const json& value);

struct StringRule {
  std::size_t min_bytes = 0;
  std::size_t max_bytes = std::numeric_limits<std::size_t>::max();
  bool allow_nul = false;  // NUL cannot pass through execve or a C path
};
Result<std::string> read_string(const json& value, std::string_view what, StringRule rule = {});

// A JSON integer (is_number_integer) within [min, max].
Result<std::int64_t> read_integer(const json& value, std::string_view what, std::int64_t min,
                                  std::int64_t max);

struct NumberRule {
  double min = 0;
  double max = std::numeric_limits<double>::max();
  bool min_exclusive = false;  // e.g. timeoutSec > 0
};
// Any JSON number (integer or not, never a boolean or a string) within the rule.
Result<double> read_number(const json& value, std::string_view what, NumberRule rule);

Result<bool> read_bool(const json& value, std::string_view what);

// One of `choices`, exactly (case-sensitive).
Result<std::string> read_enum(const json& value, std::string_view what,
                              std::span<const std::string_view> choices);

struct ArrayRule {
  std::size_t min_items = 0;
  std::size_t max_items = std::numeric_limits<std::size_t>::max();
  StringRule item{};
};
Result<std::vector<std::string>> read_string_array(const json& value, std::string_view what,
                                                   ArrayRule rule);

struct MapRule {
  std::size_t max_entries = std::numeric_limits<std::size_t>::max();
  StringRule key{};
  StringRule value{};
  bool env_keys = false;  // keys are environment names: non-empty, no '=', no NUL
};
Result<std::map<std::string, std::string>> read_string_map(const json& value,
                                                           std::string_view what, MapRule rule);

// Parses an ISO 8601 UTC timestamp, "2026-11-23T21:00:00Z" with an optional
// fraction ("…:00.250Z"), into Unix milliseconds. Only UTC ('Z'); years
// 1970..9999; the date must exist (no Feb 30, no hour 24, no leap second).
Result<std::int64_t> parse_utc_timestamp(std::string_view text, std::string_view what);

}  // namespace orch::tools
