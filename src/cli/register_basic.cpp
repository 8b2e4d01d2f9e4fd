// CLI registrations of the data-parallel baseline solvers and the 1-D problems.
#include "ddtrain/error.hpp"
#include "ddtrain/problems/basic.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "registry.hpp"

namespace ddtrain::cli {
namespace {

LineSearchOptions line_search_options(const po::variables_map& vm) {
  LineSearchOptions o;
  o.type = parse_line_search(vm["line-search"].as<std::string>());
  o.max_evaluations = vm["line-search-evaluations"].as<int>();
  return o;
}

void add_line_search_options(po::options_description& d) {
  add_option_once(d, "line-search", po::value<std::string>()->default_value("strong_wolfe"),
                  "line search: strong_wolfe | armijo");
  add_option_once(d, "line-search-evaluations", po::value<int>()->default_value(25),
                  "evaluations per line search");
}

void add_weight_decay(po::options_description& d) {
  add_option_once(d, "weight-decay", po::value<double>()->default_value(0.0),
                  "L2 penalty added to the gradient");
}

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "sgd", "data-parallel SGD (lr, momentum, Nesterov, weight decay)",
    [](po::options_description& d) {
      add_option_once(d, "lr", po::value<double>(), "learning rate (sgd 0.01, adam 1e-3, lbfgs 1)");
      add_option_once(d, "momentum", po::value<double>()->default_value(0.0), "SGD momentum");
      add_option_once(d, "nesterov", po::bool_switch(), "SGD: Nesterov momentum");
      add_weight_decay(d);
    },
    [](const po::variables_map& vm) -> SolverPtr {
      SgdOptions o;
      if (vm.count("lr")) o.learning_rate = vm["lr"].as<double>();
      o.momentum = vm["momentum"].as<double>();
      o.nesterov = vm["nesterov"].as<bool>();
      o.weight_decay = vm["weight-decay"].as<double>();
      return std::make_unique<Sgd>(o);
    },
    false, nullptr});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "adam", "data-parallel Adam (lr 1e-3, betas 0.9/0.999)",
    [](po::options_description& d) {
      add_option_once(d, "lr", po::value<double>(), "learning rate (sgd 0.01, adam 1e-3, lbfgs 1)");
      add_option_once(d, "beta1", po::value<double>()->default_value(0.9), "Adam beta1");
      add_option_once(d, "beta2", po::value<double>()->default_value(0.999), "Adam beta2");
      add_option_once(d, "adam-epsilon", po::value<double>()->default_value(1e-8), "Adam epsilon");
      add_weight_decay(d);
    },
    [](const po::variables_map& vm) -> SolverPtr {
      AdamOptions o;
      if (vm.count("lr")) o.learning_rate = vm["lr"].as<double>();
      o.beta1 = vm["beta1"].as<double>();
      o.beta2 = vm["beta2"].as<double>();
      o.epsilon = vm["adam-epsilon"].as<double>();
      o.weight_decay = vm["weight-decay"].as<double>();
      return std::make_unique<Adam>(o);
    },
    false, nullptr});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "lbfgs", "data-parallel L-BFGS with strong-Wolfe line search",
    [](po::options_description& d) {
      add_option_once(d, "lr", po::value<double>(), "learning rate (sgd 0.01, adam 1e-3, lbfgs 1)");
      add_option_once(d, "history", po::value<int>()->default_value(10), "L-BFGS memory pairs");
      add_line_search_options(d);
      add_option_once(d, "gradient-tolerance", po::value<double>()->default_value(1e-12),
                      "L-BFGS: converged when max|g| <= this");
    },
    [](const po::variables_map& vm) -> SolverPtr {
      LbfgsOptions o;
      if (vm.count("lr")) o.learning_rate = vm["lr"].as<double>();
      o.history = vm["history"].as<int>();
      o.line_search = line_search_options(vm);
      o.gradient_tolerance = vm["gradient-tolerance"].as<double>();
      return std::make_unique<Lbfgs>(o);
    },
    false, nullptr});

void add_basic_problem_options(po::options_description& d) {
  add_option_once(d, "nf", po::value<int64_t>(), "collocation / training points (per rank with --scaling weak)");
  add_option_once(d, "scaling", po::value<std::string>()->default_value("weak"),
                  "points over ranks: weak (each rank its own --nf) | strong (--nf in total)");
  add_option_once(d, "blocks", po::value<int64_t>()->default_value(0),
                  "fixed data blocks added in a fixed order: any rank count <= B reproduces the "
                  "serial run with the same --blocks bit for bit (0: one piece per rank, fastest)");
  add_option_once(d, "model", po::value<std::string>(), "network: fc | resnet (PINNs), ffnn | cnn (classification)");
  add_option_once(d, "depth", po::value<int64_t>(), "hidden layers / residual units");
  add_option_once(d, "width", po::value<int64_t>(), "neurons per hidden layer");
  add_option_once(d, "activation", po::value<std::string>()->default_value("tanh"),
                  "tanh | relu | sigmoid | sin | gelu | softplus");
  add_option_once(d, "bc-weight", po::value<double>(), "weight of the boundary-condition loss term");
}

Basic1dOptions basic_options(const po::variables_map& vm, const RunSetup& setup) {
  Basic1dOptions o;
  if (vm.count("nf")) o.points = vm["nf"].as<int64_t>();
  o.scaling = parse_scaling(vm["scaling"].as<std::string>());
  o.blocks = vm["blocks"].as<int64_t>();
  if (vm.count("model") && vm["model"].as<std::string>() != "fc")
    throw InvalidArgument("--model '" + vm["model"].as<std::string>() +
                          "' is not available for this problem (accepted: fc)");
  if (vm.count("depth")) o.network.depth = vm["depth"].as<int64_t>();
  if (vm.count("width")) o.network.width = vm["width"].as<int64_t>();
  o.network.activation = vm["activation"].as<std::string>();
  if (vm.count("bc-weight")) o.boundary_weight = vm["bc-weight"].as<double>();
  o.dtype = setup.dtype;
  o.device = setup.device;
  o.seed = setup.seed;
  o.shard = setup.shard;
  return o;
}

DDTRAIN_REGISTER_PROBLEM(ProblemEntry{
    "function_fit", "fit sin(2 pi x) + sin(4 pi x) on [-1, 1] (fully connected tanh network)",
    add_basic_problem_options,
    [](const po::variables_map& vm, const RunSetup& setup) {
      return make_function_fit(basic_options(vm, setup));
    }});

DDTRAIN_REGISTER_PROBLEM(ProblemEntry{
    "poisson1d", "PINN for -u'' = 4 pi^2 sin(2 pi x), u(+-1) = 0 (exact u = sin(2 pi x))",
    add_basic_problem_options,
    [](const po::variables_map& vm, const RunSetup& setup) {
      return make_poisson1d(basic_options(vm, setup));
    }});

}  // namespace
}  // namespace ddtrain::cli
