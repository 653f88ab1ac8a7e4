#include "engine/progress_line.h"

#include <algorithm>
#include <charconv>
#include <system_error>

namespace orch::engine {

namespace {

constexpr std::string_view kProgressPrefix = "::progress";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// digits, optionally "." digits: no sign, exponent, "inf" or "nan".
std::optional<double> parse_number(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == 0) return std::nullopt;
  if (i < s.size()) {
    if (s[i] != '.') return std::nullopt;
    const std::size_t fraction = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == fraction || i != s.size()) return std::nullopt;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<Progress> parse_progress_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!line.starts_with(kProgressPrefix)) return std::nullopt;
  line.remove_prefix(kProgressPrefix.size());
  if (line.empty() || !is_blank(line.front())) return std::nullopt;
  line = trim_blanks(line);
  const std::size_t blank = std::min(line.find(' '), line.find('\t'));
  const std::string_view numbers = line.substr(0, blank);
  const std::string_view message = blank == std::string_view::npos ? "" : trim_blanks(line.substr(blank));

  Progress progress;
  const std::size_t slash = numbers.find('/');
  auto current = parse_number(numbers.substr(0, slash));
  if (!current) return std::nullopt;
  progress.current = *current;
  if (slash != std::string_view::npos) {
    auto total = parse_number(numbers.substr(slash + 1));
    if (!total) return std::nullopt;
    progress.total = *total;
  }
  progress.message = std::string(message);
  return progress;
}

void ProgressScanner::take(const char* data, std::size_t len) {
  if (line_.size() + len > kMaxProgressLine) {
    skip_ = true;
    line_.clear();
    return;
  }
  line_.append(data, len);
  const std::size_t n = std::min(line_.size(), kProgressPrefix.size());
  if (line_.compare(0, n, kProgressPrefix.data(), n) != 0) {
    skip_ = true;
    line_.clear();
  }
}

}  // namespace orch::engine
