#include "transport/event_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace orch::transport {
namespace {

using namespace std::chrono_literals;
using Pull = EventSource::Pull;

TEST(EventStream, ChunksComeOutInOrderThenEndAfterClose) {
  EventStream s;
  EXPECT_TRUE(s.push("a"));
  EXPECT_TRUE(s.push("b"));
  s.close();
  EXPECT_FALSE(s.push("c")) << "closed: no more chunks";
  std::string chunk;
  ASSERT_EQ(s.pull(chunk, 0ms), Pull::Chunk);
  EXPECT_EQ(chunk, "a");
  ASSERT_EQ(s.pull(chunk, 0ms), Pull::Chunk);
  EXPECT_EQ(chunk, "b");
  EXPECT_EQ(s.pull(chunk, 0ms), Pull::End);
}

TEST(EventStream, WaitFinishedReturnsOnceTheLastChunkIsTaken) {
  EventStream s;
  s.push("last");
  s.close();
  EXPECT_FALSE(s.wait_finished(std::chrono::steady_clock::now() + 10ms)) << "the chunk is still queued";
  std::thread consumer([&] {
    std::string chunk;
    while (s.pull(chunk, 10s) == Pull::Chunk) {
    }
  });
  EXPECT_TRUE(s.wait_finished(std::chrono::steady_clock::now() + 10s));
  consumer.join();
  EventStream gone;
  gone.push("dropped");
  gone.mark_gone();
  EXPECT_TRUE(gone.wait_finished(std::chrono::steady_clock::now())) << "a departed peer has nothing left to take";
}

TEST(EventStream, PullTimesOutWhenNothingArrives) {
  EventStream s;
  std::string chunk;
  EXPECT_EQ(s.pull(chunk, 10ms), Pull::Timeout);
}

TEST(EventStream, APushFromAnotherThreadWakesThePull) {
  EventStream s;
  std::thread producer([&] { s.push("late"); });
  std::string chunk;
  EXPECT_EQ(s.pull(chunk, 10s), Pull::Chunk);
  EXPECT_EQ(chunk, "late");
  producer.join();
}

TEST(EventStream, OverTheBoundTheStreamIsGoneAndOnGoneRunsOnce) {
  EventStream s(8);
  std::atomic<int> calls{0};
  s.on_gone([&] { ++calls; });
  EXPECT_TRUE(s.push("12345"));
  EXPECT_FALSE(s.push("6789")) << "13 bytes would exceed 8";
  EXPECT_TRUE(s.gone());
  EXPECT_FALSE(s.push("x"));
  s.mark_gone();
  EXPECT_EQ(calls.load(), 1);
  std::string chunk;
  EXPECT_EQ(s.pull(chunk, 0ms), Pull::End) << "a gone stream drops what it held";
}

TEST(EventStream, PulledBytesFreeRoomUnderTheBound) {
  EventStream s(8);
  EXPECT_TRUE(s.push("123456"));
  std::string chunk;
  ASSERT_EQ(s.pull(chunk, 0ms), Pull::Chunk);
  EXPECT_TRUE(s.push("123456"));
  EXPECT_FALSE(s.gone());
}

TEST(EventStream, OnGoneAfterTheFactRunsAtOnce) {
  EventStream s;
  s.mark_gone();
  bool called = false;
  s.on_gone([&] { called = true; });
  EXPECT_TRUE(called);
}

}  // namespace
}  // namespace orch::transport
