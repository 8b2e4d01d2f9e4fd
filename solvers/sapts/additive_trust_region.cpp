// The outer iteration shared by SAPTS and APTS (ALGORITHMS.md §3.2 steps 1-6), the
// first-order-consistent local objective and batch growth.
#include <algorithm>
#include <cmath>

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/sapts.hpp"

namespace ddtrain {

// ---- FirstOrderConsistentObjective ----------------------------------------------------------

FirstOrderConsistentObjective::FirstOrderConsistentObjective(Objective& local,
                                                             const torch::Tensor& x0,
                                                             const torch::Tensor& g)
    : local_(local), x0_(x0.clone()) {
  torch::Tensor local_gradient = torch::empty_like(x0);
  value_at_center_ = local_.evaluate(x0_, &local_gradient);
  correction_ = g - local_gradient;
}

FirstOrderConsistentObjective::FirstOrderConsistentObjective(Objective& local,
                                                             const torch::Tensor& x0,
                                                             const torch::Tensor& g,
                                                             double value_at_x0,
                                                             const torch::Tensor& gradient_at_x0)
    : local_(local), x0_(x0.clone()), correction_(g - gradient_at_x0),
      value_at_center_(value_at_x0) {}

double FirstOrderConsistentObjective::evaluate(const torch::Tensor& y, torch::Tensor* gradient) {
  count(gradient != nullptr);
  const double value = local_.evaluate(y, gradient);
  if (gradient != nullptr) gradient->add_(correction_);
  return value + correction_.dot(y - x0_).item<double>();
}

// ---- BatchGrowth ----------------------------------------------------------------------------

std::string BatchGrowthOptions::validate(const std::string& path) const {
  if (!(factor > 1)) return path + "factor must be > 1";
  if (patience < 1) return path + "patience must be >= 1";
  if (!(tolerance >= 0 && tolerance < 1)) return path + "tolerance must be in [0, 1)";
  return "";
}

void BatchGrowth::record(double loss) {
  sum_ += loss;
  ++count_;
}

int64_t BatchGrowth::batch_size(int64_t configured, int64_t num_samples) {
  if (!options_.enabled) return configured;
  if (current_ == 0) current_ = configured;
  if (count_ > 0) {
    const double mean = sum_ / static_cast<double>(count_);
    if (mean < (1 - options_.tolerance) * best_) {
      best_ = mean;
      stalled_ = 0;
    } else if (++stalled_ >= options_.patience) {
      current_ = std::min<int64_t>(
          static_cast<int64_t>(std::ceil(options_.factor * static_cast<double>(current_))),
          num_samples);
      stalled_ = 0;
    }
  }
  sum_ = 0;
  count_ = 0;
  return current_;
}

void BatchGrowth::reset() {
  current_ = 0;
  sum_ = 0;
  count_ = 0;
  best_ = std::numeric_limits<double>::infinity();
  stalled_ = 0;
}

void BatchGrowth::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "batch_size", torch::tensor({current_}, torch::kInt64));
  archive.write(prefix + "stats", torch::tensor({sum_, static_cast<double>(count_), best_,
                                                 static_cast<double>(stalled_)},
                                                torch::kFloat64));
}

void BatchGrowth::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  torch::Tensor size, stats;
  archive.read(prefix + "batch_size", size);
  archive.read(prefix + "stats", stats);
  current_ = size.item<int64_t>();
  auto v = stats.accessor<double, 1>();
  sum_ = v[0];
  count_ = static_cast<int64_t>(v[1]);
  best_ = v[2];
  stalled_ = static_cast<int>(v[3]);
}

// ---- AdditiveTrustRegion --------------------------------------------------------------------

std::string AdditiveTrustRegionOptions::validate() const {
  if (local_steps < 1) return "local_steps must be >= 1, got " + std::to_string(local_steps);
  if (global_steps < 0) return "global_steps must be >= 0, got " + std::to_string(global_steps);
  if (!(gradient_tolerance >= 0)) return "gradient_tolerance must be >= 0";
  if (global.model != local.model || global.memory != local.memory || global.dogleg != local.dogleg)
    return "the local and global trust-region models must agree (global.model, global.memory, "
           "global.dogleg)";
  std::string invalid = global.validate("global.");
  if (invalid.empty()) invalid = local.validate("local.");
  if (invalid.empty()) invalid = batch_growth.validate("batch_growth.");
  return invalid;
}

AdditiveTrustRegion::AdditiveTrustRegion(AdditiveTrustRegionOptions options)
    : options_(options), global_(options.global), growth_(options.batch_growth) {
  require_valid(options_.validate());
}

void AdditiveTrustRegion::reset() {
  global_.reset();
  cache_.clear();
  growth_.reset();
}

