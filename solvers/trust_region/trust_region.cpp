// Trust-region step (ALGORITHMS.md §3.1): options, ratio test, radius update, one full step.
#include <algorithm>
#include <cmath>

#include "ddtrain/error.hpp"
#include "ddtrain/enum_names.hpp"
#include "ddtrain/solvers/trust_region.hpp"

namespace ddtrain {

namespace {
constexpr NameTable<TrustRegionModel, 2> kModelNames{
    {{TrustRegionModel::kFirstOrder, "first_order"}, {TrustRegionModel::kLsr1, "lsr1"}}};
}  // namespace

TrustRegionModel parse_trust_region_model(const std::string& name) {
  return parse_name(kModelNames, name, "--tr-model");
}
std::string to_string(TrustRegionModel model) { return name_of(kModelNames, model); }

TrustRegionOptions TrustRegionOptions::local_defaults() {
  TrustRegionOptions o;
  o.eta1 = 0.3;
  o.eta2 = 0.7;
  o.increase = 1.5;
  o.decrease = 0.6;
  return o;
}

std::string TrustRegionOptions::validate(const std::string& path) const {
  const std::string& p = path;
  if (!(radius > 0)) return p + "radius must be > 0";
  if (!(min_radius >= 0 && min_radius <= radius)) return p + "min_radius must be in [0, " + p + "radius]";
  if (!(max_radius >= radius)) return p + "max_radius must be >= " + p + "radius";
  if (!(eta1 >= 0 && eta1 < 1)) return p + "eta1 must be in [0, 1)";
  if (!(eta2 >= eta1 && eta2 < 1)) return p + "eta2 must be in [" + p + "eta1, 1)";
  if (!(increase >= 1)) return p + "increase must be >= 1";
  if (!(decrease > 0 && decrease < 1)) return p + "decrease must be in (0, 1)";
  if (memory < 1) return p + "memory must be >= 1";
  if (dogleg && model != TrustRegionModel::kLsr1) return p + "dogleg needs " + p + "model lsr1";
  return "";
}

double reduction_ratio(double actual, double predicted, double loss) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (!std::isfinite(actual) || !std::isfinite(predicted) || !(predicted > 0)) return -kInf;
  // The model predicts no change beyond rounding of the loss: rho = infinity (§3.1).
  if (predicted <= 1e-14 * std::abs(loss)) return kInf;
  return actual / predicted;
}

// ---- TrustRegion ----------------------------------------------------------------------------

TrustRegion::TrustRegion(TrustRegionOptions options)
    : options_(options), radius_(options.radius), lsr1_(options.memory) {
  require_valid(options_.validate());
}

void TrustRegion::reset() {
  radius_ = options_.radius;
  lsr1_.reset();
}

SubproblemSolution TrustRegion::propose(const torch::Tensor& g, double cap) const {
  const double radius = std::min(radius_, cap);
  if (options_.model == TrustRegionModel::kLsr1)
    return options_.dogleg ? lsr1_.dogleg(g, radius) : lsr1_.solve(g, radius);
  SubproblemSolution out;
  const double gn = g.norm().item<double>();
  if (!(gn > 0)) {
    out.step = torch::zeros_like(g);
    return out;
  }
  out.step = g * (-radius / gn);
  out.predicted = radius * gn;
  out.norm = radius;
  out.on_boundary = true;
  return out;
}

bool TrustRegion::update(double actual, double predicted, double loss, double step_norm,
                         double radius_used) {
  const double rho = reduction_ratio(actual, predicted, loss);
  const bool accepted = rho > options_.eta1;
  if (accepted) {
    if (rho > options_.eta2 && step_norm >= 0.9 * radius_used)
      radius_ = std::max(radius_, std::min(options_.increase * radius_, options_.max_radius));
  } else {
    // Shrink from the radius actually used (a cap may have cut it); never grow on rejection.
    const double used = std::min(radius_, radius_used);
    radius_ = std::min(used, std::max(options_.decrease * used, options_.min_radius));
  }
  return accepted;
}

