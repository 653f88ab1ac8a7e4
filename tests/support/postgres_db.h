// PostgresDb: a fresh database of its own for one test, on the PostgreSQL
// that ORCH_TEST_POSTGRES_URL names (scripts/postgres starts one; scripts/test
// always does). Created with a random name, dropped (with any connection
// still open to it) when the object dies.
//
// Not thread-safe: one object belongs to one test thread.
#pragma once

#include <memory>
#include <string>

namespace orch::test {

// Why a PostgreSQL test skipped, for GTEST_SKIP().
inline constexpr const char* kNoTestPostgres =
    "ORCH_TEST_POSTGRES_URL is unset: run `scripts/postgres start DIR` and export the URL it "
    "prints (scripts/test does both)";

class PostgresDb {
 public:
  // nullptr when ORCH_TEST_POSTGRES_URL is unset (skip the test). A server
  // that is set but cannot be used fails the test and also returns nullptr.
  static std::unique_ptr<PostgresDb> create();
  ~PostgresDb();
  PostgresDb(const PostgresDb&) = delete;
  PostgresDb& operator=(const PostgresDb&) = delete;

  // postgresql://user@host:port/<name>
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs SQL on this database over a connection of the test's own (what
  // another server would see); a failure fails the test.
  void exec(const std::string& sql);
  // The first column of the first row, as PostgreSQL prints it ("" when
  // there is no row or it is NULL).
  std::string text(const std::string& sql);

 private:
  PostgresDb(std::string admin_url, std::string url, std::string name);
  std::string admin_url_;
  std::string url_;
  std::string name_;
};

// A loopback port nothing listens on (bound, read back and closed): where a
// store URL points to test an unreachable server.
int closed_port();

// A URL whose path names `database` instead of the one in `url`.
std::string with_database(const std::string& url, const std::string& database);

}  // namespace orch::test
