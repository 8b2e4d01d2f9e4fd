#pragma once
/// @file
/// Additive trust-region methods (ALGORITHMS.md §3.2 and §3.3):
///  - Sapts ("sapts"): additive trust region over DATA subdomains (the micro-batches of each
///    mini-batch); local steps on first-order-consistent micro-batch objectives.
///  - Apts ("apts"): additive trust region over PARAMETER subdomains (a disjoint layer-wise
///    partition); local steps on each subdomain's parameters with the others frozen.
/// Both share one outer iteration (AdditiveTrustRegion::step): global loss and gradient, local
/// corrections of the owned subdomains, ONE accumulate of [s, pred, count], the trial on the
/// global objective with the §3.1 ratio test and radius update, an optional global pass of
/// trust-region steps, and optional batch growth.
#include <torch/torch.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ddtrain/solver.hpp"
#include "ddtrain/solvers/trust_region.hpp"

namespace ddtrain {

/// f~(y) = f(y) + c'(y - x0) with c = g - grad f(x0): the first-order-consistent local
/// objective of §3.2 step 2. Its value at x0 is f(x0) and its gradient there is g.
class FirstOrderConsistentObjective final : public Objective {
 public:
  /// Evaluates f and its gradient at x0 (one gradient evaluation of `local`).
  FirstOrderConsistentObjective(Objective& local, const torch::Tensor& x0, const torch::Tensor& g);
  /// With f(x0) and grad f(x0) already known (no evaluation).
  FirstOrderConsistentObjective(Objective& local, const torch::Tensor& x0, const torch::Tensor& g,
                                double value_at_x0, const torch::Tensor& gradient_at_x0);
  int64_t dimension() const override { return local_.dimension(); }
  double evaluate(const torch::Tensor& y, torch::Tensor* gradient) override;
  torch::Tensor initial_point() const override { return x0_.clone(); }
  void set_active(const std::vector<Range>& active) override { local_.set_active(active); }
  /// f~(x0) = f(x0).
  double value_at_center() const { return value_at_center_; }
  /// c = g - grad f(x0).
  const torch::Tensor& correction() const { return correction_; }

