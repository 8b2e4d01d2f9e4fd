#pragma once
/// @file
/// Enum <-> name. Every enum with a name on the command line or in a summary has ONE table of
/// (value, name) pairs, and both directions read it, so a new value needs one line.
#include <array>
#include <cstddef>
#include <string>
#include <utility>

#include "ddtrain/error.hpp"

namespace ddtrain {

template <typename E, std::size_t N>
using NameTable = std::array<std::pair<E, const char*>, N>;

/// The value named `name`; throws InvalidArgument "unknown WHAT 'name' (accepted: a, b, c)".
template <typename E, std::size_t N>
E parse_name(const NameTable<E, N>& table, const std::string& name, const std::string& what) {
  std::string accepted;
  for (const auto& [value, n] : table) {
    if (name == n) return value;
    accepted += (accepted.empty() ? "" : ", ") + std::string(n);
  }
  throw InvalidArgument("unknown " + what + " '" + name + "' (accepted: " + accepted + ")");
}

/// The name of `value` ("unknown" for a value the table lacks).
template <typename E, std::size_t N>
std::string name_of(const NameTable<E, N>& table, E value) {
  for (const auto& [v, n] : table)
    if (v == value) return n;
  return "unknown";
}

}  // namespace ddtrain
