// Spool hot paths: appending what a task prints (in the chunk sizes a pipe
// read gives), and reading a window of a 1 MiB output file, as getResult does
// when a client pages through it.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/spool.h"

namespace {

using orch::engine::ReadRequest;
using orch::engine::Spool;
using orch::engine::StreamKind;

// A spool directory under the system temp dir, removed afterwards.
class ScratchSpool {
 public:
  ScratchSpool() {
    std::string pattern = (std::filesystem::temp_directory_path() / "orch-spool-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    dir_ = pattern;
  }
  ~ScratchSpool() { std::filesystem::remove_all(dir_); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

void SpoolAppend(benchmark::State& state) {
  ScratchSpool scratch;
  Spool spool(scratch.dir(), 1ull << 40);  // no cap: measure the write path itself
  auto writer = spool.open_writer("bench", StreamKind::Stdout);
  if (!writer) {
    state.SkipWithError(writer.error().message.c_str());
    return;
  }
  const std::string chunk(static_cast<std::size_t>(state.range(0)), 'x');
  std::size_t since_rewind = 0;
  for (auto _ : state) {
    if (auto s = (*writer)->append(chunk.data(), chunk.size()); !s) {
      state.SkipWithError(s.error().message.c_str());
      break;
    }
    // Start a fresh file every 256 MiB so the benchmark does not fill the disk.
    if ((since_rewind += chunk.size()) >= (256u << 20)) {
      state.PauseTiming();
      writer = spool.open_writer("bench", StreamKind::Stdout);
      since_rewind = 0;
      state.ResumeTiming();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(SpoolAppend)->Arg(512)->Arg(4096)->Arg(65536);

// Pages through 1 MiB of stdout in getResult's default 16 KiB windows; one
// iteration is the whole page-through (64 reads).
void SpoolPageThroughOneMiB(benchmark::State& state) {
  ScratchSpool scratch;
  Spool spool(scratch.dir());
  {
    auto writer = spool.open_writer("bench", StreamKind::Stdout);
    const std::string line(63, 'y');
    for (int i = 0; i < (1 << 20) / 64; ++i) {
      (void)(*writer)->append((line + "\n").data(), 64);
    }
  }
  const auto window = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    ReadRequest req;
    req.max_bytes = window;
    std::uint64_t bytes = 0;
    while (true) {
      auto w = spool.read("bench", StreamKind::Stdout, req);
      if (!w) {
        state.SkipWithError(w.error().message.c_str());
        return;
      }
      bytes += w->data.size();
      if (!w->more) break;
      req.offset = w->next_offset;
    }
    if (bytes != (1u << 20)) {
      state.SkipWithError("the page-through did not return every byte");
      return;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) << 20);
}
BENCHMARK(SpoolPageThroughOneMiB)->Arg(16384)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
