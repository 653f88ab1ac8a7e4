// Command line (SPEC §9) into a Config plus what to do. Uses CLI11; knows
// nothing about the layers it configures.
#pragma once

#include <string>
#include <vector>

#include "app/config.h"
#include "common/result.h"

namespace orch::app {

struct CommandLine {
  enum class Action { Serve, Exit } action = Action::Serve;
  int exit_code = 0;          // with Action::Exit (after --help, --version, a usage error)
  std::string output;         // printed to stdout for --help/--version; to stderr for errors
  Config config;
  bool state_dir_explicit = false;
};

struct ListenAddress {
  std::string host;  // without IPv6 brackets
  int port = 0;
};

// "127.0.0.1:8765", "[::1]:0", "localhost:9000".
Result<ListenAddress> parse_listen_address(const std::string& text);

// Parses argv; reads the config file (--config, else the default path when it
// exists) first, so that flags override the file.
CommandLine parse_command_line(int argc, char** argv, const std::string& version);

}  // namespace orch::app
