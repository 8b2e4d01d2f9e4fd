// The training driver's mini-batch bookkeeping: batch sizes, micro-batches, resume position.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/train.hpp"

using namespace ddtrain;

namespace {

/// Least squares on n samples, mini-batch; records the size of every loss call.
class RecordingProblem final : public Problem {
 public:
  explicit RecordingProblem(int64_t n) : n_(n) {
    torch::manual_seed(5);
    model_->to(torch::kFloat64);
    flat_ = std::make_unique<FlatParameters>(*model_);
    inputs_ = torch::randn({n, 3}, torch::kFloat64);
    targets_ = inputs_.sum(1, true);
  }
  std::string name() const override { return "recording"; }
  FlatParameters& parameters() override { return *flat_; }
  torch::nn::Module& model() override { return *model_; }
  bool full_batch() const override { return false; }
  int64_t num_samples() const override { return n_; }
  torch::Tensor loss(const torch::Tensor& indices) override {
    sizes.push_back(indices.numel());
    return (model_->forward(inputs_.index_select(0, indices)) - targets_.index_select(0, indices))
        .square()
        .mean();
  }
  Metric evaluate() override { return {"none", 0.0, false}; }
  std::vector<int64_t> sizes;

 private:
  int64_t n_;
  torch::nn::Linear model_{torch::nn::LinearOptions(3, 1)};
  std::unique_ptr<FlatParameters> flat_;
  torch::Tensor inputs_, targets_;
};

}  // namespace

TEST(Driver, ALastBatchSmallerThanTheMicroBatchCountJoinsThePreviousOne) {
  // 10 samples, batches of 4, 3 micro-batches: 4, 4, 2 would leave a micro-batch empty (its
  // mean loss NaN); the driver trains on 4 and 6 instead.
  RecordingProblem problem(10);
  Sgd solver(SgdOptions{});
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 4;
  options.data_subdomains = 3;
  Summary s = train(problem, solver, options, make_layout(std::make_shared<SelfComm>()));
  EXPECT_EQ(s.iterations, 4);
  EXPECT_TRUE(std::isfinite(s.final_loss));
  EXPECT_EQ(problem.sizes, (std::vector<int64_t>{4, 6, 4, 6}));
}

TEST(Driver, ResumeStartsAtTheGivenBatchOfTheEpoch) {
  RecordingProblem problem(12);
  Sgd solver(SgdOptions{});
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 4;  // 3 batches per epoch
  ResumeState resume;
  resume.epoch = 1;
  resume.batch = 2;
  resume.iteration = 5;
  Summary s = train(problem, solver, options, make_layout(std::make_shared<SelfComm>()), {}, nullptr, resume);
  EXPECT_EQ(s.iterations, 6);  // one batch left
  EXPECT_EQ(problem.sizes.size(), 1u);
  resume.batch = 4;
  EXPECT_THROW(train(problem, solver, options, make_layout(std::make_shared<SelfComm>()), {}, nullptr, resume),
               InvalidArgument);
}
