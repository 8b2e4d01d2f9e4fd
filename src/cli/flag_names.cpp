// The one place where the command line rewords library messages: a library validate() names the
// fields of its options struct ("local_steps must be >= 1, got 0"), since C++ and Python callers
// set fields, not flags; the command line names the option that sets the field
// ("--local-steps must be >= 1, got 0").
#include <optional>
#include <set>
#include <string>

#include "commands.hpp"
#include "ddtrain/error.hpp"
#include "options.hpp"
#include "registry.hpp"
#include "train_setup.hpp"

namespace ddtrain::cli {
namespace {

struct Renamed {
  const char* field;
  const char* option;
};

/// The fields whose option is not the mechanical one (field foo_bar: option --foo-bar). A field
/// here is renamed wherever the word appears in a message, so validate() messages must not use
/// these words (points, steps, epsilon, dtype) in their prose.
constexpr Renamed kRenamedFields[] = {
    {"learning_rate", "lr"},                           // Sgd, Adam, Lbfgs
    {"local_learning_rate", "local-lr"},               // Plbfgs
    {"epsilon", "adam-epsilon"},                       // Adam
    {"loss_change_tolerance", "loss-tolerance"},       // Lbfgs
    {"dense_memory_limit_bytes", "dense-memory-limit"},  // Plbfgs (the option is in MB)
    {"memory_limit_bytes", "dense-memory-limit"},      // Bfgs (the option is in MB)
    {"line_search.type", "line-search"},               // Lbfgs, Bfgs, Plbfgs
    {"line_search.max_evaluations", "line-search-evaluations"},
    {"steps", "global-steps"},                         // TrustRegionSolver
    {"batch_growth.enabled", "grow-batch"},            // Sapts, Apts
    {"time_limit_s", "time-limit"},                    // TrainOptions
    {"points", "nf"},                                  // Basic1dOptions
    {"boundary_weight", "bc-weight"},                  // Basic1dOptions
    {"dtype", "precision"},                            // problems
    {"time_marching_stages", "time-marching"},         // AllenCahnOptions
    {"weight_factorization.mean", "factorization-mean"},
    {"weight_factorization.std", "factorization-std"},
    {"nt_out", "nt"},                                  // AllenCahnReferenceOptions
};

/// Trust-region options nested in a solver's (TrustRegionSolverOptions::region,
/// AdditiveTrustRegionOptions::global and ::local): the global region's fields are set by the
/// plain options, the local region's by the "local-" ones where those exist (--local-eta1),
/// else by the plain one, which sets both regions (--radius).
struct Nested {
  const char* path;
  const char* option_prefix;
};
constexpr Nested kTrustRegions[] = {{"region.", ""}, {"global.", ""}, {"local.", "local-"}};
/// The TrustRegionOptions fields whose option is not the mechanical one.
constexpr Renamed kRenamedRegionFields[] = {
    {"increase", "radius-increase"}, {"decrease", "radius-decrease"}, {"model", "tr-model"}, {"memory", "tr-memory"}};

/// Every long option name of `ddtrain train` (all solvers and problems) and `ddtrain reference`.
const std::set<std::string>& option_names() {
  static const std::set<std::string> names = [] {
    std::set<std::string> all;
    auto add = [&all](const po::options_description& d) {
      for (const auto& option : d.options()) all.insert(option->long_name());
    };
    add(common_options());
    add(reference_options());
    for (const auto& [name, entry] : solver_registry()) {
      po::options_description d;
      if (entry.add_options) entry.add_options(d);
      add(d);
    }
    for (const auto& [name, entry] : problem_registry()) {
      po::options_description d;
      if (entry.add_options) entry.add_options(d);
      add(d);
    }
    return all;
  }();
  return names;
}

bool is_option(const std::string& name) { return option_names().count(name) != 0; }

std::string dashed(std::string field) {
  for (char& c : field)
    if (c == '_' || c == '.') c = '-';
  return field;
}

std::optional<std::string> renamed(const Renamed* begin, const Renamed* end, const std::string& field) {
  for (const Renamed* r = begin; r != end; ++r)
    if (field == r->field) return std::string(r->option);
  return std::nullopt;
}

/// The option (without "--") that sets `field`, if the command line has one.
std::optional<std::string> option_of(const std::string& field) {
  if (auto option = renamed(std::begin(kRenamedFields), std::end(kRenamedFields), field)) return option;
  for (const Nested& nested : kTrustRegions) {
    const std::string path = nested.path;
    if (field.compare(0, path.size(), path) != 0) continue;
    const std::string rest = field.substr(path.size());
    const std::string name =
        renamed(std::begin(kRenamedRegionFields), std::end(kRenamedRegionFields), rest).value_or(dashed(rest));
    if (is_option(nested.option_prefix + name)) return nested.option_prefix + name;
    if (is_option(name)) return name;
    return std::nullopt;
  }
  if (is_option(dashed(field))) return dashed(field);
  return std::nullopt;
}

bool is_field_start(char c) { return c >= 'a' && c <= 'z'; }
bool is_field_char(char c) { return is_field_start(c) || (c >= '0' && c <= '9') || c == '_'; }
/// A character next to a word that makes it no field: part of a longer word ("data-parallel",
/// "Allen-Cahn"), a quoted value ('mlp') or a possessive ("solver's").
bool joins_word(char c) {
  return is_field_char(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '\'' || c == '.';
}

}  // namespace

std::string with_option_names(const std::string& message) {
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    if (!is_field_start(message[i]) || (i > 0 && joins_word(message[i - 1]))) {
      out += message[i++];
      continue;
    }
    // A field: lower-case words joined by '_', a nested one's path by '.' ("local.eta1").
    size_t end = i;
    while (end < message.size()) {
      while (end < message.size() && is_field_char(message[end])) ++end;
      if (end + 1 < message.size() && message[end] == '.' && is_field_start(message[end + 1])) {
        ++end;
        continue;
      }
      break;
    }
    const std::string word = message.substr(i, end - i);
    const bool joined = end < message.size() && joins_word(message[end]) && message[end] != '.';
    const std::optional<std::string> option = joined ? std::nullopt : option_of(word);
    out += option ? "--" + *option : word;
    i = end;
  }
  return out;
}

void require_valid(const std::string& reason) {
  if (!reason.empty()) throw InvalidArgument(with_option_names(reason));
}

}  // namespace ddtrain::cli
