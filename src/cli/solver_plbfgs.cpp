// CLI registration of "plbfgs": preconditioned L-BFGS over parameter subdomains.
// The partition options (--subdomains, --partition, --overlap) are added by the CLI main.
// Options have no Boost default: "not given" means the defaults documented in PlbfgsOptions.
#include "registry.hpp"

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/plbfgs.hpp"

namespace ddtrain::cli {
namespace {

void add_plbfgs_options(po::options_description& o) {
  add_option_once(o, "variant", po::value<std::string>(),
                  "plbfgs: additive (ASPQN, subdomains in parallel) | multiplicative (MSPQN, "
                  "Gauss-Seidel sweep); default additive");
  add_option_once(o, "local-solver", po::value<std::string>(),
                  "plbfgs: local optimizer of a subdomain: lbfgs | adam | sgd | bfgs (a dense "
                  "inverse Hessian per subdomain); default lbfgs");
  add_option_once(o, "local-update", po::value<std::string>(),
                  "plbfgs --local-solver bfgs: dense update rule, bfgs | ssbfgs-ol | ssbfgs-ab | "
                  "ssbroyden1 | ssbroyden2; default ssbroyden2");
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
  add_option_once(o, "accumulate", po::value<std::string>(),
                  "plbfgs additive: nonblocking (each subdomain's correction is sent while the "
                  "next is solved; default) | blocking (one collective after the last local "
                  "solve); the same results");
  add_option_once(o, "history", po::value<int>(), "L-BFGS memory pairs (default 10)");
  add_option_once(o, "global-solver", po::value<std::string>(),
                  "plbfgs: memory of the global stage: lbfgs (--history pairs; default) | bfgs "
                  "(a dense inverse Hessian of all parameters)");
  add_option_once(o, "global-update", po::value<std::string>(),
                  "plbfgs --global-solver bfgs: dense update rule (as --local-update); default "
                  "ssbroyden2");
  add_dense_memory_limit_option(o);
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

PlbfgsVariant read_variant(OptionReader& in) {
  return in.choice("variant", PlbfgsOptions{}.variant, parse_plbfgs_variant, [](PlbfgsVariant v) {
    return name_among(v, parse_plbfgs_variant, {"additive", "multiplicative"});
  });
}

PlbfgsOptions plbfgs_options(OptionReader& in) {
  PlbfgsOptions o;
  o.variant = read_variant(in);
  o.local_solver = in.choice("local-solver", o.local_solver, parse_local_solver, [](LocalSolverType v) {
    return name_among(v, parse_local_solver, {"lbfgs", "adam", "sgd", "bfgs"});
  });
  o.global_solver = in.choice("global-solver", o.global_solver, parse_global_solver,
                              [](GlobalSolverType v) { return to_string(v); });
  check_plbfgs_options_apply(o, [&in](const std::string& name) { return in.given(name); });
  const bool dense_local = o.local_solver == LocalSolverType::kBfgs;
  // Only the options that apply are read, so config.ini records only those.
  if (dense_local) {
    o.local_update = in.choice("local-update", o.local_update,
                               [](const std::string& n) { return parse_dense_update(n, "--local-update"); },
                               [](DenseUpdate v) { return to_string(v); });
  } else {
    o.local_history = in.integer("local-history", o.local_history);
    o.local_learning_rate = in.real("local-lr", o.local_learning_rate);
  }
  o.local_steps = in.integer("local-steps", o.local_steps);
  // --keep-local-memory predates --local-memory. It can only turn keeping on: config.ini
  // records every switch, so "keep-local-memory = false" there is the switch's default, not
  // a request to reset.
  const bool keep_switch = in.flag("keep-local-memory");
  const bool memory_given = in.given("local-memory");
  const bool reset = parse_local_memory_reset(in.text("local-memory", o.reset_local_memory ? "reset" : "keep"));
  DDTRAIN_CHECK(!(memory_given && keep_switch && reset), InvalidArgument,
                "--keep-local-memory contradicts --local-memory reset");
  o.reset_local_memory = reset && !keep_switch;
  o.combination = in.choice("combination", o.combination, parse_combination, [](CorrectionCombination v) {
    return name_among(v, parse_combination, {"sum", "sequential", "weighted"});
  });
  o.weight_iterations = in.integer("weight-iterations", o.weight_iterations);
  if (o.variant == PlbfgsVariant::kAdditive)
    o.nonblocking_accumulate =
        parse_accumulate(in.text("accumulate", o.nonblocking_accumulate ? "nonblocking" : "blocking"));
  if (o.global_solver == GlobalSolverType::kBfgs) {
    o.global_update = in.choice("global-update", o.global_update,
                                [](const std::string& n) { return parse_dense_update(n, "--global-update"); },
                                [](DenseUpdate v) { return to_string(v); });
  } else {
    o.history = in.integer("history", o.history);
  }
  if (dense_local || o.global_solver == GlobalSolverType::kBfgs)
    o.dense_memory_limit_bytes = read_dense_memory_limit(in, o.dense_memory_limit_bytes);
  o.secant_pair = in.choice("secant-pair", o.secant_pair, parse_secant_pair, [](SecantPair v) {
    return name_among(v, parse_secant_pair, {"preconditioned", "global"});
  });
  // The local line search follows --line-search when it is given.
  const bool line_search_given = in.given("line-search");
  o.line_search.type = in.choice("line-search", o.line_search.type, parse_line_search, [](LineSearchType v) {
    return name_among(v, parse_line_search, {"strong_wolfe", "armijo"});
  });
  if (line_search_given) o.local_line_search.type = o.line_search.type;
  o.gradient_tolerance = in.real("gradient-tolerance", o.gradient_tolerance);
  require_valid(o.validate());
  return o;
}

/// Additive: one rank per subdomain group, each evaluating all of its data locally;
/// multiplicative: all ranks evaluate every local objective data-parallel.
int plbfgs_data_parallel(OptionReader& in) {
  return in.integer("data-parallel", read_variant(in) == PlbfgsVariant::kAdditive ? 1 : 0);
}

}  // namespace

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "plbfgs",
    "preconditioned L-BFGS over parameter subdomains (additive ASPQN / multiplicative MSPQN)",
    add_plbfgs_options,
    [](OptionReader& in) -> SolverPtr { return std::make_unique<Plbfgs>(plbfgs_options(in)); },
    plbfgs_data_parallel,
});

}  // namespace ddtrain::cli
