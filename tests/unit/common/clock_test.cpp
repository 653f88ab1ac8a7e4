#include "common/clock.h"

#include <gtest/gtest.h>

namespace orch {

TEST(ManualClock, MovesOnlyWhenAdvanced) {
  ManualClock clock;
  auto before = clock.now();
  auto wall_before = clock.wall_now();
  EXPECT_EQ(clock.now(), before);
  clock.advance(std::chrono::milliseconds(1500));
  EXPECT_EQ(clock.now() - before, std::chrono::milliseconds(1500));
  EXPECT_EQ(to_unix_ms(clock.wall_now()) - to_unix_ms(wall_before), 1500);
}

TEST(Iso8601, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(to_iso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(to_iso8601(1795984274120), "2026-11-29T20:31:14.120Z");
}

}  // namespace orch
