// Compact JSON text of a value, as every message we send is written.
//
// The same text as nlohmann's dump(-1, ' ', false, error_handler_t::replace)
// for valid UTF-8, written several times faster: a getResult window carries up
// to 1 MiB of task output twice (structuredContent and its text block), and
// nlohmann's byte-at-a-time escaper made serialising it most of the call's
// cost (docs/PERFORMANCE.md). Runs of plain ASCII are copied eight bytes at a
// time; only quotes, backslashes, control characters and non-ASCII bytes take
// the slow path. Invalid UTF-8 becomes U+FFFD (one per broken sequence), so
// the text is always valid.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace orch {

std::string json_text(const nlohmann::json& value);
void append_json_text(std::string& out, const nlohmann::json& value);

// Length of the valid UTF-8 sequence that starts at bytes[i] (a non-ASCII
// lead byte), or 0 with `skip` set to how many bytes form the broken prefix
// (Unicode Table 3-7: no overlongs, surrogates or values above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view bytes, std::size_t i, std::size_t& skip);

// The bytes with every invalid UTF-8 sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view bytes);
// The same for bytes the caller hands over: valid ones (the usual case: a
// window of task output) come back as they are, without a copy.
std::string sanitize_utf8_owned(std::string bytes);

// True when the JSON text opens more than `limit` arrays or objects inside
// each other (brackets in strings do not count). nlohmann's parser is
// iterative, but dumping, copying and comparing a parsed value recurse, so
// text from outside (a message, a worker's line) of 4 MiB of '[' could
// overflow the stack later: check with this linear scan before parsing.
bool json_nests_deeper_than(std::string_view text, std::size_t limit);

}  // namespace orch
