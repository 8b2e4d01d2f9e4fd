// CLI registration of the dense (full-matrix) quasi-Newton solver.
#include "ddtrain/error.hpp"
#include "ddtrain/solvers/bfgs.hpp"
#include "registry.hpp"

namespace ddtrain::cli {
namespace {

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "bfgs",
    "dense inverse-Hessian quasi-Newton (BFGS, self-scaled BFGS / Broyden) with strong-Wolfe line search",
    [](po::options_description& d) {
      add_option_once(d, "update", po::value<std::string>()->default_value("ssbroyden2"),
                      "bfgs: update rule of the dense inverse Hessian: bfgs | ssbfgs-ol | ssbfgs-ab | "
                      "ssbroyden1 | ssbroyden2");
      add_dense_memory_limit_option(d);
      add_option_once(d, "line-search", po::value<std::string>()->default_value("strong_wolfe"),
                      "line search: strong_wolfe | armijo");
      add_option_once(d, "line-search-evaluations", po::value<int>()->default_value(25),
                      "evaluations per line search");
      add_option_once(d, "gradient-tolerance", po::value<double>()->default_value(1e-12),
                      "converged when max|g| <= this");
    },
    [](OptionReader& in) -> SolverPtr {
      BfgsOptions o;
      o.update = in.choice(
          "update", o.update, [](const std::string& n) { return parse_dense_update(n); },
          [](DenseUpdate u) { return to_string(u); });
      o.memory_limit_bytes = read_dense_memory_limit(in, o.memory_limit_bytes);
      o.line_search.type = in.choice("line-search", o.line_search.type, parse_line_search, [](LineSearchType type) {
        return name_among(type, parse_line_search, {"strong_wolfe", "armijo"});
      });
      o.line_search.max_evaluations = in.integer("line-search-evaluations", o.line_search.max_evaluations);
      o.gradient_tolerance = in.real("gradient-tolerance", o.gradient_tolerance);
      require_valid(o.validate());
      return std::make_unique<Bfgs>(o);
    },
    nullptr});

}  // namespace
}  // namespace ddtrain::cli
