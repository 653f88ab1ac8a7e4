// App: wires the layers and owns start and shutdown order (STYLE.md, Layout).
//
// Start: logging → engine (store, spool, runner, threads) → tools → MCP server
// → stdio transport → HTTP → health monitor. Stop (stdin EOF, SIGTERM or
// SIGINT): the transport stops reading, the MCP session answers or cancels
// what is in flight, the engine stops starting tasks and stops the running ones
// after the shutdown grace, then everything is joined in reverse order.
// Restart in place (SIGHUP, POST /admin/restart, an unhealthy health round):
// each layer is drained and handed over, then the process execs itself
// (app/restart.h, docs/RESTART.md); create() takes such a hand-over from the
// environment. Not thread-safe: one App per process, driven from main().
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
  // returns the process exit code. A restart in place does not return (exec),
  // unless the exec failed (then 1).
  int run();

 private:
  struct Impl;
  explicit App(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orch::app
