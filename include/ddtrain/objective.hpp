#pragma once
/// @file
/// Objectives: "evaluate the loss (and gradient) at the flat parameters x".
///
/// Convention (loss integrity): a LocalObjective evaluates this rank's shard. With a local count
/// n_r given, its closure returns the MEAN loss over the shard and DistributedObjective
/// combines ranks as sum(n_r * L_r) / sum(n_r); without one, the closure returns this rank's
/// SHARE of the global loss (already divided by global counts) and shares are summed. Either
/// way the value equals the serial loss up to rounding, whatever the number of ranks.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/flat_parameters.hpp"

namespace ddtrain {

/// How many evaluations an objective performed (reported by solvers).
struct EvaluationCounters {
  int64_t gradient = 0;   ///< loss + gradient evaluations
  int64_t loss_only = 0;  ///< loss-only evaluations (line-search / trust-region trials)
};

/// The interface every solver minimises: a loss (and gradient) of a flat parameter vector.
class Objective {
 public:
  virtual ~Objective() = default;
  /// Dimension of x.
  virtual int64_t dimension() const = 0;
  /// Loss at x; if `gradient` is non-null, the gradient at x is written into it (same shape).
  virtual double evaluate(const torch::Tensor& x, torch::Tensor* gradient) = 0;
  /// The current point (a copy the caller owns), e.g. the model's parameters.
  virtual torch::Tensor initial_point() const = 0;
  /// Restricts gradient work to `active` ranges (frozen parameters cost nothing). Empty = all.
  /// Gradient entries outside `active` are then undefined (callers read only active ranges).
  virtual void set_active(const std::vector<Range>& active) { (void)active; }
  /// Hook for objectives that need the iterate written back into a model at the end.
  virtual void commit(const torch::Tensor& x) { (void)x; }

  double loss(const torch::Tensor& x) { return evaluate(x, nullptr); }
  double loss_and_gradient(const torch::Tensor& x, torch::Tensor& gradient) {
    return evaluate(x, &gradient);
  }
  const EvaluationCounters& counters() const { return counters_; }
  void reset_counters() { counters_ = {}; }

 protected:
  void count(bool with_gradient) { ++(with_gradient ? counters_.gradient : counters_.loss_only); }
  EvaluationCounters counters_;
};

/// A differentiable scalar loss of the module's current parameters (a user's closure).
using LossClosure = std::function<torch::Tensor()>;

/// Evaluates a closure on this process's data: copies x into the module's flat parameters,
/// runs the closure and backward into the flat gradient.
class LocalObjective final : public Objective {
 public:
  LocalObjective(FlatParameters& parameters, LossClosure closure);
  int64_t dimension() const override { return parameters_.size(); }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override;
  torch::Tensor initial_point() const override { return parameters_.values().clone(); }
  void set_active(const std::vector<Range>& active) override;
  void commit(const torch::Tensor& x) override;
  void set_closure(LossClosure closure) { closure_ = std::move(closure); }
  FlatParameters& parameters() { return parameters_; }

 private:
  FlatParameters& parameters_;
  LossClosure closure_;
};

/// Data-parallel objective: ONE fused allreduce of [loss*w, grad*w, w] per evaluation.
class DistributedObjective final : public Objective {
 public:
  /// `local_count`: number of samples of this rank's shard when the local closure returns a
  /// mean (loss = sum n_r L_r / sum n_r); std::nullopt when it returns its share (losses summed).
  DistributedObjective(Objective& local, CommunicatorPtr comm,
                       std::optional<double> local_count = std::nullopt);
  int64_t dimension() const override { return local_.dimension(); }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override;
  torch::Tensor initial_point() const override { return local_.initial_point(); }
  void set_active(const std::vector<Range>& active) override { local_.set_active(active); }
  void commit(const torch::Tensor& x) override { local_.commit(x); }
  void set_local_count(std::optional<double> n) { local_count_ = n; }
  Communicator& comm() { return *comm_; }

 private:
  Objective& local_;
  CommunicatorPtr comm_;
  std::optional<double> local_count_;
  torch::Tensor buffer_;
};

/// Data-parallel objective whose result does not depend on the number of ranks, bit for bit.
/// The data is cut into `total_blocks` blocks of fixed content; this rank evaluates its
/// consecutive blocks [first_block, first_block + blocks.size()) one at a time and writes
/// [grad_b, loss_b] into row b of a zeroed (total_blocks x (d+1)) buffer. One allreduce-sum of
/// that buffer is exact (every entry has a single non-zero contributor), and the rows are then
/// added in block order on every rank: the same additions, in the same order, as a serial run
/// with the same blocks. Costs total_blocks x (d+1) words of communication instead of d+2, and
/// one backward pass per block (what `--blocks` buys reproducibility with).
class OrderedDistributedObjective final : public Objective {
 public:
  /// `blocks`: this rank's block objectives (each returns its block's SHARE of the global loss),
  /// not owned, at least one; all over the same parameters.
  OrderedDistributedObjective(std::vector<Objective*> blocks, int64_t first_block,
                              int64_t total_blocks, CommunicatorPtr comm);
  int64_t dimension() const override { return blocks_.front()->dimension(); }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override;
  torch::Tensor initial_point() const override { return blocks_.front()->initial_point(); }
  void set_active(const std::vector<Range>& active) override;
  void commit(const torch::Tensor& x) override { blocks_.front()->commit(x); }

 private:
  std::vector<Objective*> blocks_;
  int64_t first_block_;
  int64_t total_blocks_;
  CommunicatorPtr comm_;
  torch::Tensor rows_;  // (total_blocks, d + 1): [gradient, loss] per block
};

/// Restriction of an objective to a subdomain: x_s lives on `ranges` of the full vector, the
/// other entries are frozen at `base`. Evaluates the FULL objective at base + R^T(x_s - R base).
class SubdomainObjective final : public Objective {
 public:
  SubdomainObjective(Objective& full, std::vector<Range> ranges, torch::Tensor base);
  int64_t dimension() const override { return dimension_; }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override;
  torch::Tensor initial_point() const override { return restrict_vector(base_); }
  /// R x: the subdomain's entries of a full vector (a copy).
  torch::Tensor restrict_vector(const torch::Tensor& full) const;
  /// full[ranges] = part.
  void scatter_into(torch::Tensor& full, const torch::Tensor& part) const;
  /// The frozen point; scatter_into(base(), x) gives the full point.
  const torch::Tensor& base() const { return base_; }
  void set_base(torch::Tensor base) { base_ = std::move(base); }
  const std::vector<Range>& ranges() const { return ranges_; }

 private:
  Objective& full_;
  std::vector<Range> ranges_;
  int64_t dimension_ = 0;
  torch::Tensor base_;
  torch::Tensor point_;
  torch::Tensor full_gradient_;
};

/// Checks that a double is finite.
inline bool is_finite(double v) { return std::isfinite(v); }

}  // namespace ddtrain
