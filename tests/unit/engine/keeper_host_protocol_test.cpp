#include "engine/keeper_host_protocol.h"

#include <string>

#include <gtest/gtest.h>

namespace orch::engine::keeper_host {
namespace {

// A literal's bytes, NULs included, without the terminating one.
template <std::size_t N>
std::string bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

Request sample() {
  Request r;
  r.keeper_argv = {"/x/mcp-orchestrator-keeper", "--task", "tabc", "--", "/bin/sh", "-c", "echo 'a b'"};
  r.env = {"PATH=/usr/bin:/bin", "EMPTY=", "LC_ALL=C"};
  r.cwd = "/tmp/a dir";
  return r;
}

TEST(KeeperHostProtocol, ARequestRoundTripsWithEmptyFieldsAndSpaces) {
  const Request r = sample();
  auto back = decode_request(encode_request(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->keeper_argv, r.keeper_argv);
  EXPECT_EQ(back->env, r.env);
  EXPECT_EQ(back->cwd, r.cwd);

  Request bare;
  bare.keeper_argv = {"k", ""};
  auto bare_back = decode_request(encode_request(bare));
  ASSERT_TRUE(bare_back);
  EXPECT_EQ(bare_back->keeper_argv, bare.keeper_argv);
  EXPECT_TRUE(bare_back->env.empty());
  EXPECT_EQ(bare_back->cwd, "");
}

TEST(KeeperHostProtocol, AnythingElseIsRefused) {
  const std::string good = encode_request(sample());
  EXPECT_FALSE(decode_request(""));
  EXPECT_FALSE(decode_request(good.substr(0, good.size() - 1))) << "the last field lost its NUL";
  EXPECT_FALSE(decode_request(good.substr(0, good.size() / 2))) << "cut short";
  EXPECT_FALSE(decode_request(good + "extra")) << "bytes after the last field";
  EXPECT_FALSE(decode_request(bytes("0\0000\0\0"))) << "a keeper needs a command line";
  EXPECT_FALSE(decode_request(bytes("x\0000\0\0")));
  EXPECT_FALSE(decode_request(bytes("99999999999999999999\0000\0\0")));
  EXPECT_FALSE(decode_request(bytes("1\0002\0/\0k\0A=1\0"))) << "fewer fields than counted";
}

TEST(KeeperHostProtocol, ACommandLinesSizeCountsEachArgumentsNul) {
  EXPECT_EQ(command_line_bytes({}), 0u);
  EXPECT_EQ(command_line_bytes({"ab", "", "c"}), 6u);
}

}  // namespace
}  // namespace orch::engine::keeper_host
