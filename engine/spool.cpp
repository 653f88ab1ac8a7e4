#include "engine/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace orch::engine {

namespace {

// The id becomes a directory name, and remove() deletes that directory: an id
// such as ".." or "a/b" must never reach the file system.
bool is_safe_component(const TaskId& id) {
  return !id.empty() && id != "." && id != ".." &&
         id.find_first_of(std::string_view("/\0", 2)) == std::string::npos;
}

Error unsafe_id_error(const TaskId& id) {
  return make_error(ErrorCode::InvalidArgument,
                    "task id '" + id + "' cannot name a spool directory; use an id from submitTask");
}

Error spool_error(const std::string& what, const std::filesystem::path& path, int err) {
  return make_error(ErrorCode::Io, "cannot " + what + " '" + path.string() + "': " +
                                       std::strerror(err) +
                                       " (check free space and permissions under the state directory)");
}

// Creates `file` and the directories above it. 0 or the errno that stopped it.
int create_file(const std::filesystem::path& file, int flags, UniqueFd& out) {
  std::error_code ec;
  const std::filesystem::path dir = file.parent_path();
  std::filesystem::create_directories(dir.parent_path(), ec);
  if (ec) return ec.value();
  // Task output can hold secrets: the task's directory and files are owner-only.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno;
  out.reset(::open(file.c_str(), O_WRONLY | O_CREAT | flags | O_CLOEXEC, 0600));
  return out ? 0 : errno;
}

Result<UniqueFd> create_file(const std::filesystem::path& file, int flags) {
  UniqueFd fd;
  if (int err = create_file(file, flags, fd)) return spool_error("create spool file", file, err);
  return fd;
}

}  // namespace

SpoolWriter::SpoolWriter(std::filesystem::path file, int open_flags, std::uint64_t cap_bytes, std::uint64_t total,
                         std::uint64_t stored, bool capped)
    : file_(std::move(file)),
      open_flags_(open_flags),
      cap_(cap_bytes),
      total_(total),
      stored_(std::min(stored, cap_bytes)),
      capped_(capped) {}

bool SpoolWriter::write(const char* data, std::size_t size) {
  if (!fd_) {
    if (open_errno_ == 0) open_errno_ = create_file(file_, open_flags_, fd_);
    if (!fd_) {
      errno = open_errno_;
      return false;
    }
  }
  return write_all(fd_.get(), data, size);
}

Status SpoolWriter::append(const char* data, std::size_t size) {
  total_ += size;
  if (capped_ || size == 0) return {};
  std::uint64_t room = cap_ - stored_;
  std::size_t keep = static_cast<std::size_t>(std::min<std::uint64_t>(size, room));
  bool ok = write(data, keep);
  if (ok) stored_ += keep;
  if (ok && keep < size) {
    // The marker is written once, the first time the stream passes its cap.
    capped_ = true;
    std::string marker = truncation_marker(cap_);
    ok = write(marker.data(), marker.size());
  }
  if (!ok) {
    const std::string what = fd_ ? "cannot write task output: " : "cannot create the task's output file '" +
                                                                      file_.string() + "': ";
    return make_error(ErrorCode::Io, what + std::strerror(errno) +
                                         " (check free space and permissions under the state directory)");
  }
  return {};
}

Spool::Spool(std::filesystem::path dir, std::uint64_t cap_bytes) : dir_(std::move(dir)), cap_(cap_bytes) {}

std::filesystem::path Spool::path(const TaskId& id, StreamKind kind) const {
  return dir_ / id / to_string(kind);
}

Result<std::unique_ptr<SpoolWriter>> Spool::open_writer(const TaskId& id, StreamKind kind, Earlier earlier) {
  if (!is_safe_component(id)) return unsafe_id_error(id);
  const std::filesystem::path file = path(id, kind);
  if (earlier == Earlier::Remove && ::unlink(file.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
    return spool_error("remove the earlier attempt's output", file, errno);
  }
  return std::make_unique<SpoolWriter>(file, O_TRUNC, cap_);
}

Result<std::unique_ptr<SpoolWriter>> Spool::resume_writer(const TaskId& id, StreamKind kind, std::uint64_t total,
                                                          std::uint64_t stored, bool capped) {
  if (!is_safe_component(id)) return unsafe_id_error(id);
  return std::make_unique<SpoolWriter>(path(id, kind), O_APPEND, cap_, total, stored, capped);
}

Result<std::filesystem::path> Spool::write_stdin(const TaskId& id, const std::string& data) {
  if (!is_safe_component(id)) return unsafe_id_error(id);
  std::filesystem::path file = dir_ / id / "stdin";
  auto fd = create_file(file, O_TRUNC);
  if (!fd) return fd.error();
  if (!write_all(fd->get(), data.data(), data.size())) return spool_error("write", file, errno);
  return file;
}

Result<OutputWindow> Spool::read(const TaskId& id, StreamKind kind, const ReadRequest& req) const {
  if (!is_safe_component(id)) return unsafe_id_error(id);
  OutputWindow window;
  std::filesystem::path file = path(id, kind);
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return window;
    return spool_error("open", file, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return spool_error("stat", file, errno);
  // The size is taken once: a writer may append meanwhile, and the window must
  // describe one consistent prefix of the file.
  const auto size = static_cast<std::uint64_t>(st.st_size);
  window.file_bytes = size;
  window.offset = req.tail ? size - std::min(size, req.max_bytes) : std::min(req.offset, size);
  const std::uint64_t want = std::min(req.max_bytes, size - window.offset);
  window.data.resize(static_cast<std::size_t>(want));
  std::size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd.get(), window.data.data() + got, want - got,
                        static_cast<off_t>(window.offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return spool_error("read", file, errno);
    }
    if (n == 0) break;  // the file shrank: a new attempt truncated it
    got += static_cast<std::size_t>(n);
  }
  window.data.resize(got);
  window.next_offset = window.offset + got;
  window.more = size > window.next_offset;
  return window;
}

void Spool::remove(const TaskId& id) {
  if (!is_safe_component(id)) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_ / id, ec);
}

}  // namespace orch::engine
