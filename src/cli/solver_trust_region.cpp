// CLI registration of the trust-region solvers: "tr" (mini-batch trust region), "sapts"
// (additive trust region over data subdomains) and "apts" (over parameter subdomains).
// The CLI main adds --subdomains / --data-subdomains / --batch-size. Options are defined
// without a Boost default (add_option_once: a name shared with another solver is defined once,
// perhaps with that solver's default), so "not given" always means the defaults documented in
// TrustRegionOptions / AdditiveTrustRegionOptions.
#include <optional>
#include <type_traits>
#include <typeinfo>

#include "registry.hpp"

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/sapts.hpp"
#include "ddtrain/solvers/trust_region.hpp"

namespace ddtrain::cli {
namespace {

template <typename T>
std::optional<T> given(const po::variables_map& vm, const char* name) {
  auto it = vm.find(name);
  if (it == vm.end() || it->second.empty() || it->second.defaulted()) return std::nullopt;
  const boost::any& value = it->second.value();
  if (value.type() == typeid(T)) return boost::any_cast<T>(value);
  // Another registrant may have declared a shared option with a neighbouring type.
  if constexpr (std::is_integral_v<T>) {
    if (value.type() == typeid(int)) return static_cast<T>(boost::any_cast<int>(value));
    if (value.type() == typeid(long)) return static_cast<T>(boost::any_cast<long>(value));
  } else if constexpr (std::is_floating_point_v<T>) {
    if (value.type() == typeid(float)) return static_cast<T>(boost::any_cast<float>(value));
  }
  throw InvalidArgument(std::string("--") + name + " has an unexpected type");
}

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
TrustRegionOptions region_options(const po::variables_map& vm, bool local, TrustRegionOptions o) {
  if (auto v = given<double>(vm, "radius")) o.radius = *v;
  if (auto v = given<double>(vm, "min-radius")) o.min_radius = *v;
  if (auto v = given<double>(vm, "max-radius")) o.max_radius = *v;
  const std::string prefix = local ? "local-" : "";
  if (auto v = given<double>(vm, (prefix + "eta1").c_str())) o.eta1 = *v;
  if (auto v = given<double>(vm, (prefix + "eta2").c_str())) o.eta2 = *v;
  if (auto v = given<double>(vm, (prefix + "radius-increase").c_str())) o.increase = *v;
  if (auto v = given<double>(vm, (prefix + "radius-decrease").c_str())) o.decrease = *v;
  if (auto v = given<std::string>(vm, "tr-model")) o.model = parse_trust_region_model(*v);
  if (auto v = given<int>(vm, "tr-memory")) o.memory = *v;
  if (auto v = given<bool>(vm, "dogleg")) o.dogleg = *v;
  return o;
}

void require_valid(const std::string& invalid) {
  DDTRAIN_CHECK(invalid.empty(), InvalidArgument, invalid);
}

SolverPtr make_tr(const po::variables_map& vm) {
  TrustRegionSolverOptions o;
  o.region = region_options(vm, false, o.region);
  if (auto v = given<int>(vm, "global-steps")) o.steps = *v;
  if (auto v = given<double>(vm, "gradient-tolerance")) o.gradient_tolerance = *v;
  require_valid(o.validate());
  return std::make_unique<TrustRegionSolver>(o);
}

/// `o`: the solver's defaults (SaptsOptions or AptsOptions), overridden by the command line.
AdditiveTrustRegionOptions additive_options(const po::variables_map& vm,
                                            AdditiveTrustRegionOptions o) {
  o.global = region_options(vm, false, o.global);
  o.local = region_options(vm, true, o.local);
  if (auto v = given<int>(vm, "local-steps")) o.local_steps = *v;
  if (auto v = given<int>(vm, "global-steps")) o.global_steps = *v;
  if (auto v = given<double>(vm, "gradient-tolerance")) o.gradient_tolerance = *v;
  if (auto v = given<bool>(vm, "grow-batch")) o.batch_growth.enabled = *v;
  require_valid(o.validate());
  return o;
}

std::function<int(const po::variables_map&, int)> data_parallel_default(int ranks) {
  return [ranks](const po::variables_map& vm, int world_size) {
    (void)world_size;
    if (auto v = given<int>(vm, "data-parallel")) return *v;
    return ranks;
  };
}

}  // namespace

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "tr",
    "mini-batch trust region on the global objective (first-order or L-SR1 model)",
    add_trust_region_options,
    make_tr,
    /*needs_partition=*/false,
    data_parallel_default(0),
});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "sapts",
    "additive trust region over data subdomains (micro-batches), SAPTS",
    add_additive_options,
    [](const po::variables_map& vm) -> SolverPtr {
      return std::make_unique<Sapts>(additive_options(vm, SaptsOptions{}));
    },
    /*needs_partition=*/false,
    data_parallel_default(0),
});

DDTRAIN_REGISTER_SOLVER(SolverEntry{
    "apts",
    "additive trust region over parameter subdomains (layer groups), APTS in weights",
    add_additive_options,
    [](const po::variables_map& vm) -> SolverPtr {
      return std::make_unique<Apts>(additive_options(vm, AptsOptions{}));
    },
    /*needs_partition=*/true,
    data_parallel_default(1),
});

}  // namespace ddtrain::cli
