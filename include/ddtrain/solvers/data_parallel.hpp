#pragma once
/// @file
/// The data-parallel baseline (gradient averaging, as Horovod / DDP / DeepXDE): every rank holds
/// the full model and a shard of the data; one allreduce per evaluation (the global objective of
/// the StepContext); SGD, Adam and L-BFGS then update identically on every rank.
#include <string>

#include "ddtrain/solver.hpp"
#include "ddtrain/solvers/evaluation_cache.hpp"
#include "ddtrain/solvers/lbfgs_memory.hpp"
#include "ddtrain/solvers/line_search.hpp"

namespace ddtrain {

struct SgdOptions {
  double learning_rate = 0.01;  ///< the seed's baseline
  double momentum = 0.0;
  bool nesterov = false;        ///< needs momentum > 0
  double weight_decay = 0.0;    ///< L2 penalty added to the gradient
  std::string validate() const;
};

class Sgd final : public Solver {
 public:
  explicit Sgd(SgdOptions options = {});
  std::string name() const override { return "sgd"; }
  StepSummary step(StepContext& context, torch::Tensor& x) override;
  void reset() override { velocity_ = torch::Tensor(); }
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

 private:
  SgdOptions options_;
  torch::Tensor gradient_, velocity_;
};

struct AdamOptions {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;  ///< L2 penalty added to the gradient (torch.optim.Adam)
  std::string validate() const;
};

class Adam final : public Solver {
 public:
  explicit Adam(AdamOptions options = {});
  std::string name() const override { return "adam"; }
  StepSummary step(StepContext& context, torch::Tensor& x) override;
  void reset() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

 private:
  AdamOptions options_;
  int64_t steps_ = 0;
  torch::Tensor gradient_, first_moment_, second_moment_;
};

struct LbfgsOptions {
  int history = 10;                     ///< memory pairs m
  LineSearchOptions line_search;        ///< strong Wolfe by default
  double learning_rate = 1.0;           ///< initial trial step (scaled by 1/|g|_1 on the first)
  double gradient_tolerance = 1e-12;    ///< converged if max|g| <= this
  double step_tolerance = 1e-14;        ///< converged if max|t d| <= this
  double loss_change_tolerance = 0.0;   ///< converged if |f_new - f| <= this (0: off)
  std::string validate() const;
};

class Lbfgs final : public Solver {
 public:
  explicit Lbfgs(LbfgsOptions options = {});
  std::string name() const override { return "lbfgs"; }
  StepSummary step(StepContext& context, torch::Tensor& x) override;
  void reset() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;
  const LbfgsMemory& memory() const { return memory_; }

 private:
  LbfgsOptions options_;
  LbfgsMemory memory_;
  EvaluationCache cache_;  ///< loss and gradient at the last step's end
  double loss_ = 0;        ///< at the current x
  torch::Tensor gradient_;
  int64_t iterations_ = 0;
};

}  // namespace ddtrain
