// CLI registrations of the data-parallel baseline solvers and the 1-D problems.
#include "ddtrain/error.hpp"
#include "ddtrain/problems/basic.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "registry.hpp"

namespace ddtrain::cli {
namespace {

/// --line-search and --line-search-evaluations over `o` (the solver's defaults).
LineSearchOptions line_search_options(OptionReader& in, LineSearchOptions o) {
  o.type = in.choice("line-search", o.type, parse_line_search, [](LineSearchType type) {
    return name_among(type, parse_line_search, {"strong_wolfe", "armijo"});
  });
  o.max_evaluations = in.integer("line-search-evaluations", o.max_evaluations);
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
    [](OptionReader& in) -> SolverPtr {
      SgdOptions o;
      o.learning_rate = in.real("lr", o.learning_rate);
      o.momentum = in.real("momentum", o.momentum);
      o.nesterov = in.flag("nesterov", o.nesterov);
      o.weight_decay = in.real("weight-decay", o.weight_decay);
      require_valid(o.validate());
      return std::make_unique<Sgd>(o);
    },
    nullptr});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "adam", "data-parallel Adam (lr 1e-3, betas 0.9/0.999)",
    [](po::options_description& d) {
      add_option_once(d, "lr", po::value<double>(), "learning rate (sgd 0.01, adam 1e-3, lbfgs 1)");
      add_option_once(d, "beta1", po::value<double>()->default_value(0.9), "Adam beta1");
      add_option_once(d, "beta2", po::value<double>()->default_value(0.999), "Adam beta2");
      add_option_once(d, "adam-epsilon", po::value<double>()->default_value(1e-8), "Adam epsilon");
      add_weight_decay(d);
    },
    [](OptionReader& in) -> SolverPtr {
      AdamOptions o;
      o.learning_rate = in.real("lr", o.learning_rate);
      o.beta1 = in.real("beta1", o.beta1);
      o.beta2 = in.real("beta2", o.beta2);
      o.epsilon = in.real("adam-epsilon", o.epsilon);
      o.weight_decay = in.real("weight-decay", o.weight_decay);
      require_valid(o.validate());
      return std::make_unique<Adam>(o);
    },
    nullptr});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "lbfgs", "data-parallel L-BFGS with strong-Wolfe line search",
    [](po::options_description& d) {
      add_option_once(d, "lr", po::value<double>(), "learning rate (sgd 0.01, adam 1e-3, lbfgs 1)");
      add_option_once(d, "history", po::value<int>()->default_value(10), "L-BFGS memory pairs");
      add_line_search_options(d);
      add_option_once(d, "gradient-tolerance", po::value<double>()->default_value(1e-12),
                      "L-BFGS: converged when max|g| <= this");
    },
    [](OptionReader& in) -> SolverPtr {
      LbfgsOptions o;
      o.learning_rate = in.real("lr", o.learning_rate);
      o.history = in.integer("history", o.history);
      o.line_search = line_search_options(in, o.line_search);
      o.gradient_tolerance = in.real("gradient-tolerance", o.gradient_tolerance);
      require_valid(o.validate());
      return std::make_unique<Lbfgs>(o);
    },
    nullptr});

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

void add_poisson1d_options(po::options_description& d) {
  add_basic_problem_options(d);
  add_option_once(d, "rhs-amplitude", po::value<std::string>(),
                  "poisson1d: A in -u'' = A (K pi)^2 sin(K pi x), exact u = A sin(K pi x) (1); with "
                  "--ensemble a comma list, one value per member");
  add_option_once(d, "rhs-frequency", po::value<std::string>(),
                  "poisson1d: K, > 0, an integer for u(+-1) = 0 to hold (2); with --ensemble a comma "
                  "list, one value per member");
}

void add_function_fit_options(po::options_description& d) {
  add_basic_problem_options(d);
  add_option_once(d, "fit-frequency", po::value<std::string>(),
                  "function_fit: K in y = sin(K pi x) + sin(2 K pi x), > 0 (2); with --ensemble a "
                  "comma list, one value per member");
}

Basic1dOptions basic_options(OptionReader& in) {
  Basic1dOptions o;
  o.points = in.integer("nf", o.points);
  o.scaling = in.choice("scaling", o.scaling, parse_scaling, [](Scaling s) { return to_string(s); });
  o.blocks = in.integer("blocks", o.blocks);
  const std::string model = in.text("model", "fc");
  DDTRAIN_CHECK(model == "fc", InvalidArgument, "--model '", model,
                "' is not available for this problem (accepted: fc)");
  o.network.depth = in.integer("depth", o.network.depth);
  o.network.width = in.integer("width", o.network.width);
  o.network.activation = in.choice("activation", o.network.activation, parse_for("activation", parse_activation),
                                   [](Activation a) { return to_string(a); });
  o.boundary_weight = in.real("bc-weight", o.boundary_weight);
  return o;
}

/// The checks of Basic1dOptions::validate() at reading time: every member's values are checked
/// before any rank builds its problem.
Basic1dOptions checked(Basic1dOptions o) {
  require_valid(o.validate());
  return o;
}

Basic1dOptions poisson1d_options(OptionReader& in) {
  Basic1dOptions o = basic_options(in);
  o.amplitude = in.member_real("rhs-amplitude", o.amplitude);
  o.frequency = in.member_real("rhs-frequency", o.frequency);
  DDTRAIN_CHECK(o.frequency > 0, InvalidArgument, "--rhs-frequency must be > 0, got ", o.frequency);
  return checked(o);
}

Basic1dOptions function_fit_options(OptionReader& in) {
  Basic1dOptions o = basic_options(in);
  o.frequency = in.member_real("fit-frequency", o.frequency);
  DDTRAIN_CHECK(o.frequency > 0, InvalidArgument, "--fit-frequency must be > 0, got ", o.frequency);
  return checked(o);
}

Basic1dOptions with_setup(Basic1dOptions o, const RunSetup& setup) {
  o.dtype = setup.dtype;
  o.device = setup.device;
  o.seed = setup.seed;
  o.shard = setup.shard;
  return checked(o);  // the block count against the shards, with the command line's wording
}

DDTRAIN_REGISTER_PROBLEM(problem_entry(
    "function_fit", "fit sin(K pi x) + sin(2 K pi x) on [-1, 1], K = 2 (fully connected tanh network)",
    add_function_fit_options, function_fit_options,
    [](Basic1dOptions o, const RunSetup& setup) { return make_function_fit(with_setup(o, setup)); }));

DDTRAIN_REGISTER_PROBLEM(problem_entry(
    "poisson1d", "PINN for -u'' = A (K pi)^2 sin(K pi x), u(+-1) = 0 (exact u = A sin(K pi x)), A = 1, K = 2",
    add_poisson1d_options, poisson1d_options,
    [](Basic1dOptions o, const RunSetup& setup) { return make_poisson1d(with_setup(o, setup)); }));

}  // namespace
}  // namespace ddtrain::cli
