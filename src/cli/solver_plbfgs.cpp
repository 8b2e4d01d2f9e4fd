// CLI registration of "plbfgs": preconditioned L-BFGS over parameter subdomains.
// The partition options (--subdomains, --partition, --overlap) are added by the CLI main.
// Shared option names are defined without a Boost default so that an option another solver
// registered first (with its own default) counts as "not given" here: plbfgs then uses the
// defaults documented in PlbfgsOptions.
#include <optional>
#include <typeinfo>

#include "registry.hpp"

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/plbfgs.hpp"

namespace ddtrain::cli {
namespace {

const po::variable_value* given(const po::variables_map& vm, const char* name) {
  auto it = vm.find(name);
  if (it == vm.end() || it->second.empty() || it->second.defaulted()) return nullptr;
  return &it->second;
}

std::optional<std::string> given_string(const po::variables_map& vm, const char* name) {
  const po::variable_value* v = given(vm, name);
  if (v == nullptr) return std::nullopt;
  return v->as<std::string>();
}

/// An integer option, whatever integer type its first registrant declared.
std::optional<int64_t> given_integer(const po::variables_map& vm, const char* name) {
  const po::variable_value* v = given(vm, name);
  if (v == nullptr) return std::nullopt;
  const std::type_info& type = v->value().type();
  if (type == typeid(int)) return v->as<int>();
  if (type == typeid(long)) return v->as<long>();
  if (type == typeid(long long)) return v->as<long long>();
  if (type == typeid(unsigned)) return v->as<unsigned>();
  if (type == typeid(unsigned long)) return v->as<unsigned long>();
  throw InvalidArgument(std::string("--") + name + " must be an integer option");
}

std::optional<double> given_double(const po::variables_map& vm, const char* name) {
  const po::variable_value* v = given(vm, name);
  if (v == nullptr) return std::nullopt;
  if (v->value().type() == typeid(float)) return v->as<float>();
  return v->as<double>();
}

int as_int(int64_t value) { return static_cast<int>(value); }

void add_plbfgs_options(po::options_description& o) {
  add_option_once(o, "variant", po::value<std::string>(),
                  "plbfgs: additive (ASPQN, subdomains in parallel) | multiplicative (MSPQN, "
                  "Gauss-Seidel sweep); default additive");
  add_option_once(o, "local-solver", po::value<std::string>(),
                  "plbfgs: local optimizer of a subdomain: lbfgs | adam | sgd; default lbfgs");
  add_option_once(o, "local-steps", po::value<int>(),
                  "local optimizer steps per subdomain solve (plbfgs default 10)");
  add_option_once(o, "local-history", po::value<int>(),
                  "plbfgs: local L-BFGS memory pairs; default 50");
  add_option_once(o, "local-lr", po::value<double>(),
                  "plbfgs: local learning rate (Adam 1e-3, SGD 1e-2; L-BFGS initial step 1)");
  add_option_once(o, "local-memory", po::value<std::string>(),
                  "plbfgs: keep (default) each subdomain's local memory across outer "
                  "iterations, or reset it before every local solve");
  add_option_once(o, "keep-local-memory", po::bool_switch(),
                  "plbfgs: the same as --local-memory keep (the default)");
  add_option_once(o, "combination", po::value<std::string>(),
                  "plbfgs additive: sum | sequential | weighted; default sum");
  add_option_once(o, "weight-iterations", po::value<int>(),
                  "plbfgs --combination weighted: L-BFGS iterations on the weights; default 5");
  add_option_once(o, "history", po::value<int>(), "L-BFGS memory pairs (default 10)");
  add_option_once(o, "secant-pair", po::value<std::string>(),
                  "plbfgs: global L-BFGS pair: preconditioned (s = previous global step, y = "
                  "gradient change between preconditioned points; default) | global (the global "
                  "step's own pair)");
  add_option_once(o, "line-search", po::value<std::string>(),
                  "line search: strong_wolfe | armijo (default strong_wolfe)");
  add_option_once(o, "gradient-tolerance", po::value<double>(),
                  "converged when max|gradient| <= this (default 1e-12)");
  add_option_once(o, "data-parallel", po::value<int>(),
                  "ranks per data-parallel group (plbfgs default: additive 1, multiplicative "
                  "all ranks)");
}

PlbfgsOptions plbfgs_options(const po::variables_map& vm) {
  PlbfgsOptions o;
  if (auto v = given_string(vm, "variant")) o.variant = parse_plbfgs_variant(*v);
  if (auto v = given_string(vm, "local-solver")) o.local_solver = parse_local_solver(*v);
  if (auto v = given_integer(vm, "local-steps")) o.local_steps = as_int(*v);
  if (auto v = given_integer(vm, "local-history")) o.local_history = as_int(*v);
  if (auto v = given_double(vm, "local-lr")) o.local_learning_rate = *v;
  // --keep-local-memory predates --local-memory. It can only turn keeping on: config.ini
  // records every switch, so "keep-local-memory = false" there is the switch's default, not
  // a request to reset.
  const po::variable_value* keep = given(vm, "keep-local-memory");
  const bool keep_switch = keep != nullptr && keep->as<bool>();
  if (auto v = given_string(vm, "local-memory")) {
    DDTRAIN_CHECK(*v == "keep" || *v == "reset", InvalidArgument, "unknown --local-memory '", *v,
                  "' (accepted: keep, reset)");
    DDTRAIN_CHECK(!(keep_switch && *v == "reset"), InvalidArgument,
                  "--keep-local-memory contradicts --local-memory reset");
    o.reset_local_memory = *v == "reset";
  }
  if (keep_switch) o.reset_local_memory = false;
  if (auto v = given_string(vm, "combination")) o.combination = parse_combination(*v);
  if (auto v = given_integer(vm, "weight-iterations")) o.weight_iterations = as_int(*v);
  if (auto v = given_integer(vm, "history")) o.history = as_int(*v);
  if (auto v = given_string(vm, "secant-pair")) o.secant_pair = parse_secant_pair(*v);
  if (auto v = given_string(vm, "line-search")) {
    o.line_search.type = parse_line_search(*v);
    o.local_line_search.type = o.line_search.type;
  }
  if (auto v = given_double(vm, "gradient-tolerance")) o.gradient_tolerance = *v;
  const std::string invalid = o.validate();
  DDTRAIN_CHECK(invalid.empty(), InvalidArgument, invalid);
  return o;
}

int plbfgs_data_parallel(const po::variables_map& vm, int world_size) {
  (void)world_size;
  if (auto d = given_integer(vm, "data-parallel")) return as_int(*d);
  // Additive: one rank per subdomain group, each evaluating all of its data locally;
  // multiplicative: all ranks evaluate every local objective data-parallel.
  const auto variant = given_string(vm, "variant");
  const bool additive = !variant || parse_plbfgs_variant(*variant) == PlbfgsVariant::kAdditive;
  return additive ? 1 : 0;
}

}  // namespace

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "plbfgs",
    "preconditioned L-BFGS over parameter subdomains (additive ASPQN / multiplicative MSPQN)",
    add_plbfgs_options,
    [](const po::variables_map& vm) -> SolverPtr {
      return std::make_unique<Plbfgs>(plbfgs_options(vm));
    },
    /*needs_partition=*/true,
    plbfgs_data_parallel,
});

}  // namespace ddtrain::cli
