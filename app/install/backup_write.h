// Replacing an editor's config file safely: the old file is copied to a
// backup first (<file>.bak, else <file>.bak.1, .bak.2, … — the first backup
// keeps the original), the new text goes to a temporary file beside it and is
// renamed over it, so a reader never sees half a file. A symlinked file is
// written through the link; the file's mode is kept (new files: 0644, or 0600
// when `private_file`). Not thread-safe against other writers of the file.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "common/result.h"

namespace orch::app::install {

struct Written {
  std::filesystem::path file;                   // the file written (symlinks resolved)
  std::optional<std::filesystem::path> backup;  // none when there was no file
};

enum class Privacy { Normal, Private };

// The file's text; empty when it does not exist. Io error when it exists but cannot be read.
Result<std::string> read_config_text(const std::filesystem::path& path);

Result<Written> write_with_backup(const std::filesystem::path& path, const std::string& text,
                                  Privacy privacy = Privacy::Normal);

}  // namespace orch::app::install
