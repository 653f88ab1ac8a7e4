// A check of a SQLite write-ahead log before SQLite opens it (docs/STORE.md,
// Corruption). SQLite replays a WAL up to the first frame whose checksum
// fails and silently drops every frame after it, so one flipped byte in the
// middle of the log would lose every commit that followed, and a damaged
// header loses the whole log. This finds such damage so the store can refuse
// the file instead.
//
// Intact: no file, fewer bytes than a header, a valid log, or a valid log
// followed by frames of an older generation (other salts: SQLite reuses the
// file after a checkpoint) or by an unfinished last transaction (no commit
// frame after the break: SQLite rightly drops it). Damaged: a bad header in
// front of frames, or a frame at or after the first checksum failure that
// belongs to the current generation and ends a transaction.
//
// Reads the file only; stateless and thread-safe.
#pragma once

#include <filesystem>
#include <string>

namespace orch::engine {

// "" when `wal_file` is intact (above), else what is wrong, in words
// ("frame 12 of 40 fails its checksum; 3 later commits would be dropped").
std::string find_wal_damage(const std::filesystem::path& wal_file);

}  // namespace orch::engine
