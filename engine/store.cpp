#include "engine/store.h"

#include "engine/postgres_store.h"
#include "engine/sqlite_store.h"

namespace orch::engine {

bool is_postgres_url(const std::string& spec) {
  return spec.rfind("postgresql://", 0) == 0 || spec.rfind("postgres://", 0) == 0;
}

std::vector<Status> Store::write(std::span<const Write> writes) {
  std::vector<Status> results;
  results.reserve(writes.size());
  for (const Write& w : writes) {
    results.push_back(w.insert ? insert(*w.task) : w.from ? update(*w.task, *w.from) : update_progress(*w.task));
  }
  return results;
}

Result<std::unique_ptr<Store>> open_store(const std::string& spec) {
  if (is_postgres_url(spec)) {
    auto pg = PostgresStore::open(spec);
    if (!pg) return pg.error();
    return std::unique_ptr<Store>(std::move(*pg));
  }
  constexpr std::string_view kSqlitePrefix = "sqlite://";
  const std::string file = spec.rfind(kSqlitePrefix, 0) == 0 ? spec.substr(kSqlitePrefix.size()) : spec;
  auto lite = SqliteStore::open(file);
  if (!lite) return lite.error();
  return std::unique_ptr<Store>(std::move(*lite));
}

}  // namespace orch::engine
