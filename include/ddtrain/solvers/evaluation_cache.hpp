#pragma once
/// @file
/// What the solvers that start a step from the loss and gradient at the current point share
/// (lbfgs, bfgs, plbfgs, tr, sapts, apts): a cache of the last evaluation, which the previous
/// step usually ends with, and the checks at the start of a line-search step.
#include <torch/torch.h>

#include <cstdint>
#include <functional>

#include "ddtrain/objective.hpp"
#include "ddtrain/solver.hpp"

namespace ddtrain {

/// Loss and gradient at a point, valid while the batch and the point do not change (saves the
/// evaluation at the start of a step when the previous step already computed it).
class EvaluationCache {
 public:
  /// True (and loss / gradient filled) if the cache holds x on this batch.
  bool lookup(uint64_t batch_id, const torch::Tensor& x, double& loss, torch::Tensor& gradient) const;
  void store(uint64_t batch_id, const torch::Tensor& x, double loss, const torch::Tensor& gradient);
  void clear() { valid_ = false; }

  /// Loss and gradient at x on this batch: from the cache, or by one evaluation of `objective`.
  /// Returns 1 if it evaluated, 0 if the cache held them (add it to the step's count).
  int fetch(uint64_t batch_id, Objective& objective, const torch::Tensor& x, double& loss,
            torch::Tensor& gradient) const;

  /// The start of a trust-region step at x (tr, sapts, apts alike): loss and gradient from the
  /// cache or one evaluation (counted in the summary, whose loss and radius are filled).
  /// Returns the largest |gradient entry|, or marks the summary kNumericalFailure and returns
  /// NaN if the loss or the gradient is not finite.
  double start_step(StepSummary& summary, uint64_t batch_id, Objective& objective,
                    const torch::Tensor& x, double radius, double& loss, torch::Tensor& gradient);
  /// The same with the evaluation done by `evaluate` (writes the gradient into its argument,
  /// returns the loss), for solvers that assemble the global gradient themselves (SAPTS).
  using Evaluation = std::function<double(torch::Tensor& gradient)>;
  double start_step(StepSummary& summary, uint64_t batch_id, const Evaluation& evaluate,
                    const torch::Tensor& x, double radius, double& loss, torch::Tensor& gradient);
  /// The end of a trust-region step at x (tr, sapts, apts alike): caches loss and gradient
  /// for the next step if the gradient is valid, and fills the summary's loss, gradient norm,
  /// radius and step length (from `start`).
  void finish_step(StepSummary& summary, uint64_t batch_id, const torch::Tensor& x, double loss,
                   const torch::Tensor& gradient, bool gradient_valid, double radius,
                   const torch::Tensor& start);

 private:
  bool valid_ = false;
  uint64_t batch_id_ = 0;
  double loss_ = 0;
  torch::Tensor x_, gradient_;
};

/// The checks at the start of a line-search step (lbfgs, bfgs) at a point with this loss and
/// gradient. Fills the summary's loss; marks it kNumericalFailure if the loss is not finite, or
/// kConverged (gradient norm filled, step length 0) if max |g| <= gradient_tolerance. Returns
/// true when the step goes on.
bool line_search_step_proceeds(StepSummary& summary, double loss, const torch::Tensor& gradient,
                               double gradient_tolerance);

}  // namespace ddtrain
