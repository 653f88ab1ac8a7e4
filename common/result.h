// Result<T>: how expected failures travel between layers (STYLE.md, Errors).
// A Result holds either a value or an Error whose message is written for the
// person or model that must act on it. Not thread-safe; a plain value type.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace orch {

// Machine-readable error kinds. Higher layers map them to protocol answers
// (tools/ turns them into isError results; app/ into start-up messages).
enum class ErrorCode {
  InvalidArgument,  // the caller sent something wrong; the message says what
  NotFound,         // unknown task id, profile, file
  QueueFull,        // bounded queue refused the item
  Conflict,         // illegal state change, e.g. cancelling a finished task
  Forbidden,        // outside allow lists
  Unavailable,      // shutting down, store unreachable
  Io,               // file, pipe, socket or process failure
  Internal,         // a bug or an unexpected library failure
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace orch
