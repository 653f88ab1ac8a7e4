// An engine on a state directory of its own, with default options, for the
// tests of what sits on the engine (tools/): nullptr, after a test failure
// that says why, when it cannot open.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "engine/engine.h"

namespace orch::test {

inline std::unique_ptr<engine::Engine> open_engine(const std::filesystem::path& state_dir) {
  engine::EngineOptions options;
  options.state_dir = state_dir;
  auto opened = engine::Engine::open(options);
  EXPECT_TRUE(opened) << opened.error().message;
  return opened ? std::move(*opened) : nullptr;
}

}  // namespace orch::test
