// App: wires the layers and owns start and shutdown order (STYLE.md, Layout).
//
// Start: logging → engine (store, spool, runner, threads) → tools → MCP server
// → stdio transport. Stop (stdin EOF, SIGTERM, SIGINT or SIGHUP): the transport stops
// reading, the MCP session answers or cancels what is in flight, the engine
// stops starting tasks and stops the running ones after the shutdown grace,
// then everything is joined in reverse order. Not thread-safe: one App per
// process, driven from main().
#pragma once

#include <memory>

#include "app/config.h"
#include "common/result.h"

namespace orch::app {

class App {
 public:
  // Sets up logging and opens the engine. Errors are start-up messages for
  // the user (bad state directory, corrupt store, state directory in use).
  static Result<std::unique_ptr<App>> create(Config config, bool state_dir_explicit);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Serves MCP over stdio until stdin reaches EOF or a stop signal arrives;
  // returns the process exit code.
  int run();

 private:
  struct Impl;
  explicit App(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::app