 private:
  Objective& local_;
  torch::Tensor x0_, correction_;
  double value_at_center_ = 0;
};

/// Batch growth of §3.2 step 6: b <- min(factor b, |D|) when the epoch mean of the mini-batch
/// losses (the running estimate of the full training loss) has not improved by a relative
/// `tolerance` on its best value for `patience` epochs.
struct BatchGrowthOptions {
  bool enabled = false;     ///< --grow-batch
  double factor = 1.5;      ///< growth factor of the batch size
  int patience = 2;         ///< stalled epochs before growing
  double tolerance = 0.01;  ///< an epoch improves if its mean loss < (1 - tolerance) * best
  /// "" if valid, else a one-line message naming the field after `path` (this struct's place in
  /// the options that hold it, e.g. "batch_growth.").
  std::string validate(const std::string& path = "") const;
};

class BatchGrowth {
 public:
  explicit BatchGrowth(BatchGrowthOptions options = {}) : options_(options) {}
  /// One mini-batch loss of the current epoch.
  void record(double loss);
  /// Called before each epoch: the batch size to use (updates the stall statistics).
  int64_t batch_size(int64_t configured, int64_t num_samples);
  void reset();
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  BatchGrowthOptions options_;
  int64_t current_ = 0;  // 0 until the first epoch
  double sum_ = 0;
  int64_t count_ = 0;
  double best_ = std::numeric_limits<double>::infinity();
  int stalled_ = 0;
};

struct AdditiveTrustRegionOptions {
  /// Global radius, ratio test and radius update (§3.1 global set); also the global pass.
  TrustRegionOptions global;
  /// Local ratio test and radius update (§3.1 local set: eta1 0.3, eta2 0.7, increase 1.5,
  /// decrease 0.6). The local radius starts at the subdomain's share of the global radius.
  TrustRegionOptions local = TrustRegionOptions::local_defaults();
  int local_steps = 3;   ///< m_loc: local trust-region steps per subdomain (--local-steps)
  /// m_glob: trust-region steps on the whole batch after the combined step; 0 = no global
  /// pass (--global-steps; SaptsOptions: 0).
  int global_steps = 1;
  double gradient_tolerance = 1e-12;  ///< converged when max|g| <= this (--gradient-tolerance)
  BatchGrowthOptions batch_growth;
  std::string validate() const;
};
/// SAPTS's defaults, measured on Fashion-MNIST (5 epochs, batch 100; examples/mnist/README.md):
///  - no global pass: with 1 data subdomain it lowered the FFNN accuracy (84.8 % vs 86.1 %, mean
///    of seeds 0-2), with 8 it changed nothing, and it doubles the global gradient evaluations;
///  - local eta1 0.05 (not 0.3): with 0.3 the local radii collapse after a few rejected local
///    steps, the combined step stays short and the global radius never grows (CNN: 71.7 % after
///    one epoch against Adam's 86 %; with 0.05: 84 %);
///  - max radius 0.3 (not 2.0): the ratio test on the mini-batch itself accepts steps that are
///    too long to generalise once the radius reaches ~1 (CNN with max 2.0: 84 % after epoch 1,
///    then 78-83 %; with 0.3: 89.3 % after 5 epochs; FFNN 86-87 %);
///  - global eta2 0.5 (not 0.75): the predicted reduction sums the subdomains' local
///    reductions, each measured on its own micro-batch, so with several subdomains it
///    overestimates, rho rarely exceeds 0.75 and the radius only shrinks (CNN, 4 subdomains:
///    83.2 % with 0.75, 88.1 % with 0.5; FFNN with 1 subdomain unchanged, with 8: 86.9 %);
///  - global eta1 0.05 (not 0.25): for the same reason a quarter of the combined steps were
///    rejected in the first epoch with 4 or 8 subdomains, each a lost mini-batch (CNN, 5 epochs:
///    4 subdomains 88.1 -> 89.1 %, 8: 88.3 -> 89.0 %; 1 subdomain, which accepts ~all steps,
///    unchanged at 89.3 %; FFNN 86.6 % with 1 and 8).
struct SaptsOptions : AdditiveTrustRegionOptions {
  SaptsOptions() {
    global_steps = 0;
    global.max_radius = 0.3;
    global.eta1 = 0.05;
    global.eta2 = 0.5;
    local.eta1 = 0.05;
  }
};
using AptsOptions = AdditiveTrustRegionOptions;

/// The outer iteration shared by SAPTS and APTS. Its StepSummary counts: gradient_evaluations
/// = global ones (the start point unless cached, the combined trial when a gradient is needed
/// afterwards, the global-pass trials; for SAPTS the start point counts once even when it is
/// assembled from the micro-batches); local_gradient_evaluations = this rank's local ones (local
/// trials; for SAPTS also one per owned micro-batch at x_k when the start point came from the
/// cache or the micro-batches do not add up to the global objective); loss_evaluations = loss-only
/// trials, global and local. accepted = whether the combined step was accepted.
class AdditiveTrustRegion : public Solver {
 public:
  StepSummary step(StepContext& context, torch::Tensor& x) final;
  void reset() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;
  int64_t batch_size(int64_t configured, int64_t num_samples) override {
    return growth_.batch_size(configured, num_samples);
  }
  const TrustRegion& region() const { return global_; }
  const AdditiveTrustRegionOptions& options() const { return options_; }

 protected:
  explicit AdditiveTrustRegion(AdditiveTrustRegionOptions options);

