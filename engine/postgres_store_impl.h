// The inside of PostgresStore, shared by its two halves: the Store tables
// (engine/postgres_store.cpp) and the SharedQueue of several servers
// (engine/postgres_queue.cpp). Internal to those two files.
#pragma once

#include <sys/eventfd.h>

#include <mutex>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "engine/pg_session.h"
#include "engine/postgres_store.h"
#include "engine/task.h"

namespace orch::engine {

struct PostgresStore::Impl {
  Impl(const std::string& url, const pg::Target& target)
      : session(url, target), listener(url, target), wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  std::mutex mu;        // guards session: one call at a time
  pg::Session session;  // tables and claims

  // LISTEN for other nodes' news on a connection of its own, opened on the
  // first wait_for_news(); `wake` (an eventfd) ends a wait early.
  std::mutex listen_mu;  // guards listener and listening
  pg::Session listener;
  bool listening = false;
  UniqueFd wake;
};

namespace postgres {

// Every written column of a task, in the order the insert statement names them.
std::vector<pg::Value> task_values(const TaskRecord& t);
// The parameters of update_task_statement(): the task, and the node that
// must hold it now (empty: none) for the write to land.
pg::Params update_params(const TaskRecord& task, const std::string& holder);
// Writes the changing columns of a task if the expected node holds it.
const std::string& update_task_statement();
Status add_transition(pg::Session& s, const TaskId& id, const std::string& from, const TaskRecord& t,
                      std::int64_t at_ms, const std::string& what);
// Rows of store_row::kTaskColumns, decoded.
Result<std::vector<TaskRecord>> decode_tasks(const pg::PgResult& r);
// A text[] literal of these strings (every element quoted, " and \ escaped).
std::string text_array(const std::vector<std::string>& items);

}  // namespace postgres

}  // namespace orch::engine
