// TaskPrompts: the prompts an editor shows as slash commands (Claude Code:
// /mcp__<server>__<prompt>). Each turns a few arguments into one user message
// that tells the model which tools to use and what to report:
//   run-tests         run the test suite in the background, keep working,
//                     then report the failures
//   compare-agents    fan one request out to several agent profiles and
//                     compare their answers
//   watch-build       start a long build and follow it, reporting progress
//                     and the first error
// Pure and thread-safe.
#pragma once

#include "mcp/resource_provider.h"

namespace orch::tools {

class TaskPrompts final : public mcp::PromptProvider {
 public:
  nlohmann::json list() override;
  Result<nlohmann::json> get(const std::string& name, const nlohmann::json& arguments) override;
};

}  // namespace orch::tools
