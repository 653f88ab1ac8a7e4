// The config loader (app/config, SPEC §5): any file text is either loaded or
// refused with a message, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "app/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  orch::app::Config config;
  orch::Status loaded = orch::app::parse_config_text(text, "fuzz.json", config);
  if (!loaded && loaded.error().message.empty()) std::abort();
  // A loaded config writes back out as the file it would be.
  if (loaded) (void)orch::app::config_file_text(config);
  return 0;
}
