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
  /// With parameter-subdomain groups, the global objective over all ranks (each evaluates a
  /// share no other rank evaluates); global_ keeps the group's own. Left null where the data
  /// cannot be split further: a problem without part_loss, fewer local blocks than groups,
  /// samples coupled by batch norm.
  void spread_points_over_groups();
  void spread_blocks_over_groups(const std::vector<Objective*>& local_blocks, int64_t first,
                                 int64_t total);
  void spread_mini_batch_over_all_ranks(const torch::Tensor& indices);
  void fill_context();

  Problem& problem_;
  const Layout& layout_;
  StepContext context_;
  torch::Tensor owned_;
  std::vector<Micro> micro_indices_;
  std::unique_ptr<LocalObjective> local_;
  std::unique_ptr<Objective> global_;  // over this rank's data group
  torch::Tensor all_ranks_share_;
  std::unique_ptr<LocalObjective> all_ranks_local_;  // this rank's part of the global objective
  std::unique_ptr<Objective> all_ranks_global_;  // null: global_ is the global objective
  std::vector<std::unique_ptr<LocalObjective>> micro_;
  std::vector<std::unique_ptr<Objective>> block_objectives_;
};

}  // namespace ddtrain::driver
