// PgSession: one connection to PostgreSQL as the PostgreSQL store uses it
// (engine/postgres_store.h): statements with text parameters, transactions,
// a reset of a connection found broken, and messages that name host:port and
// database but never the URL's password. Shared by the store's table code
// and its cluster code (engine/postgres_queue.cpp).
//
// Not thread-safe: the owner serialises calls (PostgresStore holds a mutex
// per session).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/libpq.h"

namespace orch::engine::pg {

using Value = std::optional<std::string>;  // nullopt: SQL NULL

// Statement parameters, all sent as text: PostgreSQL casts each to its column's type.
class Params {
 public:
  Params& text(std::string v) {
    values_.emplace_back(std::move(v));
    return *this;
  }
  // Empty text is stored as NULL ("none"), and read back as empty.
  Params& text_or_null(std::string v) {
    if (v.empty()) values_.emplace_back(std::nullopt);
    else values_.emplace_back(std::move(v));
    return *this;
  }
  Params& integer(std::int64_t v) { return text(std::to_string(v)); }
  Params& integer(std::optional<int> v) {
    if (v) return integer(std::int64_t{*v});
    values_.emplace_back(std::nullopt);
    return *this;
  }
  Params& value(Value v) {
    values_.push_back(std::move(v));
    return *this;
  }
  bool empty() const { return values_.empty(); }
  int size() const { return static_cast<int>(values_.size()); }
  std::vector<Value> take() && { return std::move(values_); }
  std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    for (const Value& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
  }

 private:
  std::vector<Value> values_;
};

struct ClearResult {
  void operator()(PGresult* r) const { pq().PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ClearResult>;

// One row of a result, as store_row::decode_task reads rows.
class Row {
 public:
  Row(const PGresult* r, int row) : r_(r), row_(row) {}
  std::string column_text(int col) const {
    if (column_is_null(col)) return {};
    return std::string(pq().PQgetvalue(r_, row_, col), static_cast<std::size_t>(pq().PQgetlength(r_, row_, col)));
  }
  std::int64_t column_int(int col) const;
  std::optional<int> column_optional_int(int col) const {
    if (column_is_null(col)) return std::nullopt;
    return static_cast<int>(column_int(col));
  }
  bool column_is_null(int col) const { return pq().PQgetisnull(r_, row_, col) != 0; }

 private:
  const PGresult* r_;
  int row_;
};

int rows(const PgResult& r);
// Rows a write touched (PQcmdTuples as a number).
std::int64_t affected(const PgResult& r);

// What a URL names, for messages: from libpq's own parse of it.
struct Target {
  std::string user, host, port, dbname, password;
};
Result<Target> parse_target(const std::string& url);
// The password of a postgresql://user:password@host/db URL, as written in it.
std::string url_password(const std::string& url);

class Session {
 public:
  // Does not connect yet: connect() does.
  Session(std::string url, Target target);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Status connect();
  // "PostgreSQL at host:port (database name)".
  std::string where() const;
  const Target& target() const { return target_; }
  PGconn* raw() const { return conn_; }

  // Runs one statement. The first statement of a call may find the
  // connection broken (the server restarted, an idle connection was cut):
  // then the connection is reset once and the statement sent again. Only a
  // first statement is: it is BEGIN, a read, or an idempotent write, so
  // sending it twice changes nothing.
  enum class First { no, yes };
  Result<PgResult> exec(const std::string& sql, const Params& p, const std::string& what, First first = First::no);

  // Runs `body` between BEGIN and COMMIT; on any failure rolls back.
  template <typename Body>
  Status transaction(const std::string& what, Body&& body) {
    if (auto begin = exec("BEGIN", {}, what, First::yes); !begin) return begin.error();
    Status st = body();
    if (st) {
      if (auto commit = exec("COMMIT", {}, what); !commit) st = commit.error();
    }
    roll_back_if_open(st, what);
    return st;
  }

  // libpq's message on one line, without the password.
  std::string clean(std::string message) const;

 private:
  Error unreachable(const std::string& what) const;
  Error fail(const PGresult* r, const std::string& what) const;
  PgResult send(const char* sql, const Params& p);
  void roll_back_if_open(const Status& st, const std::string& what);

  std::string url_;  // as given: it may hold the password, so it is never printed
  Target target_;
  std::string secret_;  // the password as written in the URL, scrubbed from messages
  PGconn* conn_ = nullptr;
};

}  // namespace orch::engine::pg
