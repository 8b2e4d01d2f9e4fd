#pragma once
/// @file
/// A solver chain: `steps` iterations of a first solver (e.g. Adam), then a second one (e.g. the
/// dense quasi-Newton `Bfgs`) for the rest of the run — the recipe of the PINN accuracy
/// references (a few thousand Adam steps, then BFGS-type training).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ddtrain/solver.hpp"

namespace ddtrain {

class WarmupChain final : public Solver {
 public:
  /// Throws InvalidArgument if a solver is missing, steps < 1, or both solvers have the same
  /// name (their checkpoint states would collide).
  WarmupChain(SolverPtr warmup, int64_t steps, SolverPtr then);
  /// The main solver's name: the run is a run of that solver with a warm-up.
  std::string name() const override { return then_->name(); }
  StepSummary step(StepContext& context, torch::Tensor& x) override;
  void reset() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;
  int64_t batch_size(int64_t configured, int64_t num_samples) override;
  bool needs_partition() const override { return then_->needs_partition(); }
  bool needs_data_subdomains() const override { return then_->needs_data_subdomains(); }
  /// warmup_steps done, then the main solver's counters.
  std::vector<std::pair<std::string, int64_t>> counters() const override;

  bool warming_up() const { return done_ < steps_; }
  Solver& warmup() { return *warmup_; }
  Solver& then() { return *then_; }

 private:
  SolverPtr warmup_, then_;
  int64_t steps_ = 0, done_ = 0;
};

}  // namespace ddtrain
