#include "app/install/backup_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace orch::app::install {

namespace fs = std::filesystem;

namespace {

Error io_error(const std::string& what, const fs::path& path, int err) {
  return make_error(ErrorCode::Io, what + " " + path.string() + ": " + std::strerror(err));
}

Status write_all(int fd, const std::string& text, const fs::path& path) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot write", path, errno);
    done += static_cast<std::size_t>(n);
  }
  return {};
}

fs::path free_backup_name(const fs::path& file) {
  fs::path candidate = file.string() + ".bak";
  for (int i = 1; fs::exists(candidate); ++i) candidate = file.string() + ".bak." + std::to_string(i);
  return candidate;
}

}  // namespace

Result<std::string> read_config_text(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read", path, errno ? errno : EACCES);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<Written> write_with_backup(const fs::path& path, const std::string& text, Privacy privacy) {
  std::error_code ec;
  Written out;
  out.file = fs::exists(path, ec) ? fs::canonical(path, ec) : fs::absolute(path, ec);
  if (ec) return io_error("cannot resolve", path, ec.value());
  mode_t mode = privacy == Privacy::Private ? 0600 : 0644;
  struct stat st{};
  if (::stat(out.file.c_str(), &st) == 0) {
    mode = st.st_mode & 07777;
    out.backup = free_backup_name(out.file);
    fs::copy_file(out.file, *out.backup, fs::copy_options::none, ec);
    if (ec) return io_error("cannot back up to", *out.backup, ec.value());
    ::chmod(out.backup->c_str(), mode);
  } else {
    fs::create_directories(out.file.parent_path(), ec);
    if (ec) return io_error("cannot create", out.file.parent_path(), ec.value());
  }
  fs::path temp = out.file.string() + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return io_error("cannot create", temp, errno);
  ::fchmod(fd, mode);  // the umask must not widen or narrow what the file had
  Status wrote = write_all(fd, text, temp);
  if (wrote && ::fsync(fd) != 0) wrote = io_error("cannot sync", temp, errno);
  ::close(fd);
  if (wrote && ::rename(temp.c_str(), out.file.c_str()) != 0) wrote = io_error("cannot replace", out.file, errno);
  if (!wrote) {
    ::unlink(temp.c_str());
    return wrote.error();
  }
  return out;
}

}  // namespace orch::app::install
