// Recoverable errors are values: Result<T> carries either a T or an Error{code, message}.
// No exception crosses a module boundary; TRY() adds context on the way up.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace docdsa {

enum class ErrorCode {
  kInvalidArgument = 1,
  kNotFound,
  kIo,
  kCorrupt,       // file contents are malformed
  kUnsupported,   // well-formed but not something we can run
  kOutOfRange,    // e.g. prompt longer than the context
  kCancelled,
  kInternal,
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // Prefixes context: Error{kCorrupt, "offset past end"}.context("tensor blk.3.attn_q.weight")
  // gives "tensor blk.3.attn_q.weight: offset past end".
  Error context(const std::string& what) const& { return Error{code, what + ": " + message}; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}    // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace docdsa

#define DOCDSA_CONCAT_INNER(a, b) a##b
#define DOCDSA_CONCAT(a, b) DOCDSA_CONCAT_INNER(a, b)

// TRY(var, expr): evaluate a Result, return its error from the enclosing function or bind the value.
#define DOCDSA_TRY_IMPL(tmp, decl, expr)            \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.error();                \
  decl = std::move(tmp).value()
#define TRY(decl, expr) DOCDSA_TRY_IMPL(DOCDSA_CONCAT(try_tmp_, __LINE__), decl, expr)

// TRY_STATUS(expr): for Status-returning expressions.
#define TRY_STATUS(expr)                              \
  do {                                                \
    auto try_status_ = (expr);                        \
    if (!try_status_.ok()) return try_status_.error(); \
  } while (0)
