// Secrets for the wire: session ids and bearer tokens. Read from the kernel's
// CSPRNG (getrandom), never from a seeded PRNG, so an id or token cannot be
// guessed from another one (MCP-NOTES §5a: session ids must be
// cryptographically secure).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace orch {

// `bytes` random bytes as lower-case hex (2 × bytes characters, all visible
// ASCII). Fails only when the kernel cannot supply randomness.
Result<std::string> random_hex(std::size_t bytes);

// Compares two secrets in time that depends only on their lengths, so a
// network peer cannot learn a token byte by byte from response times.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace orch
