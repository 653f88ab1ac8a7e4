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

Result<UniqueFd> create_file(const std::filesystem::path& dir, const std::filesystem::path& file,
                             int flags = O_TRUNC) {
  std::error_code ec;
  std::filesystem::create_directories(dir.parent_path(), ec);
  if (ec) return spool_error("create spool directory", dir.parent_path(), ec.value());
  // Task output can hold secrets: the task's directory and files are owner-only.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return spool_error("create spool directory", dir, errno);
  }
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | flags | O_CLOEXEC, 0600));
  if (!fd) return spool_error("create spool file", file, errno);
  return fd;
}

}  // namespace

SpoolWriter::SpoolWriter(UniqueFd fd, std::uint64_t cap_bytes) : fd_(std::move(fd)), cap_(cap_bytes) {}

SpoolWriter::SpoolWriter(UniqueFd fd, std::uint64_t cap_bytes, std::uint64_t total, std::uint64_t stored,
                         bool capped)
    : fd_(std::move(fd)), cap_(cap_bytes), total_(total), stored_(std::min(stored, cap_bytes)), capped_(capped) {}

Status SpoolWriter::append(const char* data, std::size_t size) {
  total_ += size;
  if (capped_ || size == 0) return {};
  std::uint64_t room = cap_ - stored_;
  std::size_t keep = static_cast<std::size_t>(std::min<std::uint64_t>(size, room));
  bool ok = write_all(fd_.get(), data, keep);
  if (ok) stored_ += keep;
  if (ok && keep < size) {
    // The marker is written once, the first time the stream passes its cap.
    capped_ = true;
    std::string marker = truncation_marker(cap_);
    ok = write_all(fd_.get(), marker.data(), marker.size());
  }
  if (!ok) {
    return make_error(ErrorCode::Io, std::string("cannot write task output: ") + std::strerror(errno) +
                                         " (check free space under the state directory)");
  }
  return {};
}

Spool::Spool(std::filesystem::path dir, std::uint64_t cap_bytes) : dir_(std::move(dir)), cap_(cap_bytes) {}

std::filesystem::path Spool::path(const TaskId& id, StreamKind kind) const {
  return dir_ / id / to_string(kind);
}

Result<std::unique_ptr<SpoolWriter>> Spool::open_writer(const TaskId& id, StreamKind kind) {
  if (!is_safe_component(id)) return unsafe_id_error(id);
  auto fd = create_file(dir_ / id, path(id, kind));
  if (!fd) return fd.error();
  return std::make_unique<SpoolWriter>(std::move(*fd), cap_);
}

Result<std::unique_ptr<SpoolWriter>> Spool::resume_writer(const TaskId& id, StreamKind kind, std::uint64_t total,
                                                          std::uint64_t stored, bool capped) {
  if (!is_safe_component(id)) return unsafe_id_error(id);
  auto fd = create_file(dir_ / id, path(id, kind), O_APPEND);
  if (!fd) return fd.error();
  return std::make_unique<SpoolWriter>(std::move(*fd), cap_, total, stored, capped);
}

Result<std::filesystem::path> Spool::write_stdin(const TaskId& id, const std::string& data) {
  if (!is_safe_component(id)) return unsafe_id_error(id);
  std::filesystem::path file = dir_ / id / "stdin";
  auto fd = create_file(dir_ / id, file);
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