  struct LocalResult {
    double predicted = 0;  ///< sum of the owned subdomains' local reductions delta
    int subdomains = 0;    ///< subdomains solved on this rank
  };
  /// Solves the subdomains this rank owns from x (global loss, gradient and radius given),
  /// adds their corrections into `correction` (zero on entry) and their evaluations to
  /// `summary`.
  virtual LocalResult local_corrections(StepContext& context, const torch::Tensor& x,
                                        double loss, const torch::Tensor& gradient, double radius,
                                        torch::Tensor& correction, StepSummary& summary) = 0;
  /// The ranks over which corrections are summed (null: this rank alone).
  virtual CommunicatorPtr accumulation_comm(const StepContext& context) const = 0;
  /// Number of subdomains over all ranks (checked against the accumulated count).
  virtual int total_subdomains(const StepContext& context) const = 0;
  /// Step 1's loss and gradient of the global objective at x (gradient allocated like x);
  /// called only when the cache does not hold them. Default: one evaluation of the objective.
  virtual double evaluate_global(StepContext& context, const torch::Tensor& x,
                                 torch::Tensor& gradient) {
    return context.objective->evaluate(x, &gradient);
  }

  /// Up to local_steps local trust-region steps on `objective` from y (loss and gradient at y
  /// given), the cumulative displacement kept <= budget; y is moved, returns the local
  /// reduction delta = loss(start) - loss(end).
  double local_solve(Objective& objective, torch::Tensor& y, double loss, torch::Tensor gradient,
                     double budget, StepSummary& summary) const;

 private:
  AdditiveTrustRegionOptions options_;
  TrustRegion global_;
  EvaluationCache cache_;
  BatchGrowth growth_;
};

/// "sapts": additive trust region over the data subdomains of StepContext (the micro-batches
/// this rank owns, summed over StepContext::data_comm). Local radius and budget: Delta / N.
/// With P = 1 rank owning all N micro-batches it computes the same iterates as P = N ranks.
/// No sample is evaluated twice at x_k: when the data subdomains add up to the global objective
/// (StepContext::data_subdomains_add_up) the global loss and gradient are the weighted sum of
/// the owned micro-batches' evaluations, which the first-order-consistent local objectives
/// then reuse; the combined trial is the data-parallel objective, each rank its share.
class Sapts final : public AdditiveTrustRegion {
 public:
  explicit Sapts(AdditiveTrustRegionOptions options = SaptsOptions{})
      : AdditiveTrustRegion(std::move(options)) {}
  std::string name() const override { return "sapts"; }
  bool needs_data_subdomains() const override { return true; }
  void reset() override;
  void load_state(torch::serialize::InputArchive& archive) override;

 protected:
  LocalResult local_corrections(StepContext& context, const torch::Tensor& x, double loss,
                                const torch::Tensor& gradient, double radius,
                                torch::Tensor& correction, StepSummary& summary) override;
  CommunicatorPtr accumulation_comm(const StepContext& context) const override {
    return context.data_comm;
  }
  int total_subdomains(const StepContext& context) const override {
    return context.num_data_subdomains;
  }
  double evaluate_global(StepContext& context, const torch::Tensor& x,
                         torch::Tensor& gradient) override;

 private:
  /// The owned micro-batches' loss and gradient at `x` on batch `batch_id`, in the order of
  /// StepContext::data_subdomains (empty when step 1 came from the cache).
  struct MicroBatchStart {
    double loss;
    torch::Tensor gradient;
  };
  std::vector<MicroBatchStart> starts_;
  torch::Tensor starts_x_;
  uint64_t starts_batch_ = 0;
};

/// "apts": additive trust region over the (disjoint) parameter partition of StepContext; this
/// rank solves the subdomains it owns, summed over StepContext::accumulate_comm. Local radius
/// and budget: Delta / sqrt(N) in the 2-norm, so ||s|| <= Delta for the concatenation.
class Apts final : public AdditiveTrustRegion {
 public:
  explicit Apts(AptsOptions options = {}) : AdditiveTrustRegion(options) {}
  std::string name() const override { return "apts"; }
  bool needs_partition() const override { return true; }

 protected:
  LocalResult local_corrections(StepContext& context, const torch::Tensor& x, double loss,
                                const torch::Tensor& gradient, double radius,
                                torch::Tensor& correction, StepSummary& summary) override;
  CommunicatorPtr accumulation_comm(const StepContext& context) const override {
    return context.accumulate_comm;
  }
  int total_subdomains(const StepContext& context) const override;
};

}  // namespace ddtrain
