// CLI registration of the trust-region solvers: "tr" (mini-batch trust region), "sapts"
// (additive trust region over data subdomains) and "apts" (over parameter subdomains).
// The CLI main adds --subdomains / --batch-size. Options have no Boost default: "not given"
// means the defaults documented in TrustRegionOptions / SaptsOptions / AptsOptions.
#include "registry.hpp"

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/sapts.hpp"
#include "ddtrain/solvers/trust_region.hpp"

namespace ddtrain::cli {
namespace {

/// Options of every trust-region solver (tr, sapts, apts).
void add_trust_region_options(po::options_description& o) {
  add_option_once(o, "radius", po::value<double>(), "trust region: initial radius (default 0.1)");
  add_option_once(o, "min-radius", po::value<double>(),
                  "trust region: smallest radius after a rejection (default 1e-3)");
  add_option_once(o, "max-radius", po::value<double>(),
                  "trust region: largest radius (default 2.0; sapts 0.3)");
  add_option_once(o, "eta1", po::value<double>(),
                  "trust region: accept a step if rho > eta1 (default 0.25; sapts 0.05)");
  add_option_once(o, "eta2", po::value<double>(),
                  "trust region: expand if rho > eta2 and the step reaches 0.9 radius "
                  "(default 0.75; sapts 0.5)");
  add_option_once(o, "radius-increase", po::value<double>(),
                  "trust region: expansion factor (default 1.2)");
  add_option_once(o, "radius-decrease", po::value<double>(),
                  "trust region: shrink factor on rejection (default 0.9)");
  add_option_once(o, "tr-model", po::value<std::string>(),
                  "trust-region model: first_order | lsr1 (default first_order)");
  add_option_once(o, "tr-memory", po::value<int>(), "L-SR1 memory pairs (default 5)");
  add_option_once(o, "dogleg", po::bool_switch(),
                  "L-SR1: dogleg step instead of the exact (orthonormal-basis) step");
  add_option_once(o, "global-steps", po::value<int>(),
                  "tr: trust-region steps per mini-batch (default 1); sapts/apts: steps of the "
                  "global pass after the combined step, 0 = none (sapts default 0, apts 1)");
  add_option_once(o, "gradient-tolerance", po::value<double>(),
                  "converged when max|gradient| <= this (default 1e-12)");
  add_option_once(o, "data-parallel", po::value<int>(),
                  "ranks per data-parallel group (tr/sapts default: all ranks; apts: 1)");
}

/// Options of the additive methods (sapts, apts): the above plus the local solves.
void add_additive_options(po::options_description& o) {
  add_trust_region_options(o);
  add_option_once(o, "local-steps", po::value<int>(),
                  "local steps per subdomain and outer iteration (sapts/apts default 3)");
  add_option_once(o, "local-eta1", po::value<double>(),
                  "sapts/apts: local acceptance threshold (sapts default 0.05, apts 0.3)");
  add_option_once(o, "local-eta2", po::value<double>(),
                  "sapts/apts: local expansion threshold (default 0.7)");
  add_option_once(o, "local-radius-increase", po::value<double>(),
                  "sapts/apts: local expansion factor (default 1.5)");
  add_option_once(o, "local-radius-decrease", po::value<double>(),
                  "sapts/apts: local shrink factor (default 0.6)");
  add_option_once(o, "grow-batch", po::bool_switch(),
                  "sapts/apts: grow the mini-batch 1.5x when the epoch loss stalls for 2 epochs");
}

/// The global (or, with `local`, the local) trust-region options: `o` (the solver's defaults)
/// with what the command line gives.
TrustRegionOptions region_options(OptionReader& in, bool local, TrustRegionOptions o) {
  const std::string prefix = local ? "local-" : "";
  o.radius = in.real("radius", o.radius);
  o.min_radius = in.real("min-radius", o.min_radius);
  o.max_radius = in.real("max-radius", o.max_radius);
  o.eta1 = in.real(prefix + "eta1", o.eta1);
  o.eta2 = in.real(prefix + "eta2", o.eta2);
  o.increase = in.real(prefix + "radius-increase", o.increase);
  o.decrease = in.real(prefix + "radius-decrease", o.decrease);
  o.model = in.choice("tr-model", o.model, parse_trust_region_model,
                      [](TrustRegionModel m) { return to_string(m); });
  o.memory = in.integer("tr-memory", o.memory);
  o.dogleg = in.flag("dogleg", o.dogleg);
  return o;
}

SolverPtr make_tr(OptionReader& in) {
  TrustRegionSolverOptions o;
  o.region = region_options(in, false, o.region);
  o.steps = in.integer("global-steps", o.steps);
  o.gradient_tolerance = in.real("gradient-tolerance", o.gradient_tolerance);
  require_valid(o.validate());
  return std::make_unique<TrustRegionSolver>(o);
}

/// `o`: the solver's defaults (SaptsOptions or AptsOptions), overridden by the command line.
AdditiveTrustRegionOptions additive_options(OptionReader& in, AdditiveTrustRegionOptions o) {
  o.global = region_options(in, false, o.global);
  // --radius, --min-radius, --max-radius, --tr-model, --tr-memory and --dogleg set both
  // regions; one whose global and local defaults differ is not recorded unless given.
  o.local = region_options(in, true, o.local);
  o.local_steps = in.integer("local-steps", o.local_steps);
  o.global_steps = in.integer("global-steps", o.global_steps);
  o.gradient_tolerance = in.real("gradient-tolerance", o.gradient_tolerance);
  o.batch_growth.enabled = in.flag("grow-batch", o.batch_growth.enabled);
  require_valid(o.validate());
  return o;
}

std::function<int(OptionReader&)> data_parallel_default(int ranks) {
  return [ranks](OptionReader& in) { return in.integer("data-parallel", ranks); };
}

}  // namespace

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "tr",
    "mini-batch trust region on the global objective (first-order or L-SR1 model)",
    add_trust_region_options,
    make_tr,
    data_parallel_default(0),
});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "sapts",
    "additive trust region over data subdomains (micro-batches), SAPTS",
    add_additive_options,
    [](OptionReader& in) -> SolverPtr { return std::make_unique<Sapts>(additive_options(in, SaptsOptions{})); },
    data_parallel_default(0),
});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "apts",
    "additive trust region over parameter subdomains (layer groups), APTS in weights",
    add_additive_options,
    [](OptionReader& in) -> SolverPtr { return std::make_unique<Apts>(additive_options(in, AptsOptions{})); },
    data_parallel_default(1),
});

}  // namespace ddtrain::cli
