#include "ddtrain/solvers/evaluation_cache.hpp"

#include <cmath>

namespace ddtrain {

bool EvaluationCache::lookup(uint64_t batch_id, const torch::Tensor& x, double& loss,
                             torch::Tensor& gradient) const {
  if (!valid_ || batch_id != batch_id_ || x_.sizes() != x.sizes() || x_.dtype() != x.dtype() ||
      !torch::equal(x_, x))
    return false;
  loss = loss_;
  gradient = gradient_.clone();
  return true;
}

double EvaluationCache::start_step(StepSummary& summary, uint64_t batch_id, Objective& objective,
                                   const torch::Tensor& x, double radius, double& loss,
                                   torch::Tensor& gradient) {
  return start_step(
      summary, batch_id, [&objective, &x](torch::Tensor& g) { return objective.evaluate(x, &g); },
      x, radius, loss, gradient);
}

double EvaluationCache::start_step(StepSummary& summary, uint64_t batch_id,
                                   const Evaluation& evaluate, const torch::Tensor& x,
                                   double radius, double& loss, torch::Tensor& gradient) {
  if (!lookup(batch_id, x, loss, gradient)) {
    gradient = torch::empty_like(x);
    loss = evaluate(gradient);
    ++summary.gradient_evaluations;
  }
  summary.loss = loss;
  summary.radius = radius;
  const double gradient_max = gradient.abs().max().item<double>();  // NaN if any entry is
  if (!std::isfinite(loss) || !std::isfinite(gradient_max)) {
    summary.termination = Termination::kNumericalFailure;
    summary.message = "non-finite loss or gradient at the current iterate";
    return std::nan("");
  }
  return gradient_max;
}

void EvaluationCache::finish_step(StepSummary& summary, uint64_t batch_id, const torch::Tensor& x,
                                  double loss, const torch::Tensor& gradient, bool gradient_valid,
                                  double radius, const torch::Tensor& start) {
  if (gradient_valid) {
    store(batch_id, x, loss, gradient);
    summary.gradient_norm = gradient.norm().item<double>();
  } else {
    clear();
  }
  summary.loss = loss;
  summary.radius = radius;
  summary.step_length = (x - start).norm().item<double>();
}

int EvaluationCache::fetch(uint64_t batch_id, Objective& objective, const torch::Tensor& x,
                           double& loss, torch::Tensor& gradient) const {
  if (lookup(batch_id, x, loss, gradient)) return 0;
  gradient = torch::empty_like(x);
  loss = objective.evaluate(x, &gradient);
  return 1;
}

void EvaluationCache::store(uint64_t batch_id, const torch::Tensor& x, double loss,
                            const torch::Tensor& gradient) {
  valid_ = true;
  batch_id_ = batch_id;
  loss_ = loss;
  x_ = x.clone();
  gradient_ = gradient.clone();
}

bool line_search_step_proceeds(StepSummary& summary, double loss, const torch::Tensor& gradient,
                               double gradient_tolerance) {
  summary.loss = loss;
  if (!std::isfinite(loss)) {
    summary.termination = Termination::kNumericalFailure;
    summary.message = "non-finite loss at the current iterate";
    return false;
  }
  if (gradient.abs().max().item<double>() <= gradient_tolerance) {
    summary.gradient_norm = gradient.norm().item<double>();
    summary.step_length = 0;
    summary.termination = Termination::kConverged;
    summary.message = "gradient below tolerance";
    return false;
  }
  return true;
}

}  // namespace ddtrain
