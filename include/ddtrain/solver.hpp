#pragma once
/// @file
/// Solver: one outer iteration at a time, `x` updated in place, a StepSummary returned.
/// A solver sees objectives, a communicator and (optionally) a partition; never a problem.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/partition.hpp"
#include "ddtrain/summary.hpp"

namespace ddtrain {

/// Data subdomain i (a micro-batch of the current mini-batch) owned by this rank.
struct DataSubdomain {
  int index = 0;                ///< i in [0, num_data_subdomains)
  Objective* objective = nullptr;  ///< mean loss on micro-batch i, evaluated locally
  double weight = 0;            ///< |B_i| / |B|: f = sum_i weight_i f_i
};

/// Everything a step may use. Built by the driver (or by an embedding user).
struct StepContext {
  /// The global objective on the current batch (data-parallel; identical value on all ranks).
  /// With parameter-subdomain groups the driver spreads it over ALL ranks, each a share of the
  /// batch, so no group repeats another's work (see group_objective).
  Objective* objective = nullptr;
  /// The same function evaluated by this rank's data-parallel group alone: what work that the
  /// groups do independently (local solves on parameter subdomains) must use, as a collective
  /// over all ranks cannot run inside it. Null: `objective` serves both.
  Objective* group_objective = nullptr;
  /// Communicator over which subdomain owners `accumulate` corrections (size 1 if none).
  CommunicatorPtr accumulate_comm;
  /// Parameter subdomains (PLBFGS, APTS); this rank owns s where s % owners == owner.
  const Partition* partition = nullptr;
  int owner = 0;
  int owners = 1;
  /// Data subdomains this rank owns (SAPTS) and their total number.
  std::vector<DataSubdomain> data_subdomains;
  int num_data_subdomains = 1;
  /// The ranks sharing the data-parallel objective, i.e. the owners of the data subdomains
  /// (SAPTS accumulates its local corrections over it). Null means this rank alone.
  CommunicatorPtr data_comm;
  /// True when the data subdomains add up to the global objective: sum_i weight_i f_i over the
  /// ranks of data_comm IS `objective` (every sample's loss independent of the other samples
  /// of its batch; not so with synchronized batch norm). SAPTS then assembles the global loss
  /// and gradient from the micro-batch evaluations it needs anyway (one allreduce) instead of
  /// evaluating the same samples twice. The driver sets it; false is always safe.
  bool data_subdomains_add_up = false;
  /// Changes whenever the batch (and so the objective) changes; solvers key caches on it.
  uint64_t batch_id = 0;

  bool owns_subdomain(int s) const { return s % owners == owner; }
  /// The objective that a subdomain's local solve restricts (group_objective or objective).
  Objective& subdomain_objective() const {
    return group_objective != nullptr ? *group_objective : *objective;
  }
};

/// An optimizer: one outer iteration per step(); options are fixed at construction.
class Solver {
 public:
  virtual ~Solver() = default;
  /// Registry name ("sgd", "adam", "lbfgs", "plbfgs", "tr", "sapts", "apts").
  virtual std::string name() const = 0;
  /// One outer iteration from x (updated in place; identical on all ranks afterwards).
  virtual StepSummary step(StepContext& context, torch::Tensor& x) = 0;
  /// Forgets all state (memory, moments, radius) as if newly constructed.
  virtual void reset() = 0;
  /// Optimizer state for checkpoints, as named tensors.
  virtual void save_state(torch::serialize::OutputArchive& archive) const = 0;
  virtual void load_state(torch::serialize::InputArchive& archive) = 0;
  /// Mini-batch size for the coming epoch, asked by the driver before every epoch of a
  /// mini-batch problem (`configured`: TrainOptions::batch_size; `num_samples`: training-set
  /// size). Solvers that grow the batch (SAPTS) override it; identical on every rank.
  virtual int64_t batch_size(int64_t configured, int64_t num_samples) {
    (void)num_samples;
    return configured;
  }
  /// Named event counts for the run summary (e.g. skipped and restarted quasi-Newton updates).
  virtual std::vector<std::pair<std::string, int64_t>> counters() const { return {}; }
  /// Does this solver need a partition / data subdomains in its StepContext?
  virtual bool needs_partition() const { return false; }
  virtual bool needs_data_subdomains() const { return false; }
};

using SolverPtr = std::unique_ptr<Solver>;

/// Convenience for embedding users: runs one step with only a global objective.
StepSummary step(Solver& solver, Objective& objective, torch::Tensor& x);

}  // namespace ddtrain
