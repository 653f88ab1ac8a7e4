// libpq, loaded the first time a PostgreSQL store is opened (dlopen of
// libpq.so.5), not linked into the binary: libpq brings OpenSSL, Kerberos and
// LDAP (22 more shared objects), which made every start-up of a stdio server
// on the default SQLite store about four times slower for a library it never
// calls (the same reasoning as the HTTP module, transport/http_module.h).
//
// Thread-safe: loaded once, on the first call, and never unloaded.
#pragma once

#include <libpq-fe.h>

#include "common/result.h"

namespace orch::engine {

// Every libpq function the store calls.
#define ORCH_LIBPQ_FUNCTIONS(X)                                                                        \
  X(PQconnectdbParams) X(PQstatus) X(PQerrorMessage) X(PQfinish) X(PQreset) X(PQexec) X(PQexecParams) \
  X(PQresultStatus) X(PQresultErrorField) X(PQresultErrorMessage) X(PQclear) X(PQgetvalue)             \
  X(PQgetlength) X(PQgetisnull) X(PQntuples) X(PQcmdTuples) X(PQtransactionStatus)                     \
  X(PQsetNoticeProcessor) X(PQconninfoParse) X(PQconninfoFree) X(PQfreemem) X(PQsocket)            \
  X(PQconsumeInput) X(PQnotifies)

struct Libpq {
#define ORCH_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  ORCH_LIBPQ_FUNCTIONS(ORCH_LIBPQ_MEMBER)
#undef ORCH_LIBPQ_MEMBER
};

// The loaded library, or why it cannot be had (Unavailable, with what to
// install). The same answer on every call.
Result<const Libpq*> load_libpq();

// The loaded library; only after load_libpq() succeeded.
const Libpq& pq();

}  // namespace orch::engine
