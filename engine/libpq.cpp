#include "engine/libpq.h"

#include <dlfcn.h>

#include <cassert>
#include <string>

namespace orch::engine {

namespace {

// Debian's libpq5 soname; the -dev package's libpq.so symlink may be absent
// where the server runs.
constexpr const char* kLibpqFile = "libpq.so.5";

Result<const Libpq*> load() {
  // RTLD_LOCAL: libpq's symbols stay out of the global scope.
  void* handle = ::dlopen(kLibpqFile, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    return make_error(ErrorCode::Unavailable, std::string("store: a PostgreSQL store needs libpq, which could not be "
                                                          "loaded (") +
                                                  ::dlerror() + "); install libpq5");
  }
  static Libpq lib;
#define ORCH_LIBPQ_RESOLVE(name)                                                                             \
  lib.name = reinterpret_cast<decltype(lib.name)>(::dlsym(handle, #name));                                   \
  if (!lib.name) {                                                                                           \
    return make_error(ErrorCode::Unavailable,                                                                \
                      std::string("store: ") + kLibpqFile + " has no " #name "; install a libpq5 of PostgreSQL 10 or later"); \
  }
  ORCH_LIBPQ_FUNCTIONS(ORCH_LIBPQ_RESOLVE)
#undef ORCH_LIBPQ_RESOLVE
  return &lib;  // never unloaded: connections may live until exit
}

const Result<const Libpq*>& loaded() {
  static const Result<const Libpq*> once = load();  // thread-safe initialisation
  return once;
}

}  // namespace

Result<const Libpq*> load_libpq() { return loaded(); }

const Libpq& pq() {
  assert(loaded().ok() && "pq() before load_libpq() succeeded");
  return **loaded();
}

}  // namespace orch::engine