TrustRegionOutcome TrustRegion::step(Objective& objective, torch::Tensor& x, double& loss,
                                     torch::Tensor& gradient, bool gradient_at_trial,
                                     double cap, const SubproblemSolution* given) {
  // No NoGradGuard here or in the solvers: objectives run autograd inside evaluate().
  TrustRegionOutcome out;
  const double radius_used = std::min(radius_, cap);
  const SubproblemSolution proposal = given != nullptr ? *given : propose(gradient, cap);
  out.predicted = proposal.predicted;
  out.step_norm = proposal.norm;
  torch::Tensor trial = x + proposal.step;
  torch::Tensor trial_gradient;
  double trial_loss;
  bool finite;
  if (gradient_at_trial) {
    trial_gradient = torch::empty_like(x);
    trial_loss = objective.evaluate(trial, &trial_gradient);
    ++out.gradient_evaluations;
    finite = std::isfinite(trial_loss) && torch::isfinite(trial_gradient).all().item<bool>();
  } else {
    trial_loss = objective.loss(trial);
    ++out.loss_evaluations;
    finite = std::isfinite(trial_loss);
  }
  out.actual = finite ? loss - trial_loss : kNaN;
  out.ratio = reduction_ratio(out.actual, out.predicted, loss);
  out.accepted = update(out.actual, out.predicted, loss, out.step_norm, radius_used);
  if (!out.accepted) return out;
  if (options_.model == TrustRegionModel::kLsr1 && gradient_at_trial)
    lsr1_.push(proposal.step, trial_gradient - gradient);
  x.copy_(trial);
  loss = trial_loss;
  if (gradient_at_trial) {
    gradient.copy_(trial_gradient);
  } else {
    out.gradient_valid = false;
  }
  return out;
}

void TrustRegion::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "radius", torch::tensor({radius_}, torch::kFloat64));
  lsr1_.save(archive, prefix + "lsr1.");
}

void TrustRegion::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  torch::Tensor radius;
  archive.read(prefix + "radius", radius);
  radius_ = radius.item<double>();
  lsr1_.load(archive, prefix + "lsr1.");
}

// ---- TrustRegionSolver ("tr") ---------------------------------------------------------------

std::string TrustRegionSolverOptions::validate() const {
  if (steps < 1) return "steps must be >= 1, got " + std::to_string(steps);
  if (!(gradient_tolerance >= 0)) return "gradient_tolerance must be >= 0";
  return region.validate("region.");
}

TrustRegionSolver::TrustRegionSolver(TrustRegionSolverOptions options)
    : options_(options), region_(options.region) {
  require_valid(options_.validate());
}

void TrustRegionSolver::reset() {
  region_.reset();
  cache_.clear();
}

StepSummary TrustRegionSolver::step(StepContext& context, torch::Tensor& x) {
  Objective& objective = *context.objective;
  StepSummary summary;
  double loss = 0;
  torch::Tensor gradient;
  if (std::isnan(cache_.start_step(summary, context.batch_id, objective, x, region_.radius(), loss, gradient)))
    return summary;
  const torch::Tensor start = x.clone();
  bool gradient_valid = true;
  for (int k = 0; k < options_.steps; ++k) {
    if (gradient.abs().max().item<double>() <= options_.gradient_tolerance) {
      summary.termination = Termination::kConverged;
      summary.message = "gradient below tolerance";
      break;
    }
    // The trial gradient is needed for a following step on this batch and for the SR1 pair.
    const bool gradient_at_trial =
        k + 1 < options_.steps || options_.region.model == TrustRegionModel::kLsr1;
    TrustRegionOutcome outcome = region_.step(objective, x, loss, gradient, gradient_at_trial);
    summary.gradient_evaluations += outcome.gradient_evaluations;
    summary.loss_evaluations += outcome.loss_evaluations;
    summary.accepted = outcome.accepted;
    gradient_valid = outcome.gradient_valid;
  }
  cache_.finish_step(summary, context.batch_id, x, loss, gradient, gradient_valid, region_.radius(), start);
  return summary;
}

void TrustRegionSolver::save_state(torch::serialize::OutputArchive& archive) const {
  region_.save(archive, "tr.");
}

void TrustRegionSolver::load_state(torch::serialize::InputArchive& archive) {
  region_.load(archive, "tr.");
  cache_.clear();
}

}  // namespace ddtrain
