// CLI registration of the Burgers and Klein–Gordon PINN benchmarks (ddtrain/problems/pinn_benchmarks.hpp).
//
// Options have no Boost default: "not given" means the defaults documented in BurgersOptions and
// KleinGordonOptions (read through the OptionReader, which records them for config.ini).
#include <sstream>

#include "ddtrain/error.hpp"
#include "ddtrain/problems/pinn_benchmarks.hpp"
#include "registry.hpp"

namespace ddtrain::cli {
namespace {

/// "(name: value)" for a help line.
template <typename T>
std::string default_note(const std::string& name, const T& value) {
  std::ostringstream out;
  out << " (" << name << ": " << value << ")";
  return out.str();
}

void add_common_options(po::options_description& d, const std::string& name, const PinnBenchmarkOptions& o) {
  auto add = [&](const char* option, const po::value_semantic* semantic, const std::string& help) {
    add_option_once(d, option, semantic, help.c_str());
  };
  add("nf", po::value<int64_t>(), "PINN residual (collocation) points in [-1, 1] x [0, 1]" + default_note(name, o.nf));
  add("n0", po::value<int64_t>(), "initial-condition points, soft constraints" + default_note(name, o.n0));
  add("nb", po::value<int64_t>(), "boundary times, each at x = -1 and 1, soft constraints" + default_note(name, o.nb));
  add("sampling", po::value<std::string>(), "collocation sampling: uniform|lhs|grid" + default_note(name, to_string(o.sampling)));
  add("scaling", po::value<std::string>(),
      "points over ranks: strong = N in total split over ranks, weak = N per rank" +
          default_note(name, to_string(o.scaling)));
  add("blocks", po::value<int64_t>(),
      "fixed data blocks added in a fixed order: any rank count <= B reproduces the serial run with the "
      "same --blocks bit for bit (0: one piece per rank, fastest)" + default_note(name, o.blocks));
  add("constraints", po::value<std::string>(),
      "initial/boundary conditions: hard (built into the output) | soft (loss terms)" +
          default_note(name, to_string(o.constraints)));
  add("ic-weight", po::value<double>(), "weight of the soft initial-condition terms" + default_note(name, o.ic_weight));
  add("bc-weight", po::value<double>(), "weight of the soft boundary term" + default_note(name, o.bc_weight));
  add("derivatives", po::value<std::string>(),
      "input derivatives of the PDE residual: auto (= taylor) | taylor (forward Taylor mode) | autograd "
      "(nested reverse mode)" + default_note(name, to_string(o.derivatives)));
  add("model", po::value<std::string>(), "network N(x, t): resnet|fc|modified-mlp" + default_note(name, to_string(o.model)));
  add("depth", po::value<int64_t>(), "ResNet units / FC hidden layers" + default_note(name, o.depth));
  add("width", po::value<int64_t>(), "neurons per layer" + default_note(name, o.width));
  add("activation", po::value<std::string>(), "tanh|relu|sigmoid|sin|gelu|softplus" + default_note(name, to_string(o.activation)));
}

void read_common_options(OptionReader& in, PinnBenchmarkOptions& o) {
  o.nf = in.integer("nf", o.nf);
  o.n0 = in.integer("n0", o.n0);
  o.nb = in.integer("nb", o.nb);
  o.sampling = in.choice("sampling", o.sampling, parse_sampling_method, [](SamplingMethod m) { return to_string(m); });
  o.scaling = in.choice("scaling", o.scaling, parse_scaling, [](Scaling s) { return to_string(s); });
  o.blocks = in.integer("blocks", o.blocks);
  o.constraints = in.choice("constraints", o.constraints, parse_constraints, [](Constraints c) { return to_string(c); });
  o.ic_weight = in.real("ic-weight", o.ic_weight);
  o.bc_weight = in.real("bc-weight", o.bc_weight);
  o.derivatives = in.choice("derivatives", o.derivatives, parse_derivatives, [](Derivatives d) { return to_string(d); });
  o.model = in.choice("model", o.model, parse_for("model", parse_pinn_model),
                      [](PinnModel m) { return to_string(m); });
  o.depth = in.integer("depth", o.depth);
  o.width = in.integer("width", o.width);
  o.activation = in.choice("activation", o.activation, parse_for("activation", parse_activation),
                           [](Activation a) { return to_string(a); });
}

template <typename Options>
Options with_setup(Options o, const RunSetup& setup) {
  o.device = setup.device;
  o.dtype = setup.dtype;
  o.seed = setup.seed;
  o.shard = setup.shard;
  require_valid(o.validate());
  return o;
}

DDTRAIN_REGISTER_PROBLEM(problem_entry(
    "burgers",
    "1D viscous Burgers PINN (u_t + u u_x = (0.01/pi) u_xx, u(x,0) = -sin(pi x), u(+-1,t) = 0); "
    "metric rel_l2 against the Cole-Hopf solution",
    [](po::options_description& d) {
      const BurgersOptions o;
      add_common_options(d, "burgers", o);
      add_option_once(d, "viscosity", po::value<double>(),
                      ("viscosity nu of the Burgers equation" + default_note("burgers", "0.01/pi")).c_str());
    },
    [](OptionReader& in) {
      BurgersOptions o;
      read_common_options(in, o);
      o.viscosity = in.real("viscosity", o.viscosity);
      require_valid(o.validate());
      return o;
    },
    [](BurgersOptions o, const RunSetup& setup) -> ProblemPtr {
      return std::make_unique<BurgersProblem>(with_setup(o, setup));
    }));

DDTRAIN_REGISTER_PROBLEM(problem_entry(
    "klein_gordon",
    "1D Klein-Gordon PINN (u_tt - u_xx + u^3 = f, manufactured u = x cos(5 pi t) + (x t)^3); metric rel_l2",
    [](po::options_description& d) { add_common_options(d, "klein_gordon", KleinGordonOptions{}); },
    [](OptionReader& in) {
      KleinGordonOptions o;
      read_common_options(in, o);
      require_valid(o.validate());
      return o;
    },
    [](KleinGordonOptions o, const RunSetup& setup) -> ProblemPtr {
      return std::make_unique<KleinGordonProblem>(with_setup(o, setup));
    }));

}  // namespace
}  // namespace ddtrain::cli
