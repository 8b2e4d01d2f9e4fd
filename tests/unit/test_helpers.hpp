#pragma once
// Small hand-made objectives with known minimisers, shared by the solver tests.
#include <torch/torch.h>

#include <functional>

#include "ddtrain/objective.hpp"

namespace ddtrain::test {

/// An objective from a function of a flat float64 vector, with autograd for the gradient.
class FunctionObjective final : public Objective {
 public:
  using Function = std::function<torch::Tensor(const torch::Tensor&)>;
  FunctionObjective(Function f, torch::Tensor x0) : f_(std::move(f)), x0_(std::move(x0)) {}
  int64_t dimension() const override { return x0_.numel(); }
  torch::Tensor initial_point() const override { return x0_.clone(); }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    torch::Tensor point = x.detach().clone().requires_grad_(gradient != nullptr);
    torch::Tensor value = f_(point);
    if (gradient) gradient->copy_(torch::autograd::grad({value}, {point})[0]);
    return value.item<double>();
  }

 private:
  Function f_;
  torch::Tensor x0_;
};

/// Rosenbrock in n dimensions (minimum 0 at all ones).
inline torch::Tensor rosenbrock(const torch::Tensor& x) {
  torch::Tensor a = x.narrow(0, 1, x.numel() - 1) - x.narrow(0, 0, x.numel() - 1).pow(2);
  torch::Tensor b = 1 - x.narrow(0, 0, x.numel() - 1);
  return 100 * a.pow(2).sum() + b.pow(2).sum();
}

/// 0.5 x'Ax - b'x with A SPD diagonal-dominant (minimum at A^-1 b).
struct Quadratic {
  torch::Tensor a, b;
  explicit Quadratic(int64_t n, uint64_t seed = 1) {
    torch::manual_seed(seed);
    torch::Tensor m = torch::randn({n, n}, torch::kFloat64);
    a = m.matmul(m.t()) / n + torch::eye(n, torch::kFloat64);
    b = torch::randn({n}, torch::kFloat64);
  }
  torch::Tensor operator()(const torch::Tensor& x) const {
    return 0.5 * x.dot(a.matmul(x)) - b.dot(x);
  }
  torch::Tensor minimizer() const { return torch::linalg_solve(a, b); }
};

}  // namespace ddtrain::test
