#pragma once
// Collocation points for PINN problems: uniform random, Latin hypercube or grid points in a box,
// split over data shards.
//
// Two ways to use more shards (--scaling):
//   strong: N points in total. Every shard generates the same serial set and keeps a contiguous
//           slice of it (balanced: the first N % count shards get one more point), so the union
//           over shards is exactly the serial set, point for point.
//   weak:   every shard holds N points of its own, drawn with a shard-dependent seed (shard 0
//           uses the seed itself, so one shard reproduces the serial set). Grid points of shard i
//           are the grid shifted by (i + 1/2) / count of a cell along every axis, so the shards'
//           grids interleave instead of repeating.
// Points are generated in float64 on the CPU, so a set does not depend on the training dtype.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ddtrain/problem.hpp"

namespace ddtrain {

enum class SamplingMethod {
  kUniform,         ///< "uniform": independent uniform random points
  kLatinHypercube,  ///< "lhs": one point in each of N equal strata per dimension
  kGrid,            ///< "grid": cell centres of a k x ... x k lattice, k = round(N^(1/d))
};
SamplingMethod parse_sampling_method(const std::string& name);  // throws InvalidArgument
std::string to_string(SamplingMethod method);

enum class Scaling {
  kWeak,    ///< "weak": N points per shard
  kStrong,  ///< "strong": N points in total, split over the shards
};
Scaling parse_scaling(const std::string& name);  // throws InvalidArgument
std::string to_string(Scaling scaling);

/// An axis-aligned box [lower_j, upper_j] per dimension j.
struct Box {
  std::vector<double> lower;
  std::vector<double> upper;
  int64_t dimension() const { return static_cast<int64_t>(lower.size()); }
};

struct SamplingOptions {
  SamplingMethod method = SamplingMethod::kUniform;  ///< --sampling
  int64_t count = 1000;             ///< N: points in total (strong) or per shard (weak), >= 1
  Scaling scaling = Scaling::kStrong;  ///< --scaling
  uint64_t seed = 0;                ///< random stream (use mix_seed for independent streams)
  Shard shard;                      ///< this process's shard
  std::string validate() const;     ///< "" or a one-line reason
};

/// Points of one shard and the size of the whole set they belong to.
struct ShardPoints {
  torch::Tensor points;      ///< (n_local, d) float64 CPU
  int64_t global_count = 0;  ///< points over all shards (loss shares divide by this)
};

/// Number of points a method puts in a d-dimensional box when asked for `count` (grids round
/// to k^d points; the random methods give exactly `count`).
int64_t sampled_count(SamplingMethod method, int64_t count, int64_t dimension);

/// The points of `options.shard` in `box`. Throws InvalidArgument on invalid options or box.
ShardPoints sample_points(const Box& box, const SamplingOptions& options);

// ---- fixed point blocks (--blocks B) of the PINN problems: the serial set of points (strong
// scaling) cut into B balanced blocks; a shard holds blocks balanced_share(B, shard), each
// evaluated on its own and added in block order (Problem::blocks, Problem::block_loss).

/// "" or why `blocks` (0 = none) does not fit: it needs strong scaling, at least one block per
/// shard and at least one of the `count` points per block.
std::string check_point_blocks(int64_t blocks, Scaling scaling, const Shard& shard, int64_t count);
/// The blocks `shard` holds of `blocks` (Problem::Blocks{} for 0).
Problem::Blocks point_blocks_of(int64_t blocks, const Shard& shard);
/// The rows of a serial set of `count` points that `shard` keeps: the union of its blocks, or
/// without blocks its balanced share (as sample_points splits).
Range shard_rows(int64_t count, const Shard& shard, const Problem::Blocks& blocks);
/// The rows of local block `i` within the shard's rows of a serial set of `count` points.
/// Throws InvalidArgument for a block the shard does not hold.
Range local_block_rows(int64_t i, int64_t count, const Problem::Blocks& blocks);
/// Does a shard hold soft-constraint terms? Without blocks every shard (its share of those
/// points); with blocks the shard of global block 0 only (it holds them whole).
inline bool holds_constraint_terms(const Problem::Blocks& blocks) { return blocks.total == 0 || blocks.first == 0; }
/// The points of `options.shard` in `box`, with blocks the rows of its blocks of the serial set
/// (strong scaling; the global count is the serial set's).
ShardPoints sample_points(const Box& box, const SamplingOptions& options, const Problem::Blocks& blocks);

/// A well-mixed seed for stream `stream` of `seed` (splitmix64), for independent point sets
/// (residual, initial, boundary points; resampling rounds) drawn from one user seed.
uint64_t mix_seed(uint64_t seed, uint64_t stream);

}  // namespace ddtrain
