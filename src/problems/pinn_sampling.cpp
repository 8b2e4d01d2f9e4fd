#include "ddtrain/problems/pinn_sampling.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "ddtrain/error.hpp"
#include "ddtrain/enum_names.hpp"

namespace ddtrain {

namespace {
constexpr NameTable<SamplingMethod, 3> kSamplingNames{{{SamplingMethod::kUniform, "uniform"},
                                                       {SamplingMethod::kLatinHypercube, "lhs"},
                                                       {SamplingMethod::kGrid, "grid"}}};
constexpr NameTable<Scaling, 2> kScalingNames{{{Scaling::kWeak, "weak"}, {Scaling::kStrong, "strong"}}};
}  // namespace

SamplingMethod parse_sampling_method(const std::string& name) {
  return parse_name(kSamplingNames, name, "--sampling");
}
std::string to_string(SamplingMethod method) { return name_of(kSamplingNames, method); }

Scaling parse_scaling(const std::string& name) { return parse_name(kScalingNames, name, "--scaling"); }
std::string to_string(Scaling scaling) { return name_of(kScalingNames, scaling); }

std::string SamplingOptions::validate() const {
  if (count < 1) return "count must be >= 1, got " + std::to_string(count);
  if (shard.count < 1) return "shard.count must be >= 1";
  if (shard.index < 0 || shard.index >= shard.count)
    return "shard.index " + std::to_string(shard.index) + " is outside [0, " +
           std::to_string(shard.count) + ")";
  return "";
}

uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  // splitmix64 of (seed, stream): nearby seeds and streams give unrelated generators.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

namespace {
int64_t grid_points_per_axis(int64_t count, int64_t dimension) {
  return std::max<int64_t>(1, std::llround(std::pow(static_cast<double>(count), 1.0 / dimension)));
}

}  // namespace

int64_t sampled_count(SamplingMethod method, int64_t count, int64_t dimension) {
  if (method != SamplingMethod::kGrid) return count;
  const int64_t k = grid_points_per_axis(count, dimension);
  int64_t total = 1;
  for (int64_t j = 0; j < dimension; ++j) total *= k;
  return total;
}

namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

/// Points in the unit cube [0, 1)^d.
torch::Tensor unit_uniform(int64_t n, int64_t d, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  return torch::rand({n, d}, generator, kDouble);
}

torch::Tensor unit_latin_hypercube(int64_t n, int64_t d, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  torch::Tensor points = torch::empty({n, d}, kDouble);
  for (int64_t j = 0; j < d; ++j) {
    torch::Tensor stratum = torch::randperm(n, generator, kDouble);
    points.select(1, j).copy_((stratum + torch::rand({n}, generator, kDouble)) / n);
  }
  return points;
}

/// Lattice points (m + offset) / k, m = 0..k-1 per axis; the first axis varies slowest.
torch::Tensor unit_grid(int64_t count, int64_t d, double offset) {
  const int64_t k = grid_points_per_axis(count, d);
  const int64_t n = sampled_count(SamplingMethod::kGrid, count, d);
  torch::Tensor index = torch::arange(n, torch::kInt64);
  torch::Tensor points = torch::empty({n, d}, kDouble);
  int64_t stride = n;
  for (int64_t j = 0; j < d; ++j) {
    stride /= k;
    points.select(1, j).copy_((index.div(stride, "floor").remainder(k).to(torch::kFloat64) + offset) / k);
  }
  return points;
}

}  // namespace

