// CLI registration of the Allen–Cahn PINN problem.
//
// Options have no Boost default: "not given" means the defaults documented in AllenCahnOptions
// (read through the OptionReader, which records them for config.ini).
#include "ddtrain/error.hpp"
#include "ddtrain/problems/allen_cahn.hpp"
#include "registry.hpp"

namespace ddtrain::cli {
namespace {

void add_options(po::options_description& options) {
  add_option_once(options, "nf", po::value<int64_t>(),
                  "PINN residual (collocation) points (allen_cahn: 10000)");
  add_option_once(options, "n0", po::value<int64_t>(),
                  "initial-condition points, soft constraints (allen_cahn: 256)");
  add_option_once(options, "nb", po::value<int64_t>(),
                  "periodic boundary pairs, soft constraints (allen_cahn: 256)");
  add_option_once(options, "sampling", po::value<std::string>(),
                  "collocation sampling: uniform|lhs|grid (allen_cahn: uniform)");
  add_option_once(options, "scaling", po::value<std::string>(),
                  "points over ranks: strong = N in total split over ranks, weak = N per rank "
                  "(allen_cahn: strong)");
  add_option_once(options, "blocks", po::value<int64_t>(),
                  "fixed data blocks added in a fixed order: any rank count <= B reproduces the "
                  "serial run with the same --blocks bit for bit (0: one piece per rank, fastest)");
  add_option_once(options, "resample-every", po::value<int64_t>(),
                  "draw new random points every k epochs; 0 = never (allen_cahn: 0)");
  add_option_once(options, "time-marching", po::value<int64_t>(),
                  "curriculum in t: S stages on [0, s/S], s = 1..S; 0 = off (allen_cahn: 0)");
  add_option_once(options, "stage-epochs", po::value<int64_t>(),
                  "epochs per time-marching stage (allen_cahn: 100)");
  add_option_once(options, "rad-every", po::value<int64_t>(),
                  "residual-based adaptive resampling (RAD) every k epochs; 0 = off (allen_cahn: 0)");
  add_option_once(options, "rad-candidates", po::value<int64_t>(),
                  "RAD: candidate points per draw; 0 = 10 x --nf (allen_cahn: 0)");
  add_option_once(options, "rad-k", po::value<double>(),
                  "RAD: p ~ |r|^k / mean |r|^k + c, exponent k (allen_cahn: 1)");
  add_option_once(options, "rad-c", po::value<double>(), "RAD: uniform share c (allen_cahn: 1)");
  add_option_once(options, "constraints", po::value<std::string>(),
                  "initial/boundary conditions: hard (built into the output) | soft (loss terms) "
                  "(allen_cahn: hard)");
  add_option_once(options, "ic-weight", po::value<double>(),
                  "weight of the soft initial-condition term (allen_cahn: 100)");
  add_option_once(options, "bc-weight", po::value<double>(),
                  "weight of the soft periodic-boundary terms (allen_cahn: 1)");
  add_option_once(options, "ic-decay", po::value<double>(),
                  "hard constraints: carry the initial condition as u0(x) exp(-c t); c = 10 lets "
                  "its corner at x = +-1 decay as the solution's (allen_cahn: 0)");
  add_option_once(options, "ic-smoothing", po::bool_switch(),
                  "hard constraints: round the initial condition's corner at x = +-1 off in t as "
                  "the diffusion does (exact at t = 0) (allen_cahn: off)");
  add_option_once(options, "diffusion", po::value<std::string>(),
                  "diffusion coefficient nu of the Allen-Cahn equation, >= 0; with --ensemble a comma "
                  "list, one value per member (allen_cahn: 1e-4)");
  add_option_once(options, "reaction", po::value<std::string>(),
                  "reaction coefficient r in u_t - nu u_xx + r u^3 - r u = 0, >= 0; with --ensemble a "
                  "comma list, one value per member (allen_cahn: 5)");
  add_option_once(options, "causal-epsilon", po::value<double>(),
                  "causal weighting in time, epsilon; 0 = off (allen_cahn: 0)");
  add_option_once(options, "causal-bins", po::value<int64_t>(),
                  "time bins of causal weighting (allen_cahn: 32)");
  add_option_once(options, "derivatives", po::value<std::string>(),
                  "input derivatives of the PDE residual: auto (fused where it applies, else "
                  "taylor) | fused (Taylor mode, chunked, backward by hand; hard constraints, "
                  "tanh, CPU; fastest) | taylor (forward Taylor mode, one "
                  "stacked pass) | autograd (nested reverse mode) (allen_cahn: auto)");
  add_option_once(options, "reference", po::value<std::string>(),
                  "reference solution FILE.mat (x, tt, uu); default: computed (allen_cahn)");
  add_option_once(options, "fourier-modes", po::value<int64_t>(),
                  "hard constraints: N takes cos(k pi x), sin(k pi x), k = 1..K, and t (allen_cahn: 1)");
  add_option_once(options, "model", po::value<std::string>(),
                  "network: resnet|fc|modified-mlp (allen_cahn: resnet; modified-mlp: jaxpi's "
                  "gated MLP, h = z U + (1 - z) V)");
  add_option_once(options, "depth", po::value<int64_t>(),
                  "ResNet units / FC hidden layers (allen_cahn: 6)");
  add_option_once(options, "width", po::value<int64_t>(), "neurons per layer (allen_cahn: 40)");
  add_option_once(options, "activation", po::value<std::string>(),
                  "tanh|relu|sigmoid|sin|gelu|softplus (allen_cahn: tanh)");
  add_option_once(options, "weight-factorization", po::bool_switch(),
                  "random weight factorization W = diag(exp(s)) V of every layer, s ~ N(mean, std) "
                  "(allen_cahn: off; Taylor/autograd derivatives)");
  add_option_once(options, "factorization-mean", po::value<double>(),
                  "--weight-factorization: mean of the log-scales s (allen_cahn: 1)");
  add_option_once(options, "factorization-std", po::value<double>(),
                  "--weight-factorization: standard deviation of s (allen_cahn: 0.1)");
}

AllenCahnOptions read_options(OptionReader& in) {
  AllenCahnOptions o;
  o.nf = in.integer("nf", o.nf);
  o.n0 = in.integer("n0", o.n0);
  o.nb = in.integer("nb", o.nb);
  o.sampling = in.choice("sampling", o.sampling, parse_sampling_method, [](SamplingMethod m) { return to_string(m); });
  o.scaling = in.choice("scaling", o.scaling, parse_scaling, [](Scaling s) { return to_string(s); });
  o.blocks = in.integer("blocks", o.blocks);
  o.resample_every = in.integer("resample-every", o.resample_every);
  o.time_marching_stages = in.integer("time-marching", o.time_marching_stages);
  o.stage_epochs = in.integer("stage-epochs", o.stage_epochs);
  o.rad_every = in.integer("rad-every", o.rad_every);
  o.rad_candidates = in.integer("rad-candidates", o.rad_candidates);
  o.rad_k = in.real("rad-k", o.rad_k);
  o.rad_c = in.real("rad-c", o.rad_c);
  o.constraints = in.choice("constraints", o.constraints, parse_constraints, [](Constraints c) { return to_string(c); });
  o.ic_weight = in.real("ic-weight", o.ic_weight);
  o.bc_weight = in.real("bc-weight", o.bc_weight);
  o.diffusion = in.member_real("diffusion", o.diffusion);
  o.reaction = in.member_real("reaction", o.reaction);
  DDTRAIN_CHECK(o.diffusion >= 0, InvalidArgument, "--diffusion must be >= 0, got ", o.diffusion);
  DDTRAIN_CHECK(o.reaction >= 0, InvalidArgument, "--reaction must be >= 0, got ", o.reaction);
  o.ic_decay = in.real("ic-decay", o.ic_decay);
  o.ic_smoothing = in.flag("ic-smoothing", o.ic_smoothing);
  o.causal_epsilon = in.real("causal-epsilon", o.causal_epsilon);
  o.causal_bins = in.integer("causal-bins", o.causal_bins);
  o.derivatives = in.choice("derivatives", o.derivatives, parse_derivatives, [](Derivatives d) { return to_string(d); });
  o.reference_path = in.text("reference", o.reference_path);
  // The metric compares with the reference of the run's coefficients: without --reference it is
  // computed with them; one file cannot be the reference of members with other coefficients.
  for (const char* name : {"diffusion", "reaction"})
    DDTRAIN_CHECK(o.reference_path.empty() || in.member_options().at(name).size() == 1, InvalidArgument,
                  "--", name, " with one value per member needs the computed reference: --reference '",
                  o.reference_path, "' holds the solution for one set of coefficients");
  o.fourier_modes = in.integer("fourier-modes", o.fourier_modes);
  o.model = in.choice("model", o.model, parse_for("model", parse_pinn_model),
                      [](PinnModel m) { return to_string(m); });
  o.depth = in.integer("depth", o.depth);
  o.width = in.integer("width", o.width);
  o.activation = in.choice("activation", o.activation, parse_for("activation", parse_activation),
                           [](Activation a) { return to_string(a); });
  o.weight_factorization.enabled = in.flag("weight-factorization", o.weight_factorization.enabled);
  DDTRAIN_CHECK(o.weight_factorization.enabled || (!in.given("factorization-mean") && !in.given("factorization-std")),
                InvalidArgument, "--factorization-mean/--factorization-std need --weight-factorization");
  if (o.weight_factorization.enabled) {
    o.weight_factorization.mean = in.real("factorization-mean", o.weight_factorization.mean);
    o.weight_factorization.std = in.real("factorization-std", o.weight_factorization.std);
  }
  return o;
}

ProblemPtr make(AllenCahnOptions o, const RunSetup& setup) {
  o.device = setup.device;
  o.dtype = setup.dtype;
  o.seed = setup.seed;
  o.shard = setup.shard;
  require_valid(o.validate());
  return std::make_unique<AllenCahnProblem>(o);
}

}  // namespace

DDTRAIN_REGISTER_PROBLEM(problem_entry(
    "allen_cahn",
    "1D Allen-Cahn PINN (u_t - nu u_xx + 5u^3 - 5u = 0, periodic, ResNet 6x40); metric rel_l2",
    add_options, read_options, make));

}  // namespace ddtrain::cli
