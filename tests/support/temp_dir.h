// TempDir: a real directory under $TMPDIR (or /tmp), removed with its contents
// when the object dies.
#pragma once

#include <filesystem>

namespace orch::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace orch::test
