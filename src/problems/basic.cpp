#include "ddtrain/problems/basic.hpp"

#include <cmath>

#include "ddtrain/error.hpp"

namespace ddtrain {

std::string Basic1dOptions::validate() const {
  if (points < 1) return "--nf must be >= 1, got " + std::to_string(points);
  if (test_points < 2) return "--test-points must be >= 2";
  if (!(boundary_weight >= 0)) return "--bc-weight must be >= 0";
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count) return "invalid shard";
  if (scaling == Scaling::kStrong && points < shard.count)
    return "--nf " + std::to_string(points) + " is smaller than the number of data-parallel ranks (" +
           std::to_string(shard.count) + "): every rank needs at least one point";
  return "";
}

torch::Tensor sample_interval_points(int64_t points, Scaling scaling, const Shard& shard,
                                     uint64_t seed, torch::Dtype dtype) {
  const bool weak = scaling == Scaling::kWeak;
  auto generator = at::detail::createCPUGenerator(seed * 7919 + 17 + (weak ? shard.index : 0));
  torch::Tensor all = torch::rand({points, 1}, generator, torch::TensorOptions().dtype(torch::kFloat64)) * 2 - 1;
  if (!weak) all = all.index({torch::arange(shard.index, points, shard.count)});
  return all.to(dtype);
}

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Shared machinery: a fully connected network, points of this shard, a test grid.
class Basic1dProblem : public Problem {
 public:
  explicit Basic1dProblem(const Basic1dOptions& options) : options_(options) {
    const std::string invalid = options_.validate();
    DDTRAIN_CHECK(invalid.empty(), InvalidArgument, invalid);
    torch::manual_seed(options_.seed);
    FullyConnectedOptions net = options_.network;
    net.inputs = 1;
    net.outputs = 1;
    model_ = FullyConnected(net);
    model_->to(options_.device, options_.dtype);
    parameters_ = std::make_unique<FlatParameters>(*model_);
    points_ = sample_interval_points(options_.points, options_.scaling, options_.shard,
                                     options_.seed, options_.dtype)
                  .to(options_.device);
    global_points_ = options_.scaling == Scaling::kWeak ? options_.points * options_.shard.count
                                                        : options_.points;
    test_x_ = torch::linspace(-1, 1, options_.test_points,
                              torch::TensorOptions().dtype(options_.dtype).device(options_.device))
                  .unsqueeze(1);
  }
  FlatParameters& parameters() override { return *parameters_; }
  torch::nn::Module& model() override { return *model_; }
  bool full_batch() const override { return true; }
  int64_t num_samples() const override { return points_.size(0); }
  int64_t global_num_samples() const override { return global_points_; }

  Metric evaluate() override {
    torch::NoGradGuard no_grad;
    torch::Tensor exact = solution(test_x_);
    torch::Tensor error = model_->forward(test_x_) - exact;
    return {"rel_l2", (error.norm() / exact.norm()).item<double>(), false};
  }

 protected:
  virtual torch::Tensor solution(const torch::Tensor& x) const = 0;
  double global_count() const { return static_cast<double>(global_points_); }

  Basic1dOptions options_;
  FullyConnected model_{nullptr};
  std::unique_ptr<FlatParameters> parameters_;
  torch::Tensor points_, test_x_;
  int64_t global_points_ = 0;
};

class FunctionFit final : public Basic1dProblem {
 public:
  explicit FunctionFit(const Basic1dOptions& options) : Basic1dProblem(options) {
    targets_ = solution(points_);
  }
  std::string name() const override { return "function_fit"; }
  torch::Tensor loss(const torch::Tensor&) override {
    return (model_->forward(points_) - targets_).pow(2).sum() / global_count();
  }

 private:
  torch::Tensor solution(const torch::Tensor& x) const override {
    return torch::sin(2 * kPi * x) + torch::sin(4 * kPi * x);
  }
  torch::Tensor targets_;
};

class Poisson1d final : public Basic1dProblem {
 public:
  explicit Poisson1d(const Basic1dOptions& options) : Basic1dProblem(options) {
    source_ = 4 * kPi * kPi * torch::sin(2 * kPi * points_);
    boundary_ = torch::tensor({-1.0, 1.0}, points_.options()).unsqueeze(1);
  }
  std::string name() const override { return "poisson1d"; }
  torch::Tensor loss(const torch::Tensor&) override {
    torch::Tensor x = points_.detach().requires_grad_(true);
    torch::Tensor u = model_->forward(x);
    torch::Tensor ux = torch::autograd::grad({u.sum()}, {x}, {}, true, true)[0];
    torch::Tensor uxx = torch::autograd::grad({ux.sum()}, {x}, {}, true, true)[0];
    torch::Tensor residual = -uxx - source_;
    torch::Tensor share = residual.pow(2).sum() / global_count();
    // The boundary term is owned by shard 0 so that shares sum to the serial loss.
    if (options_.shard.index == 0)
      share = share + options_.boundary_weight * model_->forward(boundary_).pow(2).mean();
    return share;
  }

 private:
  torch::Tensor solution(const torch::Tensor& x) const override { return torch::sin(2 * kPi * x); }
  torch::Tensor source_, boundary_;
};

}  // namespace

ProblemPtr make_function_fit(const Basic1dOptions& options) {
  return std::make_unique<FunctionFit>(options);
}
ProblemPtr make_poisson1d(const Basic1dOptions& options) {
  return std::make_unique<Poisson1d>(options);
}

}  // namespace ddtrain
