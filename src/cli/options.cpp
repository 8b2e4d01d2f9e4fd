#include "options.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <typeinfo>

#include "ddtrain/error.hpp"

namespace ddtrain::cli {

std::string format_value(const boost::any& value) {
  std::ostringstream out;
  out.precision(17);
  if (auto* s = boost::any_cast<std::string>(&value)) return *s;
  if (auto* i = boost::any_cast<int>(&value)) out << *i;
  else if (auto* l = boost::any_cast<long>(&value)) out << *l;
  else if (auto* ll = boost::any_cast<long long>(&value)) out << *ll;
  else if (auto* u = boost::any_cast<unsigned>(&value)) out << *u;
  else if (auto* ul = boost::any_cast<unsigned long>(&value)) out << *ul;
  else if (auto* d = boost::any_cast<double>(&value)) out << *d;
  else if (auto* f = boost::any_cast<float>(&value)) out << *f;
  else if (auto* b = boost::any_cast<bool>(&value)) out << (*b ? "true" : "false");
  else out << "?";
  return out.str();
}

const po::variable_value* OptionReader::given_value(const std::string& name) const {
  auto it = vm_.find(name);
  if (it == vm_.end() || it->second.empty() || it->second.defaulted()) return nullptr;
  return &it->second;
}

bool OptionReader::given(const std::string& name) const { return given_value(name) != nullptr; }

void OptionReader::record(const std::string& name, std::string value, std::string fallback, bool given) {
  if (ambiguous_.count(name)) return;
  auto it = resolved_.find(name);
  if (it != resolved_.end() && it->second.value != value) {
    resolved_.erase(it);
    ambiguous_.insert(name);
    return;
  }
  resolved_[name] = ResolvedOption{std::move(value), std::move(fallback), given};
}

int64_t OptionReader::integer(const std::string& name, int64_t fallback) {
  const po::variable_value* v = given_value(name);
  int64_t result = fallback;
  if (v != nullptr) {
    const boost::any& value = v->value();
    const std::type_info& type = value.type();
    if (type == typeid(int)) result = boost::any_cast<int>(value);
    else if (type == typeid(long)) result = boost::any_cast<long>(value);
    else if (type == typeid(long long)) result = boost::any_cast<long long>(value);
    else if (type == typeid(unsigned)) result = boost::any_cast<unsigned>(value);
    else if (type == typeid(unsigned long)) result = static_cast<int64_t>(boost::any_cast<unsigned long>(value));
    else throw InvalidArgument("--" + name + " must be an integer option");
  }
  record(name, std::to_string(result), std::to_string(fallback), v != nullptr);
  return result;
}

double OptionReader::real(const std::string& name, double fallback) {
  const po::variable_value* v = given_value(name);
  double result = fallback;
  if (v != nullptr) {
    const boost::any& value = v->value();
    if (value.type() == typeid(double)) result = boost::any_cast<double>(value);
    else if (value.type() == typeid(float)) result = boost::any_cast<float>(value);
    else throw InvalidArgument("--" + name + " must be a floating-point option");
  }
  record(name, format_value(result), format_value(fallback), v != nullptr);
  return result;
}

std::string OptionReader::text(const std::string& name, const std::string& fallback) {
  const po::variable_value* v = given_value(name);
  const std::string result = v != nullptr ? v->as<std::string>() : fallback;
  if (!result.empty()) record(name, result, fallback, v != nullptr);
  return result;
}

std::vector<double> parse_number_list(const std::string& name, const std::string& text) {
  std::vector<double> values;
  size_t at = 0;
  while (true) {
    const size_t comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    DDTRAIN_CHECK(!item.empty() && used == item.size() && std::isfinite(value), InvalidArgument, "--", name,
                  " '", text, "': '", item, "' is not a finite number");
    values.push_back(value);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return values;
}

double OptionReader::member_real(const std::string& name, double fallback) {
  const po::variable_value* v = given_value(name);
  std::vector<double> values{fallback};
  if (v != nullptr) {
    DDTRAIN_CHECK(v->value().type() == typeid(std::string), InvalidArgument, "--", name,
                  " must be registered as a string option (it takes a list per member)");
    values = parse_number_list(name, v->as<std::string>());
  }
  const size_t count = values.size();
  if (count > 1) {
    DDTRAIN_CHECK(selection_.ensemble, InvalidArgument, "--", name, " '", v->as<std::string>(),
                  "' is a list (one value per ensemble member): lists need --ensemble");
    DDTRAIN_CHECK(selection_.members == 0 || count == static_cast<size_t>(selection_.members), InvalidArgument,
                  "--", name, " '", v->as<std::string>(), "' has ", count, " values but the ensemble has ",
                  selection_.members, " members (one per rank): give one value, or one per member");
  }
  std::string text;
  for (double value : values) text += (text.empty() ? "" : ",") + format_value(value);
  record(name, text, format_value(fallback), v != nullptr);
  member_options_[name] = values;
  if (count == 1) return values[0];
  const size_t member = static_cast<size_t>(std::max(0, selection_.member));
  return values[member < count ? member : 0];
}

bool OptionReader::flag(const std::string& name, bool fallback) {
  const po::variable_value* v = given_value(name);
  const bool result = v != nullptr ? v->as<bool>() : fallback;
  record(name, result ? "true" : "false", fallback ? "true" : "false", v != nullptr);
  return result;
}

}  // namespace ddtrain::cli
