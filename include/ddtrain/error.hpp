#pragma once
/// @file
/// The one exception hierarchy of ddtrain. Library code throws these and never prints or exits;
/// the CLI catches them at the top, prints one line and exits non-zero.
#include <sstream>
#include <stdexcept>
#include <string>

namespace ddtrain {

/// The base of every exception ddtrain throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};
/// A user-supplied value (option, size, combination, file content) is not acceptable.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};
/// A file could not be opened, read, parsed or written.
class IoError : public Error {
 public:
  using Error::Error;
};
/// A collective or device call failed (MPI, NCCL, CUDA).
class CommError : public Error {
 public:
  using Error::Error;
};
/// The computation produced a value it cannot continue from (NaN/Inf iterate, singular system).
class NumericalError : public Error {
 public:
  using Error::Error;
};

/// Throws InvalidArgument(reason) unless `reason` is empty: the check of an options struct's
/// validate(), whose "" means valid.
///
/// The validate() convention: one line naming the struct's fields as C++ spells them, the fields
/// of a nested options struct by their path ("local_steps must be >= 1, got 0",
/// "local.eta1 must be in [0, 1)"; a nested struct's validate takes that path as its argument).
/// Library messages never name command-line options: the CLI rewords them (src/cli/flag_names.cpp,
/// which rewrites every word that is a field name, so prose avoids such words), the Python
/// bindings name their keywords.
inline void require_valid(const std::string& reason) {
  if (!reason.empty()) throw InvalidArgument(reason);
}

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace ddtrain

/// Throws `ErrorType` with the streamed message when `condition` is false.
#define DDTRAIN_CHECK(condition, ErrorType, ...)                      \
  do {                                                                \
    if (!(condition)) throw ErrorType(::ddtrain::detail::concat(__VA_ARGS__)); \
  } while (0)
