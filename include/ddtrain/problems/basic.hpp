#pragma once
// The first problems: 1-D function fitting and the 1-D Poisson PINN, both with a fully
// connected network, full batch, points split over shards (weak or strong scaling). Their
// amplitude and frequency are options, so that an ensemble solves one problem per member.
#include <string>

#include "ddtrain/models.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/problems/pinn_sampling.hpp"  // Scaling

namespace ddtrain {

struct Basic1dOptions {
  int64_t points = 256;           ///< training points (per shard: weak; in total: strong)
  Scaling scaling = Scaling::kWeak;
  /// --blocks B: cut the data into B fixed blocks (weak: B x points, strong: points split in B),
  /// evaluated one at a time and added in block order, so that any number of ranks <= B gives
  /// bit for bit the result of one process with the same B. 0: one piece per shard (fastest).
  int64_t blocks = 0;
  int64_t test_points = 1000;     ///< equally spaced points for the rel. L2 metric
  double boundary_weight = 1.0;   ///< Poisson: weight of the u(+-1) = 0 term
  /// Poisson: A in -u'' = A (K pi)^2 sin(K pi x), exact u = A sin(K pi x); finite.
  double amplitude = 1.0;
  /// K: Poisson as above; function fit y = sin(K pi x) + sin(2 K pi x). Finite, > 0. Poisson's
  /// boundary condition u(+-1) = 0 holds for the exact solution only for integer K.
  double frequency = 2.0;
  FullyConnectedOptions network;  ///< depth x width, tanh by default
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;              ///< network initialisation and point sampling
  Shard shard;
  std::string validate() const;
};

/// Fit y = sin(K pi x) + sin(2 K pi x) on [-1, 1] (mean squared error; K = frequency, 2 by
/// default: sin(2 pi x) + sin(4 pi x)); metric rel. L2 error.
ProblemPtr make_function_fit(const Basic1dOptions& options);
/// -u'' = A (K pi)^2 sin(K pi x) on [-1, 1], u(+-1) = 0; exact u = A sin(K pi x); metric rel.
/// L2 (A = amplitude, K = frequency; by default -u'' = 4 pi^2 sin(2 pi x), u = sin(2 pi x)).
ProblemPtr make_poisson1d(const Basic1dOptions& options);

/// Uniform random points on [-1, 1] for this shard (shape [n, 1]) under the given scaling.
torch::Tensor sample_interval_points(int64_t points, Scaling scaling, const Shard& shard,
                                     uint64_t seed, torch::Dtype dtype);

}  // namespace ddtrain
