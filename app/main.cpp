// mcp-orchestrator: parse flags, build the App, run it, return its exit code.
#include <signal.h>

#include <cstdio>
#include <string_view>

#include "app/app.h"
#include "app/cli.h"
#include "app/client/client.h"
#include "app/install/install_command.h"
#include "engine/platform.h"

int main(int argc, char** argv) {
  // Before any thread: see engine/platform.h. Two arenas serve 2–4 busy
  // threads without contention; the rest of ours mostly wait.
  orch::engine::platform::limit_allocator_arenas(2);
  orch::engine::platform::keep_freed_blocks_up_to(8u << 20);
  // A peer that goes away must surface as EPIPE on write, not kill us.
  ::signal(SIGPIPE, SIG_IGN);
  // An inherited SIG_IGN for SIGCHLD (a parent's choice, or an image before a
  // restart in place) would make the kernel reap our tasks and lose their exit
  // codes.
  ::signal(SIGCHLD, SIG_DFL);
  // Block the stop signals before any thread exists, so every thread inherits
  // the mask and only the app's signal thread receives them (with sigwait).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  // `mcp-orchestrator submit …` and friends talk to a running server.
  if (argc > 1 && orch::app::client::is_client_command(argv[1])) {
    return orch::app::client::run(argc, argv);
  }
  // `mcp-orchestrator install cursor …` prints or writes an editor's registration.
  if (argc > 1 && std::string_view(argv[1]) == "install") return orch::app::install::run(argc, argv);
  auto cl = orch::app::parse_command_line(argc, argv, ORCH_VERSION);
  if (cl.action == orch::app::CommandLine::Action::Exit) {
    std::fputs(cl.output.c_str(), cl.exit_code == 0 ? stdout : stderr);
    return cl.exit_code;
  }
  auto app = orch::app::App::create(std::move(cl.config), cl.state_dir_explicit);
  if (!app) {
    std::fprintf(stderr, "mcp-orchestrator: %s\n", app.error().message.c_str());
    return 1;
  }
  return (*app)->run();
}
