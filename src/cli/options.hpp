#pragma once
// The one way a registrant reads its options: "was it given" (on the command line or in a
// config file; a Boost default does not count), else the registrant's own fallback, which is
// the default documented in its library options struct. Every read is recorded with the value
// it resolved to, so config.ini holds every option of the chosen problem and solver, defaults
// included, and a run replays after a default changes.
#include <boost/program_options.hpp>

#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ddtrain/error.hpp"

namespace ddtrain::cli {

namespace po = boost::program_options;

/// An option as a registrant resolved it; both strings in config.ini's format.
struct ResolvedOption {
  std::string value;     ///< what the run uses
  std::string fallback;  ///< what the registrant uses when the option is not given
  bool given = false;
};

/// A Boost value as config.ini writes it (integers exactly, doubles with 17 digits, which read
/// back to the same double, bools as true/false).
std::string format_value(const boost::any& value);

/// Which ensemble member (--ensemble) a reader reads for: a per-member option given as a comma
/// list yields the value of this member.
struct MemberSelection {
  bool ensemble = false;  ///< comma lists are allowed (--ensemble)
  int member = 0;         ///< this member's index (its rank)
  int members = 0;        ///< how many members (ranks); 0: not known yet, lengths are not checked
};

/// Reads options from a parsed command line, recording what each resolves to.
class OptionReader {
 public:
  explicit OptionReader(const po::variables_map& vm) : vm_(vm) {}

  /// On the command line or in a config file (a Boost default is not "given").
  bool given(const std::string& name) const;

  /// An integer option, whatever integer type its registrant declared.
  int64_t integer(const std::string& name, int64_t fallback);
  int integer(const std::string& name, int fallback) {
    return static_cast<int>(integer(name, static_cast<int64_t>(fallback)));
  }
  /// A floating-point option (double or float).
  double real(const std::string& name, double fallback);
  /// A string option; an empty string (a path that is not set) is not recorded.
  std::string text(const std::string& name, const std::string& fallback);
  /// A floating-point problem option (registered as a string) that may be, with --ensemble, a
  /// comma list with one value per member: the value of the selected member (the first before a
  /// member is selected). Throws InvalidArgument for a malformed or non-finite value, a list
  /// without --ensemble, and a list whose length is not the number of members. Recorded as
  /// written (the whole list), so that config.ini replays the ensemble.
  double member_real(const std::string& name, double fallback);
  /// Selects the member whose values member_real() returns.
  void select_member(const MemberSelection& selection) { selection_ = selection; }
  /// Every option read with member_real() so far, by name: its values (one, or one per member).
  const std::map<std::string, std::vector<double>>& member_options() const { return member_options_; }

  /// A switch (po::bool_switch) or a bool option.
  bool flag(const std::string& name, bool fallback = false);
  /// An enumeration by name: `parse(text(name, name_of(fallback)))`.
  template <typename Enum, typename Parse, typename NameOf>
  Enum choice(const std::string& name, Enum fallback, Parse parse, NameOf name_of) {
    return parse(text(name, name_of(fallback)));
  }

  /// Every option read so far, by name. An option read twice with different results (one
  /// option that sets two fields whose defaults differ, and is not given) has no single value
  /// to record and is left out.
  const std::map<std::string, ResolvedOption>& resolved() const { return resolved_; }

 private:
  const po::variable_value* given_value(const std::string& name) const;
  void record(const std::string& name, std::string value, std::string fallback, bool given);

  const po::variables_map& vm_;
  std::map<std::string, ResolvedOption> resolved_;
  std::set<std::string> ambiguous_;
  MemberSelection selection_;
  std::map<std::string, std::vector<double>> member_options_;
};

/// The values of a comma list of numbers (`--rhs-frequency 1,2,4`); throws InvalidArgument
/// naming the option for an empty, malformed or non-finite element.
std::vector<double> parse_number_list(const std::string& name, const std::string& text);

/// The name of an enumeration value among the names `parse` accepts (for the enumerations the
/// library gives no to_string), e.g. name_among(o.variant, parse_plbfgs_variant, {"additive",
/// "multiplicative"}).
template <typename Enum, typename Parse>
std::string name_among(Enum value, Parse parse, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (parse(name) == value) return name;
  return *names.begin();
}

/// `parse` whose InvalidArgument names the option first ("--activation: unknown activation
/// 'cube' (accepted: ...)"), for the library parsers that name the field only.
template <typename Parse>
auto parse_for(const std::string& option, Parse parse) {
  return [option, parse](const std::string& name) {
    try {
      return parse(name);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("--" + option + ": " + e.what());
    }
  };
}

/// A library message worded for the command line. Library validate() messages name the fields
/// of the options struct, a nested struct's by its path ("local_steps must be >= 1, got 0",
/// "local.eta1 must be in [0, 1)"); here each field becomes the option that sets it
/// ("--local-steps ...", "--local-eta1 ..."): foo_bar is --foo-bar where that option exists, the
/// exceptions are one table in flag_names.cpp. Words that are no field of a CLI option, quoted
/// values ('mlp') and hyphenated words stay as they are.
std::string with_option_names(const std::string& message);

/// Throws InvalidArgument(with_option_names(reason)) unless `reason` is empty: how the command
/// line checks an options struct's validate() (it hides ddtrain::require_valid, whose message
/// names fields).
void require_valid(const std::string& reason);

}  // namespace ddtrain::cli
