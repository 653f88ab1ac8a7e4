#include "tests/support/postgres_db.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <utility>

namespace orch::test {

namespace {

struct Conn {
  explicit Conn(const std::string& url) : c(PQconnectdb(url.c_str())) {}
  ~Conn() { PQfinish(c); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  bool ok() const { return c && PQstatus(c) == CONNECTION_OK; }
  PGconn* c;
};

// Runs one statement; returns the first column of the first row, or the
// error text prefixed by "error: " (and fails the test).
std::string run(const std::string& url, const std::string& sql) {
  Conn conn(url);
  if (!conn.ok()) {
    ADD_FAILURE() << "cannot connect to the test PostgreSQL: " << PQerrorMessage(conn.c);
    return "error: connect";
  }
  PGresult* r = PQexec(conn.c, sql.c_str());
  std::string out;
  const auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
    out = "error: " + std::string(PQresultErrorMessage(r));
  } else if (status == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0)) {
    out = PQgetvalue(r, 0, 0);
  }
  PQclear(r);
  return out;
}

std::string random_name() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string name = "orch_test_";
  for (int i = 0; i < 16; ++i) name += "0123456789abcdef"[hex(rd)];
  return name;
}

}  // namespace

std::string with_database(const std::string& url, const std::string& database) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto query = url.find('?', start);
  const auto slash = url.find('/', start);
  const auto host_end = slash != std::string::npos && (query == std::string::npos || slash < query) ? slash : query;
  std::string out = url.substr(0, host_end) + "/" + database;
  if (query != std::string::npos) out += url.substr(query);
  return out;
}

std::unique_ptr<PostgresDb> PostgresDb::create() {
  const char* base = std::getenv("ORCH_TEST_POSTGRES_URL");
  if (!base || !*base) return nullptr;
  std::string name = random_name();
  if (run(base, "CREATE DATABASE " + name).rfind("error: ", 0) == 0) return nullptr;
  std::string url = with_database(base, name);
  return std::unique_ptr<PostgresDb>(new PostgresDb(base, std::move(url), std::move(name)));
}

PostgresDb::PostgresDb(std::string admin_url, std::string url, std::string name)
    : admin_url_(std::move(admin_url)), url_(std::move(url)), name_(std::move(name)) {}

// FORCE: a store the test leaked, or a server it killed, may still hold a
// connection (PostgreSQL 13+ ends them).
PostgresDb::~PostgresDb() { run(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)"); }

void PostgresDb::exec(const std::string& sql) { run(url_, sql); }

std::string PostgresDb::text(const std::string& sql) { return run(url_, sql); }

int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace orch::test
