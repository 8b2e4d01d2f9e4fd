// CLI registration of the dense (full-matrix) quasi-Newton solver.
#include <cmath>

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
      add_option_once(d, "dense-memory-limit", po::value<double>()->default_value(0.0),
                      "bfgs: MB the dense inverse Hessian may use (d^2 values); a larger network is "
                      "refused (0: a quarter of the physical memory)");
      add_option_once(d, "line-search", po::value<std::string>()->default_value("strong_wolfe"),
                      "line search: strong_wolfe | armijo");
      add_option_once(d, "line-search-evaluations", po::value<int>()->default_value(25),
                      "evaluations per line search");
      add_option_once(d, "gradient-tolerance", po::value<double>()->default_value(1e-12),
                      "converged when max|g| <= this");
    },
    [](const po::variables_map& vm) -> SolverPtr {
      BfgsOptions o;
      o.update = parse_dense_update(vm["update"].as<std::string>());
      const double megabytes = vm["dense-memory-limit"].as<double>();
      DDTRAIN_CHECK(megabytes >= 0 && std::isfinite(megabytes), InvalidArgument,
                    "--dense-memory-limit must be >= 0 MB");
      o.memory_limit_bytes = static_cast<int64_t>(megabytes * 1e6);
      o.line_search.type = parse_line_search(vm["line-search"].as<std::string>());
      o.line_search.max_evaluations = vm["line-search-evaluations"].as<int>();
      o.gradient_tolerance = vm["gradient-tolerance"].as<double>();
      return std::make_unique<Bfgs>(o);
    },
    false, nullptr});

}  // namespace
}  // namespace ddtrain::cli
