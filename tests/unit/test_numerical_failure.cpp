// Non-finite values never propagate silently: injected through a test problem, a NaN loss or
// gradient ends the run with numerical_failure and the last finite parameters kept.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/train.hpp"

using namespace ddtrain;

namespace {

/// Least squares on a linear layer whose loss turns NaN (or +Inf) from call `poison_after` on.
class PoisonedProblem final : public Problem {
 public:
  PoisonedProblem(int64_t poison_after, double poison)
      : poison_after_(poison_after), poison_(poison) {
    torch::manual_seed(3);
    model_->to(torch::kFloat64);
    flat_ = std::make_unique<FlatParameters>(*model_);
    inputs_ = torch::randn({32, 4}, torch::kFloat64);
    targets_ = inputs_.sum(1, true);
  }
  std::string name() const override { return "poisoned"; }
  FlatParameters& parameters() override { return *flat_; }
  torch::nn::Module& model() override { return *model_; }
  bool full_batch() const override { return true; }
  int64_t num_samples() const override { return 32; }
  torch::Tensor loss(const torch::Tensor&) override {
    torch::Tensor l = (model_->forward(inputs_) - targets_).square().mean();
    if (++calls_ > poison_after_) l = l * poison_;
    return l;
  }
  Metric evaluate() override { return {"calls", static_cast<double>(calls_), false}; }
  int64_t calls() const { return calls_; }

 private:
  // Seeded here: members are built before the constructor body runs.
  torch::nn::Linear model_{[] {
    torch::manual_seed(3);
    return torch::nn::Linear(torch::nn::LinearOptions(4, 1));
  }()};
  std::unique_ptr<FlatParameters> flat_;
  torch::Tensor inputs_, targets_;
  int64_t poison_after_;
  double poison_;
  int64_t calls_ = 0;
};

}  // namespace

TEST(NumericalFailure, NonFiniteLossEndsTheRunWithTheLastFiniteParameters) {
  for (double poison : std::vector<double>{std::nan(""), INFINITY}) {
    PoisonedProblem problem(5, poison);
    Adam solver(AdamOptions{});
    Layout layout = make_layout(std::make_shared<SelfComm>());
    TrainOptions options;
    options.epochs = 50;
    options.metric_every = 0;
    Callbacks callbacks;
    bool checkpointed = false;
    callbacks.on_checkpoint = [&](const ResumeState&, const torch::Tensor&) { checkpointed = true; };
    Summary s = train(problem, solver, options, layout, callbacks);
    EXPECT_EQ(s.termination, Termination::kNumericalFailure);
    EXPECT_FALSE(s.succeeded());
    EXPECT_EQ(s.iterations, 6);  // 5 finite steps, the 6th poisoned
    EXPECT_TRUE(std::isfinite(s.final_loss));
    EXPECT_NE(s.message.find("non-finite"), std::string::npos) << s.message;
    const torch::Tensor kept = problem.parameters().values();
    EXPECT_TRUE(torch::isfinite(kept).all().item<bool>());
    EXPECT_FALSE(checkpointed) << "no checkpoint may point past a numerical failure";
    // The kept parameters are those after the 5 finite steps of the same run.
    PoisonedProblem clean(1000, 1.0);
    Adam clean_solver(AdamOptions{});
    options.epochs = 5;
    train(clean, clean_solver, options, layout);
    EXPECT_TRUE(torch::equal(kept, clean.parameters().values()));
  }
}

TEST(NumericalFailure, LbfgsRejectsNonFiniteTrialsOrStopsCleanly) {
  // The line search treats a non-finite trial as "too long"; once every trial is poisoned the
  // run ends (line-search or numerical failure), never with a non-finite iterate.
  PoisonedProblem problem(8, std::nan(""));
  problem.model().to(torch::kFloat64);
  Lbfgs solver(LbfgsOptions{});
  Layout layout = make_layout(std::make_shared<SelfComm>());
  TrainOptions options;
  options.epochs = 50;
  options.metric_every = 0;
  Summary s = train(problem, solver, options, layout);
  EXPECT_FALSE(s.succeeded()) << to_string(s.termination);
  EXPECT_TRUE(s.termination == Termination::kNumericalFailure ||
              s.termination == Termination::kLineSearchFailure)
      << to_string(s.termination);
  EXPECT_TRUE(torch::isfinite(problem.parameters().values()).all().item<bool>());
  EXPECT_TRUE(std::isfinite(s.final_loss));
}