double AdditiveTrustRegion::local_solve(Objective& objective, torch::Tensor& y, double loss,
                                        torch::Tensor gradient, double budget,
                                        StepSummary& summary) const {
  TrustRegionOptions local = options_.local;
  local.radius = budget;
  local.max_radius = budget;
  local.min_radius = std::min(local.min_radius, budget);
  TrustRegion region(local);  // fresh radius and memory: the local objective is new each time
  const torch::Tensor start = y.clone();
  const double start_loss = loss;
  for (int k = 0; k < options_.local_steps; ++k) {
    // Remaining budget: ||y - start|| + ||p|| <= budget keeps the displacement inside.
    const double remaining = budget - (y - start).norm().item<double>();
    if (!(remaining > 1e-12 * budget)) break;
    if (gradient.abs().max().item<double>() <= options_.gradient_tolerance) break;
    // The trial gradient is needed only for a following step: not on the last one, and not
    // when an acceptance would spend the budget (always so for first-order steps).
    const SubproblemSolution proposal = region.propose(gradient, remaining);
    const bool gradient_at_trial =
        k + 1 < options_.local_steps && proposal.norm < (1 - 1e-9) * remaining;
    TrustRegionOutcome outcome =
        region.step(objective, y, loss, gradient, gradient_at_trial, remaining, &proposal);
    summary.local_gradient_evaluations += outcome.gradient_evaluations;
    summary.loss_evaluations += outcome.loss_evaluations;
    if (!outcome.gradient_valid) break;
  }
  return start_loss - loss;
}

StepSummary AdditiveTrustRegion::step(StepContext& context, torch::Tensor& x) {
  Objective& objective = *context.objective;
  StepSummary summary;
  // 1. Loss and gradient of the global (data-parallel) objective at x_k.
  double loss = 0;
  torch::Tensor gradient;
  const double gradient_max = cache_.start_step(
      summary, context.batch_id,
      [this, &context, &x](torch::Tensor& g) { return evaluate_global(context, x, g); }, x,
      global_.radius(), loss, gradient);
  if (std::isnan(gradient_max)) return summary;
  growth_.record(loss);
  if (gradient_max <= options_.gradient_tolerance) {
    summary.termination = Termination::kConverged;
    summary.message = "gradient below tolerance";
    summary.step_length = 0;
    return summary;
  }
  const torch::Tensor start = x.clone();

  // 2.-3. Local corrections of the owned subdomains; ONE accumulate of [s, pred, count].
  const int64_t d = x.numel();
  torch::Tensor buffer = torch::zeros({d + 2}, x.options());
  torch::Tensor correction = buffer.narrow(0, 0, d);
  const LocalResult local = local_corrections(context, x, loss, gradient, global_.radius(),
                                              correction, summary);
  buffer.narrow(0, d, 2).copy_(
      torch::tensor({local.predicted, static_cast<double>(local.subdomains)}, torch::kFloat64));
  if (CommunicatorPtr comm = accumulation_comm(context)) comm->accumulate(buffer);
  torch::Tensor tail = buffer.narrow(0, d, 2).to(torch::kCPU, torch::kFloat64);
  const double total = tail[1].item<double>();
  DDTRAIN_CHECK(std::lround(total) == total_subdomains(context), InvalidArgument, name(),
                ": the ranks solved ", total, " of ", total_subdomains(context),
                " subdomains (sapts needs a mini-batch problem; every subdomain must be owned by "
                "exactly one rank of the accumulating communicator)");

  // 4. Trial on the global objective, ratio test, radius update (reject if pred <= 0).
  SubproblemSolution combined;
  combined.step = correction;
  combined.predicted = tail[0].item<double>();
  combined.norm = correction.norm().item<double>();
  const bool lsr1 = options_.global.model == TrustRegionModel::kLsr1;
  TrustRegionOutcome outcome = global_.step(objective, x, loss, gradient,
                                            options_.global_steps > 0 || lsr1,
                                            TrustRegion::kNoCap, &combined);
  summary.gradient_evaluations += outcome.gradient_evaluations;
  summary.loss_evaluations += outcome.loss_evaluations;
  summary.accepted = outcome.accepted;
  bool gradient_valid = outcome.gradient_valid;

  // 5. Global pass: trust-region steps on the whole batch from the current x.
  for (int k = 0; k < options_.global_steps && gradient_valid; ++k) {
    if (gradient.abs().max().item<double>() <= options_.gradient_tolerance) {
      summary.termination = Termination::kConverged;
      summary.message = "gradient below tolerance";
      break;
    }
    outcome = global_.step(objective, x, loss, gradient, k + 1 < options_.global_steps || lsr1);
    summary.gradient_evaluations += outcome.gradient_evaluations;
    summary.loss_evaluations += outcome.loss_evaluations;
    gradient_valid = outcome.gradient_valid;
  }
  cache_.finish_step(summary, context.batch_id, x, loss, gradient, gradient_valid, global_.radius(), start);
  return summary;
}

void AdditiveTrustRegion::save_state(torch::serialize::OutputArchive& archive) const {
  global_.save(archive, name() + ".");
  growth_.save(archive, name() + ".growth.");
}

void AdditiveTrustRegion::load_state(torch::serialize::InputArchive& archive) {
  global_.load(archive, name() + ".");
  growth_.load(archive, name() + ".growth.");
  cache_.clear();
}

}  // namespace ddtrain
