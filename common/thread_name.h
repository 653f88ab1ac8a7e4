// Names the calling thread, so that `top -H`, `ps -L`, perf and gdb tell the
// server's threads apart ("orch-reactor", "orch-worker", ...). Linux keeps
// 15 characters of it; a longer name is cut there.
#pragma once

namespace orch {

void name_this_thread(const char* name);

}  // namespace orch