ShardPoints sample_points(const Box& box, const SamplingOptions& options) {
  require_valid(options.validate());
  const int64_t d = box.dimension();
  DDTRAIN_CHECK(d >= 1 && static_cast<int64_t>(box.upper.size()) == d, InvalidArgument,
                "a sampling box needs matching lower and upper bounds in >= 1 dimensions");
  for (int64_t j = 0; j < d; ++j)
    DDTRAIN_CHECK(box.lower[j] < box.upper[j], InvalidArgument, "sampling box dimension ", j,
                  " is empty: [", box.lower[j], ", ", box.upper[j], "]");

  const bool weak = options.scaling == Scaling::kWeak;
  const Shard& shard = options.shard;
  // Weak: a stream of its own per shard; shard 0 keeps the seed so one shard is the serial set.
  const uint64_t seed = weak && shard.index > 0
                            ? mix_seed(options.seed, (1ULL << 63) | static_cast<uint64_t>(shard.index))
                            : options.seed;
  torch::Tensor unit;
  switch (options.method) {
    case SamplingMethod::kUniform: unit = unit_uniform(options.count, d, seed); break;
    case SamplingMethod::kLatinHypercube: unit = unit_latin_hypercube(options.count, d, seed); break;
    case SamplingMethod::kGrid:
      unit = unit_grid(options.count, d, weak ? (shard.index + 0.5) / shard.count : 0.5);
      break;
  }
  const torch::Tensor lower = torch::tensor(box.lower, kDouble);
  const torch::Tensor upper = torch::tensor(box.upper, kDouble);
  torch::Tensor points = lower + unit * (upper - lower);

  ShardPoints result;
  const int64_t n = points.size(0);
  if (weak) {
    result.points = points;
    result.global_count = n * shard.count;
  } else {
    const Range mine = balanced_share(n, shard);
    result.points = points.narrow(0, mine.begin, mine.size()).clone();
    result.global_count = n;
  }
  return result;
}

}  // namespace ddtrain

namespace ddtrain {

namespace {

/// Rows of block b of `total` in a serial set of `count` points.
Range block_rows(int64_t count, int64_t b, int64_t total) {
  return balanced_share(count, Shard{static_cast<int>(b), static_cast<int>(total)});
}

}  // namespace

std::string check_point_blocks(int64_t blocks, Scaling scaling, const Shard& shard, int64_t count) {
  if (blocks < 0) return "blocks must be >= 0 (0: one piece per rank), got " + std::to_string(blocks);
  if (blocks == 0) return "";
  if (scaling != Scaling::kStrong) return "blocks needs scaling strong (they cut the one serial collocation set into fixed pieces)";
  if (blocks < shard.count)
    return "blocks " + std::to_string(blocks) + " is smaller than the number of data-parallel ranks (" +
           std::to_string(shard.count) + "): every rank needs at least one block";
  if (blocks > count)
    return "blocks " + std::to_string(blocks) + " exceeds nf (" + std::to_string(count) +
           "): every block needs at least one point";
  return "";
}

Problem::Blocks point_blocks_of(int64_t blocks, const Shard& shard) {
  if (blocks <= 0) return {};
  const Range mine = balanced_share(blocks, shard);
  return {mine.begin, mine.size(), blocks};
}

Range shard_rows(int64_t count, const Shard& shard, const Problem::Blocks& blocks) {
  if (blocks.total == 0) return balanced_share(count, shard);
  return {block_rows(count, blocks.first, blocks.total).begin,
          block_rows(count, blocks.first + blocks.local - 1, blocks.total).end};
}

Range local_block_rows(int64_t i, int64_t count, const Problem::Blocks& blocks) {
  DDTRAIN_CHECK(i >= 0 && i < blocks.local, InvalidArgument, "block ", i, " is not held by this process");
  const int64_t offset = block_rows(count, blocks.first, blocks.total).begin;
  const Range rows = block_rows(count, blocks.first + i, blocks.total);
  return {rows.begin - offset, rows.end - offset};
}

ShardPoints sample_points(const Box& box, const SamplingOptions& options, const Problem::Blocks& blocks) {
  if (blocks.total == 0) return sample_points(box, options);
  DDTRAIN_CHECK(options.scaling == Scaling::kStrong, InvalidArgument,
                "fixed blocks of points need strong scaling (the serial set is what is cut)");
  SamplingOptions serial = options;
  serial.shard = Shard{};
  ShardPoints points = sample_points(box, serial);
  const Range mine = shard_rows(points.points.size(0), options.shard, blocks);
  points.points = points.points.narrow(0, mine.begin, mine.size()).clone();
  return points;
}

}  // namespace ddtrain
