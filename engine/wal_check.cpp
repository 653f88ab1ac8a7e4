#include "engine/wal_check.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <vector>

#include "common/unique_fd.h"

namespace orch::engine {
namespace {

// The layout is SQLite's WAL format (sqlite.org/fileformat2.html#walformat).
constexpr std::size_t kHeaderBytes = 32;
constexpr std::size_t kFrameHeaderBytes = 24;
constexpr std::uint32_t kMagicLittleEndianSums = 0x377f0682;
constexpr std::uint32_t kMagicBigEndianSums = 0x377f0683;
constexpr std::uint32_t kFormatVersion = 3007000;

std::uint32_t big_endian(const unsigned char* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

std::uint32_t little_endian(const unsigned char* p) {
  return std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 | p[0];
}

// SQLite's running checksum over 32-bit word pairs (walChecksumBytes).
struct Checksum {
  std::uint32_t s1 = 0;
  std::uint32_t s2 = 0;
  bool big = false;

  void add(const unsigned char* data, std::size_t n) {
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      const std::uint32_t x0 = big ? big_endian(data + i) : little_endian(data + i);
      const std::uint32_t x1 = big ? big_endian(data + i + 4) : little_endian(data + i + 4);
      s1 += x0 + s2;
      s2 += x1 + s1;
    }
  }
  bool matches(const unsigned char* stored) const { return s1 == big_endian(stored) && s2 == big_endian(stored + 4); }
};

bool read_exactly(int fd, unsigned char* out, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, out + got, n - got);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

std::string find_wal_damage(const std::filesystem::path& wal_file) {
  UniqueFd fd(::open(wal_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";  // no log: nothing to replay
  std::array<unsigned char, kHeaderBytes> header{};
  if (!read_exactly(fd.get(), header.data(), header.size())) return "";
  const std::uint32_t magic = big_endian(&header[0]);
  const std::uint32_t page_size = big_endian(&header[8]);
  Checksum sum;
  sum.big = magic == kMagicBigEndianSums;
  sum.add(header.data(), 24);
  const bool page_size_ok = page_size >= 512 && page_size <= 65536 && (page_size & (page_size - 1)) == 0;
  const bool header_ok = (magic == kMagicLittleEndianSums || magic == kMagicBigEndianSums) &&
                         big_endian(&header[4]) == kFormatVersion && page_size_ok && sum.matches(&header[24]);
  std::vector<unsigned char> frame(kFrameHeaderBytes + (page_size_ok ? page_size : 65536));
  if (!header_ok) {
    // SQLite ignores a log with a bad header; harmless only if it holds no frames.
    if (!read_exactly(fd.get(), frame.data(), kFrameHeaderBytes)) return "";
    return "its header is damaged, so every commit in it would be dropped";
  }
  const std::uint32_t salt1 = big_endian(&header[16]);
  const std::uint32_t salt2 = big_endian(&header[20]);
  long frames = 0;
  long broken_at = 0;  // 1-based frame number of the first checksum failure
  long commits_lost = 0;
  while (read_exactly(fd.get(), frame.data(), frame.size())) {
    ++frames;
    const bool current = big_endian(&frame[8]) == salt1 && big_endian(&frame[12]) == salt2;
    const bool commit = big_endian(&frame[4]) != 0;
    if (broken_at == 0) {
      sum.add(frame.data(), 8);
      sum.add(frame.data() + kFrameHeaderBytes, page_size);
      if (current && sum.matches(&frame[16])) continue;
      broken_at = frames;
    }
    if (current && commit) ++commits_lost;
  }
  if (commits_lost == 0) return "";
  return "frame " + std::to_string(broken_at) + " of " + std::to_string(frames) +
         " fails its checksum; SQLite would drop it and everything after it, " + std::to_string(commits_lost) +
         " commit(s) included";
}

}  // namespace orch::engine
