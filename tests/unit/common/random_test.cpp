#include "common/random.h"

#include <gtest/gtest.h>

namespace orch {
namespace {

TEST(Random, HexHasTwoLowerCaseDigitsPerByte) {
  auto a = random_hex(32);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size(), 64u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(Random, TwoValuesDiffer) {
  auto a = random_hex(16);
  auto b = random_hex(16);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(Random, ConstantTimeEqualComparesWholeSecrets) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "xbc"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("abc", ""));
}

}  // namespace
}  // namespace orch
