#include "transport/http_module.h"

#include <dlfcn.h>

#include <cstring>
#include <filesystem>
#include <mutex>
#include <vector>

namespace orch::transport {

// Defined only where the module's objects are linked in (the module itself,
// the unit tests); elsewhere the weak reference is null and the file is loaded.
extern "C" const HttpModule* orch_http_module() __attribute__((weak));

namespace {

std::vector<std::filesystem::path> module_candidates() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const auto dir = self.parent_path();
  return {dir / kHttpModuleFile, (dir / ORCH_HTTP_MODULE_DIR_FROM_BIN / kHttpModuleFile).lexically_normal()};
}

Status check(const HttpModule* m, const std::string& where) {
  if (std::strcmp(m->version, ORCH_HTTP_MODULE_VERSION) != 0 ||
      m->server_options_size != sizeof(HttpServerOptions) || m->client_options_size != sizeof(HttpClientOptions)) {
    return make_error(ErrorCode::Unavailable, where + " is from another build (version " + m->version +
                                                  ", this binary is " + ORCH_HTTP_MODULE_VERSION +
                                                  "); install the binary and its HTTP module together");
  }
  return {};
}

Result<const HttpModule*> load() {
  if (orch_http_module) return orch_http_module();
  std::string tried;
  for (const auto& path : module_candidates()) {
    // RTLD_LOCAL: the module's copies of our libraries stay its own.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      tried += std::string(tried.empty() ? "" : "; ") + ::dlerror();
      continue;
    }
    auto entry = reinterpret_cast<const HttpModule* (*)()>(::dlsym(handle, "orch_http_module"));
    if (!entry) {
      ::dlclose(handle);
      return make_error(ErrorCode::Unavailable, path.string() + " is not mcp-orchestrator's HTTP module");
    }
    const HttpModule* m = entry();
    if (auto ok = check(m, path.string()); !ok) {
      ::dlclose(handle);
      return ok.error();
    }
    return m;  // never unloaded: its threads and objects live until exit
  }
  return make_error(ErrorCode::Unavailable,
                    std::string("HTTP is not available: the HTTP module ") + kHttpModuleFile +
                        " could not be loaded (" + tried + "); it is built and installed with the binary");
}

}  // namespace

Result<const HttpModule*> http_module() {
  static std::mutex mu;
  static const HttpModule* loaded = nullptr;
  std::lock_guard lock(mu);
  if (loaded) return loaded;
  auto m = load();
  if (!m) return m.error();  // not cached: the next call says why again
  loaded = *m;
  return loaded;
}

}  // namespace orch::transport
