#include "engine/pg_session.h"

#include <cstdlib>

namespace orch::engine::pg {

namespace {

// By SQLSTATE class (PostgreSQL's errcodes appendix).
ErrorCode code_for(std::string_view state, bool connection_bad) {
  if (state.rfind("23", 0) == 0) return ErrorCode::Conflict;  // integrity: unique, foreign key
  if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "57014" ||
      state == "53300" || state == "40001" || state == "40P01" || state == "55P03") {
    return ErrorCode::Unavailable;  // connection lost, server shutting down, too busy, lock conflicts
  }
  if (state == "53100" || state.rfind("58", 0) == 0) return ErrorCode::Io;  // disk full, system errors
  return connection_bad ? ErrorCode::Unavailable : ErrorCode::Internal;
}

// Every occurrence of a password in a message becomes "***".
void scrub(std::string& text, const std::string& password) {
  if (password.empty()) return;
  for (auto at = text.find(password); at != std::string::npos; at = text.find(password, at + 3)) {
    text.replace(at, password.size(), "***");
  }
}

// libpq prints notices ("relation already exists, skipping") on stderr by
// default; they are informational, and stderr carries the server's log.
void drop_notice(void*, const char*) {}

bool ok(const PGresult* r) {
  const auto s = r ? pq().PQresultStatus(r) : PGRES_FATAL_ERROR;
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

}  // namespace

std::int64_t Row::column_int(int col) const {
  if (column_is_null(col)) return 0;
  return std::strtoll(pq().PQgetvalue(r_, row_, col), nullptr, 10);
}

int rows(const PgResult& r) { return pq().PQntuples(r.get()); }

std::int64_t affected(const PgResult& r) { return std::strtoll(pq().PQcmdTuples(r.get()), nullptr, 10); }

std::string url_password(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  const auto start = scheme + 3;
  const auto end = url.find_first_of("/?", start);
  const std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  const auto at = authority.rfind('@');
  if (at == std::string::npos) return {};
  const auto colon = authority.find(':');
  if (colon == std::string::npos || colon > at) return {};
  return authority.substr(colon + 1, at - colon - 1);
}

Result<Target> parse_target(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* options = pq().PQconninfoParse(url.c_str(), &err);
  if (!options) {
    std::string why = err ? err : "out of memory";
    pq().PQfreemem(err);
    scrub(why, url_password(url));
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    std::string shown = url;
    scrub(shown, url_password(url));
    return make_error(ErrorCode::InvalidArgument, "store: bad PostgreSQL URL " + shown + ": " + why);
  }
  Target t;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    const std::string_view key = o->keyword;
    const std::string value = o->val ? o->val : "";
    if (key == "user") t.user = value;
    else if (key == "host") t.host = value;
    else if (key == "port") t.port = value;
    else if (key == "dbname") t.dbname = value;
    else if (key == "password") t.password = value;
  }
  pq().PQconninfoFree(options);
  if (t.host.empty()) t.host = "localhost";
  if (t.port.empty()) t.port = "5432";
  return t;
}

Session::Session(std::string url, Target target)
    : url_(std::move(url)), target_(std::move(target)), secret_(url_password(url_)) {}

Session::~Session() {
  if (conn_) pq().PQfinish(conn_);
}

std::string Session::where() const {
  return "PostgreSQL at " + target_.host + ":" + target_.port + " (database " + target_.dbname + ")";
}

std::string Session::clean(std::string message) const {
  scrub(message, target_.password);
  scrub(message, secret_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  // libpq's hints follow a newline and a tab.
  std::string line;
  for (char c : message) {
    if (c == '\n' || c == '\t') c = ' ';
    if (c != ' ' || line.empty() || line.back() != ' ') line += c;
  }
  return line;
}

Status Session::connect() {
  // Our defaults first: with expand_dbname the URL's own settings, which
  // come after them, win.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "mcp-orchestrator", url_.c_str(), nullptr};
  if (conn_) pq().PQfinish(conn_);
  conn_ = pq().PQconnectdbParams(keywords, values, 1);
  if (!conn_) return make_error(ErrorCode::Internal, "store: cannot connect to " + where() + ": out of memory");
  if (pq().PQstatus(conn_) != CONNECTION_OK) {
    return make_error(ErrorCode::Unavailable,
                      "store: cannot connect to " + where() + ": " + clean(pq().PQerrorMessage(conn_)));
  }
  pq().PQsetNoticeProcessor(conn_, drop_notice, nullptr);
  return {};
}

Error Session::unreachable(const std::string& what) const {
  return make_error(ErrorCode::Unavailable, "store: " + what + " failed: " + where() +
                                                " cannot be reached: " + clean(pq().PQerrorMessage(conn_)));
}

Error Session::fail(const PGresult* r, const std::string& what) const {
  const char* state = r ? pq().PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const bool bad = pq().PQstatus(conn_) == CONNECTION_BAD;
  std::string message = r ? pq().PQresultErrorMessage(r) : "";
  if (message.empty()) message = pq().PQerrorMessage(conn_);
  return make_error(code_for(state ? state : "", bad), "store: " + what + " failed: " + clean(message));
}

PgResult Session::send(const char* sql, const Params& p) {
  // The simple protocol for parameterless text: a migration step holds
  // several statements, which the extended protocol refuses.
  if (p.empty()) return PgResult(pq().PQexec(conn_, sql));
  auto values = p.pointers();
  return PgResult(pq().PQexecParams(conn_, sql, p.size(), nullptr, values.data(), nullptr, nullptr, 0));
}

Result<PgResult> Session::exec(const std::string& sql, const Params& p, const std::string& what, First first) {
  bool may_reset = first == First::yes;
  for (;;) {
    if (pq().PQstatus(conn_) == CONNECTION_BAD) {
      if (!may_reset) return unreachable(what);
      may_reset = false;
      pq().PQreset(conn_);
      if (pq().PQstatus(conn_) != CONNECTION_OK) return unreachable(what);
    }
    PgResult r = send(sql.c_str(), p);
    if (ok(r.get())) return r;
    if (may_reset && pq().PQstatus(conn_) == CONNECTION_BAD) continue;
    return fail(r.get(), what);
  }
}

void Session::roll_back_if_open(const Status& st, const std::string& what) {
  const auto tx = pq().PQtransactionStatus(conn_);
  if (!st && (tx == PQTRANS_INTRANS || tx == PQTRANS_INERROR)) (void)exec("ROLLBACK", {}, what);
}

}  // namespace orch::engine::pg
