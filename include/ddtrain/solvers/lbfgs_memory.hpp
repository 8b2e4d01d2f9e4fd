#pragma once
/// @file
/// L-BFGS memory: m curvature pairs (s, y) in a ring of flat tensors, the two-loop recursion on
/// the flat vector, initial scaling gamma = s'y / y'y. A pair is kept only if
/// y's > eps * y'y (skipped pairs are counted).
#include <torch/torch.h>

namespace ddtrain {

class LbfgsMemory {
 public:
  explicit LbfgsMemory(int capacity = 10, double curvature_epsilon = 1e-10);
  /// Stores (s, y) if it satisfies the curvature condition; returns whether it was stored.
  bool push(const torch::Tensor& s, const torch::Tensor& y);
  /// Returns H g, H the L-BFGS inverse-Hessian approximation (g itself if empty).
  torch::Tensor apply_inverse_hessian(const torch::Tensor& g) const;
  /// The L-BFGS direction -H g and its slope g'd; where that is not a descent direction
  /// (slope >= 0 or NaN) the memory is cleared and steepest descent -g returned instead.
  struct Direction {
    torch::Tensor direction;
    double slope = 0;
  };
  Direction descent_direction(const torch::Tensor& g);
  void reset();
  int size() const { return count_; }
  int capacity() const { return capacity_; }
  int64_t skipped() const { return skipped_; }
  double gamma() const { return gamma_; }

  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  int capacity_;
  double epsilon_;
  int count_ = 0;
  int head_ = 0;  // next slot to write
  int64_t skipped_ = 0;
  double gamma_ = 1.0;
  torch::Tensor s_, y_, rho_;  // [m, d], [m, d], [m]
};

}  // namespace ddtrain
