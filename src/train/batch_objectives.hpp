#pragma once
// Private to train(): the step context of each batch: the global objective, this rank's
// micro-batches (data subdomains) and the communicators and partition the solvers use.
#include <memory>
#include <vector>

#include "batch_schedule.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/solver.hpp"
#include "ddtrain/train.hpp"

namespace ddtrain::driver {

/// The objectives built on one batch for this rank, and the StepContext that hands them out.
class BatchObjectives {
 public:
  /// A full-batch problem's objectives are built here, once (the batches only change the data
  /// behind them); a mini-batch is split into `micro_batches` contiguous micro-batches.
  BatchObjectives(Problem& problem, const Layout& layout, const Partition* partition,
                  int micro_batches);
  /// The context of a step on `batch` (batch_id advances when the batch is fresh).
  StepContext& context_for(const Batch& batch);

 private:
  struct Micro {
    int index;
    torch::Tensor indices;
    double weight;
  };
  void set_full_batch();
  void set_mini_batch(const torch::Tensor& indices);
  void fill_context();

  Problem& problem_;
  const Layout& layout_;
  StepContext context_;
  torch::Tensor owned_;
  std::vector<Micro> micro_indices_;
  std::unique_ptr<LocalObjective> local_;
  std::unique_ptr<Objective> global_;
  std::vector<std::unique_ptr<LocalObjective>> micro_;
  std::vector<std::unique_ptr<LocalObjective>> block_objectives_;
};

}  // namespace ddtrain::driver
